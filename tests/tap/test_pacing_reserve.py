"""Pacing keeps `rate_limit_reserve`, up to and through the window's last second.

A newcomer saw the budget fall to 26 of 300 with a reserve of 60, then a 429 and a 61 s wait,
right at the advertised reset second. The cause: `X-RateLimit-Reset` is whole seconds (rounded
down), and the pacer took the advertised second for the end of the window. In that last second it
stopped pacing and spent the reserve at full speed, and the 429 that followed carried a reset
already past, which the pacer read as "unknown: wait a minute". The reset was also compared with
the local clock, not Capsule's. These tests pin the fix: the window ends a second after the
advertised one, on Capsule's clock (`Date`), and a 429 at the reset second waits that second.
"""

from __future__ import annotations

import time

import pytest

from tap_capsule.api_client import RateLimitPacer
from tap_capsule.api_client.pacing import logger as pacing_logger


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.5  # half a second into a whole second
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Answer:
    def __init__(self, headers: dict) -> None:
        self.headers = headers


def answer(remaining: int, reset: float, *, limit: int = 300, date: float | None = None) -> Answer:
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset)),
    }
    if date is not None:
        headers["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(date))
    return Answer(headers)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def pacer(clock: FakeClock) -> RateLimitPacer:
    return RateLimitPacer(reserve=0.2, sleep=clock.sleep, clock=clock.time)


def test_the_reserve_holds_in_the_advertised_reset_second(clock):
    """60 of 300 left and the reset advertised for the current second: wait that second out."""
    p = pacer(clock)
    p.observe(answer(60, reset=clock.now))  # Reset: this very second (rounded down)
    p.before_request()
    assert clock.sleeps == [pytest.approx(0.5)]  # to the end of that second, no request before


def test_a_429_at_the_reset_second_waits_a_second_not_a_minute(clock):
    p = pacer(clock)
    p.observe(answer(0, reset=clock.now))
    p.wait_for_reset("HTTP 429 on GET /parties")
    assert clock.sleeps == [pytest.approx(0.5)]


def test_a_429_after_the_advertised_reset_waits_briefly_and_doubles(clock):
    p = pacer(clock)
    p.observe(answer(0, reset=clock.now - 5))
    p.wait_for_reset("HTTP 429")
    p.wait_for_reset("HTTP 429")
    p.wait_for_reset("HTTP 429")
    assert clock.sleeps == [1, 2, 4]


def test_the_reset_is_read_on_capsules_clock(clock):
    """The local clock 30 s ahead of Capsule's: the window is still open for Capsule."""
    p = pacer(clock)
    capsule_now = clock.now - 30
    p.observe(answer(60, reset=capsule_now + 10, date=capsule_now))
    p.before_request()
    assert clock.sleeps and 10 <= clock.sleeps[0] <= 12


def test_spread_requests_end_at_the_window_end(clock, caplog):
    p = pacer(clock)
    p.observe(answer(70, reset=clock.now + 10))  # 10 usable, 10 s: about one a second
    with caplog.at_level("WARNING", logger=pacing_logger.name):
        p.before_request()
        p.before_request()
    assert clock.sleeps and 0.9 <= clock.sleeps[-1] <= 1.2


def test_a_tap_on_a_small_fast_window_never_meets_a_429(sandbox_factory, sandbox_token, run_tap):
    """The real tap on a 40-request, 2-second window: paced through three windows, no 429."""
    sandbox = sandbox_factory(scale=100, seed=2, rate_limit=40, rate_window=2)
    config = {
        "access_token": sandbox_token,
        "api_url": sandbox.url,
        "page_size": 1,
        "tombstones": "off",
        "rate_limit_reserve": 0.2,
    }
    run = run_tap(config, streams={"parties"})
    assert len(run.ids("parties")) == 100
    assert "429" not in run.stderr
