"""The rejects file: one JSON line per record that was not (or would not be) applied.

`{"stream", "operation", "reason", "http_status", "record"}`. Secret setting values (the access
token, OAuth refresh token and client credentials) never reach it: any occurrence in a reason or a
record is replaced by `***`.
"""

from __future__ import annotations

import json
import logging
import pathlib
import threading
import typing as t

SECRET_SETTINGS = ("access_token", "refresh_token", "client_id", "client_secret")
MASK = "***"

logger = logging.getLogger(__name__)


def secrets_of(config: t.Mapping[str, t.Any]) -> list[str]:
    return sorted({str(config[k]) for k in SECRET_SETTINGS if config.get(k)}, key=len, reverse=True)


def redact(text: str, secrets: t.Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _jsonable(value: t.Any) -> t.Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _redact_values(value: t.Any, secrets: t.Sequence[str]) -> t.Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_values(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_values(v, secrets) for v in value]
    return value


class Rejects:
    """Writes rejections to `rejects_path` (truncated at the start of a run) and the log."""

    def __init__(self, path: str | None, secrets: t.Sequence[str]) -> None:
        self.path = pathlib.Path(path) if path else None
        self.secrets = list(secrets)
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("", encoding="utf-8")

    def write(
        self,
        stream: str,
        operation: str,
        reason: str,
        record: t.Mapping[str, t.Any],
        http_status: int | None = None,
    ) -> None:
        reason = redact(reason, self.secrets)
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
                self.secrets,
            ),
        }
        # Redact inside values only: replacing in the serialised line would corrupt keys and
        # structure whenever a secret happens to be a short common string.
        text = json.dumps(line, default=_jsonable, ensure_ascii=False)
        with self._lock:
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(text + "\n")
        rid = record.get("id")
        logger.warning(
            "Rejected %s %s%s: %s",
            stream,
            operation,
            f" id={rid}" if rid is not None else "",
            reason,
        )
