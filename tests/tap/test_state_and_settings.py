"""State and settings that would silently stall a sync are refused before any output.

Each case runs the real CLI against the sandbox and expects: exit code 1, nothing on stdout (no
SCHEMA, no STATE written back), and one log line that names the stream or setting and the fix,
without a traceback.
"""

from __future__ import annotations

import pytest


def bookmark_state(stream: str, value: object) -> dict:
    return {"bookmarks": {stream: {"replication_key": "updatedAt", "replication_key_value": value}}}


def assert_refused(run, *needles: str) -> None:
    assert run.returncode == 1
    assert run.stdout == ""  # before any output: no SCHEMA, no RECORD, no STATE
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, errors
    assert run.stderr.rstrip().splitlines()[-1] == errors[0]  # the last word, on its own line
    for needle in needles:
        assert needle in errors[0]


@pytest.mark.parametrize("start_date", ["yesterday", "31/01/2024", "2024-13-45"])
def test_a_start_date_that_is_not_iso_8601_is_refused(tap_config, run_tap, start_date):
    run = run_tap({**tap_config, "start_date": start_date}, check=False)
    assert_refused(run, "start_date", repr(start_date), "2024-01-31")


@pytest.mark.parametrize("value", ["not-a-date", 1700000000, "", None])
def test_a_bookmark_that_is_not_a_date_is_refused(tap_config, run_tap, value):
    state = bookmark_state("parties", value)
    run = run_tap(tap_config, streams={"parties"}, state=state, check=False)
    assert_refused(run, "'parties'", "not a date", "remove the bookmark")


def test_a_bookmark_later_than_capsules_clock_is_refused(sandbox, tap_config, run_tap):
    # Capsule's clock, not ours: a bookmark in this sandbox's future but in our past.
    sandbox.set_clock("2026-03-04T05:06:07Z")
    state = bookmark_state("opportunities", "2026-06-01T00:00:00Z")
    run = run_tap(tap_config, streams={"opportunities"}, state=state, check=False)
    assert_refused(run, "'opportunities'", "2026-06-01T00:00:00Z", "later than Capsule's clock")
    # The same bookmark once Capsule's clock has passed it is read from as usual.
    sandbox.set_clock("2026-07-01T00:00:00Z")
    ok = run_tap(tap_config, streams={"opportunities"}, state=state)
    assert ok.returncode == 0


def test_a_child_streams_partition_bookmark_is_checked_too(tap_config, run_tap):
    state = {
        "bookmarks": {
            "milestones": {
                "partitions": [
                    {
                        "context": {"pipelineId": 1},
                        "replication_key": "updatedAt",
                        "replication_key_value": "2099-01-01T00:00:00Z",
                    }
                ]
            }
        }
    }
    run = run_tap(tap_config, streams={"pipelines", "milestones"}, state=state, check=False)
    assert_refused(run, "'milestones'", "later than Capsule's clock")


def test_a_future_start_date_never_becomes_a_future_bookmark(sandbox, tap_config, run_tap):
    run = run_tap({**tap_config, "start_date": "2099-01-01"}, streams={"parties", "tasks"})
    assert not [r for r in run.records.get("parties", []) if r.get("updatedAt")]
    for stream, value in (
        (s, b.get("replication_key_value")) for s, b in run.state.get("bookmarks", {}).items()
    ):
        assert value is None or value < "2099", (stream, value)
    # And the next run from that state starts cleanly.
    again = run_tap(tap_config, streams={"parties", "tasks"}, state=run.state)
    assert again.returncode == 0
