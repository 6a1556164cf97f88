"""Upsert on natural keys: an id-less record that matches an existing one updates it."""

from __future__ import annotations

from target_helpers import messages


def people(state: dict) -> list[dict]:
    return [p for p in state["parties"] if p["type"] == "person" and p.get("emailAddresses")]


def test_person_by_email_org_by_name_tag_by_name_milestone_by_pipeline_and_name(
    capsule, run_target
):
    st = capsule.state()
    person = people(st)[0]
    email = person["emailAddresses"][0]["address"]
    org = next(p for p in st["parties"] if p["type"] == "organisation")
    milestone = st["milestones"][0]
    recs = [
        (
            "parties",
            {
                "type": "person",
                "firstName": person["firstName"],
                "lastName": person["lastName"],
                "jobTitle": "Chief Tester",
                "emailAddresses": [{"type": "Work", "address": f"  {email.upper()} "}],
            },
        ),
        ("parties", {"type": "organisation", "name": org["name"].lower(), "about": "Upserted"}),
        (
            "party_tags",
            {"name": st["party_tags"][0]["name"].upper(), "description": "Changed description"},
        ),
        (
            "milestones",
            {
                "name": milestone["name"],
                "pipeline": {"id": milestone["pipeline"]["id"]},
                "probability": 55,
            },
        ),
        (
            "milestones",
            {"name": milestone["name"], "pipelineId": st["pipelines"][1]["id"], "probability": 5},
        ),  # same name, other pipeline: a new milestone
    ]
    capsule.reset_requests()
    run = run_target(capsule, messages(recs))
    assert run.rejects == []
    assert run.count("parties", "UPDATE", "applied") == 2
    assert run.count("party_tags", "UPDATE", "applied") == 1
    assert run.count("milestones", "UPDATE", "applied") == 1
    assert run.count("milestones", "INSERT", "applied") == 1
    req = capsule.requests()["by_path"]
    assert "POST /parties" not in req and "POST /parties/tags" not in req
    assert req["GET /parties"] == 1  # one list pass for both parties, not one per record
    after = capsule.state()
    assert len(after["parties"]) == len(st["parties"])
    got = next(p for p in after["parties"] if p["id"] == person["id"])
    assert got["jobTitle"] == "Chief Tester"
    assert len(got["emailAddresses"]) == len(person["emailAddresses"])  # not re-appended
    assert next(p for p in after["parties"] if p["id"] == org["id"])["about"] == "Upserted"
    assert next(m for m in after["milestones"] if m["id"] == milestone["id"])["probability"] == 55


def test_more_than_one_match_is_a_rejection(capsule, run_target):
    st = capsule.state()
    a, b = people(st)[:2]
    email = a["emailAddresses"][0]["address"]
    capsule.touch(
        "parties", b["id"], emailAddresses=[{"id": 9901, "type": "Work", "address": email}]
    )
    run = run_target(
        capsule,
        messages(
            [
                (
                    "parties",
                    {
                        "type": "person",
                        "firstName": "X",
                        "lastName": "Y",
                        "emailAddresses": [{"address": email}],
                    },
                )
            ]
        ),
    )
    assert capsule.requests()["writes"] == 0  # admin touches are not API writes
    [line] = run.rejects
    assert line["operation"] == "INSERT"
    assert "matches 2 existing records" in line["reason"]
    assert str(a["id"]) in line["reason"] and str(b["id"]) in line["reason"]


def test_upsert_keys_setting_replaces_and_disables_keys(capsule, run_target):
    st = capsule.state()
    org = next(p for p in st["parties"] if p["type"] == "organisation")
    opp = st["opportunities"][0]
    recs = [
        (
            "opportunities",
            {
                "name": opp["name"],
                "party": {"id": opp["party"]["id"]},
                "milestone": {"id": opp["milestone"]["id"]},
                "description": "Matched by name",
            },
        ),
        ("parties", {"type": "organisation", "name": org["name"], "about": "dup?"}),
    ]
    run = run_target(
        capsule, messages(recs), upsert_keys={"opportunities": ["name", "party.id"], "parties": []}
    )
    assert run.count("opportunities", "UPDATE", "applied") == 1
    assert (
        next(o for o in capsule.state()["opportunities"] if o["id"] == opp["id"])["description"]
        == "Matched by name"
    )
    # upsert off for parties: the POST goes out and Capsule refuses the duplicate name
    [line] = run.rejects
    assert line["http_status"] == 422 and "name must be unique" in line["reason"]


def test_content_match_makes_keyless_inserts_idempotent(capsule, run_target):
    recs = [
        ("tasks", {"description": "Keyless call", "dueOn": "2026-04-01", "party": {"id": 11003}}),
        ("entries", {"type": "note", "content": "Keyless note", "party": {"id": 11003}}),
        ("parties", {"type": "person", "firstName": "No", "lastName": "Email"}),
    ]
    first = run_target(capsule, messages(recs))
    assert first.state["target_capsule"]["totals"] == {"applied": 3, "rejected": 0}
    second = run_target(capsule, messages(recs))
    assert second.state["target_capsule"]["totals"] == {"unchanged": 3, "rejected": 0}


def test_csv_contacts_through_stream_maps(capsule, run_target):
    """The README recipe: a CSV tap's `contacts` stream mapped onto parties."""
    maps = {
        "contacts": {
            "__alias__": "parties",
            "__key_properties__": [],
            "type": "'person'",
            "firstName": "first_name",
            "lastName": "last_name",
            "jobTitle": "job_title or None",
            "emailAddresses": "[{'type': 'Work', 'address': email}] if email else []",
            "tags": "[{'name': 'Imported'}]",
            "first_name": "__NULL__",
            "last_name": "__NULL__",
            "email": "__NULL__",
            "job_title": "__NULL__",
        }
    }
    schema = {
        "type": "SCHEMA",
        "stream": "contacts",
        "key_properties": ["email"],
        "schema": {
            "properties": {
                k: {"type": ["string", "null"]}
                for k in ("first_name", "last_name", "email", "job_title")
            }
        },
    }
    rows = [
        {"first_name": "Ann", "last_name": "Lee", "email": "ann@x.com", "job_title": "CTO"},
        {"first_name": "Bo", "last_name": "Ek", "email": "", "job_title": ""},
    ]
    lines = [schema] + [{"type": "RECORD", "stream": "contacts", "record": r} for r in rows]
    first = run_target(capsule, lines, stream_maps=maps, validate_records=False)
    assert first.count("parties", "INSERT", "applied") == 2
    again = run_target(capsule, lines, stream_maps=maps, validate_records=False)
    assert again.count("parties", "UPDATE", "unchanged") == 2
    ann = next(p for p in capsule.state()["parties"] if p.get("lastName") == "Lee")
    assert [t_["name"] for t_ in ann["tags"]] == ["Imported"]
