"""The rejects file: one JSON line per record that was not (or would not be) applied.

`{"stream", "operation", "reason", "http_status", "record"}`. Secret setting values (the access
token, OAuth refresh token and client credentials) never reach it: any occurrence in a reason, a
record's value or a record's key, whole, encoded or in part, is replaced by `***`.
"""

from __future__ import annotations

import json
import logging
import pathlib
import threading
import typing as t

from tap_capsule.private_files import open_private
from tap_capsule.secrets import Redactor, secret_values

logger = logging.getLogger(__name__)


def secrets_of(config: t.Mapping[str, t.Any]) -> list[str]:
    """The secret settings' values, in every form they were given and used."""
    return secret_values(config)


def _jsonable(value: object) -> str:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _redact_values(value: object, redactor: Redactor, keys: Redactor) -> object:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {keys.redact(str(k)): _redact_values(v, redactor, keys) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_values(v, redactor, keys) for v in value]
    return value


class Rejects:
    """Writes rejections to `rejects_path` (truncated at the start of a run) and the log."""

    def __init__(self, path: str | None, secrets: t.Sequence[str]) -> None:
        """Empty the file (a run's rejects start fresh) and prepare the masking of `secrets`."""
        self.path = pathlib.Path(path) if path else None
        self.redactor = Redactor(secrets)
        # Keys are field names: only a secret long enough not to be part of one is masked there.
        self.key_redactor = Redactor(secrets, min_length=8)
        self._lock = threading.Lock()
        if self.path is not None:
            open_private(self.path, "w").close()

    def write(
        self,
        stream: str,
        operation: str,
        reason: str,
        record: t.Mapping[str, t.Any],
        http_status: int | None = None,
        extra: t.Mapping[str, t.Any] | None = None,
    ) -> None:
        """Append one rejected record (masked) and log it (masked by the log handlers too).

        `extra`: more keys for the line (how often a retried record failed: `attempts`).
        """
        reason = self.redactor.redact(reason)
        line = {
            "stream": stream,
            "operation": operation,
            "reason": reason,
            "http_status": http_status,
            "record": _redact_values(
                {
                    k: v
                    for k, v in record.items()
                    if not k.startswith("_sdc_") or (k == "_sdc_deleted_at" and v)
                },
                self.redactor,
                self.key_redactor,
            ),
        }
        line.update(extra or {})
        # Redact inside keys and values, not in the serialised line: that would corrupt its
        # structure whenever a secret happens to be a short common string.
        text = json.dumps(line, default=_jsonable, ensure_ascii=False)
        with self._lock:
            if self.path is not None:
                with open_private(self.path, "a") as handle:
                    handle.write(text + "\n")
        rid = record.get("id")
        logger.warning(
            "Rejected %s %s%s: %s",
            stream,
            operation,
            f" id={rid}" if rid is not None else "",
            reason,
        )
