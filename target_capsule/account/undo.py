"""`capsule undo`: revert one target-capsule run from its change log, newest change first.

It deletes what the run created, gives what the run updated its values from before, and recreates
what the run deleted (from the copy the change log keeps), pointing references at the recreated
records. Before each revert it reads the record: if someone changed what the run wrote since, the
record is skipped and reported, never overwritten. The undo keeps its own change log, written
ahead like the target's (so an undo can be undone), and an id map of recreated records, so an
undo run again after a kill recreates nothing twice.

Before touching anything it checks the whole log: every line names the account the configuration
writes to, and no line is malformed or contradicts another; else it refuses in one line. Pending
lines a killed run left are settled first (did the write reach Capsule?). A record is deleted
only if the line's run created it: a `pending` line written before the create proves the run sent
it, and the record's `createdAt` is not before that line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import typing as t
from pathlib import Path

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    AmbiguousWriteError,
    CapsuleAPIError,
    CapsuleError,
    CapsuleSession,
)
from tap_capsule.setting_names import account_config_problem
from target_capsule import natural_keys as nk
from target_capsule import settle
from target_capsule.account.cli import Parser, error, version
from target_capsule.account.refs import IdMap, positive_id
from target_capsule.account.revert import creation_body, differences, restore_body
from target_capsule.changelog import (
    APPLIED,
    PENDING,
    PLANNED,
    UNRESOLVED,
    ChangeLog,
    ChangeLogError,
    read,
)
from target_capsule.links import PEOPLE_KEY, link_unless_linked
from target_capsule.links import UNCHANGED as LINK_UNCHANGED
from target_capsule.lock import Lock, LockError, account_key
from target_capsule.lookups import Lookups
from target_capsule.payload import PayloadError, wrapped
from target_capsule.site import AccountMismatch, account_of, check_account, read_site
from target_capsule.values import ref_id
from target_capsule.writes import (
    CLOCK_MARGIN,
    GONE,
    Unresolved,
    capsule_time,
    check_created,
    delete,
    find_created,
    parse_time,
    write,
)

if t.TYPE_CHECKING:
    import argparse

INSERT, UPDATE, DELETE = cat.INSERT, cat.UPDATE, cat.DELETE
REVERTED, SKIPPED, ALREADY_GONE, UNCHANGED, FAILED = (
    "reverted",
    "skipped",
    "already_gone",
    "unchanged",
    "failed",
)

logger = logging.getLogger("capsule-undo")


@dataclasses.dataclass
class Outcome:
    """What happened to one change-log line."""

    seq: int
    stream: str
    operation: str
    id: t.Any
    outcome: str
    reason: str = ""


class Undo:
    """Reverts the lines of one run through the shared HTTP layer."""

    def __init__(self, session: CapsuleSession, changes: ChangeLog, ids: IdMap) -> None:
        """`changes` receives the undo's own writes; `ids` maps deleted ids to recreated ones."""
        self.session = session
        self.lookups = Lookups(session)
        self.changes = changes
        self.ids = ids
        self.outcomes: list[Outcome] = []

    def revert_all(self, lines: list[dict]) -> list[Outcome]:
        """Revert every line, newest first."""
        for line in reversed(lines):
            outcome = self.revert(line)
            self.outcomes.append(outcome)
            logger.info(
                "%s %s %s: %s%s",
                outcome.stream,
                outcome.operation,
                outcome.id,
                outcome.outcome,
                f" ({outcome.reason})" if outcome.reason else "",
            )
        return self.outcomes

    def revert(self, line: t.Mapping[str, t.Any]) -> Outcome:
        """One line: validated, then handed to the revert of its operation."""
        seq = int(line.get("seq") or 0)
        stream, operation = str(line.get("stream")), str(line.get("operation"))
        rid = line.get("id")
        done = Outcome(seq, stream, operation, rid, FAILED)
        if stream not in cat.BY_STREAM or operation not in cat.ALL_OPERATIONS:
            done.reason = f"unknown stream {stream!r} or operation {operation!r}"
            return done
        obj = cat.get(stream)
        status = line.get("status")
        if status not in (APPLIED, PENDING):
            done.outcome = UNCHANGED
            done.reason = f"the write was {status}: Capsule did not change"
            return done
        if status == PENDING and operation == INSERT and not obj.is_link:
            done.outcome = SKIPPED
            done.reason = (
                "the run was killed during this create, and a look found no single record it "
                "made; check Capsule"
            )
            return done
        try:
            if obj.is_link:
                return self.revert_link(obj, operation, line, done)
            if operation == DELETE:
                return self.recreate(obj, line, done)
            number = positive_id(rid)
            if number is None:
                done.reason = f"id {rid!r} is not a positive integer"
                return done
            if operation == INSERT:
                self.delete_created(obj, number, line, done)
            else:
                self.put_back(obj, number, line, done)
            if done.outcome in (REVERTED, ALREADY_GONE) and line.get("created_tags"):
                self.drop_created_tags(obj, line["created_tags"], done)
            return done
        except CapsuleAPIError as exc:
            done.reason = f"Capsule refused it: {exc.capsule_message}"
        except (AmbiguousWriteError, Unresolved) as exc:
            done.reason = f"{exc} Check this record in Capsule."
        return done

    # --- reads ----------------------------------------------------------------------------

    def current(self, obj: cat.CapsuleObject, rid: int) -> dict | None:
        """Capsule's copy now (a settings list is read once, other records one GET each)."""
        path = None if cat.path_fields(obj.path) else obj.path
        return self.lookups.current(obj, rid, path, obj.natural_keys)

    # --- one operation each ---------------------------------------------------------------

    def delete_created(
        self, obj: cat.CapsuleObject, rid: int, line: t.Mapping[str, t.Any], done: Outcome
    ) -> Outcome:
        """Undo an INSERT: delete the record, if it still holds what the run wrote."""
        current = self.current(obj, rid)
        if current is None:
            done.outcome = ALREADY_GONE
            return done
        created = parse_time(current.get("createdAt"))
        sent = parse_time(line.get("capsule_at"))
        if created is not None and (sent is None or created < sent - CLOCK_MARGIN):
            done.outcome = SKIPPED
            done.reason = (
                f"created at {current.get('createdAt')}, before the run sent its create: "
                "not a record the run created"
            )
            return done
        changed = differences(obj, line.get("written") or {}, current)
        if changed:
            done.outcome = SKIPPED
            done.reason = f"changed since the run: {', '.join(changed)}"
            return done
        with self.changes.writing(obj.stream, DELETE, rid, None, record=current) as entry:
            gone = delete(self.session, cat.fill_path(obj.single_path, {"id": rid}))
            if gone != GONE:
                self.changes.settle(entry, APPLIED)
        self.lookups.forget(obj, rid)
        done.outcome = ALREADY_GONE if gone == GONE else REVERTED
        return done

    def put_back(
        self, obj: cat.CapsuleObject, rid: int, line: t.Mapping[str, t.Any], done: Outcome
    ) -> Outcome:
        """Undo an UPDATE: write the before-values, if the record still holds what was written."""
        current = self.current(obj, rid)
        if current is None:
            done.outcome = SKIPPED
            done.reason = "the record no longer exists"
            return done
        written = line.get("written") or {}
        changed = differences(obj, written, current)
        if changed:
            done.outcome = SKIPPED
            done.reason = f"changed since the run: {', '.join(changed)}"
            return done
        # Before-values name records as they were: one the undo recreated has a new id now.
        before = self.ids.remap(line.get("before") or {})
        body = restore_body(obj, written, before, current)
        if not body:
            done.outcome = UNCHANGED
            return done
        self.put(obj, rid, body, current)
        done.outcome = REVERTED
        return done

    def put(self, obj: cat.CapsuleObject, rid: int, body: dict, current: dict) -> None:
        """PUT `body` on record `rid` through the one write path, logged ahead in the undo's log.

        A lost answer is followed by a re-read of the record, never by a blind second PUT.
        """
        before = {k: current.get(k) for k in body}
        with self.changes.writing(obj.stream, UPDATE, rid, body, before) as entry:
            written = settle.put(
                self.session, self.lookups, obj, rid, body, f"{obj.stream} undo of record {rid}"
            )
            self.changes.settle(entry, APPLIED)
        updated = written.found or (written.answer or {}).get(obj.item_key)
        if isinstance(updated, dict):
            self.lookups.remember(obj, obj.path, updated)

    def recreate(
        self, obj: cat.CapsuleObject, line: t.Mapping[str, t.Any], done: Outcome
    ) -> Outcome:
        """Undo a DELETE: create the record again from its copy, references remapped."""
        record = line.get("record")
        old = positive_id(line.get("id"))
        if not isinstance(record, dict) or old is None:
            done.outcome = SKIPPED
            done.reason = "the change log holds no copy of the deleted record"
            return done
        list_path = list_path_of(obj, self.ids.remap(record))
        if (obj.stream, str(old)) in self.ids.pending and list_path:
            self.resolve_pending(obj, old, list_path)  # a killed undo sent it already
        new = self.ids.get(obj.stream, old)
        if new is not None and self.current(obj, new) is not None:
            done.outcome = UNCHANGED
            done.reason = f"already recreated as {new}"
            return done
        if self.current(obj, old) is not None:
            done.outcome = SKIPPED
            done.reason = "the record exists again"
            return done
        try:
            body = creation_body(obj, self.ids.remap(record))
        except PayloadError as exc:
            done.outcome = SKIPPED
            done.reason = str(exc)
            return done
        path = cat.fill_path(obj.post_path, self.ids.remap(record))
        since = capsule_time(self.session)
        self.ids.mark_pending(obj.stream, old, body, since)
        try:
            with self.changes.writing(obj.stream, INSERT, None, body, list_path=list_path) as entry:
                written = write(
                    self.session,
                    "POST",
                    path,
                    wrapped(obj, body),
                    check=functools.partial(
                        check_created,
                        self.session,
                        obj,
                        list_path,
                        since,
                        nk.made_from(obj, obj.natural_keys, body),
                        self.ids.new_ids(obj.stream),
                    )
                    if list_path
                    else None,
                    what=f"{obj.stream} undo of the DELETE of record {old}",
                )
                created = written.found or (written.answer or {}).get(obj.item_key) or {}
                new = positive_id(created.get("id"))
                if new is None:
                    done.reason = "Capsule's answer carries no id"
                    return done
                self.ids.put(obj.stream, old, new)
                self.changes.settle(entry, APPLIED, new)
        except Unresolved as exc:
            done.reason = str(exc)
            return done
        self.lookups.remember(obj, obj.path, created)
        done.outcome = REVERTED
        done.reason = f"recreated as {new}"
        relinked = self.relink_people(obj, record, old, new)
        if relinked:
            done.reason += f"; {relinked} of its people linked to it again"
        return done

    def relink_people(self, obj: cat.CapsuleObject, record: dict, old: int, new: int) -> int:
        """The people of a recreated organisation: Capsule cleared their `organisation`.

        Each person the change log's copy names is linked to the new organisation, unless it
        was given another organisation since (then it is left as it is).
        """
        people = record.get(PEOPLE_KEY)
        if obj.stream != "parties" or not isinstance(people, list):
            return 0
        done = 0
        for person in people:
            rid = positive_id(self.ids.get(obj.stream, person) or person)
            current = self.current(obj, rid) if rid is not None else None
            if current is None or rid is None:
                continue
            organisation = current.get("organisation")
            if isinstance(organisation, dict) and organisation.get("id") not in (None, old):
                continue
            self.put(obj, rid, {"organisation": {"id": new}}, current)
            done += 1
        return done

    def resolve_pending(self, obj: cat.CapsuleObject, old: int, path: str) -> None:
        """A recreate a killed undo sent without seeing the answer: map what it made."""
        key = (obj.stream, str(old))
        body = self.ids.pending[key]
        found = find_created(
            self.session,
            obj,
            path,
            self.ids.since.get(key),
            nk.made_from(obj, obj.natural_keys, body),
            self.ids.new_ids(obj.stream),
        )
        if len(found) == 1 and positive_id(found[0].get("id")) is not None:
            self.ids.put(obj.stream, old, int(found[0]["id"]))
            logger.info("%s %s: found the record a killed undo recreated", obj.stream, old)

    def drop_created_tags(self, obj: cat.CapsuleObject, names: t.Any, done: Outcome) -> None:  # noqa: ANN401 - untrusted JSON
        """Delete the tag definitions that the reverted write made Capsule create."""
        if not obj.tags or not isinstance(names, list):
            return
        tags = cat.get(obj.tags)
        definitions = self.lookups.definitions(obj.tags)
        for name in names:
            wanted = str(name).strip().casefold()
            found = [d for d in definitions if str(d.get("name") or "").casefold() == wanted]
            rid = positive_id(found[0].get("id")) if found else None
            if rid is None:
                continue
            with self.changes.writing(tags.stream, DELETE, rid, None, record=found[0]) as entry:
                if delete(self.session, cat.fill_path(tags.single_path, {"id": rid})) != GONE:
                    self.changes.settle(entry, APPLIED)
            definitions.remove(found[0])
            done.reason = (done.reason + "; " if done.reason else "") + (
                f"deleted the tag {found[0].get('name')!r} the run created"
            )

    def revert_link(
        self, obj: cat.CapsuleObject, operation: str, line: t.Mapping[str, t.Any], done: Outcome
    ) -> Outcome:
        """Undo a link (additional party) INSERT by deleting it, a DELETE by linking again."""
        parent_key, child_key = obj.parent_key or "", obj.child_key or ""
        keys = self.ids.remap(line.get("keys") or {})
        parent, child = positive_id(keys.get(parent_key)), positive_id(keys.get(child_key))
        if parent is None or child is None:
            done.reason = f"{parent_key} and {child_key} must be positive integers"
            return done
        done.id = f"{parent}/{child}"
        ids = {parent_key: parent, child_key: child}
        linked = self.lookups.linked_ids(obj, parent)
        if operation == INSERT:
            if not linked or str(child) not in linked:
                done.outcome = ALREADY_GONE
                return done
            with self.changes.writing(obj.stream, DELETE, None, None, keys=ids) as entry:
                if delete(self.session, cat.fill_path(obj.single_path, ids)) != GONE:
                    self.changes.settle(entry, APPLIED)
            self.lookups.link_changed(obj, parent, child, linked=False)
        else:
            if linked is None:
                done.outcome = SKIPPED
                done.reason = f"{parent_key} {parent} no longer exists"
                return done

            outcome = link_unless_linked(
                self.session,
                self.lookups,
                obj,
                parent,
                child,
                what=f"{obj.stream} undo",
                around=self.changes.around_link(obj.stream, ids),
            )
            if outcome == LINK_UNCHANGED:
                done.outcome = UNCHANGED
                return done
        done.outcome = REVERTED
        return done


def list_path_of(obj: cat.CapsuleObject, record: t.Mapping[str, t.Any]) -> str | None:
    """Where a recreated record is looked for after a lost answer, or None (the record lacks it).

    A milestone is looked for in its pipeline's list, which its copy names as `pipeline`.
    """
    names = cat.path_fields(obj.path)
    if not names:
        return obj.path
    parent = cat.parent_of(obj)
    values = {n: record.get(n) for n in names}
    if parent is not None and obj.parent_key in values and not values[obj.parent_key]:
        values[obj.parent_key] = ref_id(record.get(parent.item_key))
    if any(positive_id(v) is None for v in values.values()):
        return None
    return cat.fill_path(obj.path, values)


def malformed(line: t.Mapping[str, t.Any]) -> str | None:
    """What is wrong with one change-log line (None: it can be undone as it says)."""
    stream, operation = line.get("stream"), line.get("operation")
    if stream not in cat.BY_STREAM or operation not in cat.ALL_OPERATIONS:
        return f"unknown stream {stream!r} or operation {operation!r}"
    obj = cat.get(str(stream))
    if operation not in obj.operations:
        return f"{stream} has no {operation}"
    status = line.get("status")
    if status not in (APPLIED, PENDING, UNRESOLVED, "failed"):
        return f"status {status!r}"
    if obj.is_link:
        keys = line.get("keys")
        if not isinstance(keys, dict) or any(
            positive_id(keys.get(k)) is None for k in (obj.parent_key, obj.child_key)
        ):
            return f"a link needs {obj.parent_key} and {obj.child_key} as positive ids"
        return None
    written, rid = line.get("written"), line.get("id")
    if operation == INSERT:
        if not isinstance(written, dict) or not written:
            return "an INSERT that wrote nothing"
        if status == APPLIED and positive_id(rid) is None:
            return f"an applied INSERT without a positive id ({rid!r})"
        if status == APPLIED and not line.get("ahead"):
            return "an INSERT with no pending line before it: nothing proves the run sent it"
    elif operation == UPDATE:
        if positive_id(rid) is None:
            return f"id {rid!r} is not a positive integer"
        before = line.get("before")
        if not isinstance(written, dict) or not written or not isinstance(before, dict):
            return "an UPDATE needs the fields written and their values before"
        if set(before) - set(written):
            return "an UPDATE whose values before name fields it did not write"
    else:
        if positive_id(rid) is None:
            return f"id {rid!r} is not a positive integer"
        record = line.get("record")
        if record is not None and (
            not isinstance(record, dict) or str(record.get("id")) != str(rid)
        ):
            return "a DELETE whose record copy is of another record"
    return None


def check_lines(path: str, run_id: str, lines: list[dict]) -> str:
    """The account of a run's lines, after refusing malformed or contradictory ones."""
    accounts = {str(line.get("account")) for line in lines if line.get("account")}
    if any(not line.get("account") for line in lines) or len(accounts) != 1:
        raise ChangeLogError(
            f"change log {path} run {run_id}: "
            + (
                f"its lines name several accounts ({', '.join(sorted(accounts))})"
                if len(accounts) > 1
                else "a line names no account (written by an older version?)"
            )
            + "; nothing was changed"
        )
    created: dict[tuple[str, str], int] = {}
    for line in lines:
        problem = malformed(line)
        if problem is None and line.get("operation") == INSERT and line.get("id") is not None:
            key = (str(line["stream"]), str(line["id"]))
            if key in created:
                problem = f"record {line['id']} is created twice (also by seq {created[key]})"
            created[key] = int(line.get("seq") or 0)
        if problem:
            raise ChangeLogError(
                f"change log {path} run {run_id} seq {line.get('seq')} ({line.get('stream')} "
                f"{line.get('operation')}): {problem}; fix or remove the line (nothing was "
                "changed)"
            )
    return accounts.pop()


def table(outcomes: list[Outcome]) -> str:
    """Counts per stream, operation and outcome, then every record not reverted with its reason."""
    counts: dict[tuple[str, str, str], int] = {}
    for o in outcomes:
        key = (o.stream, o.operation, o.outcome)
        counts[key] = counts.get(key, 0) + 1
    lines = [f"{'stream':<22} {'operation':<9} {'outcome':<13} count"]
    lines += [f"{s:<22} {op:<9} {oc:<13} {n}" for (s, op, oc), n in sorted(counts.items())]
    lines += [
        f"  {o.stream} {o.operation} {o.id}: {o.outcome}: {o.reason}"
        for o in outcomes
        if o.outcome in (SKIPPED, FAILED)
    ]
    return "\n".join(lines)


DESCRIPTION = "Revert one target-capsule run, newest change first, from its change log."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`capsule undo`'s options."""
    parser.add_argument("--config", required=True, help="target-capsule's config JSON file")
    parser.add_argument("change_log", metavar="CHANGE_LOG", help="the run's change log (JSONL)")
    parser.add_argument("--run-id", help="the run to revert (default: the newest in the file)")
    parser.add_argument(
        "--undo-log",
        help="the undo's own change log (default: CHANGE_LOG with .undo.jsonl); "
        "`capsule undo` on it reverts the undo",
    )


def main(argv: list[str] | None = None, prog: str = "capsule undo") -> int:
    """Entry point of `capsule undo`."""
    parser = Parser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        config = json.loads(Path(args.config).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return error(prog, f"cannot read --config {args.config}: {exc}")
    from target_capsule.target import TargetCapsule  # its settings name the config's keys

    if problem := account_config_problem(prog, config, TargetCapsule):
        return error(prog, problem)
    try:
        run_id, lines = read(args.change_log, args.run_id)
        if any(line.get("status") == PLANNED for line in lines):
            raise ChangeLogError(
                f"run {run_id} was a dry run (its changes are planned, not applied): "
                "nothing to undo"
            )
        account = check_lines(args.change_log, run_id, lines)
    except ChangeLogError as exc:
        return error(prog, str(exc))
    base = Path(args.change_log)
    undo_log = args.undo_log or str(base.with_name(base.stem + ".undo.jsonl"))
    changes = ChangeLog(undo_log)
    ids: IdMap | None = None
    lock: Lock | None = None
    try:
        session = CapsuleSession(config, user_agent=f"capsule-undo/{version()}")
        site = read_site(session)
        here = account_of(site)
        check_account(account, here, f"change log {args.change_log}")
        lock = Lock(account_key(session.api_url, site), f"capsule-undo of run {run_id}").acquire()
        changes.account = here
        changes.clock = session.pacer.server_now
        changes.open()
        ids = IdMap(base.with_name(f"{base.stem}.undo-{run_id}.ids.json"), account=here)
        undo = Undo(session, changes, ids)
        # A killed undo left its own write pending: settled first, so its log tells the truth.
        settle.settle_pending(session, undo.lookups, changes, here)
        original = ChangeLog(args.change_log)
        original.account = here
        if settle.settle_pending(session, undo.lookups, original, here, run_id=run_id):
            run_id, lines = read(args.change_log, run_id)
        original.close()
        outcomes = undo.revert_all(lines)
    except (CapsuleError, AccountMismatch, LockError, ChangeLogError) as exc:
        return error(prog, str(exc))
    finally:
        changes.close()
        if ids is not None:
            ids.save()
        if lock is not None:
            lock.release()
    totals = {
        k: sum(1 for o in outcomes if o.outcome == k)
        for k in (REVERTED, SKIPPED, ALREADY_GONE, UNCHANGED, FAILED)
    }
    report = {
        "run_id": run_id,
        "undo_run_id": changes.run_id,
        "undo_log": undo_log if changes.lines else None,
        "totals": totals,
        "changes": [dataclasses.asdict(o) for o in outcomes],
    }
    print(json.dumps(report))
    print(table(outcomes), file=sys.stderr)
    if changes.lines:
        print(changes.describe(), file=sys.stderr)
    return 1 if totals[FAILED] else 0


if __name__ == "__main__":
    sys.exit(main())
