"""A `kill -9` at every write of every command that writes to Capsule, compared with a clean run.

One harness for target-capsule, `capsule undo` and `capsule restore` (copy and same): a clean run
on a fresh account counts its writes W (the sandbox's request log); then, for each k in 1..W, a
fresh account from the same seed and the same setup, the sandbox either applies the k-th write
and holds its answer (`hold_write`: the write reached Capsule) or holds the write before applying
it and then drops it (`hold_before_write`: it never did, though the change log holds its pending
line), the real CLI process is killed with SIGKILL while it waits, and the same command is run
again to completion. The account's end state and what the command
records (the change log, settled; the id map) must equal the clean run's. `capsule backup`
sends no write to Capsule, so it has no write to be killed at (its kills are tested in
test_crash_consistency.py and test_backup_resume.py).

Each input makes 3 to 6 writes. By default every command is killed at its first, a middle and
its last write (a deterministic sample that keeps CI fast); `CAPSULE_KILL_EVERY_WRITE=1` kills it
at every write: `CAPSULE_KILL_EVERY_WRITE=1 .venv/bin/python -m pytest
tests/reversible/test_kill_every_write.py`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
import typing as t

import pytest
from reversible_helpers import (
    BIN,
    TOKEN,
    backup,
    config_file,
    diff_snapshots,
    everything,
    run,
    singer,
    target,
)

from tap_capsule.sandbox import Sandbox
from target_capsule import changelog

if t.TYPE_CHECKING:
    from pathlib import Path

SEED = 7
GONE_AT = "2026-01-01T00:00:00Z"
EVERY = os.environ.get("CAPSULE_KILL_EVERY_WRITE") == "1"


@pytest.fixture(autouse=True)
def private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPSULE_LOCK_DIR", str(tmp_path / "locks"))


@dataclasses.dataclass
class Command:
    """One command, its setup on a fresh account, and the files it records."""

    argv: list[str]
    stdin: str = ""
    change_logs: tuple[Path, ...] = ()  # written ahead: compared by what they say was applied
    id_maps: tuple[Path, ...] = ()  # compared whole (old id -> new id)


Setup = t.Callable[[Sandbox, "Path"], Command]


def fresh(scale: int = 0) -> Sandbox:
    return Sandbox(token=TOKEN, scale=scale, seed=SEED)


def applied(logs: t.Iterable[Path]) -> list[tuple]:
    """Every write the change logs say reached Capsule, over all runs (no pending line left)."""
    out = []
    for log in logs:
        if not log.exists():
            continue
        for run_id, writes in changelog.load(log).items():
            for w in writes:
                assert w["status"] != "pending", (log.name, run_id, w)
                if w["status"] == "applied":
                    out.append((w["stream"], w["operation"], str(w.get("id") or w.get("keys"))))
    return sorted(out)


def id_map(path: Path) -> dict:
    """An id map as the next run reads it: the file and its journal folded, pending resolved."""
    from target_capsule.account.refs import IdMap

    ids = IdMap(path)
    assert not ids.pending, f"{path.name}: creates left pending {ids.pending}"
    return ids.as_dict()


def recorded(command: Command) -> dict:
    return {
        "applied": applied(command.change_logs),
        "id_maps": [id_map(p) for p in command.id_maps],
    }


def run_clean(setup: Setup, folder: Path) -> tuple[dict, dict, int]:
    folder.mkdir()
    with fresh() as sb:
        command = setup(sb, folder)
        sb.reset_requests()
        run(command.argv, command.stdin)
        writes = sb.requests()["writes"]
        return everything(sb.state()), recorded(command), writes


def killed_then_rerun(setup: Setup, folder: Path, k: int, when: str) -> tuple[dict, dict]:
    """Kill the command at its k-th write: `after` it was applied or `before` it reached Capsule."""
    folder.mkdir()
    with fresh() as sb:
        command = setup(sb, folder)
        # after: the k-th write is applied, its answer held; before: held unapplied, then dropped
        sb.set_faults(**{"hold_write" if when == "after" else "hold_before_write": k})
        with (folder / "killed.log").open("w") as err:
            proc = subprocess.Popen(
                command.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )
        assert proc.stdin is not None
        proc.stdin.write(command.stdin)
        proc.stdin.close()
        deadline = time.monotonic() + 60
        while sb.held() == 0:
            assert proc.poll() is None, (folder / "killed.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the write was never held"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        sb.release()
        sb.set_faults()
        run(command.argv, command.stdin)  # the same command again, to completion
        return everything(sb.state()), recorded(command)


def sample(writes: int) -> list[int]:
    """Every write with CAPSULE_KILL_EVERY_WRITE=1; else the first, a middle and the last."""
    if EVERY:
        return list(range(1, writes + 1))
    return sorted({1, (writes + 1) // 2, writes})


# --- the commands -------------------------------------------------------------------------------


def target_run(sb: Sandbox, folder: Path) -> Command:
    """target-capsule: two creates (one keyed by email), an update, a delete."""
    state = sb.state()
    log = folder / "changes.jsonl"
    config = config_file(folder, sb.url, change_log_path=str(log))
    records = [
        ("parties", {"type": "organisation", "name": "Kill Co"}),
        (
            "parties",
            {
                "type": "person",
                "firstName": "Kit",
                "lastName": "Kill",
                "emailAddresses": [{"address": "kit@kill.example"}],
            },
        ),
        ("lost_reasons", {"id": state["lost_reasons"][0]["id"], "name": "Renamed by the run"}),
        ("categories", {"id": state["categories"][0]["id"], "_sdc_deleted_at": GONE_AT}),
    ]
    return Command([str(BIN / "target-capsule"), "--config", str(config)], singer(records), (log,))


def undo_run(sb: Sandbox, folder: Path) -> Command:
    """`capsule undo` of a run that created, updated and deleted (the undo deletes, puts back and
    recreates)."""
    state = sb.state()
    log = folder / "changes.jsonl"
    config = config_file(folder, sb.url, change_log_path=str(log))
    target(
        config,
        [
            ("parties", {"type": "organisation", "name": "Undo Me Ltd"}),
            ("lost_reasons", {"id": state["lost_reasons"][0]["id"], "name": "Put back"}),
            ("categories", {"id": state["categories"][0]["id"], "_sdc_deleted_at": GONE_AT}),
            ("activity_types", {"name": "Undo me too"}),
        ],
    )
    run_id = changelog.read(log)[0]
    return Command(
        [str(BIN / "capsule"), "undo", "--config", str(config), str(log)],
        change_logs=(folder / "changes.undo.jsonl",),
        id_maps=(folder / f"changes.undo-{run_id}.ids.json",),
    )


BACKUPS: dict[str, Path] = {}


def small_backup(tmp: Path) -> Path:
    """A backup of a fresh account holding an organisation, its person, a note and a task."""
    if "copy" not in BACKUPS:
        with fresh() as a:
            config = config_file(tmp, a.url, backup_dir=str(tmp / "backup-source"))
            target(config, small_records(a.state()))
            BACKUPS["copy"] = backup(config)
    return BACKUPS["copy"]


def small_records(_state: dict) -> list[tuple[str, dict]]:
    return [
        ("parties", {"type": "organisation", "name": "Restore Me Ltd"}),
        ("tasks", {"description": "Restore me task", "dueOn": "2026-04-05"}),
        ("lost_reasons", {"name": "Restored reason"}),
    ]


def restore_copy(sb: Sandbox, folder: Path) -> Command:
    """`capsule restore --mode copy` of a small backup into a fresh account (same seed)."""
    source = small_backup(folder.parent)
    copy = folder / "backup"
    shutil.copytree(source, copy)
    for stale in copy.glob("restore-*"):
        stale.unlink()
    log = folder / "restore.jsonl"
    config = config_file(folder, sb.url, change_log_path=str(log))
    return Command(
        [str(BIN / "capsule"), "restore", "--config", str(config), str(copy), "--mode", "copy"],
        change_logs=(log,),
        id_maps=(copy / "restore-copy-sandbox.ids.json",),
    )


def restore_same(sb: Sandbox, folder: Path) -> Command:
    """`capsule restore --mode same` after a run deleted an organisation (Capsule cleared its
    person's `organisation`) and a lost reason: it recreates both and puts the person's
    organisation back (a PUT)."""
    config = config_file(folder, sb.url, backup_dir=str(folder / "backup"))
    target(config, [("parties", {"type": "organisation", "name": "Same Co"})])
    org = next(p for p in sb.state()["parties"] if p.get("name") == "Same Co")
    person = {"type": "person", "firstName": "Sam", "lastName": "Same"}
    target(config, [("parties", {**person, "organisation": {"id": org["id"]}})])
    source = backup(config)
    reason = sb.state()["lost_reasons"][0]["id"]
    target(
        config,
        [
            ("parties", {"id": org["id"], "_sdc_deleted_at": GONE_AT}),
            ("lost_reasons", {"id": reason, "_sdc_deleted_at": GONE_AT}),
        ],
    )
    log = folder / "restore.jsonl"
    config = config_file(folder, sb.url, name="restore", change_log_path=str(log))
    return Command(
        [str(BIN / "capsule"), "restore", "--config", str(config), str(source), "--mode", "same"],
        change_logs=(log,),
        id_maps=(source / "restore-same-sandbox.ids.json",),
    )


COMMANDS: dict[str, Setup] = {
    "target-capsule": target_run,
    "capsule undo": undo_run,
    "capsule restore --mode copy": restore_copy,
    "capsule restore --mode same": restore_same,
}


@pytest.mark.parametrize("when", ["after", "before"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_kill_at_every_write_then_a_rerun_ends_like_a_clean_run(name, when, tmp_path):
    setup = COMMANDS[name]
    expected, files, writes = run_clean(setup, tmp_path / "clean")
    assert 3 <= writes <= 6, f"{name}: keep the input small ({writes} writes)"
    for k in sample(writes):
        got, got_files = killed_then_rerun(setup, tmp_path / f"kill-{when}-{k}", k, when)
        assert got == expected, (name, when, k, diff_snapshots(expected, got))
        assert got_files == files, (name, when, k, json.dumps([files, got_files], default=str))
