"""`capsule backup` killed three times resumes with its partial files: the result is a clean backup.

The whole command (tap, target and the process that pipes them) is killed with SIGKILL while it
writes; the next run on the same folder continues from the folder's checkpoint. The finished folder
holds exactly what a backup that was never killed holds, and the last run asks Capsule only for the
pages the checkpoint did not cover, plus the one it reads again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from target_capsule.account.backup import CHECKPOINT, read_backup

CAPSULE = str(Path(sys.executable).parent / "capsule")
PAGE = 4
LIST_PATHS = {"parties": "GET /parties", "entries": "GET /entries", "tasks": "GET /tasks"}


def backup(config: Path, folder: Path, *, kill_after_checkpoints: int | None = None) -> bool:
    """Run `capsule backup`; kill it after it saved that many checkpoints. True if killed."""
    process = subprocess.Popen(
        [CAPSULE, "backup", "--config", str(config), "--backup-dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if kill_after_checkpoints is None:
        assert process.wait(timeout=300) == 0
        return False
    seen: set[int] = set()
    path = folder / CHECKPOINT
    start = path.stat().st_mtime_ns if path.exists() else None
    while process.poll() is None:
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp is not None and stamp != start:
            seen.add(stamp)
        if len(seen) >= kill_after_checkpoints and reading_a_list(path):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    return False


def reading_a_list(path: Path) -> bool:
    """The checkpoint holds a list read in progress (so the kill lands in the middle of one)."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return any(
        entry.get("checkpoint", {}).get("phase") == "list"
        for entry in saved.get("bookmarks", {}).values()
    )


def records_by_stream(folder: Path) -> dict[str, set[str]]:
    return {
        stream: {json.dumps(r, sort_keys=True) for r in records}
        for stream, records in read_backup(folder).items()
    }


def test_a_backup_killed_three_times_resumes_into_a_clean_backup(tmp_path, sandbox_factory):
    sandbox = sandbox_factory(scale=30, seed=7, faults={"slow_every": 1, "slow_seconds": 0.02})
    config = tmp_path / "tap.json"
    config.write_text(
        json.dumps({"access_token": "test-token-5f3a9c", "api_url": sandbox.url, "page_size": PAGE})
    )
    sandbox.reset_requests()
    backup(config, tmp_path / "clean")
    clean_requests = sandbox.requests()["by_path"]

    folder = tmp_path / "resumed"
    for kill_after in (6, 10, 14):
        assert backup(config, folder, kill_after_checkpoints=kill_after), "finished before the kill"
        assert not (folder / "manifest.json").exists()
    saved = json.loads((folder / CHECKPOINT).read_text())
    assert (folder / CHECKPOINT).stat().st_mode & 0o777 == 0o600
    sandbox.reset_requests()
    backup(config, folder)
    final_requests = sandbox.requests()["by_path"]

    assert records_by_stream(folder) == records_by_stream(tmp_path / "clean")
    manifest = json.loads((folder / "manifest.json").read_text())
    clean_manifest = json.loads((tmp_path / "clean" / "manifest.json").read_text())
    assert manifest["streams"] == clean_manifest["streams"]
    assert not (folder / CHECKPOINT).exists()
    # The last run read again only the one page each checkpoint was on.
    resumed = {
        stream: entry["checkpoint"]
        for stream, entry in saved["bookmarks"].items()
        if "page" in entry.get("checkpoint", {}) and entry["checkpoint"].get("phase") == "list"
    }
    assert resumed, "the kills left no read in progress"
    for stream, checkpoint in resumed.items():
        if stream in LIST_PATHS:
            path = LIST_PATHS[stream]
            assert final_requests[path] == clean_requests[path] - (checkpoint["page"] - 1)
