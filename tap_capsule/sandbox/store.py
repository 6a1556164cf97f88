"""The sandbox's state and Capsule's write semantics (fact sheet §5).

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

from tap_capsule.catalogue import DELETE, INSERT, UPDATE, CapsuleObject
from tap_capsule.sandbox import validation
from tap_capsule.sandbox.clock import Clock
from tap_capsule.sandbox.errors import ApiError, Invalid, MethodNotAllowed, NotFound, error

# Record keys that reference another record, and the stream they point into.
REF_TARGETS = {
    "party": "parties",
    "organisation": "parties",
    "milestone": "milestones",
    "lastOpenMilestone": "milestones",
    "lostReason": "lost_reasons",
    "owner": "users",
    "creator": "users",
    "user": "users",
    "team": "teams",
    "stage": "stages",
    "opportunity": "opportunities",
    "kase": "cases",
    "category": "categories",
    "activityType": "activity_types",
    "pipeline": "pipelines",
    "board": "boards",
    "definition": "track_definitions",
}
CONTACT_DEFAULTS = {
    "emailAddresses": {"type": None, "address": None},
    "phoneNumbers": {"type": None, "number": None},
    "addresses": {
        "type": None,
        "street": None,
        "city": None,
        "state": None,
        "country": None,
        "zip": None,
    },
    "websites": {"type": None, "service": "URL", "address": None, "url": None},
}
EMBED_ONLY = ("tags", "fields", "missingImportantFields")
# Capsule computes these; a write that sends them is not an error, they are just ignored.
ALWAYS_READ_ONLY = frozenset(
    {
        "id",
        "createdAt",
        "updatedAt",
        "pictureURL",
        "lastContactedAt",
        "lastStageChangedAt",
        "lastOpenMilestone",
        "missingImportantFields",
        "isRestricted",
        "enrichment",
        "_sdc_deleted_at",
        "custom_fields",
    }
)
READ_ONLY_BY_RESOURCE = {
    "user": {"username", "status", "lastLoginAt", "party"},
    "kase": {"closedOn"},
    "task": {"completedAt", "completedBy", "hasTrack", "nextTask"},
    "track": {"tasks", "direction"},
    "entry": {"creator", "parties", "participants"},
    "restHook": {"clientId", "user"},
}
PERSON_ONLY = ("firstName", "lastName", "title", "jobTitle", "organisation")
# Fixed id ranges make an id of the wrong type stand out in a failing test.
ID_BASES = {
    "parties": 11000,
    "opportunities": 21000,
    "cases": 31000,
    "entries": 41000,
    "tasks": 51000,
    "opportunity_tracks": 61000,
    "case_tracks": 61000,
    "pipelines": 100,
    "milestones": 200,
    "users": 1,
    "teams": 1,
    "resthooks": 300,
}


def _dump(value: t.Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _ref_id(value: t.Any) -> int | None:
    """The id of a reference given as `{id}`, a bare number, or a numeric string."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Store:
    """All records, feeds and counters of one sandbox, built from the catalogue entries."""

    def __init__(self, objects: t.Iterable[CapsuleObject], clock: Clock) -> None:
        self.objects: dict[str, CapsuleObject] = {o.stream: o for o in objects}
        self.clock = clock
        self.lock = threading.RLock()
        self.rows: dict[str, dict[int, dict]] = {
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
        self.site: dict = {}
        self.token_user_id: int | None = None
        self._counters: dict[str, int] = {}
        self._orders: dict[str, list[int]] = {}
        self.generation = 0  # bumped by every write; views cache on it

    # --- ids, lookups, stubs ------------------------------------------------------------------

    def _counter_key(self, stream: str) -> str:
        o = self.objects.get(stream)
        return o.single_path if o is not None else stream

    def new_id(self, stream: str) -> int:
        key = self._counter_key(stream)
        nxt = self._counters.get(key, ID_BASES.get(stream, 1) - 1) + 1
        self._counters[key] = nxt
        return nxt

    def changed(self, stream: str | None = None) -> None:
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

    def same_resource(self, stream: str) -> list[str]:
        """Streams served by the same single-record path (e.g. both track streams use /tracks/{id})."""
        path = self.objects[stream].single_path
        return [s for s, o in self.objects.items() if o.single_path == path and not o.is_link]

    def find(self, stream: str, rid: int) -> tuple[str, dict]:
        for candidate in self.same_resource(stream):
            rec = self.rows[candidate].get(rid)
            if rec is not None:
                return candidate, rec
        raise NotFound()

    def stub(self, stream: str, rec: dict) -> dict:
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

    def ref(self, key: str, value: t.Any, stream: str | None = None) -> dict | None:
        """Resolve a written reference (`{id}` or a bare id) into the stored stub; 404 if missing."""
        if value is None:
            return None
        target = stream or REF_TARGETS[key]
        rid = _ref_id(value)
        rec = self.rows.get(target, {}).get(rid) if rid is not None else None
        if rec is None:
            raise NotFound()
        return self.stub(target, rec)

    def token_user_stub(self) -> dict | None:
        user = self.rows.get("users", {}).get(self.token_user_id)
        return self.stub("users", user) if user else None

    def country_names(self) -> set[str]:
        return {c.get("name") for c in self.rows.get("countries", {}).values()}

    def definitions_stream(self, entity_stream: str, kind: str) -> str | None:
        """`kind` is "tags" or "custom_fields": the definitions stream of an entity."""
        o = self.objects.get(entity_stream)
        name = getattr(o, kind, None) if o else None
        return name if name in self.rows else None

    # --- writes -------------------------------------------------------------------------------

    def _blank_record(self, o: CapsuleObject) -> dict:
        skip = {"_sdc_deleted_at", "custom_fields", o.parent_key}
        rec = {k: None for k in o.schema if k not in skip}
        for key in ("tags", "fields"):
            if key in rec:
                rec[key] = []
        for key in CONTACT_DEFAULTS:
            if key in rec:
                rec[key] = []
        return rec

    def create(self, stream: str, body: dict, parent_id: int | None = None) -> tuple[str, dict]:
        o = self.objects[stream]
        if INSERT not in o.operations:
            raise MethodNotAllowed()
        with self.lock:
            stream, o = self._pick_create_stream(o, body)
            rec = self._blank_record(o)
            self._apply(o, rec, body, creating=True)
            self._defaults_on_create(o, rec, body)
            validation.check(o.item_key, rec, body, self, creating=True)
            now = self.clock.stamp()
            if "createdAt" in o.schema:
                rec["createdAt"] = now
            if "updatedAt" in o.schema:
                rec["updatedAt"] = now
            rec["id"] = self.new_id(stream)
            rec = {"id": rec.pop("id"), **rec}
            self._after_create(o, rec, body)
            self._refresh_missing(o, rec)
            self.add(stream, rec)
            return stream, rec

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
        o = self.objects[stream]
        if UPDATE not in o.operations:
            raise MethodNotAllowed()
        with self.lock:
            stream, stored = self.find(stream, rid)
            o = self.objects[stream]
            if o.item_key == "track":  # Capsule lets a track change only these two.
                body = {k: v for k, v in body.items() if k in ("description", "trackDateOn")}
            rec = copy.deepcopy(stored)
            before = _dump(rec)
            self._apply(o, rec, body, creating=False)
            validation.check(o.item_key, rec, body, self, creating=False)
            self._refresh_missing(o, rec)
            if _dump(rec) != before:  # a no-op PUT must not bump updatedAt
                if "updatedAt" in rec:
                    rec["updatedAt"] = self.clock.stamp()
                self.rows[stream][rid] = rec
                self.changed(stream)
            return stream, rec

    def delete(self, stream: str, rid: int) -> int | None:
        """Delete a record like Capsule does; returns a job id when Capsule answers 202."""
        o = self.objects[stream]
        if DELETE not in o.operations:
            raise MethodNotAllowed()
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
                raise NotFound()
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
                doomed = [
                    i
                    for i, r in self.rows[other].items()
                    if isinstance(r.get(key), dict) and r[key].get("id") == rid
                ]
                for i in doomed:
                    if i in self.rows[other]:
                        self.remove(other, i)
        if stream == "parties":
            for person in self.rows["parties"].values():
                org = person.get("organisation")
                if isinstance(org, dict) and org.get("id") == rid:
                    person["organisation"] = None
                    person["updatedAt"] = now
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
            for rec in self.rows[entity].values():
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
        job_id = max(self.jobs, default=9000) + 1
        action = "DELETE_TAG" if o.item_key == "tag" else "DELETE_CUSTOM_FIELD"
        self.jobs[job_id] = {"id": job_id, "status": "COMPLETE", "progress": 100, "action": action}
        return job_id

    def link(self, stream: str, parent_id: int, party_id: int, add: bool) -> None:
        """Additional parties: link or unlink; 404 when the parent, party or link is unknown."""
        o = self.objects[stream]
        if (INSERT if add else DELETE) not in o.operations:
            raise MethodNotAllowed()
        with self.lock:
            if parent_id not in self.rows[o.parent] or party_id not in self.rows["parties"]:
                raise NotFound()
            linked = self.links[stream].setdefault(parent_id, [])
            if add:
                if party_id not in linked:
                    linked.append(party_id)
            elif party_id in linked:
                linked.remove(party_id)
            else:
                raise NotFound()
            self.generation += 1

    # --- merging a request body into a record -------------------------------------------------

    def _apply(self, o: CapsuleObject, rec: dict, body: dict, creating: bool) -> None:
        resource = o.item_key
        read_only = ALWAYS_READ_ONLY | READ_ONLY_BY_RESOURCE.get(resource, set())
        for key, value in body.items():
            if key in read_only or key == o.parent_key:
                continue
            if key in CONTACT_DEFAULTS and key in rec:
                self._merge_contacts(resource, rec, key, value)
            elif key == "tags" and o.tags in self.rows:
                self._merge_tags(o, rec, value)
            elif key == "fields" and o.custom_fields in self.rows:
                self._merge_fields(o, rec, value)
            elif key == "organisation" and o.stream == "parties":
                rec[key] = self._organisation(value)
            elif key == "tag" and o.definitions_of:
                rec[key] = self._definition_tag(o, value)
            elif key == "type" and not creating and resource in ("party", "entry"):
                continue  # fixed once set
            elif key in REF_TARGETS and key in o.schema and REF_TARGETS[key] in self.rows:
                rec[key] = self.ref(key, value)
            elif key in o.schema:
                rec[key] = copy.deepcopy(value)
        if resource == "party":
            if rec.get("type") == "organisation":
                for k in PERSON_ONLY:
                    rec.pop(k, None)
            elif rec.get("type") == "person":
                rec.pop("name", None)
        if resource == "opportunity" and "milestone" in body:
            self._milestone_effects(rec)
        if resource == "kase" and "status" in body:
            rec["closedOn"] = self.clock.today() if rec.get("status") == "CLOSED" else None
        if resource == "task" and "status" in body:
            done = rec.get("status") == "COMPLETED"
            user = self.token_user_stub() or {}
            rec["completedAt"] = self.clock.stamp() if done else None
            if "completedBy" in rec:
                rec["completedBy"] = user.get("username") if done else None

    def _merge_contacts(self, resource: str, rec: dict, key: str, items: t.Any) -> None:
        if items is None:
            return
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise Invalid([error(resource, key, f"{key} must be a list of objects")])
        rows = [dict(r) for r in rec.get(key) or []]
        for item in items:
            rid = _ref_id(item.get("id"))
            if item.get("_delete"):
                if not any(r.get("id") == rid for r in rows):
                    raise NotFound()
                rows = [r for r in rows if r.get("id") != rid]
                continue
            fields = {k: v for k, v in item.items() if k not in ("id", "_delete")}
            match = next((r for r in rows if rid is not None and r.get("id") == rid), None)
            if match is not None:
                match.update(fields)
            else:
                row = {"id": self.new_id("contact-rows"), **CONTACT_DEFAULTS[key], **fields}
                if key == "websites" and not row.get("url"):
                    row["url"] = row.get("address")
                rows.append(row)
        rec[key] = rows

    def _merge_tags(self, o: CapsuleObject, rec: dict, items: t.Any) -> None:
        defs = self.rows[o.tags]
        if not isinstance(items, list):
            raise Invalid([error(o.item_key, "tags", "tags must be a list")])
        tags = list(rec.get("tags") or [])
        for item in items:
            if not isinstance(item, dict):
                raise Invalid([error(o.item_key, "tags", "tags must be a list of objects")])
            tid = _ref_id(item.get("id"))
            if item.get("_delete"):
                tags = [x for x in tags if x.get("id") != tid]
                continue
            if tid is not None:
                definition = defs.get(tid)
                if definition is None:
                    raise NotFound()
            else:
                name = str(item.get("name") or "").strip()
                if not name:
                    raise Invalid([error(o.item_key, "tags", "tag name is required")])
                definition = next(
                    (d for d in defs.values() if str(d.get("name")).casefold() == name.casefold()),
                    None,
                )
                if definition is None:  # unknown names create a tag definition
                    definition = self.add(
                        o.tags,
                        {
                            "id": self.new_id(o.tags),
                            "name": name,
                            "description": None,
                            "dataTag": False,
                        },
                    )
            if all(x.get("id") != definition["id"] for x in tags):
                tags.append(
                    {k: definition.get(k) for k in ("id", "name", "description", "dataTag")}
                )
        rec["tags"] = tags

    def _merge_fields(self, o: CapsuleObject, rec: dict, items: t.Any) -> None:
        defs = self.rows[o.custom_fields]
        if not isinstance(items, list):
            raise Invalid([error(o.item_key, "fields", "fields must be a list")])
        values = [dict(v) for v in rec.get("fields") or []]
        for item in items:
            if not isinstance(item, dict):
                raise Invalid([error(o.item_key, "fields", "fields must be a list of objects")])
            ref = item.get("definition")
            if item.get("_delete") and ref is None:
                vid = _ref_id(item.get("id"))
                values = [v for v in values if v.get("id") != vid]
                continue
            definition = None
            did = _ref_id(ref)
            if did is not None:
                definition = defs.get(did)
            elif isinstance(ref, dict) and ref.get("name"):
                wanted = str(ref["name"]).casefold()
                definition = next(
                    (d for d in defs.values() if str(d.get("name")).casefold() == wanted), None
                )
            if definition is None:
                raise Invalid([error(o.item_key, "fields", "unknown custom field definition")])
            current = next((v for v in values if v["definition"]["id"] == definition["id"]), None)
            if item.get("_delete"):
                values = [v for v in values if v is not current]
                continue
            value = validation.check_field_value(o.item_key, definition, item.get("value"))
            if value is None:
                values = [v for v in values if v is not current]
            elif current is not None:
                current["value"] = value
            else:
                entry = {
                    "id": self.new_id(o.custom_fields + ":values"),
                    "definition": {"id": definition["id"], "name": definition.get("name")},
                    "value": value,
                }
                if isinstance(definition.get("tag"), dict):
                    entry["tagId"] = definition["tag"].get("id")
                values.append(entry)
        rec["fields"] = values

    def _organisation(self, value: t.Any) -> dict | None:
        """A person's organisation by id (must be an organisation, else 404) or by name (created)."""
        if value is None:
            return None
        parties = self.rows["parties"]
        rid = _ref_id(value)
        if rid is not None:
            org = parties.get(rid)
            if org is None or org.get("type") != "organisation":
                raise NotFound()
            return self.stub("parties", org)
        name = value.get("name") if isinstance(value, dict) else value
        if not name:
            raise Invalid([error("party", "organisation", "organisation is invalid")])
        wanted = str(name).strip().casefold()
        org = next(
            (
                p
                for p in parties.values()
                if p.get("type") == "organisation"
                and str(p.get("name") or "").strip().casefold() == wanted
            ),
            None,
        )
        if org is None:
            _, org = self.create("parties", {"type": "organisation", "name": str(name).strip()})
        return self.stub("parties", org)

    def _definition_tag(self, o: CapsuleObject, value: t.Any) -> dict | None:
        if value is None:
            return None
        tags = next(
            (
                s
                for s, e in self.objects.items()
                if e.item_key == "tag" and e.definitions_of == o.definitions_of
            ),
            None,
        )
        tag = self.rows.get(tags or "", {}).get(_ref_id(value))
        if tag is None:
            raise NotFound()
        return {"id": tag["id"], "name": tag.get("name"), "dataTag": tag.get("dataTag")}

    def _milestone_effects(self, rec: dict) -> None:
        milestone = self.rows.get("milestones", {}).get((rec.get("milestone") or {}).get("id"))
        if milestone is None:
            return
        rec["probability"] = milestone.get("probability")
        rec["lastStageChangedAt"] = self.clock.stamp()
        if milestone.get("complete"):
            rec["closedOn"] = rec.get("closedOn") or self.clock.today()
        else:
            rec["closedOn"] = None
            rec["lostReason"] = None
            rec["lastOpenMilestone"] = {"id": milestone["id"], "name": milestone.get("name")}

    def _defaults_on_create(self, o: CapsuleObject, rec: dict, body: dict) -> None:
        resource = o.item_key
        if resource == "opportunity" and not body.get("owner") and not body.get("team"):
            rec["owner"] = self.token_user_stub()  # opportunities only; kases must name one
        if resource == "kase" and not rec.get("status"):
            rec["status"] = "OPEN"
        if resource == "task":
            rec["status"] = rec.get("status") or "OPEN"
            if not body.get("owner"):
                rec["owner"] = self.token_user_stub()
        if resource == "entry":
            rec["type"] = body.get("type", "note")
            rec["creator"] = self.token_user_stub()
            rec["entryAt"] = rec.get("entryAt") or self.clock.stamp()
            if not rec.get("activityType"):
                rec["activityType"] = {"id": -1, "name": "Note"}
            for key in ("parties", "participants", "attachments"):
                if key in rec and rec[key] is None:
                    rec[key] = []
        if resource == "tag" and rec.get("dataTag") is None:
            rec["dataTag"] = False
        if resource == "restHook":
            rec["user"] = self.token_user_stub()
            rec["clientId"] = "sandbox-client"
        if resource == "party" and "pictureURL" in rec:
            rec["pictureURL"] = "https://capsulecrm.com/theme/default/images/person_avatar_70.png"

    def _after_create(self, o: CapsuleObject, rec: dict, body: dict) -> None:
        if o.parent_key and o.parent:
            parent = self.objects[o.parent]
            rid = _ref_id(body.get(parent.item_key))
            if rid not in self.rows[o.parent]:
                raise NotFound()
            rec[o.parent_key] = rid
        if o.item_key == "track":
            self._start_track(o, rec)
        if o.item_key == "milestone" and isinstance(rec.get("pipeline"), dict):
            rec.setdefault("pipelineId", rec["pipeline"]["id"])

    def _start_track(self, o: CapsuleObject, rec: dict) -> None:
        definition = self.rows["track_definitions"][rec["definition"]["id"]]
        if o.capture_rule and definition.get("captureRule") != o.capture_rule:
            raise Invalid(
                [error("track", "definition", f"definition captureRule must be {o.capture_rule}")]
            )
        parent = self.objects[o.parent]
        rec["direction"] = definition.get("direction")
        rec["description"] = rec.get("description") or definition.get("description")
        rec["trackDateOn"] = rec.get("trackDateOn") or self.clock.today()
        tasks = []
        for spec in definition.get("taskDefinitions") or []:
            task = self.add(
                "tasks",
                {
                    "id": self.new_id("tasks"),
                    "description": spec.get("description"),
                    "detail": None,
                    "category": None,
                    "dueOn": rec["trackDateOn"],
                    "dueTime": None,
                    "status": "OPEN",
                    "party": None,
                    "opportunity": None,
                    "kase": None,
                    parent.item_key: self.stub(
                        parent.stream, self.rows[parent.stream][rec[o.parent_key]]
                    ),
                    "owner": self.token_user_stub(),
                    "completedBy": None,
                    "completedAt": None,
                    "daysAfter": spec.get("daysAfter"),
                    "taskDelayRule": "TRACK_START",
                    "taskDayDelayRule": "TRACK_DAYS",
                    "nextTask": None,
                    "hasTrack": True,
                    "repeat": None,
                    "createdAt": rec["createdAt"],
                    "updatedAt": rec["updatedAt"],
                },
            )
            tasks.append({"id": task["id"], "description": task["description"]})
        rec["tasks"] = tasks

    def _refresh_missing(self, o: CapsuleObject, rec: dict) -> None:
        """missingImportantFields: an `important` field definition without a value."""
        if "missingImportantFields" not in rec or o.custom_fields not in self.rows:
            return
        have = {v["definition"]["id"] for v in rec.get("fields") or []}
        rec["missingImportantFields"] = any(
            d.get("important") and d["id"] not in have for d in self.rows[o.custom_fields].values()
        )

    # --- admin --------------------------------------------------------------------------------

    def touch(self, stream: str, rid: int, changes: dict) -> dict:
        """A user's edit in Capsule's UI: raw changes, updatedAt bumped (unless given)."""
        with self.lock:
            if stream not in self.rows:
                raise NotFound()
            stream, rec = self.find(stream, rid)
            rec.update(copy.deepcopy(changes))
            if "updatedAt" not in changes and "updatedAt" in rec:
                rec["updatedAt"] = self.clock.stamp()
            self.changed(stream)
            return rec

    def state(self) -> dict:
        with self.lock:
            out: dict[str, t.Any] = {s: list(rows.values()) for s, rows in self.rows.items()}
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


def check_write_allowed(o: CapsuleObject, operation: str) -> None:
    if operation not in o.operations:
        raise MethodNotAllowed()


__all__ = ["Store", "ApiError", "REF_TARGETS", "EMBED_ONLY", "check_write_allowed"]
