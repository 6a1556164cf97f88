"""Where an incremental read starts and how far its bookmark may advance.

Capsule's `since` means "updated strictly after", and records may change while a sync runs. So the
bookmark is the newest `updatedAt` seen, but never later than one second before the sync started on
Capsule's clock (the signpost). The next run sends the bookmark itself (no +1 s), which re-sends at
most the records of the boundary second and loses none.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import time
import typing as t

import pendulum
from pendulum.parsing.exceptions import ParserError

CAPSULE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Before Capsule has answered once, the local clock stands in for its clock; this margin covers the
# skew between the two (a re-sent record is cheap, a lost one is a defect).
UNMEASURED_CLOCK_MARGIN = 300


def capsule_time(value: object) -> str:
    """Any ISO 8601 value (or datetime) as Capsule writes it: UTC, seconds, `Z`."""
    if isinstance(value, datetime.datetime):
        return pendulum.instance(value).in_timezone("UTC").strftime(CAPSULE_FORMAT)
    parsed = parse_iso(str(value))
    if parsed is None:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time")
    return parsed.strftime(CAPSULE_FORMAT)


def signpost(server_now: float | None) -> str:
    """The latest value a bookmark may take in this run."""
    now = server_now if server_now is not None else time.time() - UNMEASURED_CLOCK_MARGIN
    return time.strftime(CAPSULE_FORMAT, time.gmtime(int(now) - 1))


@dataclasses.dataclass(frozen=True)
class Window:
    """The lower bound of an incremental read.

    `exclusive` when resuming from a bookmark (Capsule's own `since` semantics); inclusive when
    starting from the user's `start_date` ("the earliest updatedAt to read").
    """

    start: str | None
    exclusive: bool

    @property
    def since_param(self) -> str | None:
        """The `since` to send: the bookmark itself, or one second before `start_date`."""
        if self.start is None:
            return None
        if self.exclusive:
            return self.start
        start = parse_iso(self.start)
        assert start is not None  # windows are built from capsule_time() values
        return capsule_time(start.subtract(seconds=1))

    def admits(self, updated_at: str | None) -> bool:
        """Whether a record belongs to this read (one without the key always does)."""
        if self.start is None or updated_at is None:
            return True
        return updated_at > self.start if self.exclusive else updated_at >= self.start


ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


def parse_iso(value: object) -> pendulum.DateTime | None:
    """`value` as a UTC date-time if it is an ISO 8601 date or date-time, else None."""
    if not isinstance(value, str) or not ISO_DATE.match(value.strip()):
        return None
    try:
        parsed = pendulum.parse(value.strip())
    except (ValueError, ParserError):
        return None
    if isinstance(parsed, pendulum.DateTime):
        return parsed.in_timezone("UTC")
    if isinstance(parsed, pendulum.Date):  # a bare date: its midnight, in UTC
        return pendulum.datetime(parsed.year, parsed.month, parsed.day)
    return None


def start_date_problem(value: object) -> str | None:
    """Why `start_date` can't be used (one line with the fix), or None when it can."""
    if value in (None, "") or parse_iso(value) is not None:
        return None
    return (
        f"Setting start_date is {value!r}, which is not an ISO 8601 date: set it to a date such "
        "as 2024-01-31 or 2024-01-31T00:00:00Z, or remove it to read everything."
    )


def bookmark_problem(stream: str, value: object, capsule_now: float) -> str | None:
    """Why a stream's bookmark would stall or break its sync (one line with the fix), or None.

    A bookmark later than Capsule's clock would make every read come back empty until that time
    passes; one that is not a date can't be sent as `since`. Neither is guessed at.
    """
    fix = (
        f"remove the bookmark of {stream!r} from the state (e.g. `meltano state clear` or edit "
        "the state file) to read that stream again from start_date."
    )
    parsed = parse_iso(value)
    if parsed is None:
        return f"The state's bookmark of stream {stream!r} is {value!r}, not a date: {fix}"
    if parsed.timestamp() > capsule_now:
        now = time.strftime(CAPSULE_FORMAT, time.gmtime(int(capsule_now)))
        return (
            f"The state's bookmark of stream {stream!r} is {capsule_time(parsed)}, later than "
            f"Capsule's clock ({now}), so the sync would read nothing: {fix}"
        )
    return None


def state_bookmarks(state: t.Mapping[str, t.Any]) -> t.Iterator[tuple[str, t.Any]]:
    """Every `(stream, replication_key_value)` of a Singer state, partitions included."""
    for stream, entry in (state.get("bookmarks") or {}).items():
        if not isinstance(entry, t.Mapping):
            continue
        for part in [entry, *(entry.get("partitions") or [])]:
            if isinstance(part, t.Mapping) and "replication_key_value" in part:
                yield stream, part["replication_key_value"]


def capsule_now(server_now: float | None) -> float:
    """Capsule's clock: measured from its answers, else the local one plus the skew margin."""
    return server_now if server_now is not None else time.time() + UNMEASURED_CLOCK_MARGIN


def window(bookmark: object, start_date: object) -> Window:
    """Where a read starts: the bookmark (exclusive) or `start_date` (inclusive), the later."""
    resume = capsule_time(bookmark) if bookmark else None
    start = capsule_time(start_date) if start_date else None
    if resume and (start is None or resume >= start):
        return Window(resume, exclusive=True)
    return Window(start, exclusive=False)
