"""References between records, and the id map that carries them from old ids to new ones.

When a record is recreated (an undo of a DELETE, a restore), Capsule gives it a new id, and every
record that pointed to the old one must point to the new one. The reference fields below name
which stream an id in a record belongs to; `IdMap` keeps old id → new id per stream, and can
persist itself as JSON so an interrupted run resumes with it.
"""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path

from tap_capsule import catalogue as cat
from tap_capsule.private_files import open_private, write_private
from target_capsule.site import check_account

ACCOUNT = "_account"  # the key naming the account inside an id map file and its journal lines

# Record field → the stream whose ids it holds, from the catalogue's per-object `references`.
REFERENCE_STREAMS: dict[str, str] = cat.REFERENCE_STREAMS


# Id-map section: backed-up users with no counterpart, and the destination user who took their
# records (the default owner). Verify counts these as limits, not differences.
REASSIGNED = "users_reassigned"


def positive_id(value: t.Any) -> int | None:  # noqa: ANN401 - any untrusted JSON value
    """`value` as a positive integer id, or None when it is not one (never guessed)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


class IdMap:
    """Old id → new id, per stream, durable when a path is given.

    Every change is appended to a journal next to the file (`<path>.journal`, one JSON line,
    flushed) before the caller goes on, so a killed run loses no mapping; `save()` folds the
    journal into the file. A journal line may also mark a create as pending (sent, answer not
    seen yet), which the next run resolves before creating anything.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        data: t.Mapping | None = None,
        account: str | None = None,
    ) -> None:
        """Start from `data`, else from the file at `path` and its journal when they exist.

        With `account`, a file or journal of another account is refused (`AccountMismatch`),
        and what is written names it.
        """
        self.path = Path(path) if path else None
        self.account = account
        self.map: dict[str, dict[str, int]] = {}
        self.pending: dict[tuple[str, str], dict] = {}
        self.since: dict[tuple[str, str], float] = {}  # Capsule's clock when a create was sent
        self.where: dict[tuple[str, str], str] = {}  # the list a pending create is looked for in
        source = data
        if source is None and self.path is not None and self.path.is_file():
            source = json.loads(self.path.read_text(encoding="utf-8"))
            if account is not None and isinstance(source, dict):
                check_account(source.get(ACCOUNT), account, f"id map {self.path}")
        self.merge(source or {})
        journal = self.journal_path
        if journal is not None and journal.is_file():
            for text in journal.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(text)
                except ValueError:
                    continue  # a line cut short by a kill: its create is still pending
                if account is not None and isinstance(entry, dict):
                    check_account(entry.get(ACCOUNT), account, f"id map journal {journal}")
                self._apply(entry)
        self._journal: t.TextIO | None = None

    @property
    def journal_path(self) -> Path | None:
        """Where changes are appended before they are folded into the file."""
        return self.path.with_name(self.path.name + ".journal") if self.path else None

    def merge(self, source: t.Mapping) -> None:
        """Add the pairs of `{stream: {old: new}}` (e.g. from a STATE)."""
        for stream, pairs in source.items():
            if isinstance(pairs, dict):
                self.map.setdefault(str(stream), {}).update(
                    {str(k): int(v) for k, v in pairs.items() if positive_id(v) is not None}
                )

    def _apply(self, entry: t.Mapping[str, t.Any]) -> None:
        stream, old = str(entry.get("stream")), str(entry.get("old"))
        if entry.get("pending") is not None:
            self.pending[(stream, old)] = dict(entry["pending"])
            if isinstance(entry.get("since"), (int, float)):
                self.since[(stream, old)] = float(entry["since"])
            if isinstance(entry.get("path"), str):
                self.where[(stream, old)] = entry["path"]
        elif positive_id(entry.get("new")) is not None:
            self.map.setdefault(stream, {})[old] = int(entry["new"])
            self.pending.pop((stream, old), None)
            self.since.pop((stream, old), None)

    def _append(self, entry: dict) -> None:
        self._apply(entry)
        if self.account is not None:
            entry = {ACCOUNT: self.account, **entry}
        journal = self.journal_path
        if journal is None:
            return
        if self._journal is None:
            self._journal = t.cast("t.TextIO", open_private(journal, "a"))
        self._journal.write(json.dumps(entry) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def get(self, stream: str, old: t.Any) -> int | None:  # noqa: ANN401 - ids arrive as str or int
        """The new id of `old` in `stream`, or None when it was not recreated."""
        return self.map.get(stream, {}).get(str(old))

    def put(self, stream: str, old: t.Any, new: int, durable: bool = True) -> None:  # noqa: ANN401
        """Record that `old` now lives at `new`; `durable` journals it at once (a create)."""
        if durable:
            self._append({"stream": stream, "old": str(old), "new": int(new)})
        else:
            self.map.setdefault(stream, {})[str(old)] = int(new)
            self.pending.pop((stream, str(old)), None)

    def mark_pending(
        self,
        stream: str,
        old: t.Any,  # noqa: ANN401 - ids arrive as str or int
        body: t.Mapping[str, t.Any],
        since: float | None = None,
        path: str | None = None,
    ) -> None:
        """A create is about to be sent (at `since`, on Capsule's clock).

        If its answer is lost, the next run looks for it before creating anything.
        """
        entry: dict[str, t.Any] = {"stream": stream, "old": str(old), "pending": dict(body)}
        if since is not None:
            entry["since"] = since
        if path is not None:
            entry["path"] = path
        self._append(entry)

    def new_ids(self, stream: str) -> set[int]:
        """The ids records of `stream` were recreated or matched with."""
        return set(self.map.get(stream, {}).values())

    def close(self) -> None:
        """Close the journal (it stays on disk: nothing is lost)."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def save(self) -> None:
        """Fold the journal into the file, written atomically (a temporary file renamed)."""
        if self.path is None:
            return
        data: dict[str, t.Any] = dict(self.map)
        if self.account is not None:
            data[ACCOUNT] = self.account
        write_private(self.path, json.dumps(data, sort_keys=True))
        self.close()
        journal = self.journal_path
        if journal is not None:
            journal.unlink(missing_ok=True)
            for (stream, old), body in list(self.pending.items()):  # still unresolved
                key = (stream, old)
                self.mark_pending(stream, old, body, self.since.get(key), self.where.get(key))

    def remap(self, record: t.Mapping[str, t.Any]) -> dict:
        """A copy of `record` whose references point to the recreated records' new ids."""
        out = dict(record)
        for key, stream in REFERENCE_STREAMS.items():
            value = out.get(key)
            if isinstance(value, dict) and value.get("id") is not None:
                new = self.get(stream, value["id"])
                if new is not None:
                    out[key] = {**value, "id": new}
            elif value is not None and not isinstance(value, (dict, list)):
                new = self.get(stream, value)
                if new is not None:
                    out[key] = new
        return out

    def as_dict(self) -> dict[str, dict[str, int]]:
        """A JSON-ready copy, e.g. for the STATE."""
        return {s: dict(pairs) for s, pairs in self.map.items()}
