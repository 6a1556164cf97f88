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
