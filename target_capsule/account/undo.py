"""`capsule undo`: revert one target-capsule run from its change log, newest change first.

It deletes what the run created, gives what the run updated its values from before, and recreates
what the run deleted (from the copy the change log keeps), pointing references at the recreated
records. Before each revert it reads the record: if someone changed what the run wrote since, the
record is skipped and reported, never overwritten. The undo keeps its own change log (so an undo
can be undone) and an id map of recreated records, so an undo run again after a kill recreates
nothing twice.
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
    raise_for_capsule_status,
    response_json,
)
from tap_capsule.setting_names import account_config_problem
from target_capsule.account.cli import Parser, error, version
from target_capsule.account.refs import IdMap, positive_id
from target_capsule.account.revert import creation_body, differences, restore_body
from target_capsule.changelog import APPLIED, ChangeLog, ChangeLogError, read
from target_capsule.lookups import Lookups
from target_capsule.payload import PayloadError
from target_capsule.writes import Check, Unresolved, write

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
        except AmbiguousWriteError as exc:
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
        changed = differences(obj, line.get("written") or {}, current)
        if changed:
            done.outcome = SKIPPED
            done.reason = f"changed since the run: {', '.join(changed)}"
            return done
        response = self.session.call("DELETE", cat.fill_path(obj.single_path, {"id": rid}))
        if response.status_code == 404:
            done.outcome = ALREADY_GONE
            return done
        raise_for_capsule_status(response)
        self.lookups.forget(obj, rid)
        self.changes.write(obj.stream, DELETE, rid, None, record=current)
        done.outcome = REVERTED
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
        body = restore_body(obj, written, line.get("before") or {}, current)
        if not body:
            done.outcome = UNCHANGED
            return done
        single = cat.fill_path(obj.single_path, {"id": rid})
        response = self.session.call("PUT", single, json_body={obj.item_key: body})
        raise_for_capsule_status(response)
        updated = (response_json(response) or {}).get(obj.item_key)
        if isinstance(updated, dict):
            self.lookups.remember(obj, obj.path, updated)
        self.changes.write(obj.stream, UPDATE, rid, body, {k: current.get(k) for k in body})
        done.outcome = REVERTED
        return done

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
        list_path = None if cat.path_fields(obj.path) else obj.path
        try:
            written = write(
                self.session,
                "POST",
                path,
                {obj.item_key: body},
                check=functools.partial(self.find_created, obj, body, list_path)
                if list_path
                else None,
                what=f"{obj.stream} undo of the DELETE of record {old}",
            )
        except Unresolved as exc:
            done.reason = str(exc)
            return done
        created = written.found or (written.answer or {}).get(obj.item_key) or {}
        new = positive_id(created.get("id"))
        if new is None:
            done.reason = "Capsule's answer carries no id"
            return done
        self.ids.put(obj.stream, old, new)
        self.lookups.remember(obj, obj.path, created)
        self.changes.write(obj.stream, INSERT, new, body)
        done.outcome = REVERTED
        done.reason = f"recreated as {new}"
        return done

    def find_created(self, obj: cat.CapsuleObject, body: dict, path: str) -> Check:
        """After an ambiguous POST: is there now a record holding `body` that nobody maps to?"""
        taken = set(self.ids.new_ids(obj.stream))
        records = self.lookups.read_list(obj, path)
        found = [
            r
            for r in records
            if positive_id(r.get("id")) not in taken and not differences(obj, body, r)
        ]
        return Check(applied=bool(found), found=found[-1] if found else None)

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
            response = self.session.call("DELETE", cat.fill_path(tags.single_path, {"id": rid}))
            if response.status_code != 404:
                raise_for_capsule_status(response)
            definitions.remove(found[0])
            self.changes.write(tags.stream, DELETE, rid, None, record=found[0])
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
            response = self.session.call("DELETE", cat.fill_path(obj.single_path, ids))
            if response.status_code != 404:
                raise_for_capsule_status(response)
            self.lookups.link_changed(obj, parent, child, linked=False)
            self.changes.write(obj.stream, DELETE, None, None, keys=ids)
        else:
            if linked is None:
                done.outcome = SKIPPED
                done.reason = f"{parent_key} {parent} no longer exists"
                return done
            if str(child) in linked:
                done.outcome = UNCHANGED
                return done
            response = self.session.call("POST", cat.fill_path(obj.post_path, ids))
            raise_for_capsule_status(response)
            self.lookups.link_changed(obj, parent, child, linked=True)
            self.changes.write(obj.stream, INSERT, None, None, keys=ids)
        done.outcome = REVERTED
        return done


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
    except ChangeLogError as exc:
        return error(prog, str(exc))
    planned = [line for line in lines if line.get("status") != APPLIED]
    if planned:
        return error(
            prog,
            f"run {run_id} was a dry run (its changes are planned, not applied): nothing to undo",
        )
    base = Path(args.change_log)
    undo_log = args.undo_log or str(base.with_name(base.stem + ".undo.jsonl"))
    ids = IdMap(base.with_name(f"{base.stem}.undo-{run_id}.ids.json"))
    changes = ChangeLog(undo_log)
    try:
        session = CapsuleSession(config, user_agent=f"capsule-undo/{version()}")
        undo = Undo(session, changes, ids)
        outcomes = undo.revert_all(lines)
    except CapsuleError as exc:
        return error(prog, str(exc))
    finally:
        changes.close()
        ids.save()
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
