"""Backup, verify and restore through the real CLIs, between two sandbox accounts A and B."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import signal
import subprocess
import time

import pytest
import requests
from reversible_helpers import (
    BIN,
    TOKEN,
    backup,
    config_file,
    read_jsonl,
    restore,
    run,
    target,
    undo,
    verify,
)

from tap_capsule.sandbox import Sandbox

LIMIT_REASONS = (
    "email entries cannot be created",
    "task entries cannot be created",
    "Capsule sets PENDING itself",
)


@pytest.fixture(params=[30])
def account_a(request):
    with Sandbox(token=TOKEN, scale=request.param, seed=7) as sb:
        yield sb


@pytest.fixture
def empty_b():
    with Sandbox(token=TOKEN, scale=0, seed=11) as sb:
        yield sb


def test_backup_writes_every_stream_and_a_manifest_on_capsules_clock(account_a, tmp_path):
    account_a.set_clock("2031-05-06T07:08:09Z")  # Capsule's clock, far from this machine's
    config = config_file(tmp_path, account_a.url, backup_dir=str(tmp_path / "backup"))
    folder = backup(config)
    manifest = json.loads((folder / "manifest.json").read_text())
    state = account_a.state()
    assert manifest["account"]["name"] == "Capsule Sandbox"
    assert manifest["started_at"].startswith("2031-05-06T07:")
    assert manifest["tap_version"] == importlib.metadata.version("tap-capsule")
    # archived pipelines and their milestones too: old opportunities still point at them
    for stream in (
        "parties",
        "opportunities",
        "cases",
        "tasks",
        "party_tags",
        "pipelines",
        "milestones",
    ):
        assert manifest["streams"][stream]["records"] == len(state[stream]), stream
    # child streams (one request per parent) are in too
    for stream in ("opportunity_parties", "case_parties", "opportunity_tracks", "case_tracks"):
        assert manifest["streams"][stream]["records"] == len(state[stream]), stream
    assert manifest["streams"]["entries"]["records"] == len(state["entries"])
    with gzip.open(folder / "parties.jsonl.gz", "rt") as handle:
        ids = {json.loads(line)["id"] for line in handle}
    assert ids == {p["id"] for p in state["parties"]}
    assert not list(folder.glob("*.partial"))
    assert json.loads((folder / "schemas.json").read_text())["parties"]["key_properties"] == ["id"]

    again = run([str(BIN / "target-capsule-backup"), "--config", str(config)], "", check=False)
    assert again.returncode == 1
    assert "already holds a finished backup" in again.stderr
    assert "Traceback" not in again.stderr


def test_verify_finds_a_change_and_names_the_field(account_a, tmp_path):
    config = config_file(tmp_path, account_a.url, backup_dir=str(tmp_path / "backup"))
    folder = backup(config)
    result, report = verify(config, folder)
    assert result.returncode == 0 and report["differences"] == 0
    assert "0 difference(s)" in result.stderr
    party = account_a.state()["parties"][3]
    account_a.touch("parties", party["id"], about="Edited after the backup")
    account_a.delete_record("tasks", account_a.state()["tasks"][0]["id"])
    result, report = verify(config, folder)
    assert result.returncode == 1
    assert report["streams"]["parties"]["differing"] == 1
    assert report["streams"]["tasks"]["missing"] == 1
    detail = next(d for d in report["details"] if d["stream"] == "parties")
    assert detail["fields"]["about"][1] == "Edited after the backup"


def test_import_then_undo_verifies_with_zero_differences(account_a, tmp_path):
    config = config_file(
        tmp_path,
        account_a.url,
        backup_dir=str(tmp_path / "before"),
        change_log_path=str(tmp_path / "changes.jsonl"),
    )
    folder = backup(config)
    state = account_a.state()
    person = next(p for p in state["parties"] if p["type"] == "person")
    note = next(e for e in state["entries"] if e["type"] == "note")
    target(
        config,
        [
            (
                "parties",
                {"type": "organisation", "name": "Imported Org Ltd", "tags": [{"name": "New"}]},
            ),
            ("parties", {"id": person["id"], "jobTitle": "Imported", "about": "Imported"}),
            ("entries", {"type": "note", "content": "Imported", "party": {"id": person["id"]}}),
            ("entries", {"id": note["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"}),
        ],
    )
    assert verify(config, folder)[1]["differences"] > 0
    run_, report = undo(config, tmp_path / "changes.jsonl")
    assert report["totals"]["reverted"] == 4, run_.stderr
    id_map = tmp_path / f"changes.undo-{report['run_id']}.ids.json"
    _result, checked = verify(config, folder, "--id-map", str(id_map))
    assert checked["differences"] == 0, checked["details"]
    assert checked["streams"]["parties"]["found"] == len(state["parties"])


# A realistic account as well: 300 parties with their opportunities, cases, notes, tasks and links.
@pytest.mark.parametrize("account_a", [30, 300], indirect=True)
def test_backup_restored_into_an_empty_account(account_a, empty_b, tmp_path):
    folder = backup(config_file(tmp_path, account_a.url, backup_dir=str(tmp_path / "backup")))
    rejects = tmp_path / "rejects.jsonl"
    config_b = config_file(tmp_path, empty_b.url, name="b", rejects_path=str(rejects))
    first = restore(config_b, folder, "--mode", "copy")
    states = [m for m in first.json_lines() if m.get("type") == "STATE"]
    assert states and states[-1]["value"]["capsule_restore"]["id_map"]["parties"]
    id_map = folder / "restore-copy-sandbox.ids.json"
    saved = json.loads(id_map.read_text())
    assert saved.pop("_account") == "sandbox.capsulecrm.com"  # the map names its account
    assert saved == states[-1]["value"]["capsule_restore"]["id_map"]

    # Only records the API cannot create are rejected, each with its reason.
    reasons = [line["reason"] for line in read_jsonl(rejects)]
    assert reasons and all(any(r in reason for r in LIMIT_REASONS) for reason in reasons)

    _result, report = verify(config_b, folder, "--id-map", str(id_map), "--copy")
    assert report["differences"] == 0, report["details"]
    a, b = account_a.state(), empty_b.state()
    for stream in ("parties", "opportunities", "cases", "opportunity_parties", "case_tracks"):
        assert len(b[stream]) == len(a[stream]), stream
    notes = [e for e in a["entries"] if e["type"] == "note"]
    assert len(b["entries"]) == len(notes)

    empty_b.reset_requests()
    second = restore(config_b, folder, "--mode", "copy")
    assert empty_b.requests()["writes"] == 0
    assert "0 write request(s)" in second.stderr


def test_restore_after_lost_answers_creates_no_duplicates(account_a, empty_b, tmp_path):
    """A POST that Capsule applied but whose answer was lost is found, not sent again."""
    folder = backup(config_file(tmp_path, account_a.url, backup_dir=str(tmp_path / "backup")))
    config_b = config_file(tmp_path, empty_b.url, name="b")
    empty_b.set_faults(error_every=9, error_status=503, fault_after_write=True)
    first = restore(config_b, folder, "--mode", "copy")
    # Every write, PUTs included, is checked after its lost answer: nothing is left to a rerun.
    assert "Run the restore again" not in first.stderr
    assert "checking whether Capsule holds it" in first.stderr
    empty_b.set_faults()
    empty_b.reset_requests()
    restore(config_b, folder, "--mode", "copy")
    assert empty_b.requests()["writes"] == 0
    a, b = account_a.state(), empty_b.state()
    for stream in ("parties", "opportunities", "cases"):
        assert len(b[stream]) == len(a[stream]), stream
    id_map = folder / "restore-copy-sandbox.ids.json"
    _, report = verify(config_b, folder, "--id-map", str(id_map), "--copy")
    assert report["differences"] == 0, report["details"]


def test_killed_restore_resumes_and_a_second_run_writes_nothing(account_a, empty_b, tmp_path):
    folder = backup(config_file(tmp_path, account_a.url, backup_dir=str(tmp_path / "backup")))
    config_b = config_file(tmp_path, empty_b.url, name="b")
    empty_b.set_faults(slow_every=1, slow_seconds=0.02)  # time to kill it midway
    proc = subprocess.Popen(
        [str(BIN / "capsule"), "restore", "--config", str(config_b), str(folder), "--mode", "copy"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while empty_b.requests()["writes"] < 25 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    written = empty_b.state()
    assert 0 < len(written["parties"]) < len(account_a.state()["parties"])  # truly midway
    empty_b.set_faults()

    restore(config_b, folder, "--mode", "copy")
    a, b = account_a.state(), empty_b.state()
    for stream in ("parties", "opportunities", "cases", "tasks"):
        assert len(
            {json.dumps(r.get("name") or r.get("description") or r["id"]) for r in b[stream]}
        )
        assert len(b[stream]) == len(a[stream]) - (
            sum(1 for x in a[stream] if x.get("status") == "PENDING") if stream == "tasks" else 0
        ), stream
    id_map = folder / "restore-copy-sandbox.ids.json"
    _, report = verify(config_b, folder, "--id-map", str(id_map), "--copy")
    assert report["differences"] == 0, report["details"]

    empty_b.reset_requests()
    restore(config_b, folder, "--mode", "copy")
    assert empty_b.requests()["writes"] == 0


def test_ten_deleted_parties_and_their_notes_restored_in_place(account_a, tmp_path):
    config = config_file(
        tmp_path,
        account_a.url,
        backup_dir=str(tmp_path / "backup"),
        rejects_path=str(tmp_path / "rejects.jsonl"),
    )
    folder = backup(config)
    state = account_a.state()
    with_notes = {
        e["party"]["id"] for e in state["entries"] if e["type"] == "note" and e.get("party")
    }
    doomed = [p["id"] for p in state["parties"] if p["id"] in with_notes][:10]
    assert len(doomed) == 10
    notes = [
        e
        for e in state["entries"]
        if e["type"] == "note" and (e.get("party") or {}).get("id") in doomed
    ]
    target(
        config, [("parties", {"id": i, "_sdc_deleted_at": "2026-01-01T00:00:00Z"}) for i in doomed]
    )
    remaining = {e["id"] for e in account_a.state()["entries"]}
    assert not any(n["id"] in remaining for n in notes)  # Capsule deleted the notes with them

    account_a.reset_requests()
    result = restore(config, folder, "--mode", "same")
    id_map = folder / "restore-same-sandbox.ids.json"
    mapped = json.loads(id_map.read_text())
    recreated = {old for old, new in mapped["parties"].items() if str(new) != old}
    assert recreated == {str(i) for i in doomed}
    assert "parties" in result.stderr
    after = account_a.state()
    assert sum(e["type"] == "note" for e in after["entries"]) == sum(
        e["type"] == "note" for e in state["entries"]
    )
    assert len(after["parties"]) == len(state["parties"])
    # Entries that still exist (emails and task entries included) are "existing", not rejected:
    # only ones Capsule deleted with their party, which the API cannot create, are rejections.
    rejected = {line["record"]["id"] for line in read_jsonl(tmp_path / "rejects.jsonl")}
    assert not rejected & remaining
    row = next(x for x in result.stderr.splitlines() if x.startswith("entries "))
    existing_column = result.stderr.splitlines()[
        next(i for i, x in enumerate(result.stderr.splitlines()) if x.startswith("stream "))
    ].split()
    figures = dict(zip(existing_column[1:], row.split()[1:], strict=True))
    assert int(figures["existing"]) == len(remaining)
    _, report = verify(config, folder, "--id-map", str(id_map))
    assert report["differences"] == 0, report["details"]
    account_a.reset_requests()
    restore(config, folder, "--mode", "same")
    assert account_a.requests()["writes"] == 0


def _write_backup(folder, streams: dict[str, list[dict]]) -> None:
    folder.mkdir()
    for stream, records in streams.items():
        with gzip.open(folder / f"{stream}.jsonl.gz", "wt") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
    manifest = {
        "format": 1,
        "streams": {s: {"file": f"{s}.jsonl.gz", "records": len(r)} for s, r in streams.items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_users_are_matched_by_username_never_created(empty_b, tmp_path):
    users = empty_b.state()["users"]
    token_user = users[0]  # the sandbox's token belongs to its first user
    folder = tmp_path / "backup"
    _write_backup(
        folder,
        {
            "users": [
                {"id": 901, "username": users[1]["username"], "name": "Known"},
                {"id": 902, "username": "nobody-here", "name": "Unknown"},
                {"id": 903, "username": "old.name", "name": "Renamed"},
            ],
            "parties": [
                {"id": 5, "type": "organisation", "name": "Known Owner Ltd", "owner": {"id": 901}},
                {"id": 6, "type": "organisation", "name": "Lost Owner Ltd", "owner": {"id": 902}},
                {"id": 7, "type": "organisation", "name": "Mapped Owner Ltd", "owner": {"id": 903}},
            ],
        },
    )
    rejects = tmp_path / "rejects.jsonl"
    owner_map = {"old.name": users[2]["username"]}
    config = config_file(tmp_path, empty_b.url, rejects_path=str(rejects), owner_map=owner_map)
    result = restore(config, folder, "--mode", "copy")
    assert not rejects.exists() or not read_jsonl(rejects)
    assert len(empty_b.state()["users"]) == len(users)  # none created
    owners = {p["name"]: p["owner"]["id"] for p in empty_b.state()["parties"]}
    assert owners["Known Owner Ltd"] == users[1]["id"]  # remapped 901 -> its username
    assert owners["Lost Owner Ltd"] == token_user["id"]  # explicitly the token's user
    assert owners["Mapped Owner Ltd"] == users[2]["id"]  # owner_map
    assert "reassigned" in result.stderr and "{" not in result.stderr.split("Id map")[0]

    # default_owner (a username) takes them instead, from the config or the flag
    folder2 = tmp_path / "backup2"
    _write_backup(
        folder2,
        {
            "users": [{"id": 902, "username": "nobody-here", "name": "Unknown"}],
            "parties": [
                {"id": 8, "type": "organisation", "name": "Flag Ltd", "owner": {"id": 902}}
            ],
        },
    )
    restore(config, folder2, "--mode", "copy", "--default-owner", users[3]["username"])
    owners = {p["name"]: p["owner"]["id"] for p in empty_b.state()["parties"]}
    assert owners["Flag Ltd"] == users[3]["id"]
    folder3 = tmp_path / "backup3"
    _write_backup(
        folder3,
        {
            "users": [{"id": 904, "username": "x.old", "name": "Flagged"}],
            "parties": [{"id": 9, "type": "organisation", "name": "Map Ltd", "owner": {"id": 904}}],
        },
    )
    restore(config, folder3, "--mode", "copy", "--owner-map", f"x.old={users[1]['username']}")
    owners = {p["name"]: p["owner"]["id"] for p in empty_b.state()["parties"]}
    assert owners["Map Ltd"] == users[1]["id"]
    wrong = restore(config, folder3, "--mode", "copy", "--owner-map", "nonsense", check=False)
    assert wrong.returncode == 1 and "--owner-map takes OLD=NEW" in wrong.stderr
    bad = restore(config, folder2, "--mode", "copy", "--default-owner", "ghost", check=False)
    assert bad.returncode == 1 and "default_owner 'ghost' is not a user" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_copy_into_an_account_with_other_users_restores_every_case_and_task(account_a, tmp_path):
    """One user of A has no counterpart in B: their cases go to B's token user, none rejected."""
    folder = backup(config_file(tmp_path, account_a.url, backup_dir=str(tmp_path / "backup")))
    a = account_a.state()
    with Sandbox(token=TOKEN, scale=0, seed=11) as b:
        gone = b.state()["users"][1]
        b.touch("users", gone["id"], username="someone.else")  # A's user has no counterpart
        orphans = [c for c in a["cases"] if (c.get("owner") or {}).get("id") == gone["id"]]
        assert orphans, "the seed gives that user cases"
        rejects = tmp_path / "rejects.jsonl"
        config_b = config_file(tmp_path, b.url, name="b", rejects_path=str(rejects))
        result = restore(config_b, folder, "--mode", "copy")
        reasons = [line["reason"] for line in read_jsonl(rejects)] if rejects.exists() else []
        assert all(any(r in reason for r in LIMIT_REASONS) for reason in reasons), reasons
        after = b.state()
        assert len(after["cases"]) == len(a["cases"])
        token_user = after["users"][0]["id"]
        by_name = {c["name"]: c for c in after["cases"]}
        assert all(by_name[c["name"]]["owner"]["id"] == token_user for c in orphans)
        # exactly the backup's tasks: none doubled by the tracks a restore applies
        restorable = [x for x in a["tasks"] if x["status"] != "PENDING"]
        assert len(after["tasks"]) == len(restorable)
        completed = sorted(x["completedAt"] for x in restorable if x["completedAt"])
        assert completed  # completed tasks keep their date, not the restore's
        assert sorted(x["completedAt"] for x in after["tasks"] if x["completedAt"]) == completed
        assert "%7B" not in json.dumps(b.requests()["by_path"])  # no unfilled URL template
        assert "reassigned" in result.stderr
        id_map = folder / "restore-copy-sandbox.ids.json"
        run_, report = verify(config_b, folder, "--id-map", str(id_map), "--copy")
        assert report["differences"] == 0, report["details"]
        assert report["limits"]["owners_reassigned"] >= len(orphans)
        assert "owners reassigned" in run_.stderr


def test_a_track_an_automation_applied_is_taken_not_applied_twice(empty_b, tmp_path):
    """A board or milestone automation applied the track when the record was recreated: the
    restore reads the record's tracks first, takes that one and pairs its tasks."""
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    api = empty_b.url
    org = session.post(
        api + "/parties", json={"party": {"type": "organisation", "name": "Auto Ltd"}}
    ).json()["party"]
    deal = session.post(
        api + "/opportunities",
        json={
            "opportunity": {
                "name": "Auto deal",
                "party": {"id": org["id"]},
                "milestone": {"id": 200},
            }
        },
    ).json()["opportunity"]
    # what the automation did when the deal was created
    applied = session.post(
        api + "/tracks?embed=task",
        json={"track": {"definition": {"id": 2}, "opportunity": {"id": deal["id"]}}},
    ).json()["track"]
    folder = tmp_path / "backup"
    steps = [
        {"id": 7001, "description": "Proposal follow-up: step 1"},
        {"id": 7002, "description": "Proposal follow-up: step 2"},
    ]
    _write_backup(
        folder,
        {
            "track_definitions": [
                {"id": 90, "description": "Proposal follow-up", "captureRule": "OPPORTUNITY"}
            ],
            "opportunity_tracks": [
                {
                    "id": 9001,
                    "opportunityId": 555,
                    "description": "Proposal follow-up",
                    "trackDateOn": applied["trackDateOn"],
                    "tasks": steps,
                }
            ],
            "tasks": [
                {
                    **step,
                    "opportunity": {"id": 555},
                    "dueOn": applied["trackDateOn"],
                    "status": "OPEN",
                    "hasTrack": True,
                }
                for step in steps
            ],
        },
    )
    state = tmp_path / "state.json"
    mapped = {"opportunities": {"555": deal["id"]}}
    state.write_text(json.dumps({"capsule_restore": {"mode": "copy", "id_map": mapped}}))
    tasks_before = len(empty_b.state()["tasks"])
    empty_b.reset_requests()
    restore(config_file(tmp_path, api), folder, "--mode", "copy", "--state", str(state))
    assert "POST /tracks" not in empty_b.requests()["by_route"]
    assert len(empty_b.state()["opportunity_tracks"]) == 1
    assert len(empty_b.state()["tasks"]) == tasks_before  # paired, not created again
    ids = json.loads((folder / "restore-copy-sandbox.ids.json").read_text())
    assert ids["opportunity_tracks"] == {"9001": applied["id"]}
    assert sorted(ids["tasks"]) == ["7001", "7002"]
