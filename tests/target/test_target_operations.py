"""Every allowed and every refused operation of every object in SPEC §4, through the CLI."""

from __future__ import annotations

import pytest
from target_helpers import messages

from tap_capsule import catalogue as cat

DELETED = "2026-01-01T00:00:00Z"

# SPEC §4: stream -> operations allowed.
SPEC_TABLE = {
    **{
        s: {"INSERT", "UPDATE", "DELETE"}
        for s in (
            "parties",
            "opportunities",
            "cases",
            "tasks",
            "entries",
            "milestones",
            "lost_reasons",
            "categories",
            "activity_types",
            "custom_titles",
            "party_tags",
            "opportunity_tags",
            "case_tags",
            "party_custom_fields",
            "opportunity_custom_fields",
            "case_custom_fields",
            "opportunity_tracks",
            "case_tracks",
        )
    },
    **{s: {"INSERT", "DELETE"} for s in ("opportunity_parties", "case_parties", "resthooks")},
    "users": {"UPDATE"},
}
READ_ONLY = sorted(o.stream for o in cat.OBJECTS if o.stream not in SPEC_TABLE)


def test_catalogue_matches_the_spec_table():
    for stream, ops in SPEC_TABLE.items():
        assert set(cat.get(stream).operations) == ops, stream
    for stream in READ_ONLY:
        assert not cat.get(stream).operations, stream


def first(state: dict, stream: str, **match) -> dict:
    return next(r for r in state[stream] if all(r.get(k) == v for k, v in match.items()))


def samples(stream: str, st: dict) -> dict[str, dict]:
    """A valid record per operation for `stream`, against the seeded sandbox state."""
    rows = st[stream]
    person = first(st, "parties", type="person")["id"]
    if stream == "parties":
        ins = {"type": "organisation", "name": "Zeta Test Org"}
        upd = {"id": rows[0]["id"], "about": "Updated by the target"}
    elif stream == "opportunities":
        ins = {"name": "New deal", "party": {"id": person}, "milestone": {"id": 200}}
        upd = {"id": rows[0]["id"], "description": "Updated"}
    elif stream == "cases":
        ins = {"name": "New project", "party": {"id": person}, "owner": {"id": 1}}
        upd = {"id": rows[0]["id"], "description": "Updated"}
    elif stream == "tasks":
        ins = {"description": "Call back", "dueOn": "2026-02-01"}
        upd = {"id": rows[0]["id"], "detail": "Updated"}
    elif stream == "entries":
        ins = {"type": "note", "content": "A new note", "party": {"id": person}}
        upd = {"id": first(st, "entries", type="note")["id"], "content": "Updated note"}
    elif stream == "milestones":
        ins = {"name": "Negotiation X", "pipeline": {"id": 100}, "probability": 60}
        upd = {"id": rows[0]["id"], "description": "Updated"}
    elif stream in ("opportunity_tracks", "case_tracks"):
        parent_key = cat.get(stream).parent_key
        parent_stream = cat.get(stream).parent
        capture = cat.get(stream).capture_rule
        definition = first(st, "track_definitions", captureRule=capture)["id"]
        ins = {
            parent_key: st[parent_stream][-1]["id"],
            "definition": {"id": definition},
            "trackDateOn": "2026-03-01",
        }
        upd = {"id": rows[0]["id"], parent_key: rows[0][parent_key], "description": "Updated"}
    elif stream in ("opportunity_parties", "case_parties"):
        parent_key = cat.get(stream).parent_key
        parent = st[cat.get(stream).parent][0]["id"]
        ins = {parent_key: parent, "partyId": st["parties"][1]["id"]}
        return {
            "INSERT": ins,
            "DELETE": {**ins, "_sdc_deleted_at": DELETED},
            "UPDATE": {**ins, "id": 1},
        }
    elif stream == "resthooks":
        ins = {"event": "party/updated", "targetUrl": "https://hooks.example.com/new"}
        upd = {"id": rows[0]["id"], "description": "Updated"}
    elif stream == "users":
        ins = {"username": "zed", "name": "Zed New"}
        upd = {"id": rows[0]["id"], "timezone": "Europe/Paris"}
    elif stream == "custom_titles":
        ins = {"title": "Sir Q"}
        upd = {"id": rows[0]["id"], "title": "Mister"}
    elif stream.endswith("_custom_fields"):
        ins = {"name": "New field", "type": "text"}
        upd = {"id": rows[0]["id"], "description": "Updated"}
    else:  # tags, lost_reasons, categories, activity_types
        ins = {"name": "New name Q"}
        upd = {"id": rows[-1]["id"], "name": "Renamed Q"}
    return {
        "INSERT": ins,
        "UPDATE": upd,
        "DELETE": {"id": rows[-1]["id"], "_sdc_deleted_at": DELETED},
    }


@pytest.mark.parametrize("stream", sorted(SPEC_TABLE))
def test_allowed_operations_are_applied(stream, capsule, run_target):
    st = capsule.state()
    allowed = SPEC_TABLE[stream]
    recs = samples(stream, st)
    ordered = [op for op in ("INSERT", "UPDATE", "DELETE") if op in allowed]
    capsule.reset_requests()
    run = run_target(capsule, messages([(stream, recs[op]) for op in ordered]))
    assert run.rejects == [], run.rejects
    for op in ordered:
        assert run.count(stream, op, "applied") == 1, (op, run.summary)
    obj = cat.get(stream)
    # Capsule has no PUT for custom titles: their UPDATE is a POST of the new one and a DELETE.
    replaced = 1 if obj.replace_on_update and "UPDATE" in ordered else 0
    assert capsule.requests()["writes"] == len(ordered) + replaced
    assert not any(k.startswith("PUT /titles") for k in capsule.requests()["by_path"])
    after = capsule.state()
    if "DELETE" in allowed and not obj.is_link:
        assert recs["DELETE"]["id"] not in {r["id"] for r in after[stream]}
    if obj.is_link:
        pairs = {(r[obj.parent_key], r["partyId"]) for r in after[stream]}
        assert (recs["INSERT"][obj.parent_key], recs["INSERT"]["partyId"]) not in pairs
    else:
        assert len(after[stream]) >= len(st[stream]) - ("DELETE" in allowed)


def test_refused_operations_are_rejected_without_a_request(capsule, run_target):
    st = capsule.state()
    records, expected = [], []
    for stream in sorted(SPEC_TABLE):
        recs = samples(stream, st)
        for op in ("INSERT", "UPDATE", "DELETE"):
            if op not in SPEC_TABLE[stream]:
                records.append((stream, recs[op]))
                expected.append((stream, op))
    for stream in READ_ONLY:
        row = dict(st[stream][0]) if st.get(stream) else {"id": 1}
        key = cat.get(stream).key_properties[0]
        records += [
            (stream, {k: v for k, v in row.items() if k != "id"}),
            (stream, {**row, "id": row.get(key, 1)}),
            (stream, {"id": row.get(key, 1), "_sdc_deleted_at": DELETED}),
        ]
        expected += [(stream, "INSERT"), (stream, "UPDATE"), (stream, "DELETE")]
    capsule.reset_requests()
    run = run_target(capsule, messages(records))
    assert capsule.requests()["total"] == 0, capsule.requests()
    assert [(r["stream"], r["operation"]) for r in run.rejects] == expected
    for line in run.rejects:
        assert line["http_status"] is None
        assert line["reason"].startswith(f"{line['stream']} {line['operation']}: ")
        assert "rule:" in line["reason"]
        assert ("not allowed" in line["reason"]) or ("cannot be written" in line["reason"])
    assert run.state["target_capsule"]["totals"]["rejected"] == len(expected)


def test_unknown_stream_is_a_clear_error(capsule, run_target):
    lines = [
        {
            "type": "SCHEMA",
            "stream": "contacts",
            "schema": {"properties": {}},
            "key_properties": [],
        },
        {"type": "RECORD", "stream": "contacts", "record": {"x": 1}},
    ]
    run = run_target(capsule, lines, check=False)
    assert run.returncode != 0
    assert "cannot write stream 'contacts'" in run.stderr
    assert "parties" in run.stderr and "opportunity_tracks" in run.stderr
    assert capsule.requests()["writes"] == 0
