"""A message stream is not all-or-nothing: blank lines skipped, a bad line stops the run cleanly.

Before it stops, the target writes the summary and the STATE of what it applied, so a rerun of the
fixed input resumes without writing anything twice. The error is one line: the line number and
what was wrong, never a traceback and never the line's content (it may hold personal data).
"""

from __future__ import annotations

import json

import pytest
from target_helpers import messages, schema_message

SECRET_LOOKING = "do-not-echo-4711"


def lines(*items: dict | str) -> str:
    return "".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items)


def org(name: str) -> dict:
    return {"type": "RECORD", "stream": "parties", "record": {"type": "organisation", "name": name}}


def names(sb) -> list[str]:
    return [p.get("name") for p in sb.state()["parties"]]


def test_blank_and_whitespace_lines_are_skipped(capsule, run_target):
    text = lines(
        "", schema_message("parties"), "   ", org("Blank Lines Ltd"), "\t", "", org("After Ltd")
    )
    run = run_target(capsule, text)
    assert run.count("parties", "INSERT", "applied") == 2
    assert {"Blank Lines Ltd", "After Ltd"} <= set(names(capsule))


BAD_LINES = {
    "not json": (f"{{not json {SECRET_LOOKING}", "not valid JSON"),
    "a list": (json.dumps([SECRET_LOOKING]), "a message must be a JSON object, got a list"),
    "unknown type": (json.dumps({"type": "HELLO", "x": SECRET_LOOKING}), "unknown message type"),
    "record before schema": (
        json.dumps({"type": "RECORD", "stream": "cases", "record": {"name": SECRET_LOOKING}}),
        "A record for stream 'cases' was encountered before a corresponding schema",
    ),
    "schema not an object": (
        json.dumps({"type": "SCHEMA", "stream": "cases", "schema": SECRET_LOOKING}),
        "schema must be an object, got a string",
    ),
    "schema without properties": (
        json.dumps({"type": "SCHEMA", "stream": "cases", "schema": {"type": "object"}}),
        "schema.properties must be an object",
    ),
    "invalid json schema": (
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": "cases",
                "schema": {"properties": {"name": {"type": SECRET_LOOKING}}},
            }
        ),
        "SCHEMA message for stream 'cases': not a valid JSON Schema",
    ),
    "record without stream": (
        json.dumps({"type": "RECORD", "record": {"name": SECRET_LOOKING}}),
        "RECORD message without a stream name",
    ),
    "stream that is not a Capsule stream": (
        json.dumps({"type": "SCHEMA", "stream": "contacts", "schema": {"properties": {}}}),
        "target-capsule cannot write stream 'contacts': it is not a Capsule stream",
    ),
    "batch message": (
        json.dumps({"type": "BATCH", "stream": "parties", "encoding": {}, "manifest": []}),
        "BATCH messages are not supported",
    ),
    "state not an object": (
        json.dumps({"type": "STATE", "value": [SECRET_LOOKING]}),
        "STATE message value must be an object",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_a_bad_line_stops_with_one_line_after_state_and_summary(case, capsule, run_target):
    bad, what = BAD_LINES[case]
    first = lines(
        schema_message("parties"),
        org(f"Before {case}"),
        {"type": "STATE", "value": {"bookmarks": {"csv": {"row": 1}}}},
        org(f"Also before {case}"),
    )
    rest = lines(org(f"After {case}"))
    run = run_target(capsule, first + bad + "\n" + rest, check=False)

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert SECRET_LOOKING not in run.stderr + run.stdout
    last = run.stderr.strip().splitlines()[-1]
    assert "ERROR" in last
    assert "Stopped at input line 5: " in last
    assert what in last
    # What came before the bad line was applied, and the STATE says so.
    assert run.state["bookmarks"] == {"csv": {"row": 1}}
    assert run.count("parties", "INSERT", "applied") == 2
    assert f"After {case}" not in names(capsule)

    # A rerun of the fixed input resumes: nothing before the bad line is written twice.
    again = run_target(capsule, first + rest)
    assert again.returncode == 0
    all_names = names(capsule)
    for name in (f"Before {case}", f"Also before {case}", f"After {case}"):
        assert all_names.count(name) == 1


def test_a_bad_line_before_any_state_still_writes_the_summary_state(capsule, run_target):
    run = run_target(
        capsule, lines(schema_message("parties"), org("Only One Ltd"), "{oops"), check=False
    )
    assert run.returncode == 1
    assert "Stopped at input line 3: not valid JSON" in run.stderr
    assert run.count("parties", "INSERT", "applied") == 1


def test_well_formed_input_is_unaffected(capsule, run_target):
    run = run_target(capsule, messages([("parties", {"type": "organisation", "name": "Ok Ltd"})]))
    assert run.returncode == 0
    assert run.count("parties", "INSERT", "applied") == 1


def test_a_401_while_a_state_drains_the_sinks_ends_in_one_line(capsule, run_target):
    text = lines(
        schema_message("parties"),
        org("Never Written Ltd"),
        {"type": "STATE", "value": {"bookmarks": {}}},
        org("Nor This Ltd"),
    )
    run = run_target(capsule, text, check=False, access_token="not-the-sandbox-token")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "Capsule rejected the access token (HTTP 401" in run.stderr.strip().splitlines()[-1]
