"""Progress on long syncs: every 50 requests a stream says how far it has got, and how it paces."""

from __future__ import annotations

import logging
import re
import time

from tap_capsule.api_client import RateLimitPacer
from tap_capsule.progress import PROGRESS_EVERY, StreamProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Answer:
    """The rate-limit headers of one Capsule answer."""

    def __init__(self, remaining: int, reset: float) -> None:
        self.headers = {
            "X-RateLimit-Limit": "4000",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(reset)),
        }


def test_progress_lines_give_records_requests_budget_and_pacing(caplog):
    caplog.set_level(logging.INFO)
    clock = Clock()
    pacer = RateLimitPacer(reserve=0.2, sleep=clock.sleep, clock=clock.time)
    reset = clock.now + 1800
    # 900 left of 4,000, 800 of them reserved: 100 usable, so requests are spread until the reset.
    pacer.observe(Answer(900, reset))  # type: ignore[arg-type]
    pacer.before_request()
    progress = StreamProgress("parties", "/parties", logging.getLogger("tap-capsule"), pacer)
    for _ in range(2 * PROGRESS_EVERY):
        progress.records += 100
        progress.request_made()
    progress.finish()
    progress.finish()  # said once

    lines = [r.getMessage() for r in caplog.records if r.name == "tap-capsule"]
    reset_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset))
    assert lines[0].startswith("parties: 5000 records and 50 requests so far; rate-limit budget:")
    assert lines[1].startswith("parties: 10000 records and 100 requests so far;")
    for line in lines[:2]:
        assert "900 of 4000 requests left this hour" in line
        assert re.search(rf"pacing: about \d+\.\d s between requests until {reset_iso}", line)
    assert len(lines) == 2  # the closing line is DEBUG: the run's table carries its figures
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug == [] or debug[-1].startswith("parties: finished, 10000 records from 100")
    metrics = [r.getMessage() for r in caplog.records if "http_request_count" in r.getMessage()]
    assert sum(int(m) for m in re.findall(r'"value":(\d+)', " ".join(metrics))) == 100


def test_no_pacing_note_with_budget_to_spare():
    clock = Clock()
    pacer = RateLimitPacer(reserve=0.2, sleep=clock.sleep, clock=clock.time)
    pacer.observe(Answer(3900, clock.now + 1800))  # type: ignore[arg-type]
    pacer.before_request()
    assert pacer.pacing_note() == ""


def test_a_long_sync_logs_progress_every_50_requests(sandbox_factory, sandbox_token, run_tap):
    sb = sandbox_factory(token=sandbox_token, scale=120, seed=4)
    n = len(sb.state()["parties"])
    assert n >= 2 * PROGRESS_EVERY
    # No tombstones (off): every request of the list is a page of one party.
    config = {"access_token": sandbox_token, "api_url": sb.url, "page_size": 1, "tombstones": "off"}
    run = run_tap(config, streams={"parties"})
    found = re.findall(r"parties: (\d+) records and (\d+) requests so far; rate-limit", run.stderr)
    assert [int(req) for _, req in found] == list(range(50, n + 1, 50))
    # One party per page; the line comes as a page arrives, before its record is emitted.
    assert all(int(rec) == int(req) - 1 for rec, req in found)
    # Plus one look at the deleted feed after a multi-page read (the shifted-pages check).
    assert run.table["parties"] == (n, 0, n + 1)
    # Quiet: the version line, the progress lines and the closing table (header, rule, row, total).
    assert len(run.stderr.strip().splitlines()) == 1 + len(found) + 1 + 4, run.stderr


def test_a_plain_run_is_quiet_and_debug_shows_the_rest(sandbox_factory, sandbox_token, tmp_path):
    """Default level: the version line, one closing table; no METRIC or SDK chatter lines.
    `--log-level debug` brings them back, so nothing is lost, only moved."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tap_table import table_rows

    from tap_capsule import catalogue as cat

    tap = str(Path(sys.executable).parent / "tap-capsule")

    sb = sandbox_factory(token=sandbox_token, scale=40, seed=2)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"access_token": sandbox_token, "api_url": sb.url}))
    env = {k: v for k, v in os.environ.items() if "LOGLEVEL" not in k}
    plain = subprocess.run([tap, "--config", str(config)], capture_output=True, text=True, env=env)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stderr.strip().splitlines()
    streams = [o.stream for o in cat.OBJECTS if not o.parent or o.stream == "milestones"]
    assert len(lines) <= 40, plain.stderr
    for chatter in ("METRIC", "New replication value is null", "assumed to be unsorted",
                    "Beginning sync of", "Skipping deselected"):  # fmt: skip
        assert chatter not in plain.stderr
    deleted = [cat.deleted_stream(o) for o in cat.OBJECTS if o.deleted_path]  # by default
    assert set(table_rows(plain.stderr)) == {*streams, *deleted, "total"}
    debug = subprocess.run(
        [tap, "--config", str(config), "--log-level", "debug"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert "METRIC" in debug.stderr and "Beginning sync of" in debug.stderr
    assert "parties: finished," in debug.stderr
