"""How long to wait: Capsule's hourly budget read from `X-RateLimit-*`, and the retry backoff.

Capsule allows a fixed number of requests an hour per user, shared with people and other
integrations. `RateLimitPacer` reads the budget from every answer and slows down before the wall
instead of running into it. Two waits are kept apart on purpose: a 429 or a spent budget waits for
`X-RateLimit-Reset` (up to an hour), while 5xx, timeouts, dropped connections and malformed bodies
get the short exponential backoff of `retry_delays()` and never wait for the reset.
"""

from __future__ import annotations

import email.utils
import logging
import math
import threading
import time
import typing as t

import backoff

from tap_capsule.api_client.errors import CapsuleConfigError, CapsuleRateLimitError

if t.TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)


class RateLimitPacer:
    """Spends Capsule's hourly budget without running into the wall.

    Reads `X-RateLimit-Limit/Remaining/Reset` from every answer. Requests go out at full speed
    while plenty of budget is left; in the last quarter of the usable budget they are spread
    evenly until the reset; once only the reserve is left, the pacer waits for the window to reset.
    It also tracks the server clock from `Date`, which the tap's bookmarks rely on.
    """

    SPREAD_FROM = 0.25  # start spreading requests when this share of the usable budget is left

    def __init__(
        self,
        *,
        reserve: float = 0.2,
        max_wait: float = 3900,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        """Budget settings, and the sleep and clock it uses (tests pass fake ones)."""
        if not 0 <= reserve <= 0.9:
            raise CapsuleConfigError(f"rate_limit_reserve must be between 0 and 0.9, got {reserve}")
        self.reserve = reserve
        self.max_wait = max_wait
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.clock_offset: float | None = None  # server time minus local time, in seconds
        self._last_request_at = 0.0
        self._spreading_until: float | None = None
        self.spacing = 0.0  # seconds between requests while pacing
        self.requests_sent = 0
        self.waited_seconds = 0.0
        self._late_429s = 0  # 429s in a row that came after the advertised reset

    @property
    def usable_left(self) -> int | None:
        """Requests left this hour above the reserve, or None before Capsule reported any."""
        if self.limit is None or self.remaining is None:
            return None
        return self.remaining - math.ceil(self.limit * self.reserve)

    def capsule_clock(self) -> float:
        """Capsule's clock, which `X-RateLimit-Reset` is on: the local one corrected by `Date`."""
        return self._clock() + (self.clock_offset or 0.0)

    def window_end(self) -> float | None:
        """When Capsule's window has surely reset.

        `X-RateLimit-Reset` is whole epoch seconds; Capsule's window may end up to a second
        after it. Taking the advertised second as the end let requests go at full speed in that
        last second on a budget already down to the reserve, into a 429.
        """
        return None if self.reset_at is None else self.reset_at + 1

    def before_request(self) -> None:
        """Wait as the budget requires before a request goes out, and count it."""
        with self._lock:
            now = self.capsule_clock()
            left = self.usable_left
            end = self.window_end()
            if left is not None and end is not None and end > now:
                if left <= 0:
                    self._wait_until_reset(
                        f"only the reserved {self.remaining} of {self.limit} requests are left "
                        f"this hour (rate_limit_reserve={self.reserve})"
                    )
                elif left < (self.limit or 0) * (1 - self.reserve) * self.SPREAD_FROM:
                    interval = (end - now) / left
                    self.spacing = interval
                    if self._spreading_until != self.reset_at:
                        self._spreading_until = self.reset_at
                        logger.warning(
                            "Pacing: %d usable requests left until the rate-limit window resets "
                            "at %s; spacing requests about %.1f s apart",
                            left,
                            _iso(self.reset_at),
                            interval,
                        )
                    delay = self._last_request_at + interval - self._clock()
                    if delay > 0:
                        self._sleep(delay)
                        self.waited_seconds += delay
            self._last_request_at = self._clock()
            self.requests_sent += 1

    def wait_for_reset(self, reason: str) -> None:
        """Wait until Capsule's window resets (a 429), within `max_wait`."""
        with self._lock:
            self._wait_until_reset(reason)

    def _wait_until_reset(self, reason: str) -> None:
        now = self.capsule_clock()
        end = self.window_end()
        if end is not None and end > now:
            wait = end - now
            self._late_429s = 0
        elif end is not None:
            # A 429 after the advertised reset (clock skew, or the window's last second): the
            # window is about to roll, so a short wait, doubled while it goes on; not a minute.
            wait = min(60.0, 2.0**self._late_429s)
            self._late_429s += 1
        else:
            wait = 61.0  # no reset advertised: Capsule's hour is counted in minutes at least
        if wait > self.max_wait:
            raise CapsuleRateLimitError(
                f"Capsule's rate limit: {reason}, and the window resets in {wait:.0f} s, longer "
                f"than max_rate_limit_wait ({self.max_wait:.0f} s). Run again after "
                f"{_iso(now + wait)}, or raise max_rate_limit_wait."
            )
        logger.warning(
            "Waiting %.0f s for Capsule's rate-limit window to reset at %s: %s",
            wait,
            _iso(self.reset_at if self.reset_at and self.reset_at > now else now + wait),
            reason,
        )
        self._sleep(wait)
        self.waited_seconds += wait
        self.remaining = None  # unknown until the next answer

    def observe(self, response: requests.Response) -> None:
        """Take the budget and Capsule's clock from an answer's headers."""
        headers = response.headers
        with self._lock:
            try:
                if "X-RateLimit-Limit" in headers:
                    self.limit = int(headers["X-RateLimit-Limit"])
                if "X-RateLimit-Remaining" in headers:
                    self.remaining = int(headers["X-RateLimit-Remaining"])
                if "X-RateLimit-Reset" in headers:
                    self.reset_at = float(headers["X-RateLimit-Reset"])
            except ValueError:
                logger.debug("Ignoring unparsable rate-limit headers")
            date = headers.get("Date")
            if date:
                try:
                    server = email.utils.parsedate_to_datetime(date).timestamp()
                    self.clock_offset = server - self._clock()
                except (TypeError, ValueError):
                    pass

    def server_now(self) -> float | None:
        """Capsule's clock as last seen (None before the first answer)."""
        if self.clock_offset is None:
            return None
        return self._clock() + self.clock_offset

    def pacing_note(self) -> str:
        """While requests are spread out: how far apart, and when that ends ('' otherwise)."""
        until = self._spreading_until
        if until is None or until <= self.capsule_clock():
            return ""
        return f"; pacing: about {self.spacing:.1f} s between requests until {_iso(until)}"

    def budget_line(self) -> str:
        """The budget left, for log lines: requests left this hour and when the window resets."""
        if self.limit is None:
            return "rate-limit budget not reported yet"
        return (
            f"rate-limit budget: {self.remaining} of {self.limit} requests left this hour, "
            f"resets at {_iso(self.reset_at)}"
        )


def retry_delays() -> t.Iterator[float]:
    """Waits between tries of a failing request: 0.5 s, 1 s, 2 s, ... capped at 30 s.

    One schedule for every retry both plugins make, reads here and writes in the target.
    """
    waits = backoff.expo(base=2, factor=0.5, max_value=30)
    next(waits)  # python-backoff's generator starts with a 0-length first value
    return waits


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return "unknown"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
