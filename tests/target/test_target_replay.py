"""No duplicates: replays, dry runs, 429s and 5xx during writes.

The tap's records also go back unchanged.
"""

from __future__ import annotations

import pytest
from target_helpers import TOKEN, messages

from tap_capsule.sandbox import Sandbox

DELETED = "2026-01-01T00:00:00Z"


def load(st: dict) -> list[tuple[str, dict]]:
    """A mixed load: inserts (keyed and keyless), updates, deletes, links, tags, custom values."""
    person = next(p for p in st["parties"] if p["type"] == "person")
    return [
        ("party_tags", {"name": "Replay tag"}),
        (
            "parties",
            {
                "type": "organisation",
                "name": "Replay Org Ltd",
                "tags": [{"name": "VIP"}],
                "custom_fields": {"industry": "Retail"},
                "phoneNumbers": [{"type": "Work", "number": "+44 20 1111 2222"}],
            },
        ),
        (
            "parties",
            {
                "type": "person",
                "firstName": "Rita",
                "lastName": "Replay",
                "emailAddresses": [{"address": "rita.replay@example.com"}],
                "tags": [{"name": "Replay tag"}],
            },
        ),
        (
            "parties",
            {
                "id": person["id"],
                "jobTitle": "Replayed",
                "emailAddresses": [{"type": "Work", "address": "second@example.com"}],
            },
        ),
        (
            "opportunities",
            {
                "name": "Replay deal",
                "party": {"id": person["id"]},
                "milestone": {"id": 200},
                "value": {"amount": 100, "currency": "GBP"},
            },
        ),
        ("tasks", {"description": "Replay task", "dueOn": "2026-05-01"}),
        ("entries", {"type": "note", "content": "Replay note", "party": {"id": person["id"]}}),
        (
            "opportunity_parties",
            {"opportunityId": st["opportunities"][0]["id"], "partyId": st["parties"][2]["id"]},
        ),
        ("tasks", {"id": st["tasks"][-1]["id"], "_sdc_deleted_at": DELETED}),
        ("lost_reasons", {"id": st["lost_reasons"][-1]["id"], "_sdc_deleted_at": DELETED}),
    ]


def comparable(state: dict) -> dict:
    return {k: v for k, v in state.items() if not k.startswith("_")}


def test_replay_leaves_capsule_as_one_run_does(capsule, run_target):
    st = capsule.state()
    recs = load(st)
    first = run_target(capsule, messages(recs, state={"bookmarks": {"tap": "x"}}))
    assert first.rejects == []
    assert first.state["bookmarks"] == {"tap": "x"}  # the tap's state is kept intact
    once = capsule.state()
    capsule.reset_requests()
    second = run_target(capsule, messages(recs))
    assert second.rejects == []
    by_path = capsule.requests()["by_path"]
    # the only write requests are the two DELETEs, answered 404 (already gone)
    writes = {p: n for p, n in by_path.items() if not p.startswith("GET ")}
    assert writes == {
        f"DELETE /tasks/{st['tasks'][-1]['id']}": 1,
        f"DELETE /lostreasons/{st['lost_reasons'][-1]['id']}": 1,
    }
    assert comparable(capsule.state()) == comparable(once)
    totals = second.state["target_capsule"]["totals"]
    assert totals == {"unchanged": 8, "already_gone": 2, "rejected": 0}
    assert second.count("tasks", "DELETE", "already_gone") == 1


def test_dry_run_plans_and_sends_no_write(capsule, run_target):
    st = capsule.state()
    recs = [*load(st), ("parties", {"type": "person", "firstName": "Bad"})]
    capsule.reset_requests()
    run = run_target(capsule, messages(recs), dry_run=True)
    assert capsule.requests()["writes"] == 0
    assert comparable(capsule.state()) == comparable(st)
    summary = run.state["target_capsule"]
    assert summary["dry_run"] is True
    assert summary["totals"]["planned"] == 10 and summary["totals"]["rejected"] == 1
    assert run.count("parties", "INSERT", "planned") == 2
    assert run.count("parties", "UPDATE", "planned") == 1
    assert [r["reason"] for r in run.rejects] == [
        "parties INSERT: a person needs lastName (rule: person requires firstName and lastName)"
    ]
    assert "Dry run" in run.stderr


def test_429_during_writes_waits_and_creates_no_duplicate(capsule, run_target):
    st = capsule.state()
    capsule.set_faults(throttle_next=3, throttle_reset_seconds=1)
    run = run_target(capsule, messages(load(st)))
    assert run.rejects == []
    after = capsule.state()
    assert sum(p.get("name") == "Replay Org Ltd" for p in after["parties"]) == 1


@pytest.mark.parametrize("after_write", [False, True], ids=["5xx-before", "5xx-after-write"])
def test_5xx_during_writes_never_duplicates(capsule, run_target, after_write):
    st = capsule.state()
    capsule.set_faults(error_every=3, error_status=503, fault_after_write=after_write)
    run = run_target(capsule, messages(load(st)))
    capsule.set_faults()
    assert run.rejects == [], run.rejects
    after = capsule.state()
    assert sum(p.get("name") == "Replay Org Ltd" for p in after["parties"]) == 1
    assert sum(p.get("lastName") == "Replay" for p in after["parties"]) == 1
    assert sum(o["name"] == "Replay deal" for o in after["opportunities"]) == 1
    assert sum(t_["description"] == "Replay task" for t_ in after["tasks"]) == 1
    assert sum(e.get("content") == "Replay note" for e in after["entries"]) == 1
    again = run_target(capsule, messages(load(st)))
    assert set(again.state["target_capsule"]["totals"]) <= {"unchanged", "already_gone", "rejected"}


def test_lost_answer_to_a_post_without_key_is_found_by_content_not_sent_twice(capsule, run_target):
    # Upsert off: no key to match on, yet the check after the lost answer still finds the task
    # by what Capsule stores as sent, among the tasks created since just before the POST.
    capsule.set_faults(lost_answer_every=1)
    run = run_target(
        capsule,
        messages([("tasks", {"description": "Once", "dueOn": "2026-01-02"})]),
        upsert_keys={"tasks": []},
        max_retries=0,
    )
    capsule.set_faults()
    assert run.rejects == []
    assert run.count("tasks", "INSERT", "applied") == 1
    assert sum(t_["description"] == "Once" for t_ in capsule.state()["tasks"]) == 1


def test_auth_failures_end_the_run_with_the_shared_message(run_target):
    with Sandbox(token=TOKEN, scale=5, seed=3, read_only_token="ro-" + TOKEN) as sb:
        bad = run_target(
            sb,
            messages([("parties", {"id": 1, "about": "x"})]),
            check=False,
            access_token="wrong-" + TOKEN,
        )
        assert bad.returncode == 1
        assert "Capsule rejected the access token (HTTP 401" in bad.stderr
        # A 403 belongs to one operation: its records are rejected, naming what the token
        # lacks, and the run goes on (the second record costs no request).
        sb.reset_requests()
        ro = run_target(
            sb,
            messages(
                [
                    ("parties", {"type": "organisation", "name": "RO"}),
                    ("parties", {"type": "organisation", "name": "RO 2"}),
                ]
            ),
            check=False,
            access_token="ro-" + TOKEN,
        )
        assert ro.returncode == 0
        assert [r["http_status"] for r in ro.rejects] == [403, 403]
        assert all("the `write` scope" in r["reason"] for r in ro.rejects)
        assert sb.requests()["by_path"].get("POST /parties") == 1
        for run in (bad, ro):
            assert TOKEN not in run.stdout + run.stderr
