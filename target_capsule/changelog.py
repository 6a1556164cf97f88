"""The change log: one JSONL line per operation the target applied (or, in a dry run, planned).

A line holds what is needed to revert the operation later without guessing: the run id, the stream,
the operation, the Capsule id, the fields written and their values in Capsule before the write, and
for a DELETE the whole record as Capsule held it (so it can be recreated). `capsule-undo` reads it.

The file is appended to, never truncated: one file may hold several runs, each line names its run,
and an undo takes the newest run unless told otherwise. Lines are flushed as they are written, so a
run killed midway still leaves a log of every write it made.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import typing as t
import uuid
from pathlib import Path

APPLIED, PLANNED = "applied", "planned"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{uuid.uuid4().hex[:8]}"


class ChangeLog:
    """Appends change lines to `path`; a no-op without a path."""

    def __init__(self, path: str | None, run_id: str | None = None, dry_run: bool = False) -> None:
        """Open lazily: a run that writes nothing leaves no file behind."""
        self.path = Path(path).expanduser().resolve() if path else None
        self.run_id = run_id or new_run_id()
        self.status = PLANNED if dry_run else APPLIED
        self.lines = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._file: t.TextIO | None = None

    @property
    def enabled(self) -> bool:
        """Whether a path was given (without one every write is a no-op)."""
        return self.path is not None

    def write(
        self,
        stream: str,
        operation: str,
        rid: object,
        written: t.Mapping[str, t.Any] | None,
        before: t.Mapping[str, t.Any] | None = None,
        *,
        record: t.Mapping[str, t.Any] | None = None,
        keys: t.Mapping[str, t.Any] | None = None,
        created_tags: t.Sequence[str] | None = None,
        kept: t.Mapping[str, t.Any] | None = None,
    ) -> None:
        """One applied (or planned) operation.

        `written`: the body sent (a PUT's diff, a POST's body); `before`: Capsule's values of those
        fields before a PUT; `record`: Capsule's copy of a deleted record; `keys`: the path ids of a
        child or link record (e.g. `opportunityId`, `partyId`), which its URL needs;
        `created_tags`: tag names no definition had, which Capsule creates along with the write;
        `kept`: fields `fill_empty` did not write, with the value Capsule kept (not reverted).
        """
        if self.path is None:
            return
        with self._lock:
            self._seq += 1
            line = {
                "run_id": self.run_id,
                "seq": self._seq,
                "at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "status": self.status,
                "stream": stream,
                "operation": operation,
                "id": rid,
                "keys": dict(keys) if keys else None,
                "written": dict(written) if written is not None else None,
                "before": dict(before) if before is not None else None,
                "record": dict(record) if record is not None else None,
                "created_tags": list(created_tags) if created_tags else None,
            }
            if kept:
                line["kept"] = dict(kept)
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")
            self._file.flush()
            self.lines += 1

    def close(self) -> None:
        """Close the file; a later write opens it again (append)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def describe(self) -> str:
        """The summary line that names the file."""
        what = "planned change(s)" if self.status == PLANNED else "change(s)"
        return f"Change log: {self.lines} {what} of run {self.run_id} in {self.path}"


class ChangeLogError(ValueError):
    """The change log file is missing, unreadable or not ours."""


def read(path: str | Path, run_id: str | None = None) -> tuple[str, list[dict]]:
    """The lines of one run (the newest in the file unless `run_id`), oldest first."""
    file = Path(path)
    if not file.is_file():
        raise ChangeLogError(f"change log {file} does not exist")
    by_run: dict[str, list[dict]] = {}
    with file.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                raise ChangeLogError(
                    f"change log {file} line {number} is not JSON; is it a change log?"
                ) from None
            if not isinstance(line, dict) or not {"run_id", "stream", "operation"} <= set(line):
                raise ChangeLogError(
                    f"change log {file} line {number} lacks run_id, stream or operation"
                )
            by_run.setdefault(str(line["run_id"]), []).append(line)
    if not by_run:
        raise ChangeLogError(f"change log {file} is empty: the run wrote nothing")
    if run_id is None:
        run_id = list(by_run)[-1]
    elif run_id not in by_run:
        raise ChangeLogError(f"run {run_id} is not in {file}; runs there: {', '.join(by_run)}")
    return run_id, sorted(by_run[run_id], key=lambda line: int(line.get("seq") or 0))
