"""The merge of `capsule sync`: compare each side with the base, move changes, resolve conflicts.

Three values per record: the base (what both sides held after the last sync), Capsule's and the
database's. A side changed when its value differs from the base; a value the sync wrote is in the
base, so it never comes back as a change (no echo). A field changed on both sides to different
values is a conflict: the rule (`capsule`, `database` or `newest`: the later of Capsule's
`updatedAt` and the row's `updated_at`, Capsule on a tie) picks the winner, and the conflict is
logged with both values. A record deleted on one side and edited on the other is a conflict of
the whole record, resolved the same way (an edit that wins over a deletion recreates the record).

Crash consistency: every database change and the base it implies commit in one transaction; a
Capsule write is journaled in that transaction before it is sent, and settled after. A run
replays or matches what the journal holds before it reads anything, and the read point moves only
after a complete pass, so a killed sync reruns to the same end state with no duplicate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import typing as t

from tap_capsule.api_client import CapsuleAPIError

if t.TYPE_CHECKING:
    from target_capsule.account.sync.capsule import CapsuleSide
    from target_capsule.account.sync.database import Database, Pending, Row
    from target_capsule.account.sync.objects import SyncObject, Values

logger = logging.getLogger("capsule.sync")

CAPSULE, DATABASE, NEWEST = "capsule", "database", "newest"
CONFLICT_RULES = (CAPSULE, DATABASE, NEWEST)
RECORD = "(record)"  # the field name of a deletion-against-edit conflict


@dataclasses.dataclass
class Counts:
    """What one run did for one object."""

    capsule_created: int = 0
    capsule_updated: int = 0
    capsule_deleted: int = 0
    database_inserted: int = 0
    database_updated: int = 0
    database_deleted: int = 0
    conflicts: int = 0
    rejected: int = 0

    def line(self, table: str) -> str:
        """One summary line."""
        return (
            f"{table}: to Capsule {self.capsule_created} created, {self.capsule_updated} "
            f"updated, {self.capsule_deleted} deleted; to the database {self.database_inserted} "
            f"inserted, {self.database_updated} updated, {self.database_deleted} deleted; "
            f"{self.conflicts} conflict(s), {self.rejected} rejected"
        )

    @property
    def writes(self) -> int:
        """Writes on both sides."""
        return sum(dataclasses.astuple(self)[:6])


@dataclasses.dataclass
class Conflict:
    """One field changed on both sides to different values."""

    field: str
    capsule: t.Any
    database: t.Any
    winner: str


def parse_time(value: object) -> dt.datetime | None:
    """Capsule's ISO 8601 time (or a datetime) as an aware datetime."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, str) and value:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def pick(rule: str, capsule_time: dt.datetime | None, database_time: dt.datetime | None) -> str:
    """The winning side of a conflict under `rule`."""
    if rule == NEWEST:
        if capsule_time is not None and database_time is not None and database_time > capsule_time:
            return DATABASE
        return CAPSULE
    return rule


def merge(
    obj: SyncObject,
    base: Values,
    capsule: Values | None,
    database: Values | None,
    rule: str,
    times: tuple[dt.datetime | None, dt.datetime | None],
) -> tuple[Values | None, list[Conflict]]:
    """The values both sides should hold (None: deleted), and the conflicts on the way."""
    if capsule == database:
        return capsule, []
    if database == base:
        return capsule, []
    if capsule == base:
        if database is not None:
            # Capsule takes a create-only field (a party's type, a note's link) at creation only.
            fixed = {f.column: capsule[f.column] for f in obj.fields if f.create_only}
            return {**database, **fixed}, []
        return database, []
    winner = pick(rule, *times)
    if capsule is None or database is None:
        conflict = Conflict(
            RECORD,
            "deleted" if capsule is None else capsule,
            "deleted" if database is None else database,
            winner,
        )
        return (capsule if winner == CAPSULE else database), [conflict]
    target: Values = {}
    conflicts = []
    for f in obj.fields:
        c, d, b = capsule[f.column], database[f.column], base.get(f.column)
        if c == d or d == b or f.create_only:
            target[f.column] = c
        elif c == b:
            target[f.column] = d
        else:
            target[f.column] = c if winner == CAPSULE else d
            conflicts.append(Conflict(f.column, c, d, winner))
    return target, conflicts


class Sync:
    """One run over the chosen objects."""

    def __init__(self, database: Database, capsule: CapsuleSide, conflict: str) -> None:
        """Sync `database` and `capsule`, resolving conflicts by the rule `conflict`."""
        self.db = database
        self.capsule = capsule
        self.rule = conflict
        self.counts: dict[str, Counts] = {}
        # Called after every write on either side; tests stop the run there.
        self.after_write: t.Callable[[], None] = lambda: None

    def run(self, objects: t.Sequence[SyncObject]) -> dict[str, Counts]:
        """Sync every object, parties first (the others refer to them)."""
        self.db.prepare(objects)
        for obj in objects:
            self.counts[obj.table] = Counts()
            self.sync_object(obj)
            logger.info(self.counts[obj.table].line(obj.table))
        return self.counts

    # --- one object ---------------------------------------------------------------------------

    def sync_object(self, obj: SyncObject) -> None:
        """Finish the journal, read both sides, move what changed, then move the read point."""
        self.finish_journal(obj)
        seen = self.capsule.read(obj, self.db.since(obj))
        rows = self.db.rows(obj)
        base = self.db.base(obj)
        by_id = {r.capsule_id: r for r in rows if r.capsule_id is not None}
        self.recreated: set[int] = set()  # rows the base pass already sent to Capsule
        failed = False
        for capsule_id, (_, base_values) in base.items():
            record = seen.records.get(capsule_id)
            if capsule_id in seen.gone or (seen.full and record is None):
                capsule_values, capsule_time = None, parse_time(seen.gone.get(capsule_id))
            elif record is not None:
                capsule_values = obj.from_capsule(record)
                capsule_time = parse_time(record.get("updatedAt"))
            else:
                capsule_values, capsule_time = base_values, None
            row = by_id.get(capsule_id)
            database_values = row.values if row is not None and not row.deleted else None
            database_time = row.updated_at if row is not None else None
            failed |= not self.reconcile(
                obj,
                capsule_id,
                base_values,
                (capsule_values, capsule_time),
                (row, database_values, database_time),
            )
        for capsule_id, record in seen.records.items():
            if capsule_id not in base:
                self.arrived(obj, capsule_id, record, by_id.get(capsule_id))
        taken = set(base) | set(by_id) | set(seen.records)
        for row in rows:
            if row.capsule_id is None and not row.deleted and row.row_id not in self.recreated:
                failed |= not self.create(obj, row, taken)
        if not failed:
            with self.db.transaction():
                self.db.set_since(obj, seen.next_since)

    def finish_journal(self, obj: SyncObject) -> None:
        """Replay or match the Capsule writes a killed run announced."""
        pending = self.db.journal(obj)
        if not pending:
            return
        base = self.db.base(obj)
        taken = set(base) | {r.capsule_id for r in self.db.rows(obj) if r.capsule_id}
        for p in pending:
            if p.op == "create" and p.row_id is not None:
                found = self.capsule.find_created(obj, p.values, p.mark, taken)
                with self.db.transaction():
                    if found is not None:
                        taken.add(found)
                        logger.info(
                            "%s row %s: matched to %s, created before a stop",
                            obj.table,
                            p.row_id,
                            found,
                        )
                        self.db.update_row(obj, p.row_id, capsule_id=found)
                        self.db.set_base(obj, found, p.row_id, p.values)
                    self.db.settle(p.id)
            elif p.op == "update" and p.capsule_id is not None:
                record = self.capsule.get(obj, p.capsule_id)
                held = obj.from_capsule(record) if record is not None else None
                try:
                    if held is not None:
                        wanted = still_to_send(obj, p, held)
                        self.capsule.update(obj, p.capsule_id, {**held, **wanted}, held)
                except CapsuleAPIError as exc:
                    self.reject(obj, f"capsule_id {p.capsule_id}", str(exc))
                    with self.db.transaction():  # Capsule kept its values: so does the base
                        row_id = base.get(p.capsule_id, (None, {}))[0]
                        self.db.set_base(obj, p.capsule_id, row_id, {**p.values, **(held or {})})
                        self.db.settle(p.id)
                    continue
                with self.db.transaction():
                    self.db.settle(p.id)
            elif p.op == "delete" and p.capsule_id is not None:
                self.capsule.delete(obj, p.capsule_id)
                with self.db.transaction():
                    self.db.settle(p.id)

    # --- the cases ----------------------------------------------------------------------------

    def reconcile(
        self,
        obj: SyncObject,
        capsule_id: int,
        base: Values,
        capsule_side: tuple[Values | None, dt.datetime | None],
        database_side: tuple[Row | None, Values | None, dt.datetime | None],
    ) -> bool:
        """A record both sides knew at the last sync; False when a write was rejected."""
        capsule_values, capsule_time = capsule_side
        row, database_values, database_time = database_side
        if database_values is None and database_time is None:
            database_time = dt.datetime.now(dt.timezone.utc)  # a row removed outright: now
        if capsule_values is None and capsule_time is None:
            capsule_time = dt.datetime.now(dt.timezone.utc)
        target, conflicts = merge(
            obj, base, capsule_values, database_values, self.rule, (capsule_time, database_time)
        )
        if target == capsule_values == database_values == base and not conflicts:
            return True
        counts = self.counts[obj.table]
        if target is None:
            with self.db.transaction():
                self.log_conflicts(obj, capsule_id, conflicts)
                if row is not None and not row.deleted:
                    self.db.update_row(obj, row.row_id, deleted=True)
                    counts.database_deleted += 1
                self.db.drop_base(obj, capsule_id)
                journal = (
                    self.db.announce(obj, "delete", capsule_id=capsule_id)
                    if capsule_values is not None
                    else None
                )
            self.after_write()
            if journal is not None:
                self.capsule.delete(obj, capsule_id)
                counts.capsule_deleted += 1
                self.after_write()
                with self.db.transaction():
                    self.db.settle(journal)
            return True
        if capsule_values is None:  # deleted in Capsule, the database's edit won: recreate
            assert row is not None
            with self.db.transaction():
                self.log_conflicts(obj, capsule_id, conflicts)
                self.db.drop_base(obj, capsule_id)
                self.db.update_row(obj, row.row_id, capsule_id=None, **target)
            self.after_write()
            row.capsule_id, row.values = None, target
            self.recreated.add(row.row_id)
            return self.create(obj, row, set())
        if database_values is None:  # deleted in the database, Capsule's edit won: restore
            with self.db.transaction():
                self.log_conflicts(obj, capsule_id, conflicts)
                if row is not None:
                    self.db.update_row(obj, row.row_id, deleted=False, **target)
                    row_id = row.row_id
                else:
                    row_id = self.db.insert_row(obj, capsule_id, target)
                self.db.set_base(obj, capsule_id, row_id, target)
                counts.database_inserted += 1
            self.after_write()
            return True
        assert row is not None
        if target != capsule_values:
            changed = {c: v for c, v in target.items() if capsule_values.get(c) != v}
            try:
                self.capsule.check_rules(obj, "UPDATE", obj.body(changed, create=False))
            except ValueError as exc:
                self.reject(obj, f"capsule_id {capsule_id}", str(exc))
                return False
        with self.db.transaction():
            self.log_conflicts(obj, capsule_id, conflicts)
            database_changes = {c: v for c, v in target.items() if database_values.get(c) != v}
            if database_changes:
                self.db.update_row(obj, row.row_id, **database_changes)
                counts.database_updated += 1
            self.db.set_base(obj, capsule_id, row.row_id, target)
            journal = (
                self.db.announce(
                    obj, "update", capsule_id=capsule_id, values=target, before=capsule_values
                )
                if target != capsule_values
                else None
            )
        self.after_write()
        if journal is None:
            return True
        try:
            answer = self.capsule.update(obj, capsule_id, target, capsule_values)
        except CapsuleAPIError as exc:
            with self.db.transaction():  # Capsule kept its values: so does the base
                self.db.set_base(obj, capsule_id, row.row_id, {**target, **capsule_values})
                self.db.settle(journal)
            self.reject(obj, f"capsule_id {capsule_id}", str(exc))
            return False
        counts.capsule_updated += 1
        self.after_write()
        with self.db.transaction():
            self.db.settle(journal)
            if answer is not None:
                self.adopt(obj, capsule_id, row.row_id, target, obj.from_capsule(answer))
        return True

    def arrived(
        self, obj: SyncObject, capsule_id: int, record: t.Mapping[str, t.Any], row: Row | None
    ) -> None:
        """A record new in Capsule (or never synced): into the database, with its id."""
        if row is not None and row.deleted:
            return  # deleted in Capsule before, and marked so here
        values = obj.from_capsule(record)
        counts = self.counts[obj.table]
        with self.db.transaction():
            if row is None:
                row_id = self.db.insert_row(obj, capsule_id, values)
                counts.database_inserted += 1
            else:
                row_id = row.row_id
                if row.values != values:
                    self.db.update_row(obj, row_id, **values)
                    counts.database_updated += 1
            self.db.set_base(obj, capsule_id, row_id, values)
        self.after_write()

    def create(self, obj: SyncObject, row: Row, taken: set[t.Any]) -> bool:
        """A row new in the database: create it in Capsule and write its id back."""
        try:
            self.capsule.check_rules(obj, "INSERT", obj.body(row.values, create=True))
        except ValueError as exc:
            self.reject(obj, f"row_id {row.row_id}", str(exc))
            return False
        mark = self.capsule.now_mark()
        with self.db.transaction():
            journal = self.db.announce(
                obj, "create", row_id=row.row_id, values=row.values, mark=mark
            )
        self.after_write()
        try:
            capsule_id, record = self.capsule.create(obj, row.values, mark, taken)
        except CapsuleAPIError as exc:
            with self.db.transaction():
                self.db.settle(journal)
            self.reject(obj, f"row_id {row.row_id}", str(exc))
            return False
        self.counts[obj.table].capsule_created += 1
        self.after_write()
        taken.add(capsule_id)
        row.capsule_id = capsule_id  # the caller's list of rows holds this row too
        with self.db.transaction():
            self.db.update_row(obj, row.row_id, capsule_id=capsule_id)
            self.db.set_base(obj, capsule_id, row.row_id, row.values)
            self.db.settle(journal)
            if record:
                self.adopt(obj, capsule_id, row.row_id, row.values, obj.from_capsule(record))
        self.after_write()
        return True

    # --- helpers ------------------------------------------------------------------------------

    def adopt(
        self, obj: SyncObject, capsule_id: int, row_id: int, sent: Values, held: Values
    ) -> None:
        """Capsule stored other values than sent (it normalises some): both sides take them."""
        if held == sent:
            return
        self.db.update_row(obj, row_id, **{c: v for c, v in held.items() if sent.get(c) != v})
        self.db.set_base(obj, capsule_id, row_id, held)

    def log_conflicts(self, obj: SyncObject, capsule_id: int, conflicts: list[Conflict]) -> None:
        """Each conflict into the log and the conflicts table (inside the caller's transaction)."""
        for c in conflicts:
            self.counts[obj.table].conflicts += 1
            logger.warning(
                "conflict: %s %s %s: Capsule has %r, the database has %r; %s wins (rule %s)",
                obj.table,
                capsule_id,
                c.field,
                c.capsule,
                c.database,
                c.winner,
                self.rule,
            )
            self.db.log_conflict(
                obj, capsule_id, c.field, c.capsule, c.database, self.rule, c.winner
            )

    def reject(self, obj: SyncObject, which: str, reason: str) -> None:
        """A write Capsule's rules refuse: logged, and tried again next run."""
        self.counts[obj.table].rejected += 1
        logger.warning("rejected: %s %s: %s (kept; tried again next run)", obj.table, which, reason)


def still_to_send(obj: SyncObject, p: Pending, held: Values) -> Values:
    """The fields of a journaled update to send again: those Capsule still holds as before.

    A field that already holds the update's value was written (the answer was lost); one that
    holds neither value was edited in Capsule after the stop, and that later edit stays: the
    base already holds the update's value, so the read that follows sees Capsule's edit as a
    change in Capsule and carries it into the database. A journal line without its before
    values (an older version's) sends every field that differs, as that version did.
    """
    out: Values = {}
    for column, value in p.values.items():
        if held.get(column) == value:
            continue
        if p.before is None or held.get(column) == p.before.get(column):
            out[column] = value
        else:
            logger.info(
                "%s %s %s: edited in Capsule since a stopped sync; Capsule's value stays",
                obj.table,
                p.capsule_id,
                column,
            )
    return out
