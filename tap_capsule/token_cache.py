"""Rotated OAuth tokens carried from one process to the next.

Capsule may rotate the refresh token on every refresh, and the old one then stops working. Meltano
runs discovery and sync as separate processes, and a scheduled extract runs again an hour later, so
a token rotated by one process must reach the next one or the run after it fails. Plugins can't
write back into their own settings, so the rotated pair goes to a file the user names
(`oauth_token_cache`).

The file holds secrets: it is written atomically with mode 0600 and never logged. It is tied to a
fingerprint of the configured client id and refresh token, so configuring a new grant replaces it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import typing as t
from pathlib import Path

from tap_capsule.private_files import write_private

if t.TYPE_CHECKING:
    import os

logger = logging.getLogger(__name__)


class TokenCache:
    """The token file of one OAuth grant (client id and configured refresh token)."""

    def __init__(self, path: str | os.PathLike, *, client_id: str, configured_refresh: str) -> None:
        """Binds the file to a hash of the grant, so that a new grant ignores the old tokens."""
        self.path = Path(path).expanduser()
        self.fingerprint = hashlib.sha256(f"{client_id}\0{configured_refresh}".encode()).hexdigest()

    def load(self) -> dict[str, t.Any] | None:
        """The cached tokens of this grant, or None (missing, unreadable or another grant)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            logger.warning("Ignoring the unreadable OAuth token cache %s", self.path)
            return None
        if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint:
            return None
        if not data.get("refresh_token"):
            return None
        return data

    def save(self, *, access_token: str, refresh_token: str, expires_in: int | None) -> None:
        """Replaces the file atomically (a crash leaves the old one), readable by its owner only."""
        data = {
            "fingerprint": self.fingerprint,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_at": time.time() + expires_in if expires_in else None,
        }
        write_private(self.path, json.dumps(data))
