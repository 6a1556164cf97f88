"""A sync stopped at any write, then run again, ends where a clean run ends: the same records on
both sides, no duplicate on either, the same conflicts logged once.

The stop is raised right after a write (a Capsule request answered, a database transaction
committed) and before anything else: the window where a real kill leaves a write done and its
bookkeeping not. A stop before a write is the stop after the one before it.
"""

from __future__ import annotations

import json
import uuid

import pytest
from psycopg import sql
from sync_helpers import (
    TOKEN,
    SyncDB,
    capsule_live,
    edit_both_sides,
    end_state,
    make_sync,
    postgres_reachable,
    run_sync,
)

from tap_capsule.api_client import CapsuleSession
from tap_capsule.sandbox import Sandbox
from target_capsule.account.sync.objects import OBJECTS

pytestmark = pytest.mark.postgres


class Stop(BaseException):
    """A kill: nothing in the sync catches it."""


def run_stopped(sb: Sandbox, schema_name: str, stop_at: int | None) -> int:
    """One sync, stopped right after its write `stop_at` (None: never); the writes it made."""
    sync = make_sync(sb, schema_name)
    seen = 0

    def after_write() -> None:
        nonlocal seen
        seen += 1
        if seen == stop_at:
            raise Stop

    sync.after_write = after_write
    try:
        sync.run(list(OBJECTS))
    except Stop:
        pass
    finally:
        sync.db.close()
        sync.capsule.change_log.close()
    return seen


def scenario(schema_name: str, stop_at: int | None) -> tuple[dict, int]:
    """Initial sync, edits, a sync stopped after write `stop_at`, a clean rerun; end state."""
    db = SyncDB(schema_name)
    try:
        with Sandbox(token=TOKEN, scale=6, seed=9) as sb:
            run_sync(sb, schema_name)
            edit_both_sides(sb, db)
            seen = run_stopped(sb, schema_name, stop_at)
            run_sync(sb, schema_name)
            return end_state(sb, db), seen
    finally:
        db.conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema_name))
        )
        db.conn.close()


def test_a_sync_stopped_at_any_write_then_rerun_equals_a_clean_run():
    postgres_reachable()
    run = uuid.uuid4().hex[:8]  # schemas of this run only
    clean, writes = scenario(f"sync_crash_{run}_clean", None)
    assert writes >= 10  # the scenario writes on both sides
    assert clean["parties"].count(json.dumps({}, sort_keys=True)) == 0
    for stop_at in range(1, writes + 1):
        stopped, _ = scenario(f"sync_crash_{run}_{stop_at}", stop_at)
        assert stopped == clean, f"stopped after write {stop_at}"


def test_a_first_sync_stopped_midway_then_rerun_copies_everything_once():
    postgres_reachable()
    schema = f"sync_crash_first_{uuid.uuid4().hex[:8]}"
    db = SyncDB(schema)
    try:
        with Sandbox(token=TOKEN, scale=6, seed=9) as sb:
            for stop_at in (1, 9, 15):  # one stop per run: the copy goes on where it stopped
                assert run_stopped(sb, schema, stop_at) == stop_at  # it did stop there
            sb.reset_requests()
            run_sync(sb, schema)
            assert sb.requests()["writes"] == 0  # the copy never writes into Capsule
            for obj in OBJECTS:
                ids = [r["capsule_id"] for r in db.select(obj.table)]
                assert len(ids) == len(set(ids)), obj.table
                assert db.live(obj.table) == capsule_live(sb, obj.table), obj.table
    finally:
        db.conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        db.conn.close()


@pytest.mark.parametrize("same_field", [True, False])
def test_a_replayed_update_keeps_a_capsule_edit_made_after_the_stop(sandbox, schema, same_field):
    """A sync stopped between announcing a PUT and sending it; someone edits the record in
    Capsule; the rerun sends the PUT's fields Capsule still holds as before, never over the edit."""
    run_sync(sandbox, schema.schema)
    person = next(p["id"] for p in sandbox.state()["parties"] if p["type"] == "person")
    schema.update("parties", person, about="from the database")
    sandbox.reset_requests()
    # The first write is the update's journal line: the stop comes before the PUT.
    assert run_stopped(sandbox, schema.schema, 1) == 1
    assert sandbox.requests()["writes"] == 0
    session = CapsuleSession({"access_token": TOKEN, "api_url": sandbox.url})
    edit = {"about": "edited in Capsule"} if same_field else {"jobTitle": "Chief Editor"}
    session.call("PUT", f"/parties/{person}", json_body={"party": edit})

    run_sync(sandbox, schema.schema)

    held = capsule_live(sandbox, "parties")[person]
    if same_field:  # the later edit in Capsule stays, and reaches the database
        assert held["about"] == "edited in Capsule"
    else:  # the stopped PUT is sent; the other field's edit stays
        assert (held["about"], held["job_title"]) == ("from the database", "Chief Editor")
    assert schema.live("parties")[person] == held
    assert schema.select("_sync_journal") == []
