"""The change log: written ahead, one JSONL line before each write and one after its answer.

Before a write is sent, a `pending` line goes out and is flushed: the run id, a sequence number,
the account (from `GET /site`), Capsule's clock at that moment (`capsule_at`), the stream, the
operation, the Capsule id, the fields about to be written and their values before the write, and
for a DELETE the whole record as Capsule held it (so it can be recreated). After the answer a
second line with the same `run_id` and `seq` settles it: `applied` (with the new id of a created
record), `failed` (Capsule refused it: nothing changed) or `unresolved` (still unknown after every
retry and check). A run killed between the two leaves the `pending` line; the next run of the
target, and `capsule-undo`, settle it with the same cheap check that follows an ambiguous failure,
so every write that reached Capsule is in the log and can be undone. A dry run writes one `planned`
line per write it would make.

The file is appended to, never truncated: one file may hold several runs, each line names its run,
and an undo takes the newest run unless told otherwise. `capsule-undo` reads it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import threading
import time
import typing as t
import uuid
from pathlib import Path

from tap_capsule.api_client import AmbiguousWriteError, CapsuleRetryError
from tap_capsule.private_files import open_private
from target_capsule.writes import Unresolved

PENDING, APPLIED, FAILED, UNRESOLVED, PLANNED = (
    "pending",
    "applied",
    "failed",
    "unresolved",
    "planned",
)
SETTLED = (APPLIED, FAILED, UNRESOLVED)
STATUSES = (PENDING, *SETTLED, PLANNED)
# Exceptions after which a write may or may not have reached Capsule.
AMBIGUOUS: tuple[type[BaseException], ...] = (Unresolved, AmbiguousWriteError, CapsuleRetryError)


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{uuid.uuid4().hex[:8]}"


def iso(moment: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (None stays None)."""
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


class ChangeLogError(ValueError):
    """The change log file is missing, unreadable, unwritable or not ours."""


@dataclasses.dataclass
class Entry:
    """One write announced by a `pending` line, until its settling line."""

    run_id: str
    seq: int
    stream: str
    operation: str
    id: t.Any
    status: str = PENDING

    @property
    def settled(self) -> bool:
        """Whether a line after the answer (or a planned line) closed it."""
        return self.status != PENDING


class ChangeLog:
    """Appends change lines to `path`; a no-op without a path."""

    def __init__(self, path: str | None, run_id: str | None = None, dry_run: bool = False) -> None:
        """Nothing is opened yet: `open()` does it before the first request of the run."""
        self.path = Path(path).expanduser().resolve() if path else None
        self.run_id = run_id or new_run_id()
        self.dry_run = dry_run
        self.account: str | None = None  # set from `GET /site` before the first write
        self.clock: t.Callable[[], float | None] = lambda: None  # Capsule's clock
        self.lines = 0  # writes logged (planned or applied)
        self._seq = 0
        self._lock = threading.Lock()
        self._file: t.TextIO | None = None

    @property
    def enabled(self) -> bool:
        """Whether a path was given (without one every write is a no-op)."""
        return self.path is not None

    def open(self) -> None:
        """Open (create, 0600) the file now: an unwritable path stops the run before it starts."""
        if self.path is None or self._file is not None:
            return
        if self.path.is_dir():
            raise ChangeLogError(f"change_log_path {self.path} is a folder, not a file")
        try:
            self._file = t.cast("t.TextIO", open_private(self.path, "a"))
        except OSError as exc:
            raise ChangeLogError(
                f"cannot write the change log {self.path}: {exc.strerror or exc}"
            ) from None

    def _emit(self, line: dict) -> None:
        self.open()
        assert self._file is not None
        self._file.write(json.dumps(line, default=str, ensure_ascii=False) + "\n")
        self._file.flush()

    def _stamp(self, run_id: str, seq: int, status: str) -> dict:
        return {
            "run_id": run_id,
            "seq": seq,
            "at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "account": self.account,
            "status": status,
        }

    def ahead(
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
        list_path: str | None = None,
        kept: t.Mapping[str, t.Any] | None = None,
    ) -> Entry:
        """The `pending` line of a write about to be sent (a `planned` line in a dry run).

        `written`: the body to send (a PUT's diff, a POST's body); `before`: Capsule's values of
        those fields before a PUT; `record`: Capsule's copy of a record to delete; `keys`: the
        path ids of a child or link record (e.g. `opportunityId`, `partyId`); `created_tags`: tag
        names no definition had, which Capsule creates along with the write; `list_path`: where
        a create is looked for if its answer is lost (a child's list under its parent); `kept`:
        fields `fill_empty` did not write, with the value Capsule kept (an undo leaves them).
        """
        status = PLANNED if self.dry_run else PENDING
        with self._lock:
            self._seq += 1
            entry = Entry(self.run_id, self._seq, stream, operation, rid, status)
            if self.path is None:
                return entry
            line = {
                **self._stamp(self.run_id, self._seq, status),
                "capsule_at": iso(self.clock()),
                "stream": stream,
                "operation": operation,
                "id": rid,
                "keys": dict(keys) if keys else None,
                "written": dict(written) if written is not None else None,
                "before": dict(before) if before is not None else None,
                "record": dict(record) if record is not None else None,
                "created_tags": list(created_tags) if created_tags else None,
            }
            if list_path:
                line["list_path"] = list_path
            if kept:
                line["kept"] = dict(kept)
            self._emit(line)
            if status == PLANNED:
                self.lines += 1
        return entry

    def settle(
        self,
        entry: Entry,
        status: str,
        rid: object = None,
        *,
        record: t.Mapping[str, t.Any] | None = None,
        reason: str | None = None,
    ) -> None:
        """The line after the answer: `applied` (with a created id), `failed` or `unresolved`."""
        if entry.settled:
            return
        if status not in SETTLED:
            raise ValueError(f"a write settles as {', '.join(SETTLED)}, not {status!r}")
        entry.status = status
        if rid is not None:
            entry.id = rid
        with self._lock:
            if self.path is None:
                return
            line = {
                **self._stamp(entry.run_id, entry.seq, status),
                "stream": entry.stream,
                "operation": entry.operation,
                "id": entry.id,
            }
            if record is not None:
                line["record"] = dict(record)
            if reason:
                line["reason"] = reason
            self._emit(line)
            if status == APPLIED:
                self.lines += 1

    def settle_line(self, line: t.Mapping[str, t.Any], status: str, rid: object = None) -> None:
        """Settle a `pending` line an earlier run left (killed before the answer)."""
        entry = Entry(
            str(line["run_id"]),
            int(line["seq"]),
            str(line["stream"]),
            str(line["operation"]),
            line.get("id"),
        )
        self.settle(entry, status, rid, reason="settled by a later check")
        if status == APPLIED:
            self.lines -= 1  # not a write of this run

    def around_link(
        self, stream: str, keys: t.Mapping[str, t.Any]
    ) -> t.Callable[[], t.ContextManager[t.Callable[[], None]]]:
        """`links.link_unless_linked`'s `around`: a link's INSERT line ahead of its POST.

        The line is settled `applied` once Capsule holds the link (a lost answer included);
        the target, undo and restore log their link writes the same way.
        """

        @contextlib.contextmanager
        def logged() -> t.Iterator[t.Callable[[], None]]:
            with self.writing(stream, "INSERT", None, None, keys=dict(keys)) as entry:
                yield lambda: self.settle(entry, APPLIED)

        return logged

    @contextlib.contextmanager
    def writing(
        self,
        stream: str,
        operation: str,
        rid: object,
        written: t.Mapping[str, t.Any] | None,
        before: t.Mapping[str, t.Any] | None = None,
        **extra: t.Any,  # noqa: ANN401 - record, keys, created_tags as for `ahead`
    ) -> t.Iterator[Entry]:
        """`ahead`, then the write in the `with` block, then its settling line.

        The block settles the entry as applied itself; leaving it without that is `failed` (a
        refusal, or a look-up that found nothing to do), or `unresolved` when an exception says
        the write may have reached Capsule.
        """
        entry = self.ahead(stream, operation, rid, written, before, **extra)
        try:
            yield entry
        except AMBIGUOUS as exc:
            self.settle(entry, UNRESOLVED, reason=str(exc))
            raise
        except BaseException as exc:
            if isinstance(exc, Exception):
                self.settle(entry, FAILED, reason=str(exc) or type(exc).__name__)
            raise  # a kill or an interrupt leaves the line pending: the next run checks it
        self.settle(entry, FAILED, reason="not sent")

    def close(self) -> None:
        """Close the file; a later write opens it again (append)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def describe(self) -> str:
        """The summary line that names the file."""
        what = "planned change(s)" if self.dry_run else "change(s)"
        return f"Change log: {self.lines} {what} of run {self.run_id} in {self.path}"


def load(path: str | Path) -> dict[str, list[dict]]:
    """Every run of the file, each as its writes (a pending line and its settling line folded).

    A folded line keeps every field of its `pending` line, the final `status`, the id a create got,
    and `ahead: True` (a pending line proves the run sent it). Raises `ChangeLogError` for lines
    that are not JSON objects, or that contradict each other.
    """
    file = Path(path)
    if not file.is_file():
        raise ChangeLogError(f"change log {file} does not exist")
    runs: dict[str, dict[int, dict]] = {}
    with file.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                if not text.endswith("\n"):
                    continue  # the last line, cut short by a kill: its write was never sent
                raise ChangeLogError(
                    f"change log {file} line {number} is not JSON; is it a change log?"
                ) from None
            if not isinstance(line, dict) or not {"run_id", "stream", "operation"} <= set(line):
                raise ChangeLogError(
                    f"change log {file} line {number} lacks run_id, stream or operation"
                )
            _fold(runs.setdefault(str(line["run_id"]), {}), line, f"{file} line {number}")
    return {run: [writes[s] for s in sorted(writes)] for run, writes in runs.items()}


def _fold(writes: dict[int, dict], line: dict, where: str) -> None:
    status = line.get("status")
    if status not in STATUSES:
        raise ChangeLogError(f"change log {where}: unknown status {status!r}")
    seq = line.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ChangeLogError(f"change log {where}: seq {seq!r} is not a positive integer")
    known = writes.get(seq)
    if status in (PENDING, PLANNED):
        if known is not None:
            raise ChangeLogError(f"change log {where}: run {line['run_id']} has seq {seq} twice")
        writes[seq] = {**line, "ahead": status == PENDING}
        return
    if known is None:
        # Lines of an older version: the write logged after its answer, with no pending line.
        writes[seq] = {**line, "ahead": False}
        return
    if known["status"] != PENDING or (known["stream"], known["operation"]) != (
        line["stream"],
        line["operation"],
    ):
        raise ChangeLogError(
            f"change log {where}: contradicts the earlier line of run {line['run_id']} seq {seq}"
        )
    known["status"] = status
    if line.get("id") is not None:
        known["id"] = line["id"]
    if line.get("record") is not None:
        known["record"] = line["record"]
    if line.get("reason"):
        known["reason"] = line["reason"]


def read(path: str | Path, run_id: str | None = None) -> tuple[str, list[dict]]:
    """The writes of one run (the newest in the file unless `run_id`), oldest first."""
    runs = load(path)
    if not runs:
        raise ChangeLogError(f"change log {path} is empty: the run wrote nothing")
    if run_id is None:
        run_id = list(runs)[-1]
    elif run_id not in runs:
        raise ChangeLogError(f"run {run_id} is not in {path}; runs there: {', '.join(runs)}")
    return run_id, runs[run_id]


def unsettled(path: str | Path) -> list[dict]:
    """The writes of every run in the file still `pending` (a kill came before the answer)."""
    if not Path(path).is_file():
        return []
    return [w for writes in load(path).values() for w in writes if w["status"] == PENDING]
