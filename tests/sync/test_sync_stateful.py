"""Model-based test of `capsule sync`: random edits on both sides (Capsule through its API, the
database through SQL) of parties (read through `since` and the deleted feed) and tasks (read in
full, deletions seen by absence), then a sync, then the checks:

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

TEXTS = ["red", "green", "blue", None]
DATES = ["2030-01-01", "2030-02-02", "2030-03-03", "2030-04-04"]
# table -> column -> (Capsule field, values); the edits the model makes
EDITS = {
    "parties": {"about": ("about", TEXTS), "job_title": ("jobTitle", TEXTS)},
    "tasks": {"detail": ("detail", TEXTS), "due_on": ("dueOn", DATES)},
}
OBJECTS = [BY_TABLE[name] for name in EDITS]
PATHS = {"parties": ("/parties", "party"), "tasks": ("/tasks", "task")}
TABLES = st.sampled_from(sorted(EDITS))
FIELD = st.integers(0, 1)
VALUE = st.integers(0, 3)
NAMES = st.sampled_from(["Ada", "Ben", "Cat"])


def edit(table: str, field: int, value: int) -> tuple[str, str, object]:
    """(column, Capsule field, value) of the field-th edit of `table`."""
    column = sorted(EDITS[table])[field]
    name, values = EDITS[table][column]
    return column, name, values[value]


class SyncMachine(RuleBasedStateMachine):
    @initialize(last=st.sampled_from(["capsule", "database"]))
    def start(self, last):
        postgres_reachable()
        self.last_rule = last  # every example ends with a sync under this rule (see teardown)
        self.sb = Sandbox(token=TOKEN, scale=3, seed=11).start()
        self.api = CapsuleSession({"access_token": TOKEN, "api_url": self.sb.url})
        self.db = SyncDB(f"sync_model_{uuid.uuid4().hex[:10]}")
        run_sync(self.sb, self.db.schema, objects=OBJECTS)
        self.base = {t: capsule_live(self.sb, t) for t in EDITS}
        self.logged = 0

    def teardown(self):
        if hasattr(self, "sb"):
            try:
                self.sync(self.last_rule)  # the edits since the last sync step: checked too
            finally:
                self.stop()

    def stop(self):
        self.sb.stop()
        self.db.conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.db.schema))
        )
        self.db.conn.close()

    # --- edits in Capsule, through its API ----------------------------------------------------

    def editable(self, table: str) -> list[int]:
        """The records the model edits: every party; tasks linked to nothing, since deleting a
        party in Capsule deletes its tasks too, which would turn an edit of a task in the
        database into a conflict no model of the two sides alone foresees."""
        if table == "parties":
            return sorted(capsule_live(self.sb, table))
        tasks = self.sb.state()["tasks"]
        return sorted(
            t["id"] for t in tasks if not (t.get("party") or t.get("opportunity") or t.get("kase"))
        )

    def pick_capsule(self, table: str, i: int) -> int | None:
        ids = self.editable(table)
        return ids[i % len(ids)] if ids else None

    def put(self, table: str, capsule_id: int, name: str, value: object) -> None:
        path, item = PATHS[table]
        self.api.call("PUT", f"{path}/{capsule_id}", json_body={item: {name: value}})

    @rule(table=TABLES, i=st.integers(0, 20), field=FIELD, value=VALUE)
    def edit_in_capsule(self, table, i, field, value):
        record = self.pick_capsule(table, i)
        if record is not None:
            _, name, new = edit(table, field, value)
            self.put(table, record, name, new)

    @rule(table=TABLES, first=NAMES)
    def create_in_capsule(self, table, first):
        path, item = PATHS[table]
        body = (
            {"type": "person", "firstName": first, "lastName": "Capsule"}
            if table == "parties"
            else {"description": f"Call {first}", "dueOn": DATES[0]}
        )
        self.api.call("POST", path, json_body={item: body})

    @rule(table=TABLES, i=st.integers(0, 20))
    def delete_in_capsule(self, table, i):
        record = self.pick_capsule(table, i)
        if record is not None:
            self.api.call("DELETE", f"{PATHS[table][0]}/{record}")

    # --- edits in the database, through SQL ---------------------------------------------------

    def pick_row(self, table: str, i: int) -> int | None:
        # In Capsule's order (by id), new rows last: a small `i` picks the same record both sides.
        editable = set(self.editable(table))
        rows = sorted(
            (
                r
                for r in self.db.select(table, "NOT deleted")
                if r["capsule_id"] is None or r["capsule_id"] in editable
            ),
            key=lambda r: (r["capsule_id"] is None, r["capsule_id"] or 0, r["row_id"]),
        )
        return rows[i % len(rows)]["row_id"] if rows else None

    @rule(table=TABLES, i=st.integers(0, 20), field=FIELD, value=VALUE)
    def edit_in_database(self, table, i, field, value):
        row = self.pick_row(table, i)
        if row is not None:
            column, _, new = edit(table, field, value)
            self.db.conn.execute(
                sql.SQL("UPDATE {} SET {} = %s WHERE row_id = %s").format(
                    self.db.table(table), sql.Identifier(column)
                ),
                [new, row],
            )

    @rule(table=TABLES, first=NAMES)
    def insert_in_database(self, table, first):
        if table == "parties":
            self.db.insert(table, type="person", first_name=first, last_name="Database")
        else:
            self.db.insert(table, description=f"Visit {first}", due_on=DATES[1])

    @rule(table=TABLES, i=st.integers(0, 20), hard=st.booleans())
    def delete_in_database(self, table, i, hard):
        row = self.pick_row(table, i)
        if row is not None:
            statement = (
                "DELETE FROM {} WHERE row_id = %s"
                if hard
                else "UPDATE {} SET deleted = true WHERE row_id = %s"
            )
            self.db.conn.execute(sql.SQL(statement).format(self.db.table(table)), [row])

    @rule(
        table=TABLES,
        i=st.integers(0, 20),
        field=FIELD,
        in_capsule=VALUE,
        in_database=VALUE,
        delete=st.sampled_from([None, "capsule", "database"]),
    )
    def edit_one_record_on_both_sides(self, table, i, field, in_capsule, in_database, delete):
        """The same record on both sides: a conflict when the values differ, or a deletion
        against an edit."""
        record = self.pick_capsule(table, i)
        rows = self.db.select(table, f"NOT deleted AND capsule_id = {record or 0}")
        if record is None or not rows:
            return
        column, name, _ = edit(table, field, 0)
        if delete == "capsule":
            self.api.call("DELETE", f"{PATHS[table][0]}/{record}")
        else:
            self.put(table, record, name, edit(table, field, in_capsule)[2])
        if delete == "database":
            self.db.delete(table, record)
        else:
            self.db.update(table, record, **{column: edit(table, field, in_database)[2]})

    # --- the sync -----------------------------------------------------------------------------

    def expected_conflicts(self, table: str, winner: str) -> dict[tuple[int, str], object]:
        """(capsule_id, field) -> the value the rule keeps, from both sides as they are now."""
        capsule = capsule_live(self.sb, table)
        database = self.db.live_with_ids(table)
        out = {}
        for cid, base in self.base[table].items():
            c, d = capsule.get(cid), database.get(cid)
            if c in (base, d) or d == base:
                continue
            if c is None or d is None:
                out[cid, RECORD] = c if winner == "capsule" else d
                continue
            for column in EDITS[table]:
                if (
                    c[column] != base[column]
                    and d[column] != base[column]
                    and c[column] != d[column]
                ):
                    out[cid, column] = c[column] if winner == "capsule" else d[column]
        return out

    @rule(conflict=st.sampled_from(["capsule", "database"]))
    def sync(self, conflict):
        expected = {t: self.expected_conflicts(t, conflict) for t in EDITS}
        run_sync(self.sb, self.db.schema, conflict=conflict, objects=OBJECTS)
        logged = self.db.conflicts()[self.logged :]
        self.logged += len(logged)
        assert all(c["winner"] == conflict for c in logged)
        for table in EDITS:
            capsule = capsule_live(self.sb, table)
            assert self.db.live(table) == capsule, table
            found = {(c["capsule_id"], c["field"]) for c in logged if c["object"] == table}
            assert found == set(expected[table]), table
            for (cid, field), value in expected[table].items():
                if field != RECORD:
                    assert capsule[cid][field] == value, (table, cid, field)
                elif value is None:
                    assert cid not in capsule  # the deletion won
            self.base[table] = capsule
        # A second sync with no edits in between writes nothing on either side.
        self.sb.reset_requests()
        quiet = run_sync(self.sb, self.db.schema, conflict=conflict, objects=OBJECTS)
        assert self.sb.requests()["writes"] == 0
        assert sum(c.writes for c in quiet.counts.values()) == 0, quiet.counts

    @invariant()
    def ids_are_unique(self):
        if hasattr(self, "db"):
            for table in EDITS:
                ids = [r["capsule_id"] for r in self.db.select(table) if r["capsule_id"]]
                assert len(ids) == len(set(ids)), table


SyncMachine.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSyncModel = SyncMachine.TestCase
