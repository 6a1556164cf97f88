"""Mid-stream checkpoints: where a long read stands, kept in the STATE for a killed run to resume.

Capsule's lists are pages by number and document no order, so an `updatedAt` bookmark can only
advance when a read ends. A first sync, a full refresh or a backup of a large account spends hours
of the hourly budget; killed before the end (a CI time limit, a deploy, a network fault) it would
start again from zero, and a scheduled job with a time limit might never finish. So a long read
writes where it stands into its own stream's state entry, once per page:

    "checkpoint": {"from": "2026-01-01T00:00:00Z", "exclusive": true, "perPage": 100,
                   "phase": "list", "page": 7, "signpost": "2026-12-06T21:00:00Z",
                   "seen": "2026-12-06T20:59:12Z"}

- `from`/`exclusive`/`perPage` say which read it is: a resumed run continues it only when its own
  read would be the same one (same bookmark or `start_date`, same page size);
- `phase`/`page` say where: the next page of the list, or of the deleted feed read after it. The
  checkpoint is written when a page arrives, after every record of the pages before it went out,
  so a resumed run reads that one page again and nothing else;
- `signpost` is the first run's start on Capsule's clock: the bookmark the read may set when it
  ends (records that change while a read runs are the next run's);
- `seen` is the newest `updatedAt` sent so far, so the bookmark doesn't fall back on a resume;
- `version` (a whole-table read with ACTIVATE_VERSION) is the table version the first run's records
  carry: the resumed runs keep it, so the loader keeps the rows the killed runs sent.

A child stream (one request per parent) writes which parents of its parent's current page are done:

    "checkpoint": {"page": 7, "done": [12, 15, 18]}

At most one page of parent ids, and nothing once the read ends: the STATE stays O(streams).
"""

from __future__ import annotations

import dataclasses
import typing as t

if t.TYPE_CHECKING:
    from tap_capsule.bookmarks import Window

KEY = "checkpoint"
PHASES = ("list", "deleted")


@dataclasses.dataclass
class ReadPosition:
    """Where one parent stream's read stands: which read, which phase and page, its signpost."""

    start: str | None
    exclusive: bool
    per_page: int
    signpost: str | None
    phase: str = "list"
    page: int = 1
    seen: str | None = None
    version: int | None = None  # the table version of a whole-table read (ACTIVATE_VERSION)

    @classmethod
    def begin(cls, read: Window, per_page: int, signpost: str | None) -> ReadPosition:
        """The position at the start of a new read."""
        return cls(read.start, read.exclusive, per_page, signpost)

    def same_read(self, read: Window, per_page: int) -> bool:
        """Whether this position belongs to the read `read` at `per_page` records a page."""
        return (self.start, self.exclusive, self.per_page) == (read.start, read.exclusive, per_page)

    def to_state(self) -> dict:
        """The `checkpoint` entry of the stream's state."""
        out: dict[str, t.Any] = {
            "from": self.start,
            "exclusive": self.exclusive,
            "perPage": self.per_page,
            "phase": self.phase,
            "page": self.page,
            "signpost": self.signpost,
        }
        if self.seen is not None:
            out["seen"] = self.seen
        if self.version is not None:
            out["version"] = self.version
        return out

    @classmethod
    def from_state(cls, entry: object) -> ReadPosition | None:
        """The position a state entry holds, or None when it holds none (or a malformed one)."""
        if not isinstance(entry, t.Mapping):
            return None
        value = entry.get(KEY)
        if not isinstance(value, t.Mapping):
            return None
        start, signpost, seen = value.get("from"), value.get("signpost"), value.get("seen")
        page, per_page = value.get("page"), value.get("perPage")
        if (
            not (start is None or isinstance(start, str))
            or not (signpost is None or isinstance(signpost, str))
            or not (seen is None or isinstance(seen, str))
            or not isinstance(value.get("exclusive"), bool)
            or value.get("phase") not in PHASES
            or not _positive(page)
            or not _positive(per_page)
            or not (value.get("version") is None or _positive(value.get("version")))
        ):
            return None
        return cls(
            start=start,
            exclusive=value["exclusive"],
            per_page=t.cast("int", per_page),
            signpost=signpost,
            phase=value["phase"],
            page=t.cast("int", page),
            seen=seen,
            version=value.get("version"),
        )


@dataclasses.dataclass
class ParentsDone:
    """Which parents of the parent stream's current page a child stream has read."""

    page: int = 0
    done: list[int] = dataclasses.field(default_factory=list)

    def skips(self, page: int, parent_id: int) -> bool:
        """Whether this parent's children were read already (by a killed run, on this page)."""
        return page == self.page and parent_id in self.done

    def finished(self, page: int, parent_id: int) -> None:
        """Note one more parent done (a new parent page starts a new list)."""
        if page != self.page:
            self.page, self.done = page, []
        self.done.append(parent_id)

    def to_state(self) -> dict:
        """The `checkpoint` entry of the child stream's state."""
        return {"page": self.page, "done": list(self.done)}

    @classmethod
    def from_state(cls, entry: object) -> ParentsDone:
        """What a state entry holds (nothing done when it holds nothing usable)."""
        value = entry.get(KEY) if isinstance(entry, t.Mapping) else None
        if not isinstance(value, t.Mapping) or not _positive(value.get("page")):
            return cls()
        done = value.get("done")
        if not isinstance(done, list) or not all(_positive(i) for i in done):
            return cls()
        return cls(page=t.cast("int", value["page"]), done=list(done))


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
