"""`capsule sync` killed with SIGKILL at a write, then run again, ends as a clean run ends.

The sync runs as its own process, as a user runs it, and dies by `kill -9` at one of two kinds of
moments:

- **a Capsule write**, twice: the sandbox applies the n-th write and holds its answer
  (`hold_write`), so the process dies with the write done in Capsule and unknown to it (a lost
  answer); or it holds the write before applying it and drops it after the kill
  (`hold_before_write`), so the process dies with the write journaled and never sent;
- **a database transaction**: a trigger the test adds to the sync's tables (statement-level, in
  the test's own probe schema) counts the sync's transactions and makes the n-th one wait on a
  PostgreSQL advisory lock the test holds, mid-transaction; the process dies there and its
  backend is terminated, so the transaction never commits (the state of a kill right after the
  transaction before it, which may have just recorded a Capsule answer).

The rerun must leave both sides, the conflicts, the journal (empty) and the change log (nothing
left pending) as a clean run leaves them. The whole matrix takes a few minutes; CI runs an even
sample of it, always including the first and last write of each kind.
`CAPSULE_KILL_EVERY_WRITE=1` (as for the other commands' kill tests) runs every point:

    CAPSULE_KILL_EVERY_WRITE=1 .venv/bin/python -m pytest -q tests/sync/test_sync_kill.py
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sync_helpers import (
    TOKEN,
    SyncDB,
    edit_both_sides,
    end_state,
    postgres_reachable,
    run_sync,
)

from tap_capsule.sandbox import Sandbox
from target_capsule import changelog
from target_capsule.account.sync.objects import OBJECTS

pytestmark = pytest.mark.postgres

BIN = Path(sys.executable).parent
LOCK_KEY = 2022_12_07  # the advisory lock the probe waits on
SAMPLE = 3  # kill points per kind in the default run (first, last and one between)
STATE_TABLES = ("_sync_base", "_sync_journal", "_sync_points", "_sync_conflicts")


class Probe:
    """Counts the sync's database transactions; the n-th waits on the test's advisory lock."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn = conn
        self.probe = f"{schema}_probe"
        names = {"probe": sql.Identifier(self.probe), "key": sql.Literal(LOCK_KEY)}
        conn.execute(sql.SQL("CREATE SCHEMA {probe}").format(**names))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {probe}.counter (n int NOT NULL, last_tx bigint NOT NULL, "
                "stop_at int NOT NULL); INSERT INTO {probe}.counter VALUES (0, 0, 0)"
            ).format(**names)
        )
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {probe}.count_tx() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "DECLARE c record; BEGIN "
                "SELECT * INTO c FROM {probe}.counter FOR UPDATE; "
                "IF c.last_tx <> txid_current() THEN "
                "  UPDATE {probe}.counter SET n = n + 1, last_tx = txid_current(); "
                "  IF c.n + 1 = c.stop_at THEN PERFORM pg_advisory_lock({key}); END IF; "
                "END IF; RETURN NULL; END $$"
            ).format(**names)
        )
        for table in (*STATE_TABLES, *(o.table for o in OBJECTS)):
            conn.execute(
                sql.SQL(
                    "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION {probe}.count_tx()"
                ).format(
                    trigger=sql.Identifier(f"kill_probe_{table}"),
                    table=sql.Identifier(schema, table),
                    **names,
                )
            )

    def count(self) -> int:
        query = sql.SQL("SELECT n FROM {}.counter").format(sql.Identifier(self.probe))
        return int(self.conn.execute(query).fetchone()[0])

    def stop_at(self, n: int) -> None:
        """Count from here (0: never stop); with n > 0, the n-th transaction waits for our lock."""
        self.conn.execute(
            sql.SQL("UPDATE {}.counter SET n = 0, stop_at = %s").format(sql.Identifier(self.probe)),
            [n],
        )
        if n:
            self.conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])

    def waiting_backend(self) -> int | None:
        row = self.conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
            [LOCK_KEY],
        ).fetchone()
        return int(row[0]) if row else None

    def end_wait(self, backend: int) -> None:
        """The killed process's backend goes too (its transaction never commits); lock freed."""
        self.conn.execute("SELECT pg_terminate_backend(%s)", [backend])
        self.conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])

    def drop(self) -> None:
        self.conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.probe))
        )


def start_sync(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "capsule"), "sync", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(
    what: str, ready: t.Callable[[], t.Any], proc: subprocess.Popen, seconds: float = 60
) -> t.Any:
    deadline = time.monotonic() + seconds
    while not (found := ready()):
        assert time.monotonic() < deadline, f"the sync never reached {what}"
        assert proc.poll() is None, f"the sync ended before {what}: {proc.stderr.read()}"
        time.sleep(0.02)
    return found


def finished(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err


def scenario(tmp_path: Path, stop: tuple[str, int] | None) -> tuple[dict, dict]:
    """Initial sync, edits on both sides, a sync killed at `stop` (or not), a rerun.

    Returns the end state (both sides and conflicts, journal, change log) and the counts of the
    killed (or clean) run: its Capsule writes and database transactions.
    """
    name = f"sync_kill_{uuid.uuid4().hex[:10]}"
    db = SyncDB(name)
    probe: Probe | None = None
    try:
        with Sandbox(token=TOKEN, scale=6, seed=9) as sb:
            run_sync(sb, name)  # the first copy, in process
            probe = Probe(db.conn, name)
            edit_both_sides(sb, db)
            log = tmp_path / f"{name}.jsonl"
            config = tmp_path / f"{name}.json"
            config.write_text(
                json.dumps(
                    {
                        "access_token": TOKEN,
                        "api_url": sb.url,
                        "schema": name,
                        "change_log_path": str(log),
                    }
                )
            )
            sb.reset_requests()
            counts: dict = {}
            if stop is None:
                probe.stop_at(0)  # count the sync's transactions only
                finished(start_sync(config))
                counts = {"capsule": sb.requests()["writes"], "database": probe.count()}
            else:
                kind, at = stop
                if kind in ("capsule", "capsule-before"):
                    # Applied with its answer held until the kill, or held and never applied.
                    hold = "hold_write" if kind == "capsule" else "hold_before_write"
                    sb.set_faults(**{hold: at})
                    proc = start_sync(config)
                    wait_for(f"Capsule write {at}", sb.held, proc)
                    proc.send_signal(signal.SIGKILL)
                    proc.communicate(timeout=30)
                    sb.release()
                    sb.set_faults()
                else:
                    probe.stop_at(at)
                    proc = start_sync(config)
                    backend = wait_for(f"transaction {at}", probe.waiting_backend, proc)
                    proc.send_signal(signal.SIGKILL)
                    proc.communicate(timeout=30)
                    probe.end_wait(backend)
                finished(start_sync(config))  # the rerun
            state = end_state(sb, db)
        journal = db.conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name, "_sync_journal"))
        ).fetchone()
        state["journal"] = journal[0] if journal else None
        runs = changelog.load(log) if log.exists() else {}
        state["pending"] = [w for ws in runs.values() for w in ws if w["status"] == "pending"]
        return state, counts
    finally:
        if probe is not None:
            probe.drop()
        db.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        db.conn.close()


def sample(total: int) -> list[int]:
    """Every point with CAPSULE_KILL_EVERY_WRITE=1, else `SAMPLE` spread evenly, ends included."""
    points = list(range(1, total + 1))
    if os.environ.get("CAPSULE_KILL_EVERY_WRITE") == "1" or total <= SAMPLE:
        return points
    step = (total - 1) / (SAMPLE - 1)
    return sorted({1 + round(i * step) for i in range(SAMPLE)})


def test_a_sync_killed_at_a_write_then_rerun_ends_like_a_clean_run(tmp_path):
    postgres_reachable()
    clean, counts = scenario(tmp_path, None)
    assert counts["capsule"] >= 5 and counts["database"] >= 10, counts
    assert clean["journal"] == 0 and clean["pending"] == []
    for kind in ("capsule", "capsule-before", "database"):
        for at in sample(counts[kind.removesuffix("-before")]):
            killed, _ = scenario(tmp_path, (kind, at))
            assert killed == clean, f"killed at {kind} write {at} of {counts[kind]}"
