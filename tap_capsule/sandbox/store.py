"""The sandbox's state and Capsule's write semantics: create, update, delete, cascades and links.

Create answers the full record; update is a partial merge that leaves `updatedAt` alone when nothing
changed; delete moves a record into its deleted feed and cascades like Capsule (a party takes its
opportunities, cases, entries and tasks; a track its tasks; a tag or field definition leaves every
record, as a 202 job).
"""

from __future__ import annotations

import copy
import typing as t

from tap_capsule.catalogue import DELETE, INSERT, UPDATE
from tap_capsule.sandbox import documented, validation
from tap_capsule.sandbox.errors import (
    MethodNotAllowedError,
    NotFoundError,
    ValidationFailedError,
    error,
)
from tap_capsule.sandbox.merge import Merge
from tap_capsule.sandbox.models import CONTACT_DEFAULTS, REF_TARGETS, dump, operations

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject


class Store(Merge):
    """All records of one sandbox and the write operations Capsule documents on them."""

    # --- writes -------------------------------------------------------------------------------

    def _blank_record(self, o: CapsuleObject) -> dict:
        """A new record: every documented key, null (lists empty)."""
        skip = {"_sdc_deleted_at", "custom_fields", o.parent_key}
        rec: dict[str, t.Any] = {k: None for k in documented.fields(o) if k not in skip}
        for key in ("tags", "fields"):
            if key in rec:
                rec[key] = []
        for key in CONTACT_DEFAULTS:
            if key in rec:
                rec[key] = []
        return rec

    def create(self, stream: str, body: dict) -> tuple[str, dict]:
        """Create a record from a POST body; (stream, record). 405, 404 or 422 as Capsule would."""
        o = self.objects[stream]
        if INSERT not in operations(o):
            raise MethodNotAllowedError()
        with self.lock:
            stream, o = self._pick_create_stream(o, body)
            rec = self._blank_record(o)
            self._apply(o, rec, body, creating=True)
            self._defaults_on_create(o, rec, body)
            validation.check(o.item_key, rec, body, self, creating=True)
            self._unique_name(o, rec)
            now = self.clock.stamp()
            if "createdAt" in rec:
                rec["createdAt"] = now
            if "updatedAt" in rec:
                rec["updatedAt"] = now
            rec["id"] = self.new_id(stream)
            rec = {"id": rec.pop("id"), **rec}
            self._after_create(o, rec, body)
            self.refresh_missing(o, rec)
            self.add(stream, rec)
            return stream, rec

    def _unique_name(self, o: CapsuleObject, rec: dict) -> None:
        """A tag name is unique among its entity's tags: a second one is a 422."""
        if o.item_key != "tag":
            return
        wanted = str(rec.get("name") or "").strip().casefold()
        for other in self.rows[o.stream].values():
            if other.get("id") != rec.get("id") and (
                str(other.get("name") or "").strip().casefold() == wanted
            ):
                raise ValidationFailedError([error("tag", "name", "name must be unique")])

    def _pick_create_stream(self, o: CapsuleObject, body: dict) -> tuple[str, CapsuleObject]:
        """Streams sharing a create path (tracks) are told apart by which parent the body names."""
        siblings = [
            s for s, c in self.objects.items() if c.post_path == o.post_path and not c.is_link
        ]
        if len(siblings) > 1:
            for s in siblings:
                parent = self.objects.get(self.objects[s].parent or "")
                if parent is not None and body.get(parent.item_key) not in (None, {}):
                    return s, self.objects[s]
        return o.stream, o

    def update(self, stream: str, rid: int, body: dict) -> tuple[str, dict]:
        """Merge a PUT body into a record; `updatedAt` moves only when something changed."""
        o = self.objects[stream]
        if UPDATE not in operations(o):
            raise MethodNotAllowedError()
        with self.lock:
            stream, stored = self.find(stream, rid)
            o = self.objects[stream]
            if o.item_key == "track":  # Capsule lets a track change only these two.
                body = {k: v for k, v in body.items() if k in ("description", "trackDateOn")}
            rec = copy.deepcopy(stored)
            before = dump(rec)
            self._apply(o, rec, body, creating=False)
            validation.check(o.item_key, rec, body, self, creating=False)
            if "name" in body:
                self._unique_name(o, rec)
            self.refresh_missing(o, rec)
            if dump(rec) != before:  # a no-op PUT must not bump updatedAt
                if "updatedAt" in rec:
                    rec["updatedAt"] = self.clock.stamp()
                self.rows[stream][rid] = rec
                self.changed(stream)
            return stream, rec

    def delete(self, stream: str, rid: int) -> int | None:
        """Delete a record like Capsule does; returns a job id when Capsule answers 202."""
        o = self.objects[stream]
        if DELETE not in operations(o):
            raise MethodNotAllowedError()
        with self.lock:
            stream, _ = self.find(stream, rid)
            o = self.objects[stream]
            job = None
            if o.definitions_of:
                job = self._remove_definition(o, rid)
            self.remove(stream, rid)
            return job

    def remove(self, stream: str, rid: int, restricted: bool = False) -> None:
        """Take a record out of its table, into the deleted/restricted feed, with the cascade."""
        with self.lock:
            rec = self.rows[stream].pop(rid, None)
            if rec is None:
                raise NotFoundError()
            self.changed(stream)
            now = self.clock.stamp()
            if stream in self.deleted:
                if restricted:
                    self.restricted[stream].append(
                        {**self._restricted_stub(stream, rec), "_restrictedAt": now}
                    )
                else:
                    self.deleted[stream].append({"id": rid, "deletedAt": now})
            if restricted:
                return
            self._cascade(stream, rec, now)

    def _restricted_stub(self, stream: str, rec: dict) -> dict:
        if stream == "parties":
            stub = {"id": rec["id"], "type": rec.get("type")}
            if rec.get("type") == "person":
                stub.update(firstName=None, lastName="Private")
            else:
                stub.update(name="Private")
            stub.update(pictureURL=rec.get("pictureURL"), isRestricted=True)
            return stub
        return {"id": rec["id"], "name": "Private", "isRestricted": True}

    def _cascade(self, stream: str, rec: dict, now: str) -> None:
        o = self.objects[stream]
        rid = rec["id"]
        # Records hanging off this one by a nested reference (entries, tasks, opportunities...).
        key = o.item_key
        if stream in ("parties", "opportunities", "cases"):
            for other in ("opportunities", "cases", "entries", "tasks"):
                if other == stream or other not in self.rows:
                    continue
                if stream != "parties" and other in ("opportunities", "cases"):
                    continue
                for i in self.referrers(other, key, rid):
                    if i in self.rows[other]:
                        self.remove(other, i)
        if stream == "parties":
            people = self.rows["parties"]
            for pid in self.referrers("parties", "organisation", rid):
                person = people[pid]
                person["organisation"] = None
                person["updatedAt"] = now
                people[pid] = person  # a generated person lands in the overlay
            for table in self.links.values():
                for parties in table.values():
                    if rid in parties:
                        parties.remove(rid)
        # Child objects listed under this one (tracks, milestones, additional-party links).
        for child in self.objects.values():
            if child.parent != stream:
                continue
            if child.is_link:
                self.links[child.stream].pop(rid, None)
                continue
            doomed = [
                i for i, r in self.rows[child.stream].items() if r.get(child.parent_key) == rid
            ]
            for i in doomed:
                if i in self.rows[child.stream]:
                    self.remove(child.stream, i)
        # A track takes its tasks with it.
        if o.item_key == "track":
            for task in rec.get("tasks") or []:
                self.rows.get("tasks", {}).pop(task.get("id"), None)
            self.changed("tasks")

    def _remove_definition(self, o: CapsuleObject, rid: int) -> int:
        """Deleting a tag or field definition strips it from every record, as a 202 job."""
        entity = next(
            (
                s
                for s, e in self.objects.items()
                if e.path.strip("/") == o.definitions_of and not e.parent
            ),
            None,
        )
        now = self.clock.stamp()
        if entity:
            rows = self.rows[entity]
            for rid_, rec in list(rows.items()):  # a full scan, even of a generated table
                before = rec.get("updatedAt")
                if o.item_key == "tag":
                    items, keep = (
                        rec.get("tags") or [],
                        [x for x in rec.get("tags") or [] if x.get("id") != rid],
                    )
                    if len(keep) != len(items):
                        rec["tags"] = keep
                        rec["updatedAt"] = now
                else:
                    items = rec.get("fields") or []
                    keep = [x for x in items if (x.get("definition") or {}).get("id") != rid]
                    if len(keep) != len(items):
                        rec["fields"] = keep
                        rec["updatedAt"] = now
                if rec.get("updatedAt") != before:
                    rows[rid_] = rec
        job_id = max(self.jobs, default=9000) + 1
        action = "DELETE_TAG" if o.item_key == "tag" else "DELETE_CUSTOM_FIELD"
        self.jobs[job_id] = {"id": job_id, "status": "COMPLETE", "progress": 100, "action": action}
        return job_id

    def link(self, stream: str, parent_id: int, party_id: int, add: bool) -> None:
        """Additional parties: link or unlink; 404 when the parent, party or link is unknown."""
        o = self.objects[stream]
        if (INSERT if add else DELETE) not in operations(o):
            raise MethodNotAllowedError()
        with self.lock:
            parents = self.rows[o.parent or ""]  # a link always has its parent
            if parent_id not in parents or party_id not in self.rows["parties"]:
                raise NotFoundError()
            linked = self.links[stream].setdefault(parent_id, [])
            if add:
                parent = parents[parent_id]
                if party_id in linked or (parent.get("party") or {}).get("id") == party_id:
                    # Live Capsule: 422 "party is already a contact for this opportunity"
                    # (or "already related" for the record's main party).
                    what = "a contact for" if party_id in linked else "related to"
                    kind = self.objects[o.parent or ""].item_key
                    raise ValidationFailedError(
                        [error(kind, "party", f"party is already {what} this {kind}")]
                    )
                linked.append(party_id)
            elif party_id in linked:
                linked.remove(party_id)
            else:
                raise NotFoundError()
            self.generation += 1


def check_write_allowed(o: CapsuleObject, operation: str) -> None:
    """405 unless `o` takes `operation`."""
    if operation not in operations(o):
        raise MethodNotAllowedError()


__all__ = ["REF_TARGETS", "Store", "check_write_allowed"]
