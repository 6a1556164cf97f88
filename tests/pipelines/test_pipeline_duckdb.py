"""The embedded SQL copy: `meltano run capsule-to-duckdb` (tap-capsule-duckdb, tap-capsule with
inline tombstones, -> target-duckdb from PyPI, validation on) into one local DuckDB file, then the
documented query.

A first run lands every record and every tombstone of the first sync; a second run lands an edit
as an update and a deletion as a soft delete, with no duplicate and no lost row; the documented
query agrees with the sandbox's own records.
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
STREAMS = ["parties", "opportunities", "tasks"]


def rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.sql(sql).fetchall()


def test_sandbox_to_duckdb_incremental_with_soft_deletes(meltano, meltano_db, token, tmp_path):
    database = tmp_path / "warehouse.duckdb"
    with Sandbox(token=token, scale=30, seed=22) as sb:
        env = {
            "TAP_CAPSULE_API_URL": sb.url,
            "TAP_CAPSULE_ACCESS_TOKEN": token,
            "TAP_CAPSULE_PAGE_SIZE": "10",
            "TAP_CAPSULE__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
            "TAP_CAPSULE_DUCKDB__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
            "TARGET_DUCKDB_PATH": str(database),
        }
        meltano("--environment=dev", "run", "capsule-to-duckdb", env=env, database=meltano_db)
        state = sb.state()
        gone = {
            s: {d["id"] for d in state["_deleted"].get(s, []) + state["_restricted"].get(s, [])}
            for s in STREAMS
        }
        for stream in STREAMS:
            ids = [i for (i,) in rows(database, f"SELECT id FROM capsule.{stream}")]
            assert len(ids) == len(set(ids)), stream
            # Every record and every tombstone: no batch loses a row.
            assert set(ids) == {r["id"] for r in state[stream]} | gone[stream], stream

        live = [r["id"] for r in state["parties"]]
        changed, deleted = live[0], live[1]
        sb.touch("parties", changed, about="changed in Capsule")
        sb.delete_record("parties", deleted)
        opportunity = next(o for o in state["opportunities"] if not o.get("closedOn"))["id"]
        sb.delete_record("opportunities", opportunity)
        meltano("--environment=dev", "run", "capsule-to-duckdb", env=env, database=meltano_db)
        after = sb.state()

    parties = {
        i: (about, deleted_at)
        for i, about, deleted_at in rows(
            database, "SELECT id, about, _sdc_deleted_at FROM capsule.parties"
        )
    }
    assert len(parties) == len(live) + len(gone["parties"])
    assert parties[changed] == ("changed in Capsule", None)
    assert parties[deleted][1] is not None  # soft delete: the row stays, marked
    assert {i for i, (_, at) in parties.items() if at} == gone["parties"] | {deleted}

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
