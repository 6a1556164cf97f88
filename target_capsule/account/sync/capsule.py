"""The Capsule side of `capsule sync`: what changed since a point, and the writes.

Writes go through the target's one write path (a lost answer is checked before any retry), are
checked against the target's rules first, and land in the target's change log (so `capsule undo`
can revert a sync's Capsule writes).
"""

from __future__ import annotations

import dataclasses
import time
import typing as t

from tap_capsule.api_client import CapsuleNotFound, raise_for_capsule_status, response_json
from target_capsule import rules
from target_capsule.changelog import APPLIED, FAILED
from target_capsule.writes import CLOCK_MARGIN, GONE, Check, delete, write

if t.TYPE_CHECKING:
    from tap_capsule.api_client import CapsuleSession
    from target_capsule.account.sync.objects import SyncObject, Values
    from target_capsule.changelog import ChangeLog

# A read `since` a point starts this much earlier: the write path's one clock margin.
MARGIN = CLOCK_MARGIN


@dataclasses.dataclass
class Seen:
    """What one read of Capsule found for an object."""

    records: dict[int, t.Mapping[str, t.Any]]  # id -> Capsule's record (changed, or all if full)
    gone: dict[int, str]  # id -> deletion time (deleted or restricted since the point)
    full: bool  # every live record was listed: an id missing from `records` is gone
    next_since: str  # where the next read starts


def iso(epoch: float) -> str:
    """Epoch seconds as Capsule's ISO 8601 UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class CapsuleSide:
    """Reads and writes of the synced objects through one session."""

    def __init__(self, session: CapsuleSession, change_log: ChangeLog) -> None:
        """Use `session` for every request and record each write in `change_log`."""
        self.session = session
        self.change_log = change_log
        self.writes = 0

    def now_mark(self) -> str:
        """Capsule's time now, less the margin (the local clock before any answer)."""
        now = self.session.pacer.server_now() or time.time()
        return iso(now - MARGIN)

    # --- reads --------------------------------------------------------------------------------

    def listing(self, obj: SyncObject, since: str | None) -> dict[int, t.Mapping[str, t.Any]]:
        """The object's records (changed since `since`, or all), by id."""
        capsule = obj.capsule
        params = dict(capsule.params)
        if since and capsule.since:
            params["since"] = since
        out: dict[int, t.Mapping[str, t.Any]] = {}
        for record in self.session.paginate(capsule.path, capsule.list_key, params):
            if obj.keeps(record):
                out[int(record["id"])] = record
        return out

    def read(self, obj: SyncObject, since: str | None) -> Seen:
        """What changed since `since`: incremental where Capsule has a deleted feed, else all."""
        capsule = obj.capsule
        incremental = since is not None and capsule.since and capsule.deleted_path is not None
        started, before = time.monotonic(), self.session.pacer.server_now()
        records = self.listing(obj, since if incremental else None)
        if before is None:  # Capsule's clock was unknown before this read: go back from its end
            now = self.session.pacer.server_now() or time.time()
            before = now - (time.monotonic() - started)
        next_since = iso(before - MARGIN)
        gone: dict[int, str] = {}
        if incremental and capsule.deleted_path:
            for body in self.session.pages(capsule.deleted_path, {"since": since}):
                for key in capsule.deleted_keys:
                    for item in body.get(key) or ():
                        gone[int(item["id"])] = item.get("deletedAt") or next_since
        return Seen(records, gone, not incremental, next_since)

    def get(self, obj: SyncObject, capsule_id: int) -> t.Mapping[str, t.Any] | None:
        """One record, or None when Capsule no longer has it."""
        capsule = obj.capsule
        try:
            response = self.session.call("GET", f"{capsule.path}/{capsule_id}")
            raise_for_capsule_status(response)
        except CapsuleNotFound:
            return None
        return (response_json(response) or {}).get(capsule.item_key)

    def find_created(
        self, obj: SyncObject, values: Values, mark: str, taken: t.Container[int]
    ) -> int | None:
        """A record created since `mark` with exactly these values, not paired with a row yet."""
        for capsule_id, record in self.listing(obj, mark).items():
            if capsule_id not in taken and obj.from_capsule(record) == values:
                return capsule_id
        return None

    # --- writes -------------------------------------------------------------------------------

    def check_rules(self, obj: SyncObject, operation: str, body: t.Mapping[str, t.Any]) -> None:
        """The target's rules for this write; ValueError with every reason it breaks."""
        reasons = rules.check(obj.capsule, operation, body)
        if reasons:
            raise ValueError("; ".join(reasons))

    def create(
        self, obj: SyncObject, values: Values, mark: str, taken: t.Container[int]
    ) -> tuple[int, t.Mapping[str, t.Any]]:
        """POST a new record; its id and Capsule's copy."""
        capsule = obj.capsule
        body = obj.body(values, create=True)
        self.check_rules(obj, "INSERT", body)

        def check() -> Check:
            found = self.find_created(obj, values, mark, taken)
            return Check(applied=found is not None, found=found)

        with self.change_log.writing(
            capsule.stream, "INSERT", None, body, list_path=capsule.path
        ) as entry:
            done = write(
                self.session,
                "POST",
                capsule.create_path or capsule.path,
                {capsule.item_key: body},
                check=check,
                what=f"{obj.table} create",
            )
            if done.found is not None:
                capsule_id = int(done.found)
                record = self.get(obj, capsule_id) or {}
            else:
                record = (done.answer or {}).get(capsule.item_key) or {}
                capsule_id = int(record["id"])
            self.change_log.settle(entry, APPLIED, capsule_id)
        self.writes += 1
        return capsule_id, record

    def update(
        self, obj: SyncObject, capsule_id: int, values: Values, before: Values
    ) -> t.Mapping[str, t.Any] | None:
        """PUT the columns of `values` that differ from `before`; Capsule's copy (None if gone)."""
        capsule = obj.capsule
        changed = {c: v for c, v in values.items() if before.get(c) != v}
        body = obj.body(changed, create=False)
        if not body:
            return None
        self.check_rules(obj, "UPDATE", body)
        path = f"{capsule.path}/{capsule_id}"

        def check() -> Check:
            record = self.get(obj, capsule_id)
            held = obj.from_capsule(record) if record is not None else None
            applied = held is not None and all(held[c] == v for c, v in changed.items())
            return Check(applied=applied, found=record)

        old = obj.body({c: before.get(c) for c in changed}, create=False)
        try:
            with self.change_log.writing(capsule.stream, "UPDATE", capsule_id, body, old) as entry:
                done = write(
                    self.session, "PUT", path, {capsule.item_key: body}, check=check, what=path
                )
                self.change_log.settle(entry, APPLIED)
        except CapsuleNotFound:
            return None
        self.writes += 1
        if done.found is not None:
            return t.cast("t.Mapping[str, t.Any]", done.found)
        return (done.answer or {}).get(capsule.item_key)

    def delete(self, obj: SyncObject, capsule_id: int) -> None:
        """DELETE a record (already gone is fine); its last copy goes into the change log."""
        capsule = obj.capsule
        record = self.get(obj, capsule_id)
        if record is None:
            return
        path = f"{capsule.path}/{capsule_id}"
        with self.change_log.writing(
            capsule.stream, "DELETE", capsule_id, None, record=record
        ) as entry:
            gone = delete(self.session, path)  # the one DELETE: a 404 means gone
            if gone == GONE:  # someone else deleted it since the read above
                self.change_log.settle(entry, FAILED, reason=gone)
                return
            self.change_log.settle(entry, APPLIED, reason=gone)
        self.writes += 1
