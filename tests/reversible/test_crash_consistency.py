"""Crash consistency: what the change log, undo, restore and backup record is true after a lost
answer, a `kill -9` at any write, a hand-edited file or another account's configuration.

Every test compares with an oracle that does not come from our code: a clean run on an identical
sandbox (same seed), or the account as it was before. The sandbox applies a write and loses its
answer (`lost_answer_every`, answered 502), or holds the answer until the test has killed the client
(`hold_write`).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
import time
import typing as t

import pytest
from reversible_helpers import (
    BIN,
    TOKEN,
    config_file,
    creates,
    diff_snapshots,
    everything,
    restore,
    run,
    singer,
    target,
    undo,
    writes_of,
)

from tap_capsule import catalogue as cat
from tap_capsule.sandbox import Sandbox
from target_capsule import changelog

if t.TYPE_CHECKING:
    from pathlib import Path

SCALE, SEED = 6, 7


@pytest.fixture(autouse=True)
def private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lock files of this test's own (the subprocesses inherit it)."""
    monkeypatch.setenv("CAPSULE_LOCK_DIR", str(tmp_path / "locks"))


def account() -> Sandbox:
    return Sandbox(token=TOKEN, scale=SCALE, seed=SEED)


def clean_run(records_of: t.Callable[[dict], list[tuple[str, dict]]], tmp_path: Path) -> dict:
    """The account after the same input, without faults: the oracle."""
    with account() as sb:
        config = config_file(tmp_path, sb.url, name="clean")
        target(config, records_of(sb.state()))
        return everything(sb.state())


def test_lost_answers_on_every_create_leave_no_duplicate_and_nothing_missing(tmp_path):
    expected = clean_run(creates, tmp_path)
    with account() as sb:
        log = tmp_path / "changes.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log), max_retries=1)
        records = creates(sb.state())
        sb.set_faults(lost_answer_every=1)  # every write applied, every answer lost
        result = target(config, records)
        sb.set_faults()
        got = everything(sb.state())
        assert got == expected, diff_snapshots(expected, got)
        assert "checking whether Capsule holds it" in result.stderr
        # Each create logged once, applied, with the id Capsule gave it.
        writes = writes_of(log)
        assert len(writes) == len(records)
        assert {w["status"] for w in writes} == {"applied"}
        for w in writes:
            if not cat.get(w["stream"]).is_link:
                assert isinstance(w["id"], int), w


def test_every_delete_whose_answer_is_lost_is_logged_and_undone(tmp_path):
    """6 deletes, every 2nd answer lost: all 6 in the change log, and undo brings all 6 back."""
    with Sandbox(token=TOKEN, scale=12, seed=SEED) as sb:
        before = sb.state()
        people = [p for p in before["parties"] if p["type"] == "person"][:6]
        assert len(people) == 6
        log = tmp_path / "changes.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log))
        sb.set_faults(lost_answer_every=2)
        result = target(
            config,
            [
                ("parties", {"id": p["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"})
                for p in people
            ],
        )
        sb.set_faults()
        assert "6 applied" in result.stderr, result.stderr[-2000:]
        writes = writes_of(log)
        assert [(w["operation"], w["status"]) for w in writes] == [("DELETE", "applied")] * 6
        assert all(w["record"]["id"] == w["id"] for w in writes)
        _run, report = undo(config, log)
        assert report["totals"]["reverted"] == 6
        names = sorted(
            (p["firstName"], p["lastName"]) for p in sb.state()["parties"] if p["type"] == "person"
        )
        assert names == sorted(
            (p["firstName"], p["lastName"]) for p in before["parties"] if p["type"] == "person"
        )


def deletes(state: dict) -> list[tuple[str, dict]]:
    """Delete one record of each content stream (children first, parents last)."""
    gone = "2026-01-01T00:00:00Z"
    note = next(e for e in state["entries"] if e["type"] == "note")
    task = state["tasks"][0]
    link = state["opportunity_parties"][0]
    return [
        ("entries", {"id": note["id"], "_sdc_deleted_at": gone}),
        ("tasks", {"id": task["id"], "_sdc_deleted_at": gone}),
        (
            "opportunity_parties",
            {**{k: link[k] for k in ("opportunityId", "partyId")}, "_sdc_deleted_at": gone},
        ),
        ("lost_reasons", {"id": state["lost_reasons"][0]["id"], "_sdc_deleted_at": gone}),
        ("categories", {"id": state["categories"][0]["id"], "_sdc_deleted_at": gone}),
    ]


def test_undo_with_every_answer_lost_recreates_each_record_once(tmp_path):
    with account() as sb:
        before = everything(sb.state())
        log = tmp_path / "changes.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log), max_retries=1)
        target(config, deletes(sb.state()))
        sb.set_faults(lost_answer_every=1)
        run_, report = undo(config, log)
        sb.set_faults()
        assert report["totals"]["reverted"] == 5, run_.stderr[-3000:]
        after = everything(sb.state(), recreated_ids(tmp_path))
        assert after == before, diff_snapshots(before, after)


# --- kill -9 at every write ---------------------------------------------------------------------


def crash_input(state: dict) -> list[tuple[str, dict]]:
    person = next(p for p in state["parties"] if p["type"] == "person")
    return [
        ("parties", {"type": "organisation", "name": "Crash One Ltd"}),
        ("parties", {"id": person["id"], "about": "Written before the crash"}),
        (
            "parties",
            {
                "type": "person",
                "firstName": "Kim",
                "lastName": "Kill",
                "emailAddresses": [{"address": "kim@kill.example"}],
            },
        ),
        ("tasks", {"description": "Crash task", "dueOn": "2026-05-06"}),
        ("tasks", {"id": state["tasks"][1]["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"}),
    ]


def start_target(config: Path, text: str) -> subprocess.Popen:
    with (config.parent / "killed.log").open("a") as log:  # the child keeps its own copy
        proc = subprocess.Popen(
            [str(BIN / "target-capsule"), "--config", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
    assert proc.stdin is not None
    proc.stdin.write(text)
    proc.stdin.close()
    return proc


def wait_held(sb: Sandbox, proc: subprocess.Popen | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while sb.held() == 0:
        assert time.monotonic() < deadline, "the write was never held"
        assert proc is None or proc.poll() is None, "the client ended before the held write"
        time.sleep(0.02)


@pytest.mark.parametrize("at_write", [1, 2, 3, 4, 5])
def test_a_kill_at_any_write_then_a_rerun_ends_like_a_clean_run_and_undo_reverts_all(
    at_write, tmp_path
):
    expected = clean_run(crash_input, tmp_path)
    with account() as sb:
        original = everything(sb.state())
        log = tmp_path / "changes.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log))
        text = singer(crash_input(sb.state()))
        sb.set_faults(hold_write=at_write)  # applied, its answer held until the kill
        proc = start_target(config, text)
        wait_held(sb, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        sb.release()
        sb.set_faults()
        # The killed run left its write pending; nothing after it was sent.
        killed = changelog.read(log)[1]
        assert killed[-1]["status"] == "pending"
        target(config, text)  # the rerun settles the pending line, then finishes the input
        got = everything(sb.state())
        assert got == expected, diff_snapshots(expected, got)
        runs = changelog.load(log)
        assert all(w["status"] != "pending" for ws in runs.values() for w in ws)
        # Every write that reached Capsule is in the log: undoing both runs gives the account back.
        for run_id in reversed(list(runs)):
            undo(
                config,
                log,
                "--run-id",
                run_id,
                "--undo-log",
                str(tmp_path / f"undo-{run_id}.jsonl"),
            )
        undone = everything(sb.state(), recreated_ids(tmp_path))
        assert undone == original, diff_snapshots(original, undone)


def recreated_ids(folder: Path) -> dict:
    out: dict[str, dict] = {}
    for path in folder.glob("changes.undo-*.ids.json"):
        for stream, pairs in json.loads(path.read_text()).items():
            if isinstance(pairs, dict):
                out.setdefault(stream, {}).update({new: old for old, new in pairs.items()})
    return out


def test_a_kill_during_an_undo_recreate_then_undo_again_recreates_once(tmp_path):
    with account() as sb:
        before = sb.state()
        person = next(p for p in before["parties"] if p["type"] == "person" and p["emailAddresses"])
        log = tmp_path / "changes.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log))
        target(
            config, [("parties", {"id": person["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"})]
        )
        sb.set_faults(hold_write=1)
        proc = subprocess.Popen(
            [str(BIN / "capsule"), "undo", "--config", str(config), str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_held(sb)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        sb.release()
        sb.set_faults()
        undo(config, log)
        name = (person["firstName"], person["lastName"])
        same = [p for p in sb.state()["parties"] if (p.get("firstName"), p.get("lastName")) == name]
        assert len(same) == 1


# --- bound to one account -----------------------------------------------------------------------


def test_undo_refuses_a_change_log_of_another_account_in_one_line(tmp_path):
    with account() as a, account() as b:
        b.set_site(url="https://other.capsulecrm.com", subdomain="other", name="Other Ltd")
        log = tmp_path / "changes.jsonl"
        target(
            config_file(tmp_path, a.url, name="a", change_log_path=str(log)), creates(a.state())[:2]
        )
        b.reset_requests()
        result, _ = undo(config_file(tmp_path, b.url, name="b"), log, check=False)
        assert result.returncode == 1
        [line] = [x for x in result.stderr.splitlines() if x.strip()]
        assert "belongs to the Capsule account sandbox.capsulecrm.com" in line
        assert "other.capsulecrm.com" in line
        assert b.requests()["writes"] == 0


def forged(log: Path, **changes: t.Any) -> None:
    """Rewrite the first write of the log (both its lines) with `changes`."""
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    for line in lines:
        if line["seq"] == 1:
            line.update(
                {k: v for k, v in changes.items() if line["status"] == "pending" or k == "id"}
            )
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_undo_refuses_malformed_lines_before_touching_anything(tmp_path):
    with account() as sb:
        old = sb.state()["parties"][0]
        log = tmp_path / "changes.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log))
        target(
            config,
            [("parties", {"type": "organisation", "name": f"Forged {n} Ltd"}) for n in range(2)],
        )
        forged(log, id=old["id"], written={})  # "the run created a record from 2024"
        sb.reset_requests()
        result, _ = undo(config, log, check=False)
        assert result.returncode == 1
        assert (
            "an INSERT that wrote nothing" in result.stderr
            and "nothing was changed" in result.stderr
        )
        assert sb.requests()["writes"] == 0
        assert old["id"] in {p["id"] for p in sb.state()["parties"]}


def test_undo_never_deletes_a_record_created_before_the_run(tmp_path):
    with account() as sb:
        old = sb.state()["parties"][0]  # seeded, created long before the run
        log = tmp_path / "changes.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log))
        target(config, [("parties", {"type": "organisation", "name": "Real New Ltd"})])
        forged(log, id=old["id"], written={"name": old.get("name") or old.get("lastName")})
        _run, report = undo(config, log)
        [change] = report["changes"]
        assert change["outcome"] == "skipped" and "before the run" in change["reason"]
        assert old["id"] in {p["id"] for p in sb.state()["parties"]}


def test_restore_same_mode_refuses_a_backup_of_another_account(tmp_path):
    with account() as a, account() as b:
        b.set_site(url="https://other.capsulecrm.com", subdomain="other", name="Other Ltd")
        folder = tmp_path / "backup"
        run_backup(config_file(tmp_path, a.url, name="a", backup_dir=str(folder)))
        b.reset_requests()
        result = restore(
            config_file(tmp_path, b.url, name="b"), folder, "--mode", "same", check=False
        )
        assert result.returncode == 1
        assert "belongs to the Capsule account sandbox.capsulecrm.com" in result.stderr
        assert b.requests()["writes"] == 0


def run_backup(config: Path, kill_after_lines: int | None = None) -> subprocess.CompletedProcess:
    """tap-capsule | target-capsule-backup; with `kill_after_lines`, the tap dies midway."""
    settings = json.loads(config.read_text())
    config.write_text(json.dumps({**settings, "child_streams": True}))
    tap = subprocess.Popen(
        [str(BIN / "tap-capsule"), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    backup = subprocess.Popen(
        [str(BIN / "target-capsule-backup"), "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tap.stdout is not None and backup.stdin is not None
    for number, line in enumerate(tap.stdout, 1):
        if kill_after_lines is not None and number > kill_after_lines:
            tap.kill()
            backup.stdin.write(line.decode()[: len(line) // 2])  # cut mid-line, as a kill does
            break
        backup.stdin.write(line.decode())
    backup.stdin.close()
    assert backup.stdout is not None and backup.stderr is not None
    out, err = backup.stdout.read(), backup.stderr.read()
    backup.stdout.close()
    backup.stderr.close()
    backup.wait(120)
    tap.stdout.close()
    tap.wait(30)
    return subprocess.CompletedProcess(backup.args, backup.returncode, out, err)


def test_restore_from_a_fresh_copy_of_the_backup_creates_nothing_twice(tmp_path):
    with account() as a, Sandbox(token=TOKEN, scale=0, seed=11) as b:
        folder = tmp_path / "backup"
        run_backup(config_file(tmp_path, a.url, name="a", backup_dir=str(folder)))
        pristine = tmp_path / "pristine"
        subprocess.run(["cp", "-a", str(folder), str(pristine)], check=True)
        config_b = config_file(
            tmp_path, b.url, name="b", rejects_path=str(tmp_path / "rejects.jsonl")
        )
        restore(config_b, folder, "--mode", "copy")
        first = {
            s: len(b.state().get(s) or [])
            for s in ("parties", "opportunities", "cases", "tasks", "entries", "opportunity_tracks")
        }
        restore(config_b, pristine, "--mode", "copy")  # no id map: a fresh copy
        second = {s: len(b.state().get(s) or []) for s in first}
        assert second == first


# --- a backup is complete or says it isn't ------------------------------------------------------


def test_a_backup_whose_tap_is_killed_has_no_manifest_and_fails(tmp_path):
    with account() as sb:
        folder = tmp_path / "backup"
        result = run_backup(
            config_file(tmp_path, sb.url, backup_dir=str(folder)), kill_after_lines=40
        )
        assert result.returncode == 1
        assert "unfinished" in result.stderr
        assert not (folder / "manifest.json").exists()
        check = run(
            [
                str(BIN / "capsule"),
                "verify",
                "--config",
                str(tmp_path / "config.json"),
                str(folder),
            ],
            check=False,
        )
        assert check.returncode == 1 and "unfinished backup" in check.stderr


def test_a_finished_backup_has_a_manifest_naming_its_account(tmp_path):
    with account() as sb:
        folder = tmp_path / "backup"
        result = run_backup(config_file(tmp_path, sb.url, backup_dir=str(folder)))
        assert result.returncode == 0, result.stderr
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["account_id"] == "sandbox.capsulecrm.com"


def test_corrupt_or_oversized_backup_files_are_one_line_naming_the_file_or_record(tmp_path):
    with account() as a, Sandbox(token=TOKEN, scale=0, seed=11) as b:
        folder = tmp_path / "backup"
        run_backup(config_file(tmp_path, a.url, name="a", backup_dir=str(folder)))
        config_b = config_file(
            tmp_path, b.url, name="b", rejects_path=str(tmp_path / "rejects.jsonl")
        )
        tasks = folder / "tasks.jsonl.gz"
        data = tasks.read_bytes()
        tasks.write_bytes(data[: len(data) // 2])  # truncated
        result = restore(config_b, folder, "--mode", "copy", check=False)
        assert result.returncode == 1
        [line] = [x for x in result.stderr.splitlines() if "error" in x]
        assert "tasks.jsonl.gz is corrupt or truncated" in line
        assert "Traceback" not in result.stderr
        # One huge note: refused by stream and id, never loaded whole, never sent.
        tasks.write_bytes(data)
        entries = folder / "entries.jsonl.gz"
        with gzip.open(entries, "at", encoding="utf-8") as handle:
            handle.write(
                '{"id": 987654, "type": "note", "content": "' + "x" * (6 * 1024 * 1024) + '"}\n'
            )
        b.reset_requests()
        result = restore(config_b, folder, "--mode", "copy", check=False)
        rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
        big = [r for r in rejects if r["record"].get("id") in ("987654", 987654)]
        assert big and "longer than the backup's limit" in big[0]["reason"]
        assert big[0]["stream"] == "entries"
        bodies = b.requests()["by_route"]
        assert bodies  # the restore ran, and no request carried the huge note:
        assert not any("x" * 1000 in json.dumps(e) for e in b.state()["entries"])


# --- one writer per account ---------------------------------------------------------------------


def test_a_second_writer_on_the_same_account_is_refused_naming_the_first(tmp_path):
    with account() as sb:
        config = config_file(tmp_path, sb.url)
        sb.set_faults(hold_write=1)
        first = start_target(
            config, singer([("parties", {"type": "organisation", "name": "First Writer Ltd"})])
        )
        wait_held(sb, first)
        second = target(
            config, [("parties", {"type": "organisation", "name": "Second Ltd"})], check=False
        )
        sb.release()
        sb.set_faults()
        first.wait(60)
        assert second.returncode == 1
        last = second.stderr.strip().splitlines()[-1]
        assert "another run is writing to the account" in last
        assert f"process {first.pid}" in last
        assert "Second Ltd" not in {p.get("name") for p in sb.state()["parties"]}


# --- private files ------------------------------------------------------------------------------


def test_files_with_personal_data_are_private_whatever_the_umask(tmp_path):
    with account() as sb:
        out = tmp_path / "out" / "deeper"
        log, rejects = out / "changes.jsonl", out / "rejects.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log), rejects_path=str(rejects))
        old = os.umask(0)
        try:
            target(
                config,
                [
                    (
                        "parties",
                        {
                            "id": sb.state()["parties"][0]["id"],
                            "_sdc_deleted_at": "2026-01-01T00:00:00Z",
                        },
                    ),
                    ("parties", {"type": "person"}),  # rejected: a person needs a name
                ],
            )
            undo(config, log)
            folder = tmp_path / "bk" / "up"
            run_backup(config_file(tmp_path, sb.url, name="b", backup_dir=str(folder)))
        finally:
            os.umask(old)
        files = [log, rejects, *out.glob("changes.undo*"), *folder.iterdir()]
        assert len(files) > 6
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for path in (out, out.parent, folder, folder.parent):
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path


def test_change_log_path_problems_stop_the_run_before_any_request(tmp_path):
    with account() as sb:
        same = tmp_path / "same.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(same), rejects_path=str(same))
        sb.reset_requests()
        result = target(
            config, [("parties", {"type": "organisation", "name": "Never Ltd"})], check=False
        )
        assert result.returncode == 1
        assert "rejects_path and change_log_path both name" in result.stderr.strip().splitlines()[
            -1
        ] or ("change_log_path and rejects_path both name" in result.stderr)
        blocked = tmp_path / "file-not-folder"
        blocked.write_text("")
        config = config_file(tmp_path, sb.url, change_log_path=str(blocked / "changes.jsonl"))
        result = target(
            config, [("parties", {"type": "organisation", "name": "Never Ltd"})], check=False
        )
        assert result.returncode == 1
        assert "cannot write the change log" in result.stderr
        assert "Traceback" not in result.stderr
        assert sb.requests()["total"] == 0


def test_verify_reports_records_the_backup_lacks(tmp_path):
    with account() as sb:
        folder = tmp_path / "backup"
        config = config_file(tmp_path, sb.url, backup_dir=str(folder))
        assert run_backup(config).returncode == 0
        clean = run([str(BIN / "capsule"), "verify", "--config", str(config), str(folder)])
        assert json.loads(clean.stdout.splitlines()[-1])["differences"] == 0
        target(config, [("parties", {"type": "organisation", "name": "After The Backup Ltd"})])
        late = run(
            [str(BIN / "capsule"), "verify", "--config", str(config), str(folder)], check=False
        )
        assert late.returncode == 1
        report = json.loads(late.stdout.splitlines()[-1])
        assert report["streams"]["parties"]["not_in_backup"] == 1
        assert any(d.get("not_in_backup") for d in report["details"])


def test_a_kill_during_a_track_post_then_a_rerun_adds_no_second_track(tmp_path):
    """The restore is killed while Capsule has applied its first track POST (and made the track's
    tasks): the rerun finds that track in its opportunity's list instead of adding another."""
    with account() as a:
        folder = tmp_path / "backup"
        run_backup(config_file(tmp_path, a.url, name="a", backup_dir=str(folder)))
        clean = tmp_path / "clean"
        subprocess.run(["cp", "-a", str(folder), str(clean)], check=True)
        with Sandbox(token=TOKEN, scale=0, seed=11) as oracle:
            restore(config_file(tmp_path, oracle.url, name="o"), clean, "--mode", "copy")
            routes = oracle.requests()["by_route"]
            expected = {s: len(oracle.state()[s]) for s in ("opportunity_tracks", "tasks")}
        later = ("POST /tracks", "POST /entries", "POST /tasks", "PUT /tasks/{id}")
        before = sum(n for r, n in routes.items() if r.split()[0] != "GET" and r not in later)
        with Sandbox(token=TOKEN, scale=0, seed=11) as b:
            config_b = config_file(tmp_path, b.url, name="b")
            b.set_faults(hold_write=before + 1)  # the first track POST
            proc = subprocess.Popen(
                [
                    str(BIN / "capsule"),
                    "restore",
                    "--config",
                    str(config_b),
                    str(folder),
                    "--mode",
                    "copy",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_held(b)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            b.release()
            b.set_faults()
            assert len(b.state()["opportunity_tracks"]) == 1  # applied, answer never seen
            restore(config_b, folder, "--mode", "copy")
            got = {s: len(b.state()[s]) for s in expected}
            assert got == expected


def test_two_runs_on_the_same_new_people_at_once_never_put_an_email_on_two_people(tmp_path):
    people = [
        (
            "parties",
            {
                "type": "person",
                "firstName": "Twin",
                "lastName": f"Run{n}",
                "emailAddresses": [{"address": f"twin{n}@race.example"}],
            },
        )
        for n in range(30)
    ]
    with account() as sb:
        sb.set_faults(slow_every=1, slow_seconds=0.01)  # long enough for the runs to overlap
        config = config_file(tmp_path, sb.url)
        first = start_target(config, singer(people))
        second = start_target(config, singer(people))
        assert {first.wait(120), second.wait(120)} <= {0, 1}
        sb.set_faults()
        owners: dict[str, int] = {}
        for party in sb.state()["parties"]:
            for email in party.get("emailAddresses") or ():
                owners[email["address"]] = owners.get(email["address"], 0) + 1
        assert all(owners[f"twin{n}@race.example"] == 1 for n in range(30)), owners
        log = (tmp_path / "killed.log").read_text()
        assert first.returncode == second.returncode == 0 or "another run is writing" in log


def test_a_delete_throttled_then_found_gone_is_not_counted_as_this_runs(tmp_path):
    """A 429 on the DELETE, then a 404: someone else deleted the record, the run changed nothing.
    (Counting requests took the retry after the 429 for a retry after a lost answer.)"""
    with account() as sb:
        person = next(p for p in sb.state()["parties"] if p["type"] == "person")
        sb.delete_record("parties", person["id"])  # a user deletes it in Capsule's UI
        log = tmp_path / "changes.jsonl"
        config = config_file(tmp_path, sb.url, change_log_path=str(log))
        sb.set_faults(throttle_write=1, throttle_reset_seconds=0)
        result = target(
            config, [("parties", {"id": person["id"], "_sdc_deleted_at": "2026-01-01T00:00:00Z"})]
        )
        sb.set_faults()
        writes = writes_of(log)
        assert [(w["operation"], w["status"]) for w in writes] == [("DELETE", "failed")]
        assert "applied" not in {w["status"] for w in writes}, result.stderr[-2000:]
        _run, report = undo(config, log)
        assert report["totals"]["reverted"] == 0  # nothing of this run's to bring back
        assert person["id"] not in {p["id"] for p in sb.state()["parties"]}


def test_a_restore_writes_its_changes_ahead_and_undo_reverts_it(tmp_path):
    """With `change_log_path`, a restore logs every write ahead (creates, PUTs, links, a track's
    extra tasks), as the target does: `capsule undo` on that log gives the account back."""
    with account() as a:
        folder = tmp_path / "backup"
        run_backup(config_file(tmp_path, a.url, name="a", backup_dir=str(folder)))
    with Sandbox(token=TOKEN, scale=0, seed=11) as b:
        before = everything(b.state())
        log = tmp_path / "restore.jsonl"
        config = config_file(tmp_path, b.url, name="b", change_log_path=str(log))
        result = restore(config, folder, "--mode", "copy")
        writes = writes_of(log)
        assert writes and {w["status"] for w in writes} == {"applied"}
        posted = sum(n for r, n in b.requests()["by_route"].items() if r.startswith("POST"))
        kinds = {(w["stream"], w["operation"]) for w in writes}
        assert ("parties", "INSERT") in kinds and ("opportunity_parties", "INSERT") in kinds
        assert sum(w["operation"] == "INSERT" for w in writes) <= posted
        assert "Change log:" in result.stderr
        _run, report = undo(config, log)
        assert report["totals"]["failed"] == 0, report
        after = everything(b.state())
        assert after == before, diff_snapshots(before, after)


def test_a_guarded_run_holds_the_accounts_lock_while_it_plans(tmp_path):
    """With a guardrail the input is planned before any write: the lock is taken before the
    plan, so no other writer changes the account between the plan and the writes."""
    with Sandbox(token=TOKEN, scale=12, seed=SEED) as sb:
        people = [p for p in sb.state()["parties"] if p["type"] == "person"][:25]
        # The plan crosses the share (nothing is written): only the plan's duration matters.
        guarded = config_file(tmp_path, sb.url, name="guarded", max_changed_share=0.01)
        sb.set_faults(slow_every=1, slow_seconds=1.0)  # a plan that takes a few seconds
        first = start_target(
            guarded,
            singer([("parties", {"id": p["id"], "about": "Planned first"}) for p in people]),
        )
        deadline = time.monotonic() + 60
        while sb.requests()["total"] < 2:  # GET /site, then the plan's first read
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        second = target(
            config_file(tmp_path, sb.url, name="other"),
            [("parties", {"type": "organisation", "name": "Between Plan And Write Ltd"})],
            check=False,
        )
        assert first.wait(120) == 1  # the guardrail stopped it
        sb.set_faults()
        assert second.returncode == 1, second.stderr[-2000:]
        assert "another run is writing to the account" in second.stderr
        assert "Between Plan And Write Ltd" not in {p.get("name") for p in sb.state()["parties"]}
