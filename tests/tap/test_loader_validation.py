"""A full sync of every stream, checked as a loader checks it.

SDK-based loaders (target-postgres, target-csv, target-jsonl) validate each RECORD against the
SCHEMA message before it, with JSON Schema Draft 7, and stop on the first mismatch. This test
reads the tap's real output against the sandbox and applies the same check to every record of
every stream, so a record our schema does not describe fails here rather than in a user's pipeline.
"""

from __future__ import annotations

import json

import jsonschema

from tap_capsule import catalogue


def validate_stream_of_messages(stdout: str) -> dict[str, int]:
    """Validate each RECORD against its stream's latest SCHEMA; counts of records per stream."""
    validators: dict[str, jsonschema.Draft7Validator] = {}
    counts: dict[str, int] = {}
    problems: list[str] = []
    for line in stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "SCHEMA":
            jsonschema.Draft7Validator.check_schema(message["schema"])
            validators[message["stream"]] = jsonschema.Draft7Validator(
                message["schema"], format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
            )
        elif message["type"] == "RECORD":
            stream = message["stream"]
            assert stream in validators, f"RECORD of {stream} before its SCHEMA"
            counts[stream] = counts.get(stream, 0) + 1
            for error in validators[stream].iter_errors(message["record"]):
                path = "/".join(map(str, error.absolute_path)) or "(record)"
                problems.append(
                    f"{stream} id={message['record'].get('id')}: {path}: {error.message}"
                )
    assert not problems, "\n".join(problems[:20])
    return counts


def test_every_record_of_every_stream_validates_against_its_schema(
    sandbox, tap_config, run_tap
) -> None:
    every = {o.stream for o in catalogue.OBJECTS}
    run = run_tap(tap_config, streams=every)
    counts = validate_stream_of_messages(run.stdout)
    assert set(counts) == every, f"streams without records: {sorted(every - set(counts))}"


def test_deleted_streams_validate_and_hold_every_deletion(sandbox, tap_config, run_tap) -> None:
    deleted = {"parties_deleted", "opportunities_deleted", "cases_deleted"}
    config = {**tap_config, "tombstones": "stream"}
    run = run_tap(config, streams={"parties", "opportunities", "cases"} | deleted)
    counts = validate_stream_of_messages(run.stdout)
    assert deleted <= set(counts)
    state = sandbox.state()
    for stream, source in (
        ("parties_deleted", "parties"),
        ("opportunities_deleted", "opportunities"),
        ("cases_deleted", "cases"),
    ):
        rows = {r["id"]: r for r in run.records[stream]}
        assert {d["id"] for d in state["_deleted"][source]} == {
            i for i, r in rows.items() if not r["restricted"]
        }
        assert {r["id"] for r in state["_restricted"][source]} == {
            i for i, r in rows.items() if r["restricted"]
        }
        # The object's own stream carries no tombstone in this mode.
        assert not any(r.get("_sdc_deleted_at") for r in run.records[source])
    assert all(run.state["bookmarks"][s]["replication_key_value"] for s in deleted)
    assert "Sync finished:" in run.stderr  # the run's totals, after the last (deleted) stream
    # Resuming, a deleted stream reads only what was deleted since its own bookmark.
    gone = state["parties"][0]["id"]
    sandbox.delete_record("parties", gone)
    again = run_tap(config, streams={"parties"} | deleted, state=run.state)
    assert [r["id"] for r in again.records.get("parties_deleted", [])] == [gone]
