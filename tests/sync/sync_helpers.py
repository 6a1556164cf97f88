"""Helpers of the `capsule sync` tests: the database edited through SQL as a user would, the
sandbox's own records, and one sync run in-process."""

from __future__ import annotations

import json
import os
import socket
import typing as t

import psycopg
import pytest
from psycopg import sql

from tap_capsule.api_client import CapsuleSession
from target_capsule.account.sync.capsule import CapsuleSide
from target_capsule.account.sync.database import Database
from target_capsule.account.sync.engine import Sync
from target_capsule.account.sync.objects import BY_TABLE, OBJECTS, normalise
from target_capsule.changelog import ChangeLog

if t.TYPE_CHECKING:
    from tap_capsule.sandbox import Sandbox

TOKEN = "sync-token-5d0c2e"


def postgres_reachable() -> None:
    host = os.environ.get("PGHOST", "127.0.0.1")
    port = int(os.environ.get("PGPORT", "5432"))
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
        psycopg.connect("", connect_timeout=5).close()
    except (OSError, psycopg.Error) as exc:
        if os.environ.get("REQUIRE_POSTGRES", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable ({exc}); set REQUIRE_POSTGRES=1 to fail instead")


class SyncDB:
    """The sync schema as a user sees it: plain SQL on the synced tables."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.conn = psycopg.connect("", autocommit=True)

    def table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def select(self, name: str, where: str = "true") -> list[dict]:
        query = sql.SQL("SELECT * FROM {} WHERE " + where + " ORDER BY row_id").format(
            self.table(name)
        )
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return list(cur.execute(query))

    def live(self, name: str) -> dict[int, dict]:
        """capsule_id -> synced values of the rows not deleted."""
        obj = BY_TABLE[name]
        out = {}
        for row in self.select(name, "NOT deleted"):
            assert row["capsule_id"] is not None, row
            out[row["capsule_id"]] = {f.column: _norm(f.kind, row[f.column]) for f in obj.fields}
        return out

    def live_with_ids(self, name: str) -> dict[int, dict | None]:
        """capsule_id -> synced values, None for a row deleted (marked or removed) since."""
        out: dict[int, dict | None] = dict.fromkeys(
            r["capsule_id"] for r in self.select(name, "deleted AND capsule_id IS NOT NULL")
        )
        out.update(self.live_or_pending(name))
        return out

    def live_or_pending(self, name: str) -> dict[int, dict]:
        obj = BY_TABLE[name]
        return {
            row["capsule_id"]: {f.column: _norm(f.kind, row[f.column]) for f in obj.fields}
            for row in self.select(name, "NOT deleted AND capsule_id IS NOT NULL")
        }

    def insert(self, table_name: str, /, **values) -> int:
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in values)
        marks = sql.SQL(", ").join(sql.Placeholder() for _ in values)
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING row_id").format(
            self.table(table_name), columns, marks
        )
        return self.conn.execute(query, list(values.values())).fetchone()[0]

    def update(self, table_name: str, capsule_id: int, /, **values) -> None:
        sets = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in values
        )
        query = sql.SQL("UPDATE {} SET {} WHERE capsule_id = %s").format(
            self.table(table_name), sets
        )
        self.conn.execute(query, [*values.values(), capsule_id])

    def delete(self, name: str, capsule_id: int, hard: bool = False) -> None:
        if hard:
            query = sql.SQL("DELETE FROM {} WHERE capsule_id = %s")
        else:
            query = sql.SQL("UPDATE {} SET deleted = true WHERE capsule_id = %s")
        self.conn.execute(query.format(self.table(name)), [capsule_id])

    def conflicts(self) -> list[dict]:
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            query = sql.SQL("SELECT * FROM {} ORDER BY at").format(self.table("_sync_conflicts"))
            return list(cur.execute(query))

    def snapshot(self) -> dict:
        """Every synced table and the state tables, to compare two runs' end states."""
        out = {}
        for obj in OBJECTS:
            out[obj.table] = sorted(
                (r["capsule_id"], r["deleted"], *(str(r[c]) for c in obj.columns))
                for r in self.select(obj.table)
            )
        return out


def _norm(kind: str, value):
    return normalise(kind, value)


def capsule_live(sb: Sandbox, name: str) -> dict[int, dict]:
    """capsule_id -> synced values, from the sandbox's own store (not through our reads)."""
    obj = BY_TABLE[name]
    state = sb.state()
    records = state["entries" if name == "notes" else name]
    return {r["id"]: obj.from_capsule(r) for r in records if obj.keeps(r)}


def make_sync(sb: Sandbox, schema: str, conflict: str = "capsule", log_path=None) -> Sync:
    session = CapsuleSession({"access_token": TOKEN, "api_url": sb.url, "max_retries": 2})
    database = Database("", schema)
    return Sync(database, CapsuleSide(session, ChangeLog(log_path)), conflict)


def run_sync(sb: Sandbox, schema: str, conflict: str = "capsule", objects=OBJECTS, **kw) -> Sync:
    sync = make_sync(sb, schema, conflict, **kw)
    try:
        sync.run(list(objects))
    finally:
        sync.db.close()
        sync.capsule.change_log.close()
    return sync


# --- The crash tests' scenario: edits on both sides, and the end state to compare --------------


def edit_both_sides(sb: Sandbox, db: SyncDB) -> None:
    session = CapsuleSession({"access_token": TOKEN, "api_url": sb.url})
    state = sb.state()
    people = [p["id"] for p in state["parties"] if p["type"] == "person"]
    session.call("PUT", f"/parties/{people[0]}", json_body={"party": {"about": "in Capsule"}})
    session.call(
        "POST",
        "/parties",
        json_body={"party": {"type": "person", "firstName": "Cap", "lastName": "Side"}},
    )
    db.update("parties", people[1], about="in the database")
    db.update("parties", people[0], job_title="conflicting title")
    session.call("PUT", f"/parties/{people[0]}", json_body={"party": {"jobTitle": "Capsule's"}})
    db.insert("parties", type="person", first_name="Db", last_name="Side")
    db.insert("parties", type="organisation", name="Db Org")
    db.insert("notes", content="A note from the database", party_id=people[1])
    db.insert("tasks", description="A task from the database", due_on="2031-01-01")
    db.delete("parties", people[2])


def end_state(sb: Sandbox, db: SyncDB) -> dict:
    out = {}
    for obj in OBJECTS:
        live = capsule_live(sb, obj.table)
        assert db.live(obj.table) == live, obj.table
        out[obj.table] = sorted(json.dumps(v, sort_keys=True) for v in live.values())
    out["conflicts"] = sorted(
        (c["object"], c["field"], json.dumps(c["capsule_value"]), c["winner"])
        for c in db.conflicts()
    )
    return out
