"""Settling a change log's `pending` lines: did the write a kill interrupted reach Capsule?

A run killed after a `pending` line and before its answer leaves the line open. The next run of the
target, and `capsule-undo` before it reverts anything, look once, with the same cheap check that
follows an ambiguous failure: a create is looked for among the records created since the line's
`capsule_at` (by upsert key or by the fields Capsule stores as sent), an update by re-reading the
record, a delete by asking for the record (gone: applied), a link in its parent's list. The answer
is appended as the line's settling line, so every write that reached Capsule is in the log.
"""

from __future__ import annotations

import logging
import typing as t

from tap_capsule import catalogue as cat
from target_capsule import natural_keys as nk
from target_capsule.changelog import APPLIED, FAILED, PENDING, UNRESOLVED, ChangeLog, load
from target_capsule.payload import wrapped
from target_capsule.values import same
from target_capsule.writes import Check, Written, find_created, parse_time, write

if t.TYPE_CHECKING:
    from tap_capsule.api_client import CapsuleSession
    from target_capsule.lookups import Lookups

logger = logging.getLogger("target_capsule.settle")


def holds_written(written: t.Mapping[str, t.Any], current: t.Mapping[str, t.Any]) -> bool:
    """Does Capsule's record hold every value an update wrote?

    List rows it added must be there, and rows it removed (`{"id": ..., "_delete": true}`) gone.
    """
    for key, value in written.items():
        have = current.get(key)
        if isinstance(value, list) and any(isinstance(i, dict) for i in value):
            rows = have if isinstance(have, list) else []
            added = [i for i in value if isinstance(i, dict) and not i.get("_delete")]
            if not all(any(same(i, row) for row in rows) for i in added):
                return False
            removed = {str(i.get("id")) for i in value if isinstance(i, dict) and i.get("_delete")}
            if removed & {str(r.get("id")) for r in rows if isinstance(r, dict)}:
                return False
        elif not same(value, have):
            return False
    return True


def check(
    session: CapsuleSession,
    lookups: Lookups,
    line: t.Mapping[str, t.Any],
    upsert_keys: t.Mapping[str, t.Any] | None = None,
    taken: t.Collection[object] = (),
) -> tuple[str, t.Any]:
    """(status, id of a created record) for a pending write, from one cheap read."""
    obj = cat.get(str(line["stream"]))
    operation = str(line["operation"])
    since = parse_time(line.get("capsule_at"))
    if obj.is_link:
        keys = line.get("keys") or {}
        linked = lookups.linked_ids(obj, keys.get(obj.parent_key), refresh=True)
        there = linked is not None and str(keys.get(obj.child_key)) in linked
        return (APPLIED if there == (operation == cat.INSERT) else FAILED), None
    if operation == cat.INSERT:
        path = line.get("list_path") or (None if cat.path_fields(obj.path) else obj.path)
        if not isinstance(path, str) or since is None:
            return UNRESOLVED, None
        matches = nk.made_from(obj, nk.keys_for(obj, upsert_keys), line.get("written") or {})
        found = find_created(session, obj, path, since, matches, taken)
        if len(found) == 1:
            return APPLIED, found[0].get("id")
        return (UNRESOLVED if found else FAILED), None
    current = lookups.get_one(obj, line.get("id"))
    if operation == cat.DELETE:
        return (APPLIED if current is None else FAILED), None
    if current is None:
        return FAILED, None
    return (APPLIED if holds_written(line.get("written") or {}, current) else FAILED), None


def put(
    session: CapsuleSession,
    lookups: Lookups,
    obj: cat.CapsuleObject,
    rid: object,
    body: t.Mapping[str, t.Any],
    what: str,
) -> Written:
    """PUT `body` on record `rid` through the one write path (undo's and restore's updates).

    After a lost answer the record is read again (one GET): the PUT applied when Capsule holds
    every value it sent, else it is sent again. `CapsuleAPIError` (a 404 included) passes through.
    """

    def check() -> Check:
        fresh = lookups.get_one(obj, rid)
        return Check(applied=fresh is not None and holds_written(body, fresh), found=fresh)

    return write(
        session,
        "PUT",
        cat.fill_path(obj.single_path, {"id": rid}),
        wrapped(obj, dict(body)),
        check=check,
        what=what,
    )


def created_ids(writes: t.Iterable[t.Mapping[str, t.Any]], stream: str) -> set[str]:
    """Ids that applied creates of `stream` got: never the answer for another pending create."""
    return {
        str(w.get("id"))
        for w in writes
        if w.get("stream") == stream
        and w.get("operation") == cat.INSERT
        and w.get("status") == APPLIED
        and w.get("id") is not None
    }


def settle_pending(
    session: CapsuleSession,
    lookups: Lookups,
    log: ChangeLog,
    account: str,
    upsert_keys: t.Mapping[str, t.Any] | None = None,
    run_id: str | None = None,
) -> int:
    """Settle the pending lines of `account` in `log`'s file (of one run, or of every run)."""
    if log.path is None or not log.path.is_file():
        return 0
    runs = load(log.path)
    every = [w for writes in runs.values() for w in writes]
    settled = 0
    for writes in runs.values():
        for line in writes:
            if line["status"] != PENDING or line.get("account") != account:
                continue
            if run_id is not None and line["run_id"] != run_id:
                continue
            if line.get("stream") not in cat.BY_STREAM:
                continue
            taken = created_ids(every, str(line["stream"]))
            status, rid = check(session, lookups, line, upsert_keys, taken)
            if status == UNRESOLVED:
                continue  # still unknown: the line stays pending, undo treats it with care
            log.settle_line(line, status, rid)
            line["status"] = status
            if rid is not None:
                line["id"] = rid
            settled += 1
            logger.info(
                "Change log: %s %s of run %s (seq %s), left pending by a kill, was %s",
                line["stream"],
                line["operation"],
                line["run_id"],
                line["seq"],
                status,
            )
    return settled
