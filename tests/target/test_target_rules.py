"""Every write rule is checked before any request; the rejects file says why."""

from __future__ import annotations

import json

from target_helpers import TOKEN, messages

P = 11003  # a seeded person
RULE_CASES = [
    # (stream, record, words the reason must contain)
    (
        "parties",
        {"firstName": "No", "lastName": "Type"},
        ["type is required", "person", "organisation"],
    ),
    ("parties", {"type": "robot", "name": "R2"}, ["type 'robot' is not allowed"]),
    (
        "parties",
        {"type": "person", "firstName": "Ann"},
        ["a person needs lastName", "rule: person requires firstName and lastName"],
    ),
    ("parties", {"type": "person", "lastName": "Lee"}, ["a person needs firstName"]),
    (
        "parties",
        {"type": "organisation", "about": "nameless"},
        ["an organisation needs name", "rule: organisation requires name"],
    ),
    ("opportunities", {"party": {"id": P}, "milestone": {"id": 200}}, ["name is required"]),
    ("opportunities", {"name": "D", "milestone": {"id": 200}}, ["party is required"]),
    ("opportunities", {"name": "D", "party": {"id": P}}, ["milestone is required"]),
    ("cases", {"party": {"id": P}}, ["name is required"]),
    ("cases", {"name": "Case"}, ["party is required"]),
    ("tasks", {"dueOn": "2026-01-01"}, ["description is required"]),
    ("tasks", {"description": "Call"}, ["dueOn is required"]),
    (
        "tasks",
        {"description": "Call", "dueOn": "2026-01-01", "party": {"id": P}, "kase": {"id": 31000}},
        ["party and kase are all set", "at most one of"],
    ),
    (
        "tasks",
        {"description": "Call", "dueOn": "2026-01-01", "status": "PENDING"},
        ["status 'PENDING' is not allowed"],
    ),
    (
        "entries",
        {"type": "note", "content": "orphan"},
        ["exactly one of party, opportunity or kase", "got none"],
    ),
    (
        "entries",
        {"type": "note", "content": "two", "party": {"id": P}, "opportunity": {"id": 21000}},
        ["exactly one of", "got party and opportunity"],
    ),
    (
        "entries",
        {"type": "email", "content": "mail", "party": {"id": P}},
        ["type 'email' cannot be inserted", "only note entries can be created"],
    ),
    (
        "entries",
        {"type": "task", "content": "done", "party": {"id": P}},
        ["type 'task' cannot be inserted"],
    ),
    (
        "opportunity_tracks",
        {"opportunityId": 21000, "trackDateOn": "2026-01-01"},
        ["definition is required"],
    ),
    ("opportunity_tracks", {"definition": {"id": 1}}, ["opportunityId is required"]),
    ("case_tracks", {"definition": {"id": 3}}, ["caseId is required"]),
    ("opportunity_parties", {"opportunityId": 21000}, ["partyId is required"]),
    ("case_parties", {"partyId": P}, ["caseId is required"]),
    ("milestones", {"pipeline": {"id": 100}}, ["name is required"]),
    ("milestones", {"name": "Orphan stage"}, ["pipeline is required"]),
    ("lost_reasons", {"includedForConversion": True}, ["name is required"]),
    ("categories", {"colour": "#fff"}, ["name is required"]),
    ("activity_types", {"updateLastContacted": True}, ["name is required"]),
    ("custom_titles", {"id": None}, ["title is required"]),
    ("party_tags", {"description": "no name"}, ["name is required"]),
    ("party_custom_fields", {"name": "F"}, ["type is required"]),
    (
        "opportunity_custom_fields",
        {"name": "F", "type": "colour"},
        ["type 'colour' is not allowed"],
    ),
    ("resthooks", {"event": "party/created"}, ["targetUrl is required"]),
]


def test_every_rule_rejects_before_any_request(capsule, run_target):
    capsule.reset_requests()
    run = run_target(capsule, messages([(s, r) for s, r, _ in RULE_CASES]))
    assert capsule.requests()["total"] == 0, capsule.requests()
    assert len(run.rejects) == len(RULE_CASES)
    for (stream, record, words), line in zip(RULE_CASES, run.rejects, strict=True):
        assert set(line) == {"stream", "operation", "reason", "http_status", "record"}
        assert line["stream"] == stream
        assert line["http_status"] is None
        assert line["record"] == record
        assert "(rule: " in line["reason"]
        for word in words:
            assert word in line["reason"], (word, line["reason"])
    assert run.returncode == 0  # the run goes on
    assert run.state["target_capsule"]["totals"] == {"rejected": len(RULE_CASES)}


def test_update_rules_apply_to_what_would_be_written(capsule, run_target):
    st = capsule.state()
    open_task = next(t_ for t_ in st["tasks"] if t_["status"] == "OPEN")
    pending = next(t_ for t_ in st["tasks"] if t_["status"] == "PENDING")
    recs = [
        ("tasks", {"id": open_task["id"], "status": "PENDING"}),
        ("tasks", {"id": pending["id"], "status": "PENDING", "detail": "kept pending"}),
    ]
    run = run_target(capsule, messages(recs))
    [line] = run.rejects
    assert line["reason"] == (
        "tasks UPDATE: status 'PENDING' is not allowed (rule: status is 'OPEN' or 'COMPLETED')"
    )
    assert run.count("tasks", "UPDATE", "applied") == 1
    assert capsule.requests()["by_path"].get(f"PUT /tasks/{open_task['id']}") is None


def test_rule_reason_text_is_exact(capsule, run_target):
    run = run_target(capsule, messages([("parties", {"type": "person", "firstName": "Ann"})]))
    assert run.rejects == [
        {
            "stream": "parties",
            "operation": "INSERT",
            "reason": "parties INSERT: a person needs lastName "
            "(rule: person requires firstName and lastName)",
            "http_status": None,
            "record": {"type": "person", "firstName": "Ann"},
        }
    ]


def test_track_capture_rule_and_unknown_definition(capsule, run_target):
    recs = [
        (
            "opportunity_tracks",
            {"opportunityId": 21000, "definition": {"id": 3}, "trackDateOn": "2026-01-01"},
        ),
        ("case_tracks", {"caseId": 31000, "definition": {"id": 1}}),
        ("case_tracks", {"caseId": 31000, "definition": {"id": 999}}),
    ]
    capsule.reset_requests()
    run = run_target(capsule, messages(recs))
    assert capsule.requests()["writes"] == 0
    # read once (and the account named once)
    assert capsule.requests()["by_path"] == {"GET /site": 1, "GET /trackdefinitions": 1}
    reasons = [r["reason"] for r in run.rejects]
    assert "captureRule 'CASEFILE', not 'OPPORTUNITY'" in reasons[0]
    assert "captureRule 'OPPORTUNITY', not 'CASEFILE'" in reasons[1]
    assert "track definition {'id': 999} does not exist" in reasons[2]


def test_capsule_422_and_404_are_rejections_with_its_message(capsule, run_target):
    recs = [
        # Capsule's own rules that the target does not pre-check
        ("cases", {"name": "No owner", "party": {"id": P}}),
        (
            "parties",
            {"type": "organisation", "name": "Firm", "addresses": [{"city": "X", "country": "UK"}]},
        ),
        ("parties", {"id": 99999999, "about": "gone"}),
        (
            "opportunities",
            {"name": "ok", "party": {"id": P}, "milestone": {"id": 200}, "value": {"amount": 10}},
        ),
    ]
    run = run_target(capsule, messages(recs))
    assert [r["http_status"] for r in run.rejects] == [422, 422, 404, 422]
    assert "owner or team is required" in run.rejects[0]["reason"]
    assert "unknown country" in run.rejects[1]["reason"]
    assert "does not exist" in run.rejects[2]["reason"]
    assert "currency" in run.rejects[3]["reason"]
    assert capsule.requests()["writes"] == 3  # the 404 is found by a read, not a write


def test_unknown_custom_field_and_tag_id_are_rejected(capsule, run_target):
    recs = [
        (
            "parties",
            {"type": "organisation", "name": "Neo Ltd", "custom_fields": {"no_such_field": 1}},
        ),
        (
            "parties",
            {
                "type": "organisation",
                "name": "Neo Two",
                "fields": [{"definition": {"name": "Nope"}, "value": "x"}],
            },
        ),
        ("parties", {"type": "organisation", "name": "Neo Three", "tags": [{"id": 4242}]}),
    ]
    run = run_target(capsule, messages(recs))
    assert capsule.requests()["writes"] == 0
    assert "unknown custom field 'no_such_field'" in run.rejects[0]["reason"]
    assert "unknown custom field 'Nope'" in run.rejects[1]["reason"]
    assert "unknown tag id 4242" in run.rejects[2]["reason"]


def test_fail_on_rejects_exits_non_zero_after_everything(capsule, run_target):
    recs = [
        ("parties", {"type": "person", "firstName": "Ann"}),
        ("parties", {"type": "organisation", "name": "Strict Ltd"}),
    ]
    run = run_target(
        capsule, messages(recs, state={"bookmarks": {"x": 1}}), check=False, fail_on_rejects=True
    )
    assert run.returncode == 1
    assert "1 record(s) rejected" in run.stderr
    assert run.count("parties", "INSERT", "applied") == 1  # processed everything first
    assert run.state["bookmarks"] == {"x": 1}
    assert any(p.get("name") == "Strict Ltd" for p in capsule.state()["parties"])
    ok = run_target(capsule, messages(recs[1:]), fail_on_rejects=True)
    assert ok.returncode == 0


def test_no_secret_in_output_or_rejects(capsule, run_target, tmp_path):
    recs = [
        ("parties", {"type": "person", "firstName": TOKEN, "about": f"token {TOKEN}"}),
        ("cases", {"name": "No owner", "party": {"id": P}}),
    ]
    run = run_target(capsule, messages(recs), client_secret="cs-" + TOKEN[::-1])
    text = run.stdout + run.stderr + json.dumps(run.rejects)
    assert TOKEN not in text and TOKEN[::-1] not in text
    assert run.rejects[0]["record"]["firstName"] == "***"
