"""Small pieces of crash consistency: the change log's lines, private files and the lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from tap_capsule.private_files import open_private, private_folder, write_private
from target_capsule import changelog
from target_capsule.lock import Lock, LockError


def test_a_write_is_logged_ahead_then_settled(tmp_path):
    path = tmp_path / "c.jsonl"
    log = changelog.ChangeLog(str(path))
    log.account = "acme.capsulecrm.com"
    log.clock = lambda: 1_800_000_000.0
    with log.writing("parties", "INSERT", None, {"name": "Acme"}) as entry:
        pending = [json.loads(x) for x in path.read_text().splitlines()]
        assert [x["status"] for x in pending] == ["pending"]  # on disk before the write
        assert pending[0]["capsule_at"] == "2027-01-15T08:00:00Z"
        log.settle(entry, changelog.APPLIED, 42)
    with pytest.raises(RuntimeError), log.writing("parties", "DELETE", 7, None):
        raise RuntimeError("refused")
    log.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["seq"], x["status"]) for x in lines] == [
        (1, "pending"),
        (1, "applied"),
        (2, "pending"),
        (2, "failed"),
    ]
    assert {x["account"] for x in lines} == {"acme.capsulecrm.com"}
    _run, writes = changelog.read(path)
    assert [(w["status"], w["id"], w["ahead"]) for w in writes] == [
        ("applied", 42, True),
        ("failed", 7, True),
    ]


def test_a_kill_leaves_the_line_pending_and_a_cut_last_line_is_ignored(tmp_path):
    path = tmp_path / "c.jsonl"
    log = changelog.ChangeLog(str(path))
    log.ahead("tasks", "INSERT", None, {"description": "x"})
    log.close()
    with path.open("a") as handle:
        handle.write('{"run_id": "r", "seq": 9, "sta')  # the kill came mid-line
    assert [w["status"] for w in changelog.unsettled(path)] == ["pending"]


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (
            [
                {
                    "run_id": "r",
                    "seq": 1,
                    "status": "pending",
                    "stream": "parties",
                    "operation": "INSERT",
                },
                {
                    "run_id": "r",
                    "seq": 1,
                    "status": "pending",
                    "stream": "parties",
                    "operation": "INSERT",
                },
            ],
            "has seq 1 twice",
        ),
        (
            [
                {
                    "run_id": "r",
                    "seq": 1,
                    "status": "pending",
                    "stream": "parties",
                    "operation": "INSERT",
                },
                {
                    "run_id": "r",
                    "seq": 1,
                    "status": "applied",
                    "stream": "tasks",
                    "operation": "INSERT",
                },
            ],
            "contradicts",
        ),
        (
            [
                {
                    "run_id": "r",
                    "seq": "one",
                    "status": "applied",
                    "stream": "parties",
                    "operation": "INSERT",
                }
            ],
            "not a positive integer",
        ),
        (
            [
                {
                    "run_id": "r",
                    "seq": 1,
                    "status": "done",
                    "stream": "parties",
                    "operation": "INSERT",
                }
            ],
            "unknown status",
        ),
    ],
)
def test_contradictory_lines_are_refused(tmp_path, lines, problem):
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(changelog.ChangeLogError, match=problem):
        changelog.load(path)


def test_private_files_and_folders_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        folder = private_folder(tmp_path / "a" / "b")
        with open_private(folder / "log.jsonl") as handle:
            handle.write("x\n")
        write_private(folder / "map.json", "{}")
        loose = tmp_path / "loose.jsonl"
        loose.write_text("")
        loose.chmod(0o644)
        open_private(loose).close()  # an older file is made private when written again
    finally:
        os.umask(old)
    for path in (folder / "log.jsonl", folder / "map.json", loose):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for path in (folder, folder.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_the_lock_names_its_holder_and_is_released_when_the_holder_dies(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPSULE_LOCK_DIR", str(tmp_path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from target_capsule.lock import Lock
                lock = Lock("account acme", "target-capsule run R1").acquire()
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "CAPSULE_LOCK_DIR": str(tmp_path)},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockError) as refused:
        Lock("account acme", "a second run").acquire()
    assert "target-capsule run R1" in str(refused.value)
    assert f"process {holder.pid}" in str(refused.value)
    holder.kill()  # kill -9: no clean-up runs, the system drops the lock
    holder.wait(10)
    holder.stdout.close()
    with Lock("account acme", "a second run"):
        pass


def test_an_oversized_backup_record_is_refused_without_being_loaded(tmp_path):
    import gzip
    import tracemalloc

    from target_capsule.account.backup import MAX_RECORD_CHARS, read_stream

    path = tmp_path / "entries.jsonl.gz"
    huge = 12 * MAX_RECORD_CHARS  # 60 MiB of JSON in one line
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"id": 1, "content": "small"}\n')
        handle.write('{"id": 2, "content": "' + "x" * huge + '"}\n')
        handle.write('{"id": 3, "content": "small"}\n')
    refused: list[dict] = []
    tracemalloc.start()
    try:
        ids = [r["id"] for r in read_stream(path, "entries", refused)]
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ids == [1, 3]
    assert refused == [{"stream": "entries", "id": "2"}]
    assert peak < 4 * MAX_RECORD_CHARS  # a few times the limit, never the 60 MiB record
