"""Capsule's documented responses, through the tap's own record processing, against its schemas.

The fixtures under tests/fixtures/capsule/ were written from Capsule's developer documentation and
from responses real clients recorded (their sources are in the NOTES.md beside them), never from
the catalogue. Every record goes through the stream's `post_process` (parent keys, link records,
typed custom fields) and is validated with JSON Schema Draft 7, formats included, against the
schema discovery gives: what SDK-based loaders (target-postgres, target-csv, target-jsonl) do
with every RECORD. A schema that disagrees with Capsule's documented types fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tap_capsule.streams import tombstone
from tap_capsule.tap import TapCapsule

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "capsule"
ENDPOINTS = json.loads((FIXTURES / "endpoints.json").read_text())

# Which documented responses each stream reads: its list, the single-record GET where one exists
# (same record shape), and for child streams the parent context the tap passes.
READS: dict[str, tuple[tuple[str, ...], dict]] = {
    "parties": (("parties.list.json", "parties.show.json"), {}),
    "opportunities": (("opportunities.list.json", "opportunities.show.json"), {}),
    "cases": (("kases.list.json", "kases.show.json"), {}),
    "entries": (("entries.list.json", "entries.show.json"), {}),
    "tasks": (("tasks.list.json", "tasks.show.json"), {}),
    "pipelines": (("pipelines.list.json", "pipelines.show.json"), {}),
    "milestones": (
        ("pipelines.milestones.list.json", "milestones.list.json", "milestones.show.json"),
        {"pipelineId": 10},
    ),
    "lost_reasons": (("lostreasons.list.json", "lostreasons.show.json"), {}),
    "teams": (("teams.list.json", "teams.show.json"), {}),
    "track_definitions": (("trackdefinitions.list.json", "trackdefinitions.show.json"), {}),
    "resthooks": (("resthooks.list.json", "resthooks.show.json"), {}),
    "boards": (("boards.list.json", "boards.show.json"), {}),
    "stages": (("stages.list.json", "stages.show.json"), {}),
    "users": (("users.list.json", "users.show.json"), {}),
    "categories": (("categories.list.json", "categories.show.json"), {}),
    "activity_types": (("activitytypes.list.json", "activitytypes.show.json"), {}),
    "custom_titles": (("titles.list.json",), {}),
    "countries": (("countries.list.json",), {}),
    "currencies": (("currencies.list.json",), {}),
    "party_tags": (("tags.list.json", "tags.show.json"), {}),
    "opportunity_tags": (("tags.list.json", "tags.show.json"), {}),
    "case_tags": (("tags.list.json", "tags.show.json"), {}),
    "party_custom_fields": (("fields.definitions.list.json", "fields.definitions.show.json"), {}),
    "opportunity_custom_fields": (
        ("fields.definitions.list.json", "fields.definitions.show.json"),
        {},
    ),
    "case_custom_fields": (("fields.definitions.list.json", "fields.definitions.show.json"), {}),
    "opportunity_parties": (("opportunities.parties.list.json",), {"opportunityId": 12}),
    "case_parties": (("kases.parties.list.json",), {"caseId": 12}),
    "opportunity_tracks": (
        ("opportunities.tracks.list.json", "tracks.show.json"),
        {"opportunityId": 12},
    ),
    "case_tracks": (("kases.tracks.list.json", "tracks.show.json"), {"caseId": 4}),
}
DELETED_FEEDS = {
    "parties": "parties.deleted.json",
    "opportunities": "opportunities.deleted.json",
    "cases": "kases.deleted.json",
}


def documented_records(filename: str) -> list[dict]:
    """The records of one fixture: a list wrapper's items, or a single-record wrapper's record."""
    body = json.loads((FIXTURES / filename).read_text())
    wrapped = body[ENDPOINTS[filename]["wrapper"]]
    return [dict(r) for r in wrapped] if isinstance(wrapped, list) else [dict(wrapped)]


@pytest.fixture(scope="module")
def tap() -> TapCapsule:
    """The tap with the custom-field definitions of the docs' example, and no network."""
    definitions = tuple(documented_records("fields.definitions.list.json"))
    mp = pytest.MonkeyPatch()
    mp.setattr(TapCapsule, "field_definitions", lambda self, stream: definitions)
    tap = TapCapsule(
        # Inline: the tombstones of the documented deleted feeds are checked in their streams.
        config={
            "access_token": "fixture-token",
            "api_url": "http://127.0.0.1:9/api/v2",
            "tombstones": "inline",
        },
        setup_mapper=False,
    )
    _ = tap.streams  # discovery, with the patched definitions
    yield tap
    mp.undo()


def loader_errors(schema: dict, record: dict) -> list[str]:
    """What a Draft 7 validator with format checks (as SDK loaders use) finds wrong."""
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(record)'}: {e.message}"
        for e in validator.iter_errors(record)
    ]


def test_every_stream_and_every_fixture_is_covered(tap: TapCapsule) -> None:
    assert set(READS) == set(tap.streams), "a stream without documented responses to test"
    used = {f for files, _ in READS.values() for f in files} | set(DELETED_FEEDS.values())
    assert used == set(ENDPOINTS), "a fixture no test reads"


@pytest.mark.parametrize("stream_name", sorted(READS))
def test_documented_records_validate_against_discovered_schema(
    tap: TapCapsule, stream_name: str
) -> None:
    stream = tap.streams[stream_name]
    jsonschema.Draft7Validator.check_schema(stream.schema)
    files, context = READS[stream_name]
    checked = 0
    for filename in files:
        for raw in documented_records(filename):
            record = stream.post_process(raw, dict(context) or None)
            assert record is not None
            errors = loader_errors(stream.schema, record)
            assert not errors, f"{filename} → {stream_name}: {errors}"
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("stream_name", sorted(DELETED_FEEDS))
def test_tombstones_from_documented_deleted_feeds_validate(
    tap: TapCapsule, stream_name: str
) -> None:
    stream = tap.streams[stream_name]
    filename = DELETED_FEEDS[stream_name]
    body = json.loads((FIXTURES / filename).read_text())
    stubs = [s for key in stream.obj.deleted_keys for s in body.get(key) or ()]
    assert len(stubs) >= 2  # deleted and restricted records both become tombstones
    for stub in stubs:
        record = stream.post_process(tombstone(stub, "2026-01-01T00:00:00Z"))
        assert record is not None
        assert not loader_errors(stream.schema, record), (filename, stub)
        assert record["_sdc_deleted_at"] == stub.get("deletedAt", "2026-01-01T00:00:00Z")


def test_documented_types_that_differ_from_a_first_guess(tap: TapCapsule) -> None:
    """The fields issue 8 found wrong are read as Capsule documents them, and typed so."""
    users = {u["id"]: u for u in documented_records("users.list.json")}
    assert users[1]["taskReminder"] is True
    assert tap.streams["users"].schema["properties"]["taskReminder"]["type"] == [
        "boolean",
        "null",
    ]
    hooks = documented_records("resthooks.list.json")
    assert any(isinstance(h.get("clientId"), int) for h in hooks)
    countries = documented_records("countries.list.json")
    assert all(isinstance(c["numericCode"], int) for c in countries)
    string_code = {**countries[0], "numericCode": "004"}  # the model page's reading
    assert not loader_errors(tap.streams["countries"].schema, string_code)
    icons = [a["icon"]["id"] for a in documented_records("activitytypes.list.json")]
    assert icons == ["NOTE", "MEETING", "PHONE"]


def test_number_custom_fields_arrive_as_strings_and_are_emitted_as_numbers(
    tap: TapCapsule,
) -> None:
    scott = documented_records("parties.list.json")[0]
    raw = {f["definition"]["name"]: f["value"] for f in scott["fields"]}
    assert raw["Lead Score"] == "42"  # Capsule returns number values as strings
    record = tap.streams["parties"].post_process(scott)
    assert record["custom_fields"]["lead_score"] == 42
    assert record["custom_fields"]["local"] is True
    assert record["custom_fields"]["date_of_birth"] == "1980-04-01"
