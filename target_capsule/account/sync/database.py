"""The PostgreSQL side of `capsule sync`: the synced tables and the sync's own state tables.

Synced tables (one per object, in the sync schema) hold `row_id` (the database's own key),
`capsule_id` (NULL until the row exists in Capsule; the sync writes it back), one column per
synced field, `deleted` (the tombstone: set it to true to delete the record in Capsule; a record
deleted in Capsule is marked the same way, and the row stays) and `updated_at` (kept by a
trigger; the `newest` conflict rule compares it with Capsule's `updatedAt`).

State tables, written in the same transactions as the rows they describe, so a killed sync leaves
them true:
- `_sync_base`: per record, the values both sides held after the last sync. A side whose values
  differ from the base changed since; a value the sync wrote is in the base, so it is no change.
- `_sync_journal`: Capsule writes announced before they are sent (a create, an update, a
  delete). The next run finishes or matches each one before it reads anything.
- `_sync_points`: per object, the Capsule time the next run reads changes from.
- `_sync_conflicts`: every conflict, with the values of both sides, the rule and the winner.
- `_sync_account`: the Capsule account the schema is synced with; another one is refused.
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from target_capsule.account.sync.objects import OBJECTS, SQL_TYPES, SyncObject, Values, normalise

if t.TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterator


LOCK_TRIES, LOCK_WAIT = 10, 0.5  # tries of the schema's lock, seconds between them


class SyncBusyError(RuntimeError):
    """Another sync holds this schema."""


class SchemaAccountError(RuntimeError):
    """The schema was synced with another Capsule account."""


@dataclasses.dataclass
class Row:
    """One row of a synced table."""

    row_id: int
    capsule_id: int | None
    values: Values
    deleted: bool
    updated_at: dt.datetime


@dataclasses.dataclass
class Pending:
    """One journal line: a Capsule write announced and not yet known to be done."""

    id: int
    table: str
    op: str  # create, update, delete
    row_id: int | None
    capsule_id: int | None
    values: Values
    mark: str  # Capsule time just before the write (for finding a create)
    # An update's Capsule values when it was announced (None in a journal of an older version):
    # a field found changed from them and not to `values` was edited in Capsule since.
    before: Values | None = None


class Database:
    """A connection to the sync schema (autocommit off: every change is one transaction)."""

    def __init__(self, conninfo: str, schema: str) -> None:
        """Connect (libpq's PG* variables fill what `conninfo` leaves out) and lock the schema."""
        self.schema = schema
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self._lock_key = sql.Literal(f"capsule-sync:{schema}")
        lock = sql.SQL("SELECT pg_try_advisory_lock(hashtext({}))").format(self._lock_key)
        # A killed run's server process lets go of its lock a moment after the kill: wait a little.
        for attempt in range(LOCK_TRIES):
            row = self.conn.execute(lock).fetchone()
            if row and row[0]:
                return
            if attempt + 1 < LOCK_TRIES:
                time.sleep(LOCK_WAIT)
        self.conn.close()
        raise SyncBusyError(f"another capsule sync is running on schema {schema}; try again later")

    def close(self) -> None:
        """Let go of the lock, then close the connection."""
        if not self.conn.closed:
            try:
                unlock = sql.SQL("SELECT pg_advisory_unlock(hashtext({}))")
                self.conn.execute(unlock.format(self._lock_key))
            except psycopg.Error:
                pass  # the lock goes with the connection anyway
        self.conn.close()

    def _name(self, table: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(table))

    @property
    def transaction(self) -> t.Callable[[], t.ContextManager[t.Any]]:
        """One transaction: everything inside commits together or not at all."""
        return self.conn.transaction

    # --- schema -------------------------------------------------------------------------------

    def prepare(self, objects: t.Sequence[SyncObject] = OBJECTS) -> None:
        """Create the schema, the synced tables and the state tables if missing."""
        s = sql.Identifier(self.schema)
        with self.transaction():
            self.conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
            self.conn.execute(
                sql.SQL(
                    "CREATE OR REPLACE FUNCTION {}.touch_updated_at() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$"
                ).format(s)
            )
            for obj in objects:
                columns = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(f.column), sql.SQL(SQL_TYPES[f.kind]))
                    for f in obj.fields
                )
                table = self._name(obj.table)
                self.conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (row_id bigserial PRIMARY KEY, "
                        "capsule_id bigint UNIQUE, {}, deleted boolean NOT NULL DEFAULT false, "
                        "updated_at timestamptz NOT NULL DEFAULT now())"
                    ).format(table, columns)
                )
                self.conn.execute(
                    sql.SQL(
                        "CREATE OR REPLACE TRIGGER touch_updated_at BEFORE UPDATE ON {} "
                        "FOR EACH ROW EXECUTE FUNCTION {}.touch_updated_at()"
                    ).format(table, s)
                )
            for state_table, ddl in zip(
                ("_sync_base", "_sync_journal", "_sync_points", "_sync_conflicts"),
                (
                    "CREATE TABLE IF NOT EXISTS {} (object text, capsule_id bigint, "
                    "row_id bigint, vals jsonb NOT NULL, PRIMARY KEY (object, capsule_id))",
                    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
                    "object text NOT NULL, op text NOT NULL, row_id bigint, capsule_id bigint, "
                    "vals jsonb, mark text)",
                    "CREATE TABLE IF NOT EXISTS {} (object text PRIMARY KEY, since text NOT NULL)",
                    "CREATE TABLE IF NOT EXISTS {} (at timestamptz NOT NULL DEFAULT now(), "
                    "object text NOT NULL, capsule_id bigint, field text NOT NULL, "
                    "capsule_value jsonb, database_value jsonb, rule text NOT NULL, "
                    "winner text NOT NULL)",
                ),
                strict=True,
            ):
                self.conn.execute(sql.SQL(ddl).format(self._name(state_table)))
            # Added after the first release of the schema: a journal made before lacks it.
            self.conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS before jsonb").format(
                    self._name("_sync_journal")
                )
            )

    def bind(self, account: str) -> None:
        """Tie the schema to one Capsule account on its first run; refuse any other after."""
        table = self._name("_sync_account")
        with self.transaction():
            schema = sql.Identifier(self.schema)
            self.conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            self.conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (account text NOT NULL)").format(table)
            )
            row = self.conn.execute(sql.SQL("SELECT account FROM {}").format(table)).fetchone()
            if row is None:
                self.conn.execute(
                    sql.SQL("INSERT INTO {} (account) VALUES (%s)").format(table), (account,)
                )
            elif row[0] != account:
                raise SchemaAccountError(
                    f"schema {self.schema} is synced with account {row[0]}, not {account} (the "
                    "token's); sync this account into another schema"
                )

    # --- reads --------------------------------------------------------------------------------

    def rows(self, obj: SyncObject) -> list[Row]:
        """Every row of the object's table."""
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in obj.columns)
        query = sql.SQL(
            "SELECT row_id, capsule_id, deleted, updated_at, {} FROM {} ORDER BY row_id"
        ).format(columns, self._name(obj.table))
        out = []
        for row_id, capsule_id, deleted, updated_at, *values in self.conn.execute(query):
            out.append(
                Row(
                    row_id,
                    capsule_id,
                    {
                        f.column: normalise(f.kind, v)
                        for f, v in zip(obj.fields, values, strict=True)
                    },
                    deleted,
                    updated_at,
                )
            )
        return out

    def base(self, obj: SyncObject) -> dict[int, tuple[int | None, Values]]:
        """capsule_id -> (row_id, values both sides held after the last sync)."""
        query = sql.SQL("SELECT capsule_id, row_id, vals FROM {} WHERE object = %s").format(
            self._name("_sync_base")
        )
        return {cid: (rid, vals) for cid, rid, vals in self.conn.execute(query, (obj.table,))}

    def since(self, obj: SyncObject) -> str | None:
        """Where the next read of Capsule starts (None: never synced, read everything)."""
        query = sql.SQL("SELECT since FROM {} WHERE object = %s").format(self._name("_sync_points"))
        row = self.conn.execute(query, (obj.table,)).fetchone()
        return row[0] if row else None

    def journal(self, obj: SyncObject) -> list[Pending]:
        """The Capsule writes of this object that a killed run announced."""
        query = sql.SQL(
            "SELECT id, op, row_id, capsule_id, vals, mark, before FROM {} "
            "WHERE object = %s ORDER BY id"
        ).format(self._name("_sync_journal"))
        return [
            Pending(i, obj.table, op, rid, cid, vals or {}, mark or "", before)
            for i, op, rid, cid, vals, mark, before in self.conn.execute(query, (obj.table,))
        ]

    def conflicts(self) -> list[dict]:
        """Every logged conflict, oldest first."""
        query = sql.SQL(
            "SELECT object, capsule_id, field, capsule_value, database_value, rule, winner "
            "FROM {} ORDER BY at, object, capsule_id, field"
        ).format(self._name("_sync_conflicts"))
        keys = ("object", "capsule_id", "field", "capsule", "database", "rule", "winner")
        return [dict(zip(keys, r, strict=True)) for r in self.conn.execute(query)]

    # --- writes (call inside `transaction()`) ------------------------------------------------

    def insert_row(self, obj: SyncObject, capsule_id: int, values: Values) -> int:
        """A record new in Capsule: a new row with its id; its row_id."""
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in ["capsule_id", *obj.columns])
        marks = sql.SQL(", ").join(sql.Placeholder() for _ in range(len(obj.columns) + 1))
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING row_id").format(
            self._name(obj.table), columns, marks
        )
        row = self.conn.execute(query, [capsule_id, *(values[c] for c in obj.columns)]).fetchone()
        assert row is not None
        return int(row[0])

    def update_row(self, obj: SyncObject, row_id: int, **changes: t.Any) -> None:  # noqa: ANN401
        """Set columns of one row (synced values, `capsule_id` or `deleted`)."""
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in changes
        )
        query = sql.SQL("UPDATE {} SET {} WHERE row_id = %s").format(
            self._name(obj.table), assignments
        )
        self.conn.execute(query, [*changes.values(), row_id])

    def set_base(
        self, obj: SyncObject, capsule_id: int, row_id: int | None, values: Values
    ) -> None:
        """Record what both sides hold now."""
        query = sql.SQL(
            "INSERT INTO {} (object, capsule_id, row_id, vals) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (object, capsule_id) DO UPDATE SET row_id = EXCLUDED.row_id, "
            "vals = EXCLUDED.vals"
        ).format(self._name("_sync_base"))
        self.conn.execute(query, (obj.table, capsule_id, row_id, Jsonb(values)))

    def drop_base(self, obj: SyncObject, capsule_id: int) -> None:
        """The record is gone from both sides."""
        query = sql.SQL("DELETE FROM {} WHERE object = %s AND capsule_id = %s").format(
            self._name("_sync_base")
        )
        self.conn.execute(query, (obj.table, capsule_id))

    def announce(
        self,
        obj: SyncObject,
        op: str,
        *,
        row_id: int | None = None,
        capsule_id: int | None = None,
        values: Values | None = None,
        mark: str = "",
        before: Values | None = None,
    ) -> int:
        """Journal a Capsule write before it is sent; its journal id.

        `before`: an update's Capsule values at this moment, so that a replay after a kill can
        tell a field its PUT never reached from one someone edited in Capsule since.
        """
        query = sql.SQL(
            "INSERT INTO {} (object, op, row_id, capsule_id, vals, mark, before) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
        ).format(self._name("_sync_journal"))
        held = Jsonb(before) if before is not None else None
        row = self.conn.execute(
            query, (obj.table, op, row_id, capsule_id, Jsonb(values or {}), mark, held)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def settle(self, journal_id: int) -> None:
        """The announced write is done (or known not to have happened)."""
        query = sql.SQL("DELETE FROM {} WHERE id = %s").format(self._name("_sync_journal"))
        self.conn.execute(query, (journal_id,))

    def set_since(self, obj: SyncObject, since: str) -> None:
        """Where the next run reads Capsule from."""
        query = sql.SQL(
            "INSERT INTO {} (object, since) VALUES (%s, %s) "
            "ON CONFLICT (object) DO UPDATE SET since = EXCLUDED.since"
        ).format(self._name("_sync_points"))
        self.conn.execute(query, (obj.table, since))

    def log_conflict(
        self,
        obj: SyncObject,
        capsule_id: int | None,
        field: str,
        capsule_value: object,
        database_value: object,
        rule: str,
        winner: str,
    ) -> None:
        """One conflict with both values."""
        query = sql.SQL(
            "INSERT INTO {} (object, capsule_id, field, capsule_value, database_value, rule, "
            "winner) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        ).format(self._name("_sync_conflicts"))
        self.conn.execute(
            query,
            (
                obj.table,
                capsule_id,
                field,
                Jsonb(capsule_value),
                Jsonb(database_value),
                rule,
                winner,
            ),
        )


def iter_changes(before: Values, after: Values) -> Iterator[str]:
    """The columns whose values differ."""
    for column in after:
        if before.get(column) != after.get(column):
            yield column
