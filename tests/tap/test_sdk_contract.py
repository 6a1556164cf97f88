"""The tap keeps to the SDK's public contract: its settings reach the SDK's requests, and the end
of the sync is logged through a hook the SDK offers (`Tap.sync_all` is final)."""

from __future__ import annotations

import re

import pytest

from tap_capsule.api_client import CapsuleRetryError
from tap_capsule.tap import TapCapsule


def read_teams(sandbox, token: str, request_timeout: float) -> list[dict]:
    config = {
        "access_token": token,
        "api_url": sandbox.url,
        "request_timeout": request_timeout,
        "max_retries": 0,
    }
    tap = TapCapsule(config=config, parse_env_config=False, validate_config=True)
    stream = tap.streams["teams"]
    sandbox.set_faults(slow_every=1, slow_seconds=1.0)  # after discovery: only the list is slow
    try:
        return list(stream.get_records(None))
    finally:
        sandbox.set_faults()


def test_request_timeout_reaches_the_sdks_list_reads(sandbox_factory, sandbox_token):
    sandbox = sandbox_factory(scale=5, seed=3)
    # The clean run: a timeout longer than Capsule's (slow) answer reads every team.
    teams = read_teams(sandbox, sandbox_token, request_timeout=10)
    assert {t["id"] for t in teams} == {t["id"] for t in sandbox.state()["teams"]}
    # The SDK's own default is 300 s; with request_timeout in force the slow answer is dropped.
    with pytest.raises(CapsuleRetryError, match=r"GET /api/v2/teams kept failing \(ReadTimeout\)"):
        read_teams(sandbox, sandbox_token, request_timeout=0.2)


def test_sync_end_is_logged_once_after_every_stream(tap_config, run_tap):
    run = run_tap(tap_config, streams={"teams", "users", "tasks"})
    lines = run.stderr.splitlines()
    finished = [i for i, line in enumerate(lines) if "Sync finished:" in line]
    assert len(finished) == 1, run.stderr
    # Every stream's row is in the one table that follows the closing line.
    rows = [i for i, line in enumerate(lines) if re.match(r"\| (teams|users|tasks) ", line)]
    assert len(rows) == 3 and min(rows) > finished[0]
    assert set(run.table) == {"teams", "users", "tasks", "total"}
    assert "requests to Capsule," in lines[finished[0]]
