"""Where an incremental read starts and how far its bookmark may advance.

Capsule's `since` means "updated strictly after", and records may change while a sync runs. So the
bookmark is the newest `updatedAt` seen, but never later than one second before the sync started on
Capsule's clock (the signpost). The next run sends the bookmark itself (no +1 s), which re-sends at
most the records of the boundary second and loses none.
"""

from __future__ import annotations

import dataclasses
import datetime
import time

import pendulum

CAPSULE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Before Capsule has answered once, the local clock stands in for its clock; this margin covers the
# skew between the two (a re-sent record is cheap, a lost one is a defect).
UNMEASURED_CLOCK_MARGIN = 300


def instant(value: object) -> pendulum.DateTime:
    """A datetime, or any ISO 8601 string (a bare date is its midnight UTC), as a DateTime.

    Raises:
        ValueError: the value is a time of day or a duration, not a point in time.
    """
    if isinstance(value, datetime.datetime):
        return pendulum.instance(value)
    parsed = pendulum.parse(str(value))
    if not isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"{value!r} is not a date-time")
    return parsed


def capsule_time(value: object) -> str:
    """Any ISO 8601 value (or datetime) as Capsule writes it: UTC, seconds, `Z`."""
    return instant(value).in_timezone("UTC").strftime(CAPSULE_FORMAT)


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
        """The `since` query value that reads exactly this window (`since` is exclusive)."""
        if self.start is None:
            return None
        if self.exclusive:
            return self.start
        return capsule_time(instant(self.start).subtract(seconds=1))

    def admits(self, updated_at: str | None) -> bool:
        """Whether a record with this `updatedAt` belongs to the window (for client-side filters).

        Both sides are in Capsule's fixed format, so string order is time order.
        """
        if self.start is None or updated_at is None:
            return True
        return updated_at > self.start if self.exclusive else updated_at >= self.start


def window(bookmark: object, start_date: object) -> Window:
    """The window of a read: from the bookmark if it is later than `start_date`, else from it."""
    bookmark = capsule_time(bookmark) if bookmark else None
    start = capsule_time(start_date) if start_date else None
    if bookmark and (start is None or bookmark >= start):
        return Window(bookmark, exclusive=True)
    return Window(start, exclusive=False)
