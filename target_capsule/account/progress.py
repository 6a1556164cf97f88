"""Progress of a long backup, restore or verify: records, requests, budget share and finish time.

On a terminal, one status line is redrawn at most once a second: records done (of how many, when
known), requests sent, the share of Capsule's hourly budget (4,000 requests a user) they took,
and an estimated finish. When stderr is not a terminal (CI, a log file) only one line per stream
is written, when the stream is done.
"""

from __future__ import annotations

import sys
import time
import typing as t

if t.TYPE_CHECKING:
    from tap_capsule.api_client import CapsuleSession

HOURLY_BUDGET = 4000  # Capsule's documented requests per user and hour, until it reports its own
REDRAW_EVERY = 1.0  # seconds between two redraws of the status line


def relay_stderr(stream: t.IO[bytes], tail: list[bytes]) -> None:
    """Pass a tap's stderr on to ours as it comes, keeping its last lines for an error message.

    The tap's own progress lines (requests, budget, estimated finish) and its closing table are
    the progress of a backup or verify that reads through it.
    """
    for line in stream:
        tail.append(line)
        del tail[:-50]
        sys.stderr.buffer.write(line)
        sys.stderr.flush()


def duration(seconds: float) -> str:
    """`1h 02m`, `3m 05s` or `42s`."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Counts records against a known total (or none) and tells people how far the run is."""

    def __init__(
        self,
        name: str,
        session: CapsuleSession | None,
        total: int | None = None,
        quiet: bool | None = None,
        stream: t.TextIO | None = None,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        """`quiet` defaults to "stderr is not a terminal"."""
        self.name = name
        self.session = session
        self.total = total
        self.out = stream or sys.stderr
        self.quiet = (not self.out.isatty()) if quiet is None else quiet
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.current = ""
        self._drawn = 0.0
        self._dirty = False
        self._first_request = self.requests()

    def requests(self) -> int:
        """Requests this run has sent so far."""
        pacer = getattr(self.session, "pacer", None)
        return int(getattr(pacer, "requests_sent", 0) or 0)

    def budget(self) -> int:
        """Capsule's hourly budget as it reports it (4,000 before its first answer)."""
        pacer = getattr(self.session, "pacer", None)
        return int(getattr(pacer, "limit", None) or HOURLY_BUDGET)

    def status(self) -> str:
        """The one-line status: records, requests, budget share, estimated finish."""
        records = f"{self.done}/{self.total}" if self.total else str(self.done)
        line = f"{self.name}: {self.current} {records} records"
        if self.session is not None:
            sent = self.requests() - self._first_request
            share = 100.0 * sent / self.budget()
            line += f", {sent} requests ({share:.0f}% of the hourly budget)"
        elapsed = self.clock() - self.started
        if self.total and self.done:
            left = elapsed / self.done * max(0, self.total - self.done)
            line += f", about {duration(left)} left"
        return line

    def start_stream(self, stream: str, records: int | None = None) -> None:
        """A stream begins."""
        self.current = stream

    def advance(self, records: int = 1) -> None:
        """Records done; redraws the status line on a terminal (at most once a second)."""
        self.done += records
        if self.quiet:
            return
        now = self.clock()
        if now - self._drawn >= REDRAW_EVERY:
            self._drawn = now
            self.out.write("\r\033[K" + self.status())
            self.out.flush()
            self._dirty = True

    def stream_done(self, stream: str, summary: str) -> None:
        """One line per stream, terminal or not."""
        if self._dirty:
            self.out.write("\r\033[K")
            self._dirty = False
        sent = self.requests() - self._first_request
        so_far = f" ({sent} requests so far)" if self.session is not None else ""
        self.out.write(f"{self.name}: {stream}: {summary}{so_far}\n")
        self.out.flush()
