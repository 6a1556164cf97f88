"""The embedded SQL copy: `meltano run capsule-to-duckdb` (tap-capsule -> target-capsule-duckdb,
validation on) into one local DuckDB file, then the documented query.

The oracle is the sandbox's own records. A first run lands every record and every tombstone; an
incremental run lands an edit as an update and a deleted party, task and note as soft-deleted rows
that keep their values (the task and the note through ACTIVATE_VERSION: Capsule has no deleted
feed for them); a full refresh into the same file leaves it equal to a fresh load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from tap_capsule.sandbox import Sandbox

pytestmark = pytest.mark.meltano

ROOT = Path(__file__).resolve().parents[2]
QUERY = ROOT / "examples" / "sql" / "open_opportunities_by_owner.sql"
STREAMS = ["parties", "opportunities", "tasks", "entries"]


def rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.sql(sql).fetchall()


def table(path: Path, stream: str) -> dict[int, dict]:
    """A table's rows by id, without the columns that say when a row was loaded."""
    with duckdb.connect(str(path), read_only=True) as connection:
        result = connection.sql(f"SELECT * FROM capsule.{stream}")
        names = result.columns
        out = {}
        for values in result.fetchall():
            row = dict(zip(names, values, strict=True))
            out[row["id"]] = {
                k: v for k, v in row.items() if k == "_sdc_deleted_at" or not k.startswith("_sdc_")
            }
        return out


def live(path: Path, stream: str) -> dict[int, dict]:
    return {
        i: {k: v for k, v in row.items() if k != "_sdc_deleted_at"}
        for i, row in table(path, stream).items()
        if row["_sdc_deleted_at"] is None
    }


def test_sandbox_to_duckdb_incremental_deletions_and_full_refresh(
    meltano, meltano_db, token, tmp_path
):
    database = tmp_path / "warehouse.duckdb"
    fresh = tmp_path / "fresh.duckdb"
    with Sandbox(token=token, scale=30, seed=22) as sb:
        env = {
            "TAP_CAPSULE_API_URL": sb.url,
            "TAP_CAPSULE_ACCESS_TOKEN": token,
            "TAP_CAPSULE_PAGE_SIZE": "10",
            "TAP_CAPSULE__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
            "TARGET_CAPSULE_DUCKDB_PATH": str(database),
        }

        def run(*extra: str, path: Path = database) -> None:
            meltano(
                "--environment=dev",
                "run",
                *extra,
                "capsule-to-duckdb",
                env={**env, "TARGET_CAPSULE_DUCKDB_PATH": str(path)},
                database=meltano_db,
            )

        run()
        state = sb.state()
        gone = {
            s: {d["id"] for d in state["_deleted"].get(s, []) + state["_restricted"].get(s, [])}
            for s in ("parties", "opportunities")
        }
        for stream in STREAMS:
            ids = [i for (i,) in rows(database, f"SELECT id FROM capsule.{stream}")]
            assert len(ids) == len(set(ids)), stream
            # Every record and every tombstone: no batch loses a row.
            expected = {r["id"] for r in state[stream]} | gone.get(stream, set())
            assert set(ids) == expected, stream
        assert oct(database.stat().st_mode & 0o777) == "0o600"

        parties = [r["id"] for r in state["parties"]]
        changed, deleted = parties[0], parties[1]
        task = state["tasks"][0]["id"]
        note = next(e for e in state["entries"] if e.get("type") == "note")["id"]
        before = table(database, "parties")[deleted]
        sb.touch("parties", changed, about="changed in Capsule")
        sb.delete_record("parties", deleted)
        sb.delete_record("tasks", task)
        sb.delete_record("entries", note)
        opportunity = next(o for o in state["opportunities"] if not o.get("closedOn"))["id"]
        sb.delete_record("opportunities", opportunity)
        run()  # incremental
        after = sb.state()

        parties_now = table(database, "parties")
        assert len(parties_now) == len(parties) + len(gone["parties"])
        assert parties_now[changed]["about"] == "changed in Capsule"
        assert parties_now[changed]["_sdc_deleted_at"] is None
        # Deleted in Capsule: the row stays, marked, with its last values.
        assert parties_now[deleted]["_sdc_deleted_at"] is not None
        assert {k: v for k, v in parties_now[deleted].items() if k != "_sdc_deleted_at"} == {
            k: v for k, v in before.items() if k != "_sdc_deleted_at"
        }
        tasks_now, entries_now = table(database, "tasks"), table(database, "entries")
        assert tasks_now[task]["_sdc_deleted_at"] is not None  # no tombstone: ACTIVATE_VERSION
        assert tasks_now[task]["description"] == state["tasks"][0]["description"]
        assert entries_now[note]["_sdc_deleted_at"] is not None
        for stream in STREAMS:
            assert set(live(database, stream)) == {r["id"] for r in after[stream]}, stream

        # A full refresh into the same file, and a fresh load: the same live rows and values.
        run("--full-refresh")
        run("--full-refresh", path=fresh)
    for stream in STREAMS:
        assert live(database, stream) == live(fresh, stream), stream
        kept = table(database, stream)
        for i, row in table(fresh, stream).items():
            assert i in kept, (stream, i)
            assert (row["_sdc_deleted_at"] is None) == (kept[i]["_sdc_deleted_at"] is None)

    # The documented query, as `make sql` runs it, against an oracle computed from the sandbox.
    open_by_owner = Counter(
        (o.get("owner") or {}).get("name") or "(no owner)"
        for o in after["opportunities"]
        if not o.get("closedOn")
    )
    assert opportunity not in {o["id"] for o in after["opportunities"]}
    result = rows(database, QUERY.read_text(encoding="utf-8"))
    assert {owner: count for owner, count, *_ in result} == dict(open_by_owner)
    shown = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sql" / "show.py"), str(database), str(QUERY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "open_opportunities" in shown and result[0][0] in shown
