"""Model-based test of `capsule sync`: random edits on both sides (Capsule through its API, the
database through SQL), then a sync, then the checks:

- both sides hold the same values for every synced field of every record;
- every field changed on both sides to different values was a conflict, resolved by the rule
  (the winner's value is on both sides) and logged once with both values; nothing else was;
- a second sync with no edits in between writes nothing on either side.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from psycopg import sql
from sync_helpers import TOKEN, SyncDB, capsule_live, postgres_reachable, run_sync

from tap_capsule.api_client import CapsuleSession
from tap_capsule.sandbox import Sandbox
from target_capsule.account.sync.engine import RECORD
from target_capsule.account.sync.objects import BY_TABLE

pytestmark = pytest.mark.postgres

PARTIES = [BY_TABLE["parties"]]
FIELDS = ("about", "job_title")
VALUES = st.sampled_from(["red", "green", "blue", None])
NAMES = st.sampled_from(["Ada", "Ben", "Cat"])


class SyncMachine(RuleBasedStateMachine):
    @initialize(last=st.sampled_from(["capsule", "database"]))
    def start(self, last):
        self.last_rule = last  # every example ends with a sync under this rule (see teardown)
        postgres_reachable()
        self.sb = Sandbox(token=TOKEN, scale=3, seed=11).start()
        self.api = CapsuleSession({"access_token": TOKEN, "api_url": self.sb.url})
        self.db = SyncDB(f"sync_model_{uuid.uuid4().hex[:10]}")
        run_sync(self.sb, self.db.schema, objects=PARTIES)
        self.base = capsule_live(self.sb, "parties")
        self.logged = 0

    def teardown(self):
        if hasattr(self, "sb"):
            try:
                self.sync(self.last_rule)  # the edits since the last sync step: checked too
            finally:
                self.stop()

    def stop(self):
        if hasattr(self, "sb"):
            self.sb.stop()
            self.db.conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.db.schema))
            )
            self.db.conn.close()

    # --- edits in Capsule, through its API ----------------------------------------------------

    def pick_capsule(self, i: int) -> int | None:
        ids = sorted(capsule_live(self.sb, "parties"))
        return ids[i % len(ids)] if ids else None

    @rule(i=st.integers(0, 20), field=st.sampled_from(FIELDS), value=VALUES)
    def edit_in_capsule(self, i, field, value):
        party = self.pick_capsule(i)
        if party is not None:
            name = {"about": "about", "job_title": "jobTitle"}[field]
            self.api.call("PUT", f"/parties/{party}", json_body={"party": {name: value}})

    @rule(first=NAMES)
    def create_in_capsule(self, first):
        body = {"party": {"type": "person", "firstName": first, "lastName": "Capsule"}}
        self.api.call("POST", "/parties", json_body=body)

    @rule(i=st.integers(0, 20))
    def delete_in_capsule(self, i):
        party = self.pick_capsule(i)
        if party is not None:
            self.api.call("DELETE", f"/parties/{party}")

    # --- edits in the database, through SQL ---------------------------------------------------

    def pick_row(self, i: int) -> int | None:
        # In Capsule's order (by id), new rows last: a small `i` picks the same record both sides.
        rows = sorted(
            self.db.select("parties", "NOT deleted"),
            key=lambda r: (r["capsule_id"] is None, r["capsule_id"] or 0, r["row_id"]),
        )
        return rows[i % len(rows)]["row_id"] if rows else None

    @rule(i=st.integers(0, 20), field=st.sampled_from(FIELDS), value=VALUES)
    def edit_in_database(self, i, field, value):
        row = self.pick_row(i)
        if row is not None:
            self.db.conn.execute(
                sql.SQL("UPDATE {} SET {} = %s WHERE row_id = %s").format(
                    self.db.table("parties"), sql.Identifier(field)
                ),
                [value, row],
            )

    @rule(first=NAMES)
    def insert_in_database(self, first):
        self.db.insert("parties", type="person", first_name=first, last_name="Database")

    @rule(i=st.integers(0, 20), hard=st.booleans())
    def delete_in_database(self, i, hard):
        row = self.pick_row(i)
        if row is not None:
            statement = (
                "DELETE FROM {} WHERE row_id = %s"
                if hard
                else "UPDATE {} SET deleted = true WHERE row_id = %s"
            )
            self.db.conn.execute(sql.SQL(statement).format(self.db.table("parties")), [row])

    @rule(
        i=st.integers(0, 20),
        field=st.sampled_from(FIELDS),
        in_capsule=VALUES,
        in_database=VALUES,
        delete=st.sampled_from([None, "capsule", "database"]),
    )
    def edit_one_record_on_both_sides(self, i, field, in_capsule, in_database, delete):
        """The same record on both sides (the row of the Capsule record picked): a conflict
        when the values differ, or a deletion against an edit."""
        party = self.pick_capsule(i)
        rows = self.db.select("parties", f"NOT deleted AND capsule_id = {party or 0}")
        if party is None or not rows:
            return
        if delete == "capsule":
            self.api.call("DELETE", f"/parties/{party}")
        else:
            name = {"about": "about", "job_title": "jobTitle"}[field]
            self.api.call("PUT", f"/parties/{party}", json_body={"party": {name: in_capsule}})
        if delete == "database":
            self.db.delete("parties", party)
        else:
            self.db.update("parties", party, **{field: in_database})

    # --- the sync -----------------------------------------------------------------------------

    def expected_conflicts(self, winner: str) -> dict[tuple[int, str], object]:
        """(capsule_id, field) -> the value the rule keeps, from both sides as they are now."""
        capsule = capsule_live(self.sb, "parties")
        database = self.db.live_with_ids("parties")
        out = {}
        for cid, base in self.base.items():
            c, d = capsule.get(cid), database.get(cid)
            if c in (base, d) or d == base:
                continue
            if c is None or d is None:
                out[cid, RECORD] = c if winner == "capsule" else d
                continue
            for field in FIELDS:
                if c[field] != base[field] and d[field] != base[field] and c[field] != d[field]:
                    out[cid, field] = c[field] if winner == "capsule" else d[field]
        return out

    @rule(conflict=st.sampled_from(["capsule", "database"]))
    def sync(self, conflict):
        expected = self.expected_conflicts(conflict)
        run_sync(self.sb, self.db.schema, conflict=conflict, objects=PARTIES)
        capsule = capsule_live(self.sb, "parties")
        assert self.db.live("parties") == capsule
        logged = self.db.conflicts()[self.logged :]
        self.logged += len(logged)
        assert {(c["capsule_id"], c["field"]) for c in logged} == set(expected)
        assert all(c["winner"] == conflict for c in logged)
        for (cid, field), value in expected.items():
            if field != RECORD:
                assert capsule[cid][field] == value, (cid, field)
            elif value is None:
                assert cid not in capsule  # the deletion won
        # A second sync with no edits writes nothing on either side.
        self.sb.reset_requests()
        quiet = run_sync(self.sb, self.db.schema, conflict=conflict, objects=PARTIES)
        assert self.sb.requests()["writes"] == 0
        assert sum(c.writes for c in quiet.counts.values()) == 0, quiet.counts
        self.base = capsule

    @invariant()
    def ids_are_unique(self):
        if hasattr(self, "db"):
            ids = [r["capsule_id"] for r in self.db.select("parties") if r["capsule_id"]]
            assert len(ids) == len(set(ids))


SyncMachine.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSyncModel = SyncMachine.TestCase
