"""`retry_rejected`: last run's rejected and unresolved records, sent again first.

A rejected record is otherwise forgotten: the rejects file starts afresh each run and the source's
bookmark has moved past it. With `retry_rejected`, the records a run rejects (or leaves unresolved)
are kept in a pending file (JSON, private 0600) with their stream's SCHEMA, the reason and how
often they failed. The next run reads the whole input first (spooled to a private temporary
file), drops each pending record that newer input supersedes (the same stream and id, the same
natural key, or the same record), and sends the rest before the input. A record that fails again
for the same reason `MAX_ATTEMPTS` times in a row stops being retried: it stays in the rejects
file with `"attempts": n`. A run that ends early (a 401, malformed input) leaves the pending file
as it was.

Cost: the input is copied once to disk (never held in memory); the pending records cost what the
same records cost in any run.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

from tap_capsule import catalogue as cat
from tap_capsule.private_files import write_private
from target_capsule import natural_keys as nk
from target_capsule.rejects import Rejects
from target_capsule.values import blank

MAX_ATTEMPTS = 3  # the same reason this many times in a row: no more retries
MARK = "_sdc_capsule_pending"  # on a record sent again: {"attempts", "reason"}; never sent
FORMAT = 1


def pending_path(config: t.Mapping[str, t.Any]) -> Path | None:
    """`pending_path`, else `<rejects_path>.pending.json`; None when neither is set."""
    if config.get("pending_path"):
        return Path(str(config["pending_path"])).expanduser()
    if config.get("rejects_path"):
        rejects = Path(str(config["rejects_path"])).expanduser()
        return rejects.with_name(rejects.name + ".pending.json")
    return None


def load(path: Path | None) -> dict[str, t.Any]:
    """The pending file's content (empty when there is none yet)."""
    empty: dict[str, t.Any] = {"format": FORMAT, "schemas": {}, "records": []}
    if path is None or not path.is_file():
        return empty
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ValueError(f"pending file {path} is not JSON; move it away to start afresh") from None
    if not isinstance(found, dict) or not isinstance(found.get("records"), list):
        raise ValueError(f"pending file {path} is not a target-capsule pending file")
    return {**empty, **found}


def identities(
    stream: str, record: t.Mapping[str, t.Any], upsert_keys: t.Mapping[str, t.Any]
) -> set[tuple]:
    """What makes two records the same record: the id, a natural key value, or all content."""
    found: set[tuple] = set()
    content = {
        k: v for k, v in record.items() if not k.startswith("_sdc_") or k == "_sdc_deleted_at"
    }
    found.add((stream, "content", json.dumps(content, sort_keys=True, default=str)))
    if not blank(record.get("id")):
        found.add((stream, "id", str(record["id"]).strip()))
        return found
    obj = cat.BY_STREAM.get(stream)
    keys = nk.keys_for(obj, upsert_keys) if obj is not None else None
    for number, values in nk.record_keys(record, keys or ()):
        found.add((stream, "key", number, values))
    return found


def input_identities(path: Path, upsert_keys: t.Mapping[str, t.Any]) -> set[tuple]:
    """The identities of every RECORD of a spooled input.

    Lines that are not JSON are skipped here: the run reports them where they are.
    """
    found: set[tuple] = set()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if '"RECORD"' not in line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            record = message.get("record") if isinstance(message, dict) else None
            if message.get("type") == "RECORD" and isinstance(record, dict):
                found |= identities(str(message.get("stream")), record, upsert_keys)
    return found


def prelude(
    pending: t.Mapping[str, t.Any], newer: set[tuple], upsert_keys: t.Mapping[str, t.Any]
) -> tuple[list[str], dict[str, int], int]:
    """Singer lines that send the pending records newer input does not supersede.

    Returns (lines, records sent per stream, records superseded).
    """
    lines: list[str] = []
    sent: dict[str, int] = {}
    superseded = 0
    schemas = pending.get("schemas") or {}
    for entry in pending.get("records") or ():
        stream, record = entry.get("stream"), entry.get("record")
        if not isinstance(stream, str) or not isinstance(record, dict):
            continue
        if identities(stream, record, upsert_keys) & newer:
            superseded += 1
            continue
        if stream not in sent:
            schema = dict(schemas.get(stream) or cat.get(stream).json_schema())
            schema["properties"] = {**schema.get("properties", {}), MARK: {"type": "object"}}
            lines.append(
                json.dumps(
                    {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": []}
                )
            )
        sent[stream] = sent.get(stream, 0) + 1
        mark = {"attempts": int(entry.get("attempts") or 1), "reason": entry.get("reason")}
        lines.append(
            json.dumps({"type": "RECORD", "stream": stream, "record": {**record, MARK: mark}})
        )
    return lines, sent, superseded


class RetryingRejects(Rejects):
    """The rejects file, keeping each rejected record for the next run (up to MAX_ATTEMPTS)."""

    def __init__(self, path: str | None, secrets: t.Sequence[str]) -> None:
        """Start with nothing to keep."""
        super().__init__(path, secrets)
        self.kept: list[dict[str, t.Any]] = []
        self.given_up = 0

    def write(
        self,
        stream: str,
        operation: str,
        reason: str,
        record: t.Mapping[str, t.Any],
        http_status: int | None = None,
        extra: t.Mapping[str, t.Any] | None = None,
    ) -> None:
        """Write the reject; keep the record unless it failed for this reason often enough."""
        found = record.get(MARK)
        mark: dict[str, t.Any] = found if isinstance(found, dict) else {}
        clean = {  # as it came: the SDK's `_sdc_*` metadata and the mark left out
            k: v
            for k, v in record.items()
            if not k.startswith("_sdc_") or (k == "_sdc_deleted_at" and v)
        }
        same = mark.get("reason") == reason
        attempts = int(mark.get("attempts") or 0) + 1 if same else 1
        more = dict(extra or {})
        if mark or attempts > 1:
            more["attempts"] = attempts
        if more.get("retried") is False:  # not a record at all: nothing to send again
            pass
        elif attempts >= MAX_ATTEMPTS:  # failed the same way MAX_ATTEMPTS times: no more
            more["retried"] = False
            self.given_up += 1
        else:
            entry = {"stream": stream, "operation": operation, "reason": reason}
            self.kept.append({**entry, "attempts": attempts, "record": clean})
        super().write(stream, operation, reason, clean, http_status, more)

    def save(self, path: Path, schema_of: t.Callable[[str], dict | None]) -> None:
        """Replace the pending file with this run's kept records (an empty list: all went in).

        `schema_of(stream)`: the stream's SCHEMA in this run, sent again with its records.
        """
        schemas = {s: schema_of(s) for s in sorted({e["stream"] for e in self.kept})}
        document = {
            "format": FORMAT,
            "schemas": {s: schema for s, schema in schemas.items() if schema},
            "records": self.kept,
        }
        write_private(path, json.dumps(document, default=str, ensure_ascii=False, indent=1))
