"""Time for the sandbox: one formatter, one parser, and a clock that tests can freeze.

Capsule writes datetimes as second-precision UTC with a `Z` suffix; keeping every stored timestamp
in exactly that form lets `since` filtering compare strings instead of parsing 10,000 dates a
request.
"""

from __future__ import annotations

import datetime as dt
import threading

UTC = dt.timezone.utc
# Seed data is laid out relative to this constant, never to the wall clock, so it is reproducible.
EPOCH = dt.datetime(2025, 1, 1, tzinfo=UTC)


def fmt(moment: dt.datetime) -> str:
    """Capsule's datetime format: `2025-01-01T10:43:23Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def at(seconds: float) -> str:
    """A seed timestamp `seconds` after EPOCH."""
    return fmt(EPOCH + dt.timedelta(seconds=int(seconds)))


def day(days: float) -> str:
    """A seed date (YYYY-MM-DD) `days` after EPOCH."""
    return (EPOCH + dt.timedelta(days=int(days))).strftime("%Y-%m-%d")


def parse_iso(value: str) -> dt.datetime:
    """Parse ISO 8601 (`Z`, offsets, fractions, a bare date; naive means UTC), or ValueError."""
    value = value.strip()
    if not value:
        raise ValueError("empty datetime")
    parsed = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "zZ" else value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def since_key(value: str) -> str:
    """Turn a `since` value into the string a stored timestamp must be strictly greater than.

    Stored times have whole seconds, so "after 10:00:00.5" and "after 10:00:00" select the same
    records; flooring to the second keeps the comparison a plain string compare.
    """
    return fmt(parse_iso(value).replace(microsecond=0))


class Clock:
    """The sandbox clock: real UTC time unless frozen by a test (`set_clock`)."""

    def __init__(self) -> None:
        """A running clock."""
        self._frozen: dt.datetime | None = None
        self._lock = threading.Lock()

    def set(self, value: str | None) -> None:
        """Freeze at `value` (ISO 8601), or run again with None."""
        with self._lock:
            self._frozen = None if value is None else parse_iso(value)

    def now(self) -> dt.datetime:
        """The current sandbox time (UTC)."""
        with self._lock:
            return self._frozen or dt.datetime.now(UTC)

    def stamp(self) -> str:
        """Now, as Capsule writes a datetime."""
        return fmt(self.now())

    def today(self) -> str:
        """Today, as Capsule writes a date."""
        return self.now().strftime("%Y-%m-%d")
