"""How far each stream has got: its own request and record counts, logged as it goes.

One figure per stream and run, whatever the stream's shape. The SDK counts requests per partition
and only those its paginator makes, so a child stream logged four METRIC lines per parent, a
deleted feed's requests never reached a metric, and the parent's own log line included its
children's requests (they run while the parent's generator is paused). Here each stream counts
exactly what it asked Capsule for, and the METRIC lines, the tap's log and the README's formulas
give the same number.
"""

from __future__ import annotations

import logging
import time
import typing as t

from singer_sdk import metrics
from typing_extensions import Self, override

if t.TYPE_CHECKING:
    from types import TracebackType

    from tap_capsule.api_client import RateLimitPacer

PROGRESS_EVERY = 50  # requests between two progress lines of one stream


class RunCounter(metrics.Counter):
    """An SDK counter that spans the stream's whole run instead of one partition.

    The SDK enters it once per partition (per parent, for child streams); entering and leaving
    are no-ops, so it logs on the SDK's interval (every 60 s) and once more from `finish()`.
    """

    def __init__(
        self,
        metric: metrics.Metric,
        tags: dict,
        on_increment: t.Callable[[], None] | None = None,
    ) -> None:
        """Count `metric` under `tags`; `on_increment` runs after every increment."""
        super().__init__(metric, tags)
        self.total = 0
        self.finished = False
        self._on_increment = on_increment

    @override
    def __enter__(self) -> Self:
        return self

    @override
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None

    @override
    def with_context(self, value: t.Any) -> None:
        return None  # one figure per stream, not one per parent

    @override
    def increment(self, value: int = 1) -> None:
        self.total += value
        super().increment(value)
        if self._on_increment is not None:
            self._on_increment()

    def finish(self) -> None:
        """Log what is left to log, once."""
        if not self.finished:
            self.finished = True
            metrics.log(self.logger, metrics.Point("counter", self.metric, self.value, self.tags))
            self.value = 0


class RunTimer(metrics.Timer):
    """An SDK timer that adds up a child stream's time over all its parents, logged once."""

    def __init__(self, metric: metrics.Metric, tags: dict) -> None:
        """Time `metric` under `tags`, summed over every partition."""
        super().__init__(metric, tags)
        self.seconds = 0.0
        self.used = False

    @override
    def __enter__(self) -> Self:
        self.used = True
        self.start_time = time.time()
        return self

    @override
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.seconds += self.elapsed()
        if exc_type is not None:
            self.tags[metrics.Tag.STATUS] = metrics.Status.FAILED

    @override
    def with_context(self, value: t.Any) -> None:
        return None

    def finish(self) -> None:
        """Log the summed duration, once."""
        if self.used:
            self.used = False
            self.tags.setdefault(metrics.Tag.STATUS, metrics.Status.SUCCEEDED)
            metrics.log(self.logger, metrics.Point("timer", self.metric, self.seconds, self.tags))


class StreamProgress:
    """Records and requests of one stream in this run, its METRIC lines and its progress lines.

    `requests` is the counter the SDK's paginator increments once per page; the stream adds the
    requests it makes itself (deleted feeds, the walk of a parent list) with `request_made()`.
    """

    def __init__(
        self, stream: str, endpoint: str, logger: logging.Logger, pacer: RateLimitPacer
    ) -> None:
        """Figures of `stream` (read from `endpoint`), logged to `logger` with `pacer`'s budget."""
        self.stream = stream
        self.logger = logger
        self.pacer = pacer
        tags = {metrics.Tag.STREAM: stream, metrics.Tag.ENDPOINT: endpoint}
        self.requests = RunCounter(metrics.Metric.HTTP_REQUEST_COUNT, tags, self._maybe_report)
        self.record_counter = RunCounter(metrics.Metric.RECORD_COUNT, {metrics.Tag.STREAM: stream})
        self.timer = RunTimer(metrics.Metric.SYNC_DURATION, {metrics.Tag.STREAM: stream})
        self.records = 0
        self.tombstones = 0  # of `records`: deleted or restricted records
        self._next_line = PROGRESS_EVERY
        self.expected: int | None = None  # requests the stream should take in all, when known
        self._started = time.monotonic()

    def expect(self, requests: int) -> None:
        """The requests this stream should take in all (from Capsule's `meta.totalCount`)."""
        self.expected = requests

    def estimate(self) -> str:
        """The requests still expected and when they should be done at the pace so far."""
        if self.expected is None:
            return ""
        done = self.requests.total
        left = max(0, self.expected - done)
        elapsed = time.monotonic() - self._started
        line = f"; about {left} of {self.expected} requests to go"
        if self.pacer.limit:
            line += f" ({left / self.pacer.limit:.1f} h of Capsule's hourly budget)"
        if done and elapsed > 0:
            finish = time.gmtime(time.time() + left * elapsed / done)
            line += f", done about {time.strftime('%H:%M:%S', finish)} UTC at this pace"
        return line

    def request_made(self, n: int = 1) -> None:
        """Count requests the stream made outside the SDK's paginator."""
        self.requests.increment(n)

    def _maybe_report(self) -> None:
        if self.requests.total >= self._next_line:
            self._next_line = self.requests.total + PROGRESS_EVERY
            self.logger.info(
                "%s: %d records and %d requests so far; %s%s%s",
                self.stream,
                self.records,
                self.requests.total,
                self.pacer.budget_line(),
                self.pacer.pacing_note(),
                self.estimate(),
            )

    def finish(self) -> None:
        """The stream's closing line (DEBUG: the run's table has its figures) and METRIC lines."""
        if self.requests.finished:
            return
        self.requests.finish()
        self.record_counter.finish()
        self.timer.finish()
        self.logger.debug(
            "%s: finished, %d records from %d request%s to Capsule; %s",
            self.stream,
            self.records,
            self.requests.total,
            "" if self.requests.total == 1 else "s",
            self.pacer.budget_line(),
        )


def run_table(figures: t.Iterable[StreamProgress]) -> str:
    """The run's figures as a Markdown table, one row per stream that ran, and a total.

    Tombstones are counted apart, so that 212 parties from an account of 200 reads as
    200 records and 12 deletions, not as a miscount.
    """
    rows = sorted(figures, key=lambda p: p.stream)
    width = max([len("stream"), *(len(p.stream) for p in rows)])
    lines = [
        f"| {'stream':<{width}} | records | of which tombstones | requests |",
        f"|{'-' * (width + 2)}|--------:|-------------------:|---------:|",
    ]
    lines += [
        f"| {p.stream:<{width}} | {p.records:>7} | {p.tombstones:>18} | {p.requests.total:>8} |"
        for p in rows
    ]
    records = sum(p.records for p in rows)
    tombstones = sum(p.tombstones for p in rows)
    requests = sum(p.requests.total for p in rows)
    lines.append(f"| {'total':<{width}} | {records:>7} | {tombstones:>18} | {requests:>8} |")
    return "\n".join(lines)


class PerRequestMetrics(logging.Filter):
    """Leaves out the SDK's `http_request_duration` METRIC lines of the streams named.

    A child stream makes one request per parent: thousands of lines nobody reads. The stream's
    request count is still logged, once.
    """

    def __init__(self) -> None:
        """No stream left out until `leave_out()`; installed on the SDK's metrics logger."""
        super().__init__()
        self.streams: set[str] = set()

    def leave_out(self, stream: str) -> None:
        """Leave out `stream`'s per-request durations (and install the filter, once)."""
        self.streams.add(stream)
        logger = metrics.get_metrics_logger()
        if self not in logger.filters:
            logger.addFilter(self)

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        point = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (
            isinstance(point, metrics.Point)
            and point.metric == metrics.Metric.HTTP_REQUEST_DURATION
            and point.tags.get(metrics.Tag.STREAM) in self.streams
        )


PER_REQUEST_METRICS = PerRequestMetrics()
