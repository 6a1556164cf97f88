"""Backup, verify and restore through the real CLIs, between two sandbox accounts A and B."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import signal
import subprocess
import time

import pytest
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
    assert "Run the restore again" in first.stderr
    empty_b.set_faults()
    restore(config_b, folder, "--mode", "copy")
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
    folder = tmp_path / "backup"
    _write_backup(
        folder,
        {
            "users": [
                {"id": 901, "username": users[0]["username"], "name": "Known"},
                {"id": 902, "username": "nobody-here", "name": "Unknown"},
            ],
            "parties": [
                {"id": 5, "type": "organisation", "name": "Known Owner Ltd", "owner": {"id": 901}},
                {"id": 6, "type": "organisation", "name": "Lost Owner Ltd", "owner": {"id": 902}},
            ],
        },
    )
    rejects = tmp_path / "rejects.jsonl"
    config = config_file(tmp_path, empty_b.url, rejects_path=str(rejects))
    restore(config, folder, "--mode", "copy")
    lines = read_jsonl(rejects)
    assert [(x["stream"], x["record"]["username"]) for x in lines] == [("users", "nobody-here")]
    assert "matched, never created" in lines[0]["reason"]
    assert len(empty_b.state()["users"]) == len(users)  # none created
    owners = {p["name"]: p["owner"] for p in empty_b.state()["parties"]}
    assert owners["Known Owner Ltd"]["id"] == users[0]["id"]  # remapped 901 -> its username
    assert owners["Lost Owner Ltd"] is None or owners["Lost Owner Ltd"]["id"] != 902
