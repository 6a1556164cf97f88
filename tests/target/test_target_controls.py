"""The writer's controls: content matching as Capsule's search, guardrails, fill_empty, the retry
of last run's rejects and the readable dry run, each through the real CLI against the sandbox."""

from __future__ import annotations

from target_helpers import messages


def people(sb, first: str, last: str) -> list[dict]:
    return [
        p
        for p in sb.state()["parties"]
        if p["type"] == "person" and (p.get("firstName"), p.get("lastName")) == (first, last)
    ]


def test_content_matching_ignores_case_and_spaces_but_not_ambiguity(capsule, run_target):
    assert people(capsule, "John", "Twin") == []
    john = {"type": "person", "firstName": "John", "lastName": "Twin"}
    run_target(capsule, messages([("parties", john)]))
    (first,) = people(capsule, "John", "Twin")

    sloppy = {"type": "person", "firstName": "john ", "lastName": "  TWIN"}
    run = run_target(capsule, messages([("parties", sloppy)]))
    assert run.count("parties", "UPDATE", "unchanged") == 1, run.stderr
    assert f"matched on content existing record {first['id']}" in run.stderr
    assert [p["id"] for p in people(capsule, "John", "Twin")] == [first["id"]]  # no third one
    assert not [p for p in capsule.state()["parties"] if p.get("firstName") == "john "]

    run_target(capsule, messages([("parties", john)]), match_on_content=False)  # a second John Twin
    twins = sorted(p["id"] for p in people(capsule, "John", "Twin"))
    assert len(twins) == 2
    both = run_target(capsule, messages([("parties", {**sloppy, "firstName": "JOHN"})]))
    assert both.count("parties", "INSERT", "rejected") == 1
    assert all(str(i) in both.rejects[0]["reason"] for i in twins)
    assert len(people(capsule, "John", "Twin")) == 2


def test_email_keys_match_regardless_of_case_and_spaces(capsule, run_target):
    person = {
        "type": "person",
        "firstName": "Mail",
        "lastName": "Case",
        "emailAddresses": [{"address": "mail.case@example.com"}],
    }
    run_target(capsule, messages([("parties", person)]))
    again = {**person, "emailAddresses": [{"address": "  MAIL.Case@Example.COM "}], "jobTitle": "X"}
    run = run_target(capsule, messages([("parties", again)]))
    assert run.count("parties", "UPDATE", "applied") == 1, run.stderr
    (found,) = people(capsule, "Mail", "Case")
    assert found["jobTitle"] == "X"
