"""Shifted pages: a record deleted during a long read can make the read skip another one.

Capsule's lists are pages by number. When a record on a page already read is deleted, every later
record moves one place up, and the first record of the next page lands on the page already read:
nothing reads it again until a full refresh. An insertion only moves records down (read twice,
harmless), and a record deleted before the read reached it moves only records not read yet.

So after a multi-page read of an object with a deleted feed, the deletions since the read started
are compared with what the read saw. A deleted record the read had seen means the pages read after
its deletion may have shifted, and they are read again (from the last page read before the first
such deletion). When the deletion came before this run (a resumed read, whose earlier pages this run
did not read), this run can't tell which pages shifted: it says so in the log, and the next full
refresh (the reconcile) reads what may have been skipped.

Objects without a deleted feed (entries, tasks, settings) can't be checked; the docs say so.
"""

from __future__ import annotations

import dataclasses
import typing as t

from tap_capsule.bookmarks import capsule_time, parse_iso


@dataclasses.dataclass
class Verdict:
    """What deletions during a read mean for it."""

    deleted: int = 0  # records deleted during the read that it had seen (or may have)
    reread_from: int | None = None  # read the list again from this page
    earlier_run: bool = False  # the first such deletion came before this run: can't tell


@dataclasses.dataclass
class ShiftWatch:
    """The ids one run's read saw and when (on Capsule's clock) each page arrived."""

    run_started: float | None
    first_page: int = 1
    seen: set[t.Any] = dataclasses.field(default_factory=set)
    pages: list[tuple[int, float]] = dataclasses.field(default_factory=list)

    def page(self, number: int, when: float | None) -> None:
        """Page `number` arrived at `when`."""
        if when is not None:
            self.pages.append((number, when))

    def verdict(self, deleted: t.Iterable[dict], read_signpost: str | None) -> Verdict:
        """Which pages may have shifted, from the deleted feed's stubs `{id, deletedAt}`."""
        if read_signpost is None or len(self.pages) < 2:
            return Verdict()  # one page can't shift under itself
        shifting: list[float] = []
        for stub in deleted:
            at = parse_iso(stub.get("deletedAt"))
            if at is None or capsule_time(at) <= read_signpost:
                continue  # deleted before the read started
            stamp = at.timestamp()
            before_run = self.run_started is not None and stamp < self.run_started
            if stub.get("id") in self.seen or before_run:
                shifting.append(stamp)
        if not shifting:
            return Verdict()
        first = min(shifting)
        if self.run_started is not None and first < self.run_started:
            return Verdict(len(shifting), None, earlier_run=True)
        before = [number for number, when in self.pages if when <= first]
        return Verdict(len(shifting), max(before, default=self.first_page))
