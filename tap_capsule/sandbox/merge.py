"""Merging a write's body into a record the way Capsule does (PUT is a partial update).

Contact rows, tags and custom-field values merge by row: new rows are appended, `{"id": rowId,
"_delete": true}` removes one, and an empty list changes nothing. Nested references resolve to the
stored record's stub (404 when it does not exist). Keys Capsule computes itself are ignored.
"""

from __future__ import annotations

import copy
import typing as t

from tap_capsule.sandbox import documented, validation
from tap_capsule.sandbox.documented import OAUTH_CLIENT_ID
from tap_capsule.sandbox.errors import NotFoundError, ValidationFailedError, error
from tap_capsule.sandbox.models import (
    ALWAYS_READ_ONLY,
    CONTACT_DEFAULTS,
    PERSON_ONLY,
    READ_ONLY_BY_RESOURCE,
    REF_TARGETS,
    ref_id,
)
from tap_capsule.sandbox.tables import Tables

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject


class Merge(Tables):
    """The body-into-record half of the store's writes."""

    def create(self, stream: str, body: dict) -> tuple[str, dict]:
        """Create a record (the store does): a person may name a new organisation."""
        raise NotImplementedError

    # --- merging a request body into a record -------------------------------------------------

    def _apply(self, o: CapsuleObject, rec: dict, body: dict, creating: bool) -> None:
        resource = o.item_key
        model = documented.fields(o)
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
            elif key == "attachments" and resource == "entry":
                rec[key] = self.files.attach(rec.get(key) or [], value)
            elif key == "organisation" and o.stream == "parties":
                rec[key] = self._organisation(value)
            elif key == "tag" and o.definitions_of:
                rec[key] = self._definition_tag(o, value)
            elif key == "type" and not creating and resource in ("party", "entry"):
                continue  # fixed once set
            elif key in REF_TARGETS and key in model and REF_TARGETS[key] in self.rows:
                rec[key] = self.ref(key, value)
            elif key in model:
                rec[key] = copy.deepcopy(value)
        if (
            not creating
            and resource in self.owner_clears_team
            and "owner" in body
            and "team" not in body
        ):
            rec["team"] = None  # Capsule clears a case's team when a PUT names only the owner
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
        if resource == "task" and ("status" in body or "completedAt" in body):
            done = rec.get("status") == "COMPLETED"
            user = self.token_user_stub() or {}
            # `completedAt` is writable (Task model); Capsule's clock fills it when not given.
            given = body.get("completedAt") if done else None
            rec["completedAt"] = (given or self.clock.stamp()) if done else None
            if "completedBy" in rec:
                rec["completedBy"] = user.get("username") if done else None

    def _merge_contacts(self, resource: str, rec: dict, key: str, items: t.Any) -> None:  # noqa: ANN401 - whatever a client sent
        if items is None:
            return
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValidationFailedError([error(resource, key, f"{key} must be a list of objects")])
        rows = [dict(r) for r in rec.get(key) or []]
        for item in items:
            rid = ref_id(item.get("id"))
            if item.get("_delete"):
                if not any(r.get("id") == rid for r in rows):
                    raise NotFoundError()
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

    def _merge_tags(self, o: CapsuleObject, rec: dict, items: t.Any) -> None:  # noqa: ANN401 - whatever a client sent
        tag_stream = o.tags or ""  # the caller checked that `o` has tag definitions
        defs = self.rows[tag_stream]
        if not isinstance(items, list):
            raise ValidationFailedError([error(o.item_key, "tags", "tags must be a list")])
        tags = list(rec.get("tags") or [])
        for item in items:
            if not isinstance(item, dict):
                raise ValidationFailedError(
                    [error(o.item_key, "tags", "tags must be a list of objects")]
                )
            tid = ref_id(item.get("id"))
            if item.get("_delete"):
                if all(x.get("id") != tid for x in tags):  # live Capsule: 422, not a no-op
                    raise ValidationFailedError(
                        [error(o.item_key, "tags", "tag not found to delete")]
                    )
                tags = [x for x in tags if x.get("id") != tid]
                continue
            if tid is not None:
                definition = defs.get(tid)
                if definition is None:
                    raise NotFoundError()
            else:
                name = str(item.get("name") or "").strip()
                if not name:
                    raise ValidationFailedError([error(o.item_key, "tags", "tag name is required")])
                definition = next(
                    (d for d in defs.values() if str(d.get("name")).casefold() == name.casefold()),
                    None,
                )
                if definition is None:  # unknown names create a tag definition
                    definition = self.add(
                        tag_stream,
                        {
                            "id": self.new_id(tag_stream),
                            "name": name,
                            "description": None,
                            "dataTag": False,
                        },
                    )
            if all(x.get("id") != definition["id"] for x in tags):
                tags.append({k: definition.get(k) for k in ("id", "name", "dataTag")})
        rec["tags"] = tags

    def _merge_fields(self, o: CapsuleObject, rec: dict, items: t.Any) -> None:  # noqa: ANN401 - whatever a client sent
        field_stream = o.custom_fields or ""  # the caller checked that `o` has custom fields
        defs = self.rows[field_stream]
        if not isinstance(items, list):
            raise ValidationFailedError([error(o.item_key, "fields", "fields must be a list")])
        values = [dict(v) for v in rec.get("fields") or []]
        for item in items:
            if not isinstance(item, dict):
                raise ValidationFailedError(
                    [error(o.item_key, "fields", "fields must be a list of objects")]
                )
            ref = item.get("definition")
            if item.get("_delete") and ref is None:
                vid = ref_id(item.get("id"))
                values = [v for v in values if v.get("id") != vid]
                continue
            definition = None
            did = ref_id(ref)
            if did is not None:
                definition = defs.get(did)
            elif isinstance(ref, dict) and ref.get("name"):
                wanted = str(ref["name"]).casefold()
                definition = next(
                    (d for d in defs.values() if str(d.get("name")).casefold() == wanted), None
                )
            if definition is None:
                raise ValidationFailedError(
                    [error(o.item_key, "fields", "unknown custom field definition")]
                )
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
                    "id": self.new_id(field_stream + ":values"),
                    "definition": {"id": definition["id"], "name": definition.get("name")},
                    "value": value,
                }
                if isinstance(definition.get("tag"), dict):
                    entry["tagId"] = definition["tag"].get("id")
                values.append(entry)
        rec["fields"] = values

    def _organisation(self, value: t.Any) -> dict | None:  # noqa: ANN401 - whatever a client sent
        """A person's organisation by id (an organisation, else 404) or by name (made if new)."""
        if value is None:
            return None
        parties = self.rows["parties"]
        rid = ref_id(value)
        if rid is not None:
            org = parties.get(rid)
            if org is None or org.get("type") != "organisation":
                raise NotFoundError()
            return self.stub("parties", org)
        name = value.get("name") if isinstance(value, dict) else value
        if not name:
            raise ValidationFailedError([error("party", "organisation", "organisation is invalid")])
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

    def _definition_tag(self, o: CapsuleObject, value: t.Any) -> dict | None:  # noqa: ANN401 - whatever a client sent
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
        tag = self.rows.get(tags or "", {}).get(ref_id(value))
        if tag is None:
            raise NotFoundError()
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
            rec["active"] = True
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
            rec["clientId"] = OAUTH_CLIENT_ID
        if resource == "party" and "pictureURL" in rec:
            rec["pictureURL"] = "https://capsulecrm.com/theme/default/images/person_avatar_70.png"

    def _after_create(self, o: CapsuleObject, rec: dict, body: dict) -> None:
        if o.parent_key and o.parent:
            parent = self.objects[o.parent]
            rid = ref_id(body.get(parent.item_key))
            if rid not in self.rows[o.parent]:
                raise NotFoundError()
            rec[o.parent_key] = rid
        if o.item_key == "track":
            self._start_track(o, rec)
        if o.item_key == "milestone" and isinstance(rec.get("pipeline"), dict):
            rec.setdefault("pipelineId", rec["pipeline"]["id"])

    def _start_track(self, o: CapsuleObject, rec: dict) -> None:
        definition = self.rows["track_definitions"][rec["definition"]["id"]]
        if o.capture_rule and definition.get("captureRule") != o.capture_rule:
            raise ValidationFailedError(
                [error("track", "definition", f"definition captureRule must be {o.capture_rule}")]
            )
        parent = self.objects[o.parent or ""]  # a track always has its parent
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
                    "active": True,
                    "createdAt": self.clock.stamp(),
                    "updatedAt": self.clock.stamp(),
                },
            )
            tasks.append({"id": task["id"], "description": task["description"]})
        rec["tasks"] = tasks

    def refresh_missing(self, o: CapsuleObject, rec: dict) -> None:
        """missingImportantFields: an `important` field definition without a value."""
        if "missingImportantFields" not in rec or o.custom_fields not in self.rows:
            return
        have = {v["definition"]["id"] for v in rec.get("fields") or []}
        rec["missingImportantFields"] = any(
            d.get("important") and d["id"] not in have for d in self.rows[o.custom_fields].values()
        )
