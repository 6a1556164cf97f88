"""`<stream>_deleted` streams: deletions as a stream of their own, as tap-capsule sends them.

With `tombstones: stream` (tap-capsule's default) a deleted party is not a tombstone in `parties`
but a record `{id, deletedAt, restricted}` of `parties_deleted`. Piped into target-capsule, each
such record is a DELETE of the `parties` record with that id, checked like any other record: the
id must be a positive integer, and the object must allow DELETE (otherwise the record is rejected
with the rule's reason). Only the key is used (a link's two ids, for the link streams). A record
with `restricted: true` is rejected: Capsule lists there the records that became invisible to the
source's user, which still exist, so deleting them here would be a guess. Rejects, pending records
and the summary keep the stream's own name; the change log names the object, so `capsule undo`
restores the record there.
"""

from __future__ import annotations

import typing as t

from typing_extensions import override

from tap_capsule import catalogue as cat
from target_capsule.sinks import DELETE, CapsuleSink, Rejected

if t.TYPE_CHECKING:
    from target_capsule.changelog import Entry


class DeletionsSink(CapsuleSink):
    """Every record of `<stream>_deleted` is a DELETE of `<stream>`'s record with its id."""

    @staticmethod
    @override
    def object_of(stream_name: str) -> cat.CapsuleObject:
        obj = cat.deletions_of(stream_name)
        if obj is None:
            raise KeyError(f"{stream_name!r} is not a <stream>_deleted stream")
        return obj

    @override
    def operation_of(self, record: t.Mapping[str, t.Any]) -> str:
        return DELETE

    @override
    def update_id(self, record: t.Mapping[str, t.Any]) -> int | None:
        return None  # no record of this stream is an UPDATE

    @override
    def apply(self, operation: str, record: dict) -> tuple[str, str]:
        # `record` is the checked copy (ids as ints): only the key names what to delete, the
        # id (a link's two ids).
        if record.get("restricted") is True:
            raise Rejected(
                operation,
                f"{self.stream_name} {operation}: restricted is true: the record was hidden from "
                "the source's user, not deleted in Capsule, so it is not deleted here (send a "
                "tombstone or delete it by hand if it should go)",
            )
        obj = self.obj
        keys = (obj.parent_key, obj.child_key) if obj.is_link else ("id",)
        return super().apply(operation, {k: record.get(k) for k in keys if k})

    @override
    def log_delete(self, record: dict, content: dict | None) -> Entry:
        return self.run.changes.ahead(self.obj.stream, DELETE, record["id"], None, record=content)
