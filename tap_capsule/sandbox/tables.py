"""The sandbox's tables: records by stream, deleted and restricted feeds, ids, stubs and lookups.

Records are stored in their full shape (tags, fields and missingImportantFields included; child
records also carry their parent key, e.g. `opportunityId`), and views strip what Capsule would not
send. All access goes through one re-entrant lock: the server is threaded, and a page must never see
half a write.
"""

from __future__ import annotations

import copy
import json
import threading
import typing as t

from tap_capsule.sandbox.attachments import Files
from tap_capsule.sandbox.errors import NotFoundError
from tap_capsule.sandbox.lazy import GeneratedTable
from tap_capsule.sandbox.models import ID_BASES, OWNER_CLEARS_TEAM, REF_TARGETS, ref_id

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject
    from tap_capsule.sandbox.clock import Clock


class Tables:
    """All records, feeds and counters of one sandbox, laid out from the catalogue entries."""

    def __init__(self, objects: t.Iterable[CapsuleObject], clock: Clock) -> None:
        """Empty tables for `objects`; the seed fills them."""
        self.objects: dict[str, CapsuleObject] = {o.stream: o for o in objects}
        self.clock = clock
        self.lock = threading.RLock()
        self.rows: dict[str, t.MutableMapping[t.Any, dict]] = {
            s: {} for s, o in self.objects.items() if not o.is_link
        }
        self.links: dict[str, dict[int, list[int]]] = {
            s: {} for s, o in self.objects.items() if o.is_link
        }
        self.deleted: dict[str, list[dict]] = {
            s: [] for s, o in self.objects.items() if o.deleted_path
        }
        self.restricted: dict[str, list[dict]] = {s: [] for s in self.deleted}
        self.jobs: dict[int, dict] = {}
        self.files = Files()  # attachments: uploads waiting for a note, and attached files
        self.site: dict = {}
        self.token_user_id: int | None = None
        self._counters: dict[str, int] = {}
        self._orders: dict[str, list[int]] = {}
        self.generation = 0  # bumped by every write; views cache on it
        self.owner_clears_team: frozenset[str] = OWNER_CLEARS_TEAM

    # --- ids, lookups, stubs ------------------------------------------------------------------

    def _counter_key(self, stream: str) -> str:
        o = self.objects.get(stream)
        return o.single_path if o is not None else stream

    def new_id(self, stream: str) -> int:
        """The next id of a table (streams sharing a path, like both track streams, share ids)."""
        key = self._counter_key(stream)
        nxt = self._counters.get(key, ID_BASES.get(stream, 1) - 1) + 1
        self._counters[key] = nxt
        return nxt

    def changed(self, stream: str | None = None) -> None:
        """Note a write: cached orders of `stream` (or of every table) are stale."""
        self.generation += 1
        if stream is None:
            self._orders.clear()
        else:
            self._orders.pop(stream, None)

    def add(self, stream: str, rec: dict) -> dict:
        """Insert a record (seeding or create); ids stay monotonic so dict order is id order."""
        if rec.get("id") is None:
            rec["id"] = self.new_id(stream)
        self.rows[stream][rec["id"]] = rec
        self.changed(stream)
        return rec

    def ids_desc(self, stream: str) -> list[int]:
        """Ids newest-created first; cached until the table changes, so a page is O(page)."""
        order = self._orders.get(stream)
        if order is None:
            order = sorted(self.rows[stream], reverse=True)
            self._orders[stream] = order
        return order

    def referrers(self, stream: str, key: str, rid: int) -> list[int]:
        """Ids of `stream`'s records whose reference `key` is `rid` (computed when generated)."""
        rows = self.rows[stream]
        if isinstance(rows, GeneratedTable):
            return rows.children(key, rid)
        return [i for i, r in rows.items() if isinstance(r.get(key), dict) and r[key]["id"] == rid]

    def same_resource(self, stream: str) -> list[str]:
        """Streams served by one single-record path (both track streams use /tracks/{id})."""
        path = self.objects[stream].single_path
        return [s for s, o in self.objects.items() if o.single_path == path and not o.is_link]

    def find(self, stream: str, rid: int) -> tuple[str, dict]:
        """(stream, record) of id `rid` on `stream`'s path; 404 if there is none."""
        for candidate in self.same_resource(stream):
            rec = self.rows[candidate].get(rid)
            if rec is not None:
                return candidate, rec
        raise NotFoundError()

    def stub(self, stream: str, rec: dict) -> dict:
        """The nested reference Capsule puts in other records (`{id, name}`, a user or party)."""
        if stream == "parties":
            if rec.get("type") == "person":
                return {
                    "id": rec["id"],
                    "type": "person",
                    "firstName": rec.get("firstName"),
                    "lastName": rec.get("lastName"),
                    "pictureURL": rec.get("pictureURL"),
                }
            return {
                "id": rec["id"],
                "type": rec.get("type"),
                "name": rec.get("name"),
                "pictureURL": rec.get("pictureURL"),
            }
        if stream == "users":
            return {
                "id": rec["id"],
                "username": rec.get("username"),
                "name": rec.get("name"),
                "pictureURL": rec.get("pictureURL"),
                "deleted": False,
            }
        if stream == "categories":
            return {"id": rec["id"], "name": rec.get("name"), "colour": rec.get("colour")}
        if stream == "track_definitions":
            return {"id": rec["id"], "name": rec.get("description")}
        return {"id": rec["id"], "name": rec.get("name")}

    def ref(self, key: str, value: t.Any, stream: str | None = None) -> dict | None:  # noqa: ANN401 - whatever a client sent
        """A written reference (`{id}` or a bare id) as the stored stub; 404 if missing."""
        if value is None:
            return None
        target = stream or REF_TARGETS[key]
        rid = ref_id(value)
        rec = self.rows.get(target, {}).get(rid) if rid is not None else None
        if rec is None:
            raise NotFoundError()
        return self.stub(target, rec)

    def token_user_stub(self) -> dict | None:
        """The token's user as a nested stub (the author of what it creates)."""
        user = self.rows.get("users", {}).get(self.token_user_id)
        return self.stub("users", user) if user else None

    def country_names(self) -> set[str]:
        """The country names an address may use."""
        return {str(c.get("name")) for c in self.rows.get("countries", {}).values()}

    def definitions_stream(self, entity_stream: str, kind: str) -> str | None:
        """`kind` is "tags" or "custom_fields": the definitions stream of an entity."""
        o = self.objects.get(entity_stream)
        name = getattr(o, kind, None) if o else None
        return name if name in self.rows else None

    # --- admin --------------------------------------------------------------------------------

    def touch(self, stream: str, rid: int, changes: dict) -> dict:
        """A user's edit in Capsule's UI: raw changes, updatedAt bumped (unless given)."""
        with self.lock:
            if stream not in self.rows:
                raise NotFoundError()
            stream, rec = self.find(stream, rid)
            rec.update(copy.deepcopy(changes))
            if "updatedAt" not in changes and "updatedAt" in rec:
                rec["updatedAt"] = self.clock.stamp()
            self.rows[stream][rid] = rec  # a generated record lands in the overlay
            self.changed(stream)
            return rec

    def state(self) -> dict:
        """A deep copy of everything: tables (full shapes), links, feeds and jobs."""
        with self.lock:
            out: dict[str, t.Any] = {
                s: list((rows.overlay if isinstance(rows, GeneratedTable) else rows).values())
                for s, rows in self.rows.items()
            }
            # A generated table dumps only its overlay (what was written), and its counts.
            generated = {
                s: {"count": rows.count, "deleted": len(rows.gone), "overlay": len(rows.overlay)}
                for s, rows in self.rows.items()
                if isinstance(rows, GeneratedTable)
            }
            if generated:
                out["_generated"] = generated
            for s, table in self.links.items():
                o = self.objects[s]
                out[s] = [
                    {o.parent_key: pid, o.child_key: party}
                    for pid, parties in table.items()
                    for party in parties
                ]
            out["_deleted"] = {s: list(v) for s, v in self.deleted.items()}
            out["_restricted"] = {s: list(v) for s, v in self.restricted.items()}
            out["_jobs"] = list(self.jobs.values())
            return json.loads(json.dumps(out))
