"""The account tools' progress: a status line on a terminal, a line per stream otherwise."""

from __future__ import annotations

import io
import types

from target_capsule.account.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def session(sent: int, limit: int | None = 4000):
    return types.SimpleNamespace(pacer=types.SimpleNamespace(requests_sent=sent, limit=limit))


def test_a_terminal_sees_records_requests_budget_share_and_time_left():
    now = [0.0]
    fake = session(0)
    out = Terminal()
    progress = Progress("capsule restore", fake, total=400, stream=out, clock=lambda: now[0])
    progress.start_stream("parties")
    for _ in range(100):
        now[0] += 0.5
        fake.pacer.requests_sent += 2
        progress.advance()
    line = out.getvalue().split("\r")[-1]
    assert "parties 100/400 records" in line
    assert "200 requests (5% of the hourly budget)" in line
    assert "about 2m 30s left" in line  # 50 s for 100 records, 300 to go
    progress.stream_done("parties", "100 created")
    assert out.getvalue().endswith("capsule restore: parties: 100 created (200 requests so far)\n")


def test_not_a_terminal_gets_one_line_per_stream_only():
    out = io.StringIO()
    progress = Progress("capsule restore", session(0), total=10, stream=out)
    progress.start_stream("parties")
    for _ in range(10):
        progress.advance()
    assert out.getvalue() == ""
    progress.stream_done("parties", "10 created")
    assert out.getvalue() == "capsule restore: parties: 10 created (0 requests so far)\n"


def test_the_budget_share_follows_the_limit_capsule_reports():
    out = Terminal()
    progress = Progress("x", session(100, limit=1000), total=None, stream=out)
    progress._first_request = 0
    progress.advance()
    assert "100 requests (10% of the hourly budget)" in out.getvalue()
    assert "left" not in out.getvalue()  # no total, no estimate
