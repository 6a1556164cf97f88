"""Bearer tokens and the OAuth refresh grant, with refresh-token rotation.

The original personal token stays valid after a refresh; each refresh issues a new access token and
a new refresh token, and the old refresh token stops working (fact sheet §1: always keep the latest).
"""

from __future__ import annotations

import hashlib
import threading

WRITE, READ = "read write", "read"


class Auth:
    def __init__(
        self,
        token: str,
        read_only_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
    ) -> None:
        if not token:
            raise ValueError("a token is required")
        self._lock = threading.Lock()
        self.tokens = {token: WRITE}
        if read_only_token:
            self.tokens[read_only_token] = READ
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token = refresh_token
        self.refreshes = 0

    def scope(self, header: str | None) -> str | None:
        """The scope of an `Authorization: Bearer` header, or None when it is missing/unknown."""
        if not header or not header[:7].lower() == "bearer ":
            return None
        with self._lock:
            return self.tokens.get(header[7:].strip())

    def refresh(self, form: dict[str, str]) -> tuple[int, dict]:
        """POST /oauth/token: (status, JSON body)."""
        with self._lock:
            if form.get("grant_type") != "refresh_token":
                return 400, {
                    "error": "unsupported_grant_type",
                    "error_description": "only grant_type=refresh_token is supported",
                }
            if (
                not self.client_id
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret
            ):
                return 401, {
                    "error": "invalid_client",
                    "error_description": "client authentication failed",
                }
            if not self.refresh_token or form.get("refresh_token") != self.refresh_token:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "the refresh token is invalid or was rotated",
                }
            self.refreshes += 1
            seed = f"{self.refresh_token}:{self.refreshes}".encode()
            access = "sbx-at-" + hashlib.sha256(b"a" + seed).hexdigest()[:32]
            self.refresh_token = "sbx-rt-" + hashlib.sha256(b"r" + seed).hexdigest()[:32]
            self.tokens[access] = WRITE
            return 200, {
                "access_token": access,
                "refresh_token": self.refresh_token,
                "token_type": "bearer",
                "expires_in": 604799,
                "scope": WRITE,
                "subdomain": "sandbox",
            }
