"""The change log of target-capsule and `capsule-undo`, through the real CLIs on a sandbox."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from reversible_helpers import (
    TOKEN,
    config_file,
    diff_snapshots,
    snapshot,
    target,
    undo,
    writes_of,
)

from tap_capsule.sandbox import Sandbox

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def account():
    with Sandbox(token=TOKEN, scale=10, seed=7) as sb:
        yield sb


def import_records(state: dict) -> tuple[list[tuple[str, dict]], dict]:
    """An import touching every kind of change: creates, an update, deletes, a link."""
    person = next(p for p in state["parties"] if p["type"] == "person")
    note = next(e for e in state["entries"] if e["type"] == "note")
    task = next(x for x in state["tasks"] if not x["hasTrack"])
    opportunity = state["opportunities"][0]
    linked = {
        link["partyId"]
        for link in state["opportunity_parties"]
        if link["opportunityId"] == opportunity["id"]
    }
    extra = next(
        p["id"]
        for p in state["parties"]
        if p["id"] not in linked and p["id"] != opportunity["party"]["id"]
    )
    records = [
        (
            "parties",
            {
                "type": "person",
                "firstName": "Zed",
                "lastName": "Quill",
                "emailAddresses": [{"type": "Work", "address": "zed.quill@example.net"}],
                "tags": [{"name": "VIP"}],
            },
        ),
        ("parties", {"type": "organisation", "name": "Quill Widgets Ltd"}),
        (
            "parties",
            {
                "id": person["id"],
                "about": "Changed by the import",
                "jobTitle": "Imported title",
                "phoneNumbers": [{"type": "Mobile", "number": "+44 7700 900123"}],
                "tags": [{"name": "Imported"}],
            },
        ),
        ("entries", {"type": "note", "content": "Imported note", "party": {"id": person["id"]}}),
        ("opportunity_parties", {"opportunityId": opportunity["id"], "partyId": extra}),
        ("tasks", {"id": task["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"}),
        ("entries", {"id": note["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"}),
    ]
    return records, {"person": person, "note": note, "task": task}


def recreated(change_log: Path, run_id: str) -> dict:
    """stream → {new id: old id} from the undo's id map next to the change log."""
    ids = json.loads(change_log.with_name(f"{change_log.stem}.undo-{run_id}.ids.json").read_text())
    return {
        stream: {new: old for old, new in pairs.items()}
        for stream, pairs in ids.items()
        if isinstance(pairs, dict)
    }


def test_change_log_lines_then_undo_leaves_the_account_as_it_was(account, tmp_path):
    before_state = account.state()
    before = snapshot(before_state)
    records, picked = import_records(before_state)
    change_log = tmp_path / "changes.jsonl"
    config = config_file(tmp_path, account.url, change_log_path=str(change_log))

    result = target(config, records)
    assert "Change log: 7 change(s) of run" in result.stderr
    assert str(change_log) in result.stderr
    lines = writes_of(change_log)
    assert [(x["stream"], x["operation"]) for x in lines] == [
        ("parties", "INSERT"),
        ("parties", "INSERT"),
        ("parties", "UPDATE"),
        ("entries", "INSERT"),
        ("opportunity_parties", "INSERT"),
        ("tasks", "DELETE"),
        ("entries", "DELETE"),
    ]
    assert {x["status"] for x in lines} == {"applied"}
    assert len({x["run_id"] for x in lines}) == 1
    update = lines[2]
    assert update["id"] == picked["person"]["id"]
    assert update["written"]["about"] == "Changed by the import"
    assert update["before"]["about"] == picked["person"]["about"]
    assert update["before"]["jobTitle"] == picked["person"]["jobTitle"]
    assert lines[5]["record"]["description"] == picked["task"]["description"]
    assert lines[6]["record"]["content"] == picked["note"]["content"]
    assert snapshot(account.state()) != before

    run, report = undo(config, change_log)
    assert report["totals"]["reverted"] == 7, run.stderr
    assert [c["seq"] for c in report["changes"]] == [7, 6, 5, 4, 3, 2, 1]  # newest first
    after = snapshot(account.state(), renamed=recreated(change_log, report["run_id"]))
    # The recreated note's author is the token's user: Capsule sets it (the README's limits),
    # and `creator` is read-only, so the snapshot leaves it out.
    assert after == before, diff_snapshots(before, after)
    undo_lines = writes_of(change_log.with_name("changes.undo.jsonl"))
    # 7 reverts, and the tag definition that naming "Imported" made Capsule create is gone again
    assert len(undo_lines) == 8
    assert ("party_tags", "DELETE") in {(x["stream"], x["operation"]) for x in undo_lines}
    assert {x["run_id"] for x in undo_lines} == {report["undo_run_id"]}

    _again, report2 = undo(config, change_log)
    assert report2["totals"]["reverted"] == 0  # a second undo changes nothing
    assert snapshot(account.state(), renamed=recreated(change_log, report["run_id"])) == before


def test_undo_skips_records_changed_after_the_import(account, tmp_path):
    state = account.state()
    person = next(p for p in state["parties"] if p["type"] == "person")
    change_log = tmp_path / "changes.jsonl"
    config = config_file(tmp_path, account.url, change_log_path=str(change_log))
    target(
        config,
        [
            ("parties", {"id": person["id"], "about": "Import value"}),
            ("parties", {"type": "organisation", "name": "Changed Later Ltd"}),
            ("parties", {"type": "organisation", "name": "Untouched Ltd"}),
        ],
    )
    lines = writes_of(change_log)
    created = lines[1]["id"]
    account.touch("parties", person["id"], about="A colleague's edit")
    account.touch("parties", created, name="Renamed Ltd")

    run, report = undo(config, change_log)
    outcomes = {(c["seq"], c["outcome"]) for c in report["changes"]}
    assert outcomes == {(1, "skipped"), (2, "skipped"), (3, "reverted")}
    reasons = {c["seq"]: c["reason"] for c in report["changes"]}
    assert "about" in reasons[1] and "name" in reasons[2]
    assert "changed since the run" in run.stderr
    parties = {p["id"]: p for p in account.state()["parties"]}
    assert parties[person["id"]]["about"] == "A colleague's edit"  # never overwritten
    assert parties[created]["name"] == "Renamed Ltd"
    assert lines[2]["id"] not in parties


def test_dry_run_logs_planned_lines_and_undo_refuses_them(account, tmp_path):
    state = account.state()
    person = next(p for p in state["parties"] if p["type"] == "person")
    change_log = tmp_path / "planned.jsonl"
    config = config_file(tmp_path, account.url, change_log_path=str(change_log), dry_run=True)
    account.reset_requests()
    result = target(
        config,
        [
            ("parties", {"id": person["id"], "about": "Would change"}),
            ("parties", {"type": "organisation", "name": "Planned Ltd"}),
        ],
    )
    assert account.requests()["writes"] == 0
    lines = writes_of(change_log)
    assert [(x["operation"], x["status"]) for x in lines] == [
        ("UPDATE", "planned"),
        ("INSERT", "planned"),
    ]
    assert lines[0]["before"] == {"about": person["about"]}
    assert "planned change(s)" in result.stderr
    run, _ = undo(config, change_log, check=False)
    assert run.returncode == 1
    assert "dry run" in run.stderr and "Traceback" not in run.stderr


def test_the_change_log_costs_no_extra_request_on_updates(account, tmp_path):
    people = [p for p in account.state()["parties"] if p["type"] == "person"][:3]
    counts = []
    for n, log in enumerate((None, tmp_path / "changes.jsonl")):
        settings = {"change_log_path": str(log)} if log else {}
        config = config_file(tmp_path, account.url, name=f"config{n}", **settings)
        account.reset_requests()
        target(config, [("parties", {"id": p["id"], "about": f"Run {n}"}) for p in people])
        counts.append(account.requests()["total"])
    assert counts[0] == counts[1]
    assert len(writes_of(tmp_path / "changes.jsonl")) == 3


def test_undo_of_the_undo_puts_the_import_back(account, tmp_path):
    person = next(p for p in account.state()["parties"] if p["type"] == "person")
    change_log = tmp_path / "changes.jsonl"
    config = config_file(tmp_path, account.url, change_log_path=str(change_log))
    target(config, [("parties", {"id": person["id"], "about": "Imported"})])
    undo(config, change_log)
    assert _about(account, person["id"]) == person["about"]
    _, report = undo(config, change_log.with_name("changes.undo.jsonl"))
    assert report["totals"]["reverted"] == 1
    assert _about(account, person["id"]) == "Imported"


def test_undo_errors_are_one_line(tmp_path, account):
    config = config_file(tmp_path, account.url)
    missing, _ = undo(config, tmp_path / "nope.jsonl", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    run, _ = undo(config, bad, check=False)
    assert run.returncode == 1 and "line 1 is not JSON" in run.stderr
    assert "Traceback" not in missing.stderr + run.stderr


def _about(account: Sandbox, rid: int) -> str:
    return next(p for p in account.state()["parties"] if p["id"] == rid)["about"]


def test_undo_puts_back_rows_a_replace_import_removed(account, tmp_path):
    """With nested_lists replace the target removes rows the source lacks; undo adds them back."""
    state = account.state()
    person = next(
        p
        for p in state["parties"]
        if p["type"] == "person" and (p["phoneNumbers"] or p["emailAddresses"]) and p["tags"]
    )
    before = snapshot(state)
    change_log = tmp_path / "changes.jsonl"
    config = config_file(
        tmp_path,
        account.url,
        change_log_path=str(change_log),
        nested_lists={"parties": "replace"},
    )
    target(
        config,
        [
            (
                "parties",
                {
                    "id": person["id"],
                    "phoneNumbers": [{"type": "Mobile", "number": "+44 7700 900999"}],
                    "emailAddresses": [],
                    "tags": [],
                },
            )
        ],
    )
    line = writes_of(change_log)[0]
    assert any(item.get("_delete") for item in line["written"]["tags"])
    assert snapshot(account.state()) != before
    run, report = undo(config, change_log)
    assert report["totals"]["reverted"] == 1, run.stderr
    after = snapshot(account.state())
    assert after == before, diff_snapshots(before, after)


def test_undo_recreates_each_deleted_record_once_when_answers_are_lost(account, tmp_path):
    """Capsule applies the POST but the answer is a 503: the undo looks before sending again."""
    before = account.state()["entries"]
    notes = [e for e in before if e["type"] == "note"][:3]
    change_log = tmp_path / "changes.jsonl"
    config = config_file(tmp_path, account.url, change_log_path=str(change_log))
    target(
        config,
        [("entries", {"id": n["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"}) for n in notes],
    )
    account.set_faults(error_every=2, error_status=503, fault_after_write=True)
    run, report = undo(config, change_log)
    account.set_faults()
    assert report["totals"]["reverted"] == 3, run.stderr
    assert "checking whether Capsule holds it" in run.stderr  # the faults did hit the POSTs
    after = account.state()["entries"]
    assert len(after) == len(before)  # each note recreated once, none twice
    new_ids = recreated(change_log, report["run_id"])["entries"]
    assert {int(new) for new in new_ids} <= {e["id"] for e in after}


def test_undo_after_a_remap_puts_the_person_back_in_the_recreated_organisation(account, tmp_path):
    """One run moves a person from organisation A to B, then deletes A (Capsule clears the
    organisation of A's other people). The undo recreates A under a new id, puts the moved
    person back in it (the logged before-value names the old id) and links A's other people
    to it again."""
    state = account.state()
    orgs = [p for p in state["parties"] if p["type"] == "organisation"]
    org_a, org_b = orgs[0], orgs[1]
    people = [p for p in state["parties"] if p["type"] == "person"]
    moved, stayed = people[0], people[1]
    stub = {"id": org_a["id"], "name": org_a["name"]}
    for person in (moved, stayed):
        account.touch("parties", person["id"], organisation=stub)
    change_log = tmp_path / "changes.jsonl"
    config = config_file(tmp_path, account.url, change_log_path=str(change_log))
    target(
        config,
        [
            ("parties", {"id": moved["id"], "organisation": {"id": org_b["id"]}}),
            ("parties", {"id": org_a["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"}),
        ],
    )
    parties = {p["id"]: p for p in account.state()["parties"]}
    assert org_a["id"] not in parties and parties[stayed["id"]]["organisation"] is None

    run, report = undo(config, change_log)
    assert report["totals"] == {**report["totals"], "reverted": 2, "failed": 0}, run.stderr
    new_a = recreated(change_log, report["run_id"])["parties"]
    (new_id,) = [int(k) for k, v in new_a.items() if str(v) == str(org_a["id"])]
    parties = {p["id"]: p for p in account.state()["parties"]}
    assert parties[new_id]["name"] == org_a["name"]
    assert parties[moved["id"]]["organisation"]["id"] == new_id  # before-value remapped
    assert parties[stayed["id"]]["organisation"]["id"] == new_id  # re-linked
    assert "of its people linked to it again" in run.stderr
