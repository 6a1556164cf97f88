"""The catalogue of Capsule objects: the single source of truth.

Every Capsule object the product knows is one `CapsuleObject` entry in `OBJECTS`. The tap builds its
streams from it, the target its sinks and rules, and the sandbox its routes. Adding an object to the
product means adding one entry here.

This module is plain data with no third-party imports, so the sandbox can read it without importing
the tap, the target or the Singer SDK.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
from urllib.parse import quote

INSERT, UPDATE, DELETE = "INSERT", "UPDATE", "DELETE"
ALL_OPERATIONS = frozenset({INSERT, UPDATE, DELETE})

# --- JSON-schema vocabulary -------------------------------------------------------------------
# Every property is nullable: Capsule sends null for unset values and omits embed-only keys.


def _nullable(type_: str, **extra: str) -> dict:
    return {"type": [type_, "null"], **extra}


STRING = _nullable("string")
INTEGER = _nullable("integer")
# Where Capsule's documentation disagrees with itself (a model page says String, the example
# response shows a number), the schema accepts both readings, so no loader stops on either.
STRING_OR_INTEGER = {"type": ["string", "integer", "null"]}
NUMBER = _nullable("number")
BOOLEAN = _nullable("boolean")
DATETIME = _nullable("string", format="date-time")
DATE = _nullable("string", format="date")


def open_object(properties: dict | None = None, **kw: dict) -> dict:
    """An open object: Capsule may add keys, and none of them may be dropped."""
    return {
        "type": ["object", "null"],
        "properties": {**(properties or {}), **kw},
        "additionalProperties": True,
    }


def arr(items: dict) -> dict:
    """A nullable array of `items` (Capsule sends null or omits lists it has nothing for)."""
    return {"type": ["array", "null"], "items": items}


REF = open_object(id=INTEGER, name=STRING)  # nested stubs: milestone, lostReason, team, stage, ...
USER_REF = open_object(id=INTEGER, username=STRING, name=STRING, pictureURL=STRING, deleted=BOOLEAN)
PARTY_REF = open_object(
    id=INTEGER, type=STRING, name=STRING, firstName=STRING, lastName=STRING, pictureURL=STRING
)
TAG = open_object(id=INTEGER, name=STRING, description=STRING, dataTag=BOOLEAN)
FIELD_VALUE = open_object(
    id=INTEGER,
    definition=open_object(id=INTEGER, name=STRING),
    value={"type": ["string", "number", "boolean", "null"]},
    tagId=INTEGER,
)
TIMESTAMPS = {"createdAt": DATETIME, "updatedAt": DATETIME}
# A record of a `<stream>_deleted` stream: one deleted (or, for this user, restricted) record.
DELETED_RECORD_SCHEMA = {
    "type": "object",
    "properties": {"id": INTEGER, "deletedAt": DATETIME, "restricted": BOOLEAN},
    "additionalProperties": False,
}
TOMBSTONE = {"_sdc_deleted_at": DATETIME}

# Fields Capsule computes itself; the target never sends them.
READ_ONLY_COMMON = frozenset(
    {
        "createdAt",
        "updatedAt",
        "pictureURL",
        "lastContactedAt",
        "lastStageChangedAt",
        "lastOpenMilestone",
        "missingImportantFields",
        "completedBy",
        "enrichment",
        "isRestricted",
        "_sdc_deleted_at",
        "custom_fields",  # resolved into `fields` by the target
    }
)

# --- Rules the target checks before any request -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Required:
    """`fields` must be present and non-empty on `operations`, if the record matches `when`."""

    fields: tuple[str, ...]
    when: t.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)
    operations: frozenset[str] = frozenset({INSERT})


@dataclasses.dataclass(frozen=True)
class OneOf:
    """`field` must hold one of `values` (on the given operations, when present or required)."""

    field: str
    values: tuple[str, ...]
    operations: frozenset[str] = frozenset({INSERT})
    required: bool = True


@dataclasses.dataclass(frozen=True)
class ExactlyOne:
    """Exactly one of `fields` is set (an entry hangs off one party, opportunity or case)."""

    fields: tuple[str, ...]
    operations: frozenset[str] = frozenset({INSERT})


@dataclasses.dataclass(frozen=True)
class AtMostOne:
    """At most one of `fields` is set (a task hangs off one party, opportunity or case, or none)."""

    fields: tuple[str, ...]
    operations: frozenset[str] = frozenset({INSERT, UPDATE})


Rule = Required | OneOf | ExactlyOne | AtMostOne


@dataclasses.dataclass(frozen=True)
class NaturalKey:
    """Fields that identify a record without its id, for upserts.

    A field path may end in `[]` to match any item of a list: `emailAddresses[].address`.
    """

    fields: tuple[str, ...]
    when: t.Mapping[str, t.Any] = dataclasses.field(default_factory=dict)


# --- The object entry ---------------------------------------------------------------------------


# How `capsule restore` brings an object back. A matched object is never created: the destination
# has its own (users, pipelines…), and records are paired by the fields that name them. A setting is
# created when no record of that name exists. Content and links are created, in `order`.
RESTORE_MATCH, RESTORE_SETTING, RESTORE_CONTENT, RESTORE_LINK = (
    "match",
    "setting",
    "content",
    "link",
)


@dataclasses.dataclass(frozen=True)
class Restore:
    """How a restore recreates an object: its kind, its rank, and the fields that name a record."""

    kind: str
    order: int  # a restore walks objects by rank, so what a record refers to exists before it
    names: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class CapsuleObject:
    """One Capsule object, as a stream (read) and a sink (write).

    Paths are relative to the API base and may name record fields in braces: a child object's path
    names its parent key, e.g. ``/opportunities/{opportunityId}/tracks``.
    """

    stream: str  # Singer stream name: catalogs, states and stream maps name it, so it never changes
    path: str  # list endpoint
    list_key: str  # wrapper of list responses
    item_key: str  # wrapper of single-record requests and responses
    schema: dict  # JSON-schema properties of a record as the tap emits it
    key_properties: tuple[str, ...] = ("id",)
    replication_key: str | None = None  # "updatedAt": INCREMENTAL; None: FULL_TABLE
    since: bool = False  # the list endpoint filters server-side with `since` (exclusive)
    deleted_path: str | None = None  # feed of {id, deletedAt} for tombstones
    deleted_keys: tuple[str, ...] = ()  # wrappers in the deleted feed (deleted, restricted)
    embed: tuple[str, ...] = ()
    params: t.Mapping[str, str] = dataclasses.field(default_factory=dict)  # fixed list params
    parent: str | None = None  # stream name of the parent object, for child lists
    parent_key: str | None = None  # record field holding the parent id, e.g. "opportunityId"
    child_key: str | None = None  # link objects: record field holding the linked id
    link_item_key: str | None = None  # link objects: nested copy of the linked record
    # Writes
    operations: frozenset[str] = frozenset()
    item_path: str | None = None  # GET/PUT/DELETE of one record; default f"{path}/{{id}}"
    updatable: frozenset[str] | None = (
        None  # the only fields a PUT changes, where Capsule limits it
    )
    create_path: str | None = None  # POST; default `path`
    rules: tuple[Rule, ...] = ()
    natural_keys: tuple[NaturalKey, ...] = ()
    read_only: frozenset[str] = frozenset()  # in addition to READ_ONLY_COMMON
    # Tags and custom fields
    custom_fields: str | None = None  # stream of this object's custom-field definitions
    tags: str | None = None  # stream of this object's tag definitions
    definitions_of: str | None = None  # on definition objects: which object they describe
    capture_rule: str | None = None  # track objects: the track definition captureRule they need
    insertable_types: tuple[str, ...] | None = None  # entries: only these `type`s can be created
    # Capsule has no PUT for it (custom titles): an UPDATE creates the new record, deletes the old.
    replace_on_update: bool = False
    multi_get: bool = False  # `GET {path}/{id1},{id2},...` answers up to 10 records at once
    searchable: bool = False  # `GET {path}/search?q=` and `POST {path}/filters/results` exist
    # Capsule's built-in records of this object have negative ids (activity type -1 is "Note").
    builtin_negative_ids: bool = False
    # Account tools: record field -> the stream whose ids it holds (nested `party: {id}` and flat
    # `opportunityId`), so an id map can carry references from old ids to new ones.
    references: t.Mapping[str, str] = dataclasses.field(default_factory=dict)
    restore: Restore | None = None
    not_restored: str = ""  # why a restore leaves this object out (when `restore` is None)

    @property
    def list_query(self) -> dict[str, str]:
        """Query parameters every read of the list sends (fixed params and embeds)."""
        query = dict(self.params)
        if self.embed:
            query["embed"] = ",".join(self.embed)
        return query

    @property
    def single_path(self) -> str:
        """The path of one record (GET/PUT/DELETE), with `{id}`."""
        return self.item_path or self.path + "/{id}"

    @property
    def post_path(self) -> str:
        """Where a new record is POSTed."""
        return self.create_path or self.path

    @property
    def is_link(self) -> bool:
        """A link between two records (additional parties): no id, no body, no update."""
        return self.child_key is not None

    @property
    def all_read_only(self) -> frozenset[str]:
        """Fields Capsule computes for this object: the target never sends them."""
        return READ_ONLY_COMMON | self.read_only

    def json_schema(self) -> dict:
        """The stream's JSON schema: open, since Capsule may add fields at any time."""
        return {"type": "object", "properties": dict(self.schema), "additionalProperties": True}


# --- Shared shapes ------------------------------------------------------------------------------

_CONTACTS = {
    "addresses": arr(
        open_object(
            id=INTEGER,
            type=STRING,
            street=STRING,
            city=STRING,
            state=STRING,
            country=STRING,
            zip=STRING,
        )
    ),
    "phoneNumbers": arr(open_object(id=INTEGER, type=STRING, number=STRING)),
    "emailAddresses": arr(open_object(id=INTEGER, type=STRING, address=STRING)),
    "websites": arr(
        open_object(id=INTEGER, type=STRING, service=STRING, address=STRING, url=STRING)
    ),
}
_EMBEDDED = {
    "tags": arr(TAG),
    "fields": arr(FIELD_VALUE),
    "missingImportantFields": BOOLEAN,
    "custom_fields": open_object(),  # typed per account at discovery (tap_capsule.custom_fields)
}
_OWNERSHIP = {"owner": USER_REF, "team": REF}
_REPEAT = open_object(frequency=STRING, interval=INTEGER, on=STRING, repeatOn=STRING)
_NAME_DEFINITION = (NaturalKey(("name",)),)


def _tag_definitions(stream: str, entity_path: str, rank: int) -> CapsuleObject:
    return CapsuleObject(
        stream=stream,
        restore=Restore(RESTORE_SETTING, rank, ("name",)),
        path=f"{entity_path}/tags",
        list_key="tags",
        item_key="tag",
        schema={"id": INTEGER, "name": STRING, "description": STRING, "dataTag": BOOLEAN},
        operations=ALL_OPERATIONS,
        rules=(Required(("name",)),),
        natural_keys=_NAME_DEFINITION,
        definitions_of=entity_path.strip("/"),
    )


def _field_definitions(stream: str, entity_path: str, rank: int) -> CapsuleObject:
    return CapsuleObject(
        stream=stream,
        restore=Restore(RESTORE_SETTING, rank, ("name",)),
        path=f"{entity_path}/fields/definitions",
        list_key="definitions",
        item_key="definition",
        schema={
            "id": INTEGER,
            "name": STRING,
            "type": STRING,
            "description": STRING,
            "displayOrder": INTEGER,
            "important": BOOLEAN,
            "captureRule": STRING,
            "options": arr(STRING),
            "tag": open_object(id=INTEGER, name=STRING, dataTag=BOOLEAN),
        },
        operations=ALL_OPERATIONS,
        rules=(
            Required(("name", "type")),
            OneOf("type", ("text", "date", "list", "boolean", "number", "link")),
        ),
        natural_keys=_NAME_DEFINITION,
        definitions_of=entity_path.strip("/"),
        # Listed in answers, but not a field of the Field Definition model: never written.
        read_only=frozenset({"displayOrder"}),
    )


def _party_links(
    stream: str, parent: str, parent_path: str, parent_key: str, rank: int
) -> CapsuleObject:
    return CapsuleObject(
        stream=stream,
        references={parent_key: parent, "partyId": "parties", "party": "parties"},
        restore=Restore(RESTORE_LINK, rank),
        path=f"{parent_path}/{{{parent_key}}}/parties",
        list_key="parties",
        item_key="party",
        schema={parent_key: INTEGER, "partyId": INTEGER, "party": PARTY_REF},
        key_properties=(parent_key, "partyId"),
        parent=parent,
        parent_key=parent_key,
        child_key="partyId",
        link_item_key="party",
        operations=frozenset({INSERT, DELETE}),
        item_path=f"{parent_path}/{{{parent_key}}}/parties/{{partyId}}",
        create_path=f"{parent_path}/{{{parent_key}}}/parties/{{partyId}}",
        rules=(Required((parent_key, "partyId"), operations=frozenset({INSERT, DELETE})),),
    )


def _tracks(
    stream: str, parent: str, parent_path: str, parent_key: str, capture: str, rank: int
) -> CapsuleObject:
    return CapsuleObject(
        stream=stream,
        references={parent_key: parent},
        restore=Restore(RESTORE_CONTENT, rank),
        path=f"{parent_path}/{{{parent_key}}}/tracks",
        list_key="tracks",
        item_key="track",
        schema={
            "id": INTEGER,
            parent_key: INTEGER,
            "description": STRING,
            "trackDateOn": DATE,
            "direction": STRING,
            "definition": REF,
            "tasks": arr(open_object(id=INTEGER, description=STRING)),
            **TIMESTAMPS,
        },
        parent=parent,
        parent_key=parent_key,
        operations=ALL_OPERATIONS,
        item_path="/tracks/{id}",
        create_path="/tracks",
        rules=(Required(("definition", parent_key)),),
        updatable=frozenset({"description", "trackDateOn"}),
        read_only=frozenset({"tasks", "direction"}),
        capture_rule=capture,
        embed=("task",),  # a track's tasks are embedded data (Capsule's own client says `tasks`)
    )


# --- The catalogue ------------------------------------------------------------------------------

OBJECTS: tuple[CapsuleObject, ...] = (
    CapsuleObject(
        stream="parties",
        references={"organisation": "parties", "owner": "users", "team": "teams"},
        restore=Restore(RESTORE_CONTENT, 200),
        path="/parties",
        list_key="parties",
        item_key="party",
        schema={
            "id": INTEGER,
            "type": STRING,
            "firstName": STRING,
            "lastName": STRING,
            "title": STRING,
            "jobTitle": STRING,
            "name": STRING,
            "organisation": open_object(PARTY_REF["properties"]),
            "about": STRING,
            "lastContactedAt": DATETIME,
            "pictureURL": STRING,
            **_CONTACTS,
            **_OWNERSHIP,
            **_EMBEDDED,
            **TIMESTAMPS,
            **TOMBSTONE,
        },
        replication_key="updatedAt",
        since=True,
        deleted_path="/parties/deleted",
        deleted_keys=("parties", "restrictedParties"),
        embed=("tags", "fields", "organisation"),
        operations=ALL_OPERATIONS,
        multi_get=True,
        searchable=True,
        rules=(
            OneOf("type", ("person", "organisation")),
            Required(("firstName", "lastName"), when={"type": "person"}),
            Required(("name",), when={"type": "organisation"}),
        ),
        natural_keys=(
            NaturalKey(("emailAddresses[].address",), when={"type": "person"}),
            NaturalKey(("name",), when={"type": "organisation"}),
        ),
        custom_fields="party_custom_fields",
        tags="party_tags",
    ),
    CapsuleObject(
        stream="opportunities",
        references={
            "party": "parties",
            "milestone": "milestones",
            "lostReason": "lost_reasons",
            "owner": "users",
            "team": "teams",
        },
        restore=Restore(RESTORE_CONTENT, 210),
        path="/opportunities",
        list_key="opportunities",
        item_key="opportunity",
        schema={
            "id": INTEGER,
            "name": STRING,
            "description": STRING,
            "party": PARTY_REF,
            "milestone": REF,
            "lostReason": REF,
            "value": open_object(amount=NUMBER, currency=STRING),
            "expectedCloseOn": DATE,
            "probability": INTEGER,
            "durationBasis": STRING,
            "duration": INTEGER,
            "closedOn": DATE,
            "lastContactedAt": DATETIME,
            "lastStageChangedAt": DATETIME,
            "lastOpenMilestone": REF,
            **_OWNERSHIP,
            **_EMBEDDED,
            **TIMESTAMPS,
            **TOMBSTONE,
        },
        replication_key="updatedAt",
        since=True,
        deleted_path="/opportunities/deleted",
        deleted_keys=("opportunities", "restrictedOpportunities"),
        embed=("tags", "fields"),
        operations=ALL_OPERATIONS,
        multi_get=True,
        searchable=True,
        rules=(Required(("name", "party", "milestone")),),
        custom_fields="opportunity_custom_fields",
        tags="opportunity_tags",
    ),
    CapsuleObject(
        stream="cases",
        references={
            "party": "parties",
            "opportunity": "opportunities",
            "stage": "stages",
            "owner": "users",
            "team": "teams",
        },
        restore=Restore(RESTORE_CONTENT, 220),
        path="/kases",
        list_key="kases",
        item_key="kase",
        schema={
            "id": INTEGER,
            "name": STRING,
            "description": STRING,
            "status": STRING,
            "party": PARTY_REF,
            "opportunity": REF,
            "stage": REF,
            "startOn": DATE,
            "expectedCloseOn": DATE,
            "closedOn": DATE,
            "lastContactedAt": DATETIME,
            **_OWNERSHIP,
            **_EMBEDDED,
            **TIMESTAMPS,
            **TOMBSTONE,
        },
        replication_key="updatedAt",
        since=True,
        deleted_path="/kases/deleted",
        deleted_keys=("kases", "restrictedKases"),
        embed=("tags", "fields"),
        operations=ALL_OPERATIONS,
        multi_get=True,
        searchable=True,
        rules=(Required(("name", "party")),),
        read_only=frozenset({"closedOn"}),
        custom_fields="case_custom_fields",
        tags="case_tags",
    ),
    CapsuleObject(
        stream="entries",
        references={
            "party": "parties",
            "opportunity": "opportunities",
            "kase": "cases",
            "activityType": "activity_types",
        },
        restore=Restore(RESTORE_CONTENT, 270),
        path="/entries",
        list_key="entries",
        item_key="entry",
        schema={
            "id": INTEGER,
            "type": STRING,
            "entryAt": DATETIME,
            "subject": STRING,
            "content": STRING,
            "attachments": arr(
                open_object(
                    id=INTEGER, filename=STRING, contentType=STRING, size=INTEGER, token=STRING
                )
            ),
            "creator": USER_REF,
            "activityType": REF,
            "party": PARTY_REF,
            "kase": REF,
            "opportunity": REF,
            "parties": arr(PARTY_REF),
            "participants": arr(open_object(id=INTEGER, address=STRING, name=STRING, role=STRING)),
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        operations=ALL_OPERATIONS,
        rules=(ExactlyOne(("party", "opportunity", "kase")),),
        read_only=frozenset({"creator", "parties", "participants"}),
        insertable_types=("note",),
    ),
    CapsuleObject(
        stream="tasks",
        references={
            "party": "parties",
            "opportunity": "opportunities",
            "kase": "cases",
            "category": "categories",
            "owner": "users",
        },
        restore=Restore(RESTORE_CONTENT, 280),
        path="/tasks",
        list_key="tasks",
        item_key="task",
        schema={
            "id": INTEGER,
            "description": STRING,
            "detail": STRING,
            "category": open_object(id=INTEGER, name=STRING, colour=STRING),
            "dueOn": DATE,
            "dueTime": STRING,
            "status": STRING,
            "party": PARTY_REF,
            "opportunity": REF,
            "kase": REF,
            "owner": USER_REF,
            "completedBy": STRING,
            "completedAt": DATETIME,
            "daysAfter": INTEGER,
            "taskDelayRule": STRING,
            "taskDayDelayRule": STRING,
            "nextTask": open_object(id=INTEGER, description=STRING),
            "hasTrack": BOOLEAN,
            # Recorded in real responses (not on the model page).
            "active": BOOLEAN,
            "overrideToCurrentUser": BOOLEAN,
            # Clients read the repeat rule under either name, with `on` or `repeatOn`.
            "repeat": _REPEAT,
            "repeatDetails": _REPEAT,
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        # Not on the public Task page, but Capsule's own client sends it ("tasks updated since");
        # the tap also filters on the client in case Capsule ignores it.
        since=True,
        params={"status": "open,completed,pending"},
        operations=ALL_OPERATIONS,
        multi_get=True,
        rules=(
            Required(("description", "dueOn")),
            AtMostOne(("party", "opportunity", "kase")),
            OneOf(
                "status",
                ("OPEN", "COMPLETED"),
                operations=frozenset({INSERT, UPDATE}),
                required=False,
            ),
        ),
        # `completedAt` is writable (Task model): a restored completed task keeps its date.
        read_only=frozenset({"hasTrack", "nextTask", "active"}),
    ),
    CapsuleObject(
        stream="pipelines",
        restore=Restore(RESTORE_MATCH, 30, ("name",)),
        path="/pipelines",
        list_key="pipelines",
        item_key="pipeline",
        schema={
            "id": INTEGER,
            "name": STRING,
            "description": STRING,
            "deleted": BOOLEAN,  # true for archived pipelines
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        # Archived pipelines too: old opportunities still point at their milestones.
        params={"includeDeleted": "true"},
    ),
    CapsuleObject(
        stream="milestones",
        references={"pipeline": "pipelines", "pipelineId": "pipelines"},
        restore=Restore(RESTORE_SETTING, 170, ("pipeline.id", "name")),
        path="/pipelines/{pipelineId}/milestones",
        list_key="milestones",
        item_key="milestone",
        schema={
            "id": INTEGER,
            "name": STRING,
            "description": STRING,
            "complete": BOOLEAN,
            "probability": INTEGER,
            "daysUntilStale": INTEGER,
            "displayOrder": INTEGER,
            "pipeline": REF,
            "pipelineId": INTEGER,
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        parent="pipelines",
        parent_key="pipelineId",
        operations=ALL_OPERATIONS,
        item_path="/milestones/{id}",
        create_path="/milestones",
        rules=(Required(("name", "pipeline")),),
        natural_keys=(NaturalKey(("pipeline.id", "name")),),
        read_only=frozenset({"pipelineId"}),
    ),
    CapsuleObject(
        stream="lost_reasons",
        restore=Restore(RESTORE_SETTING, 150, ("name",)),
        path="/lostreasons",
        list_key="lostReasons",
        item_key="lostReason",
        schema={"id": INTEGER, "name": STRING, "includedForConversion": BOOLEAN, **TIMESTAMPS},
        replication_key="updatedAt",
        operations=ALL_OPERATIONS,
        rules=(Required(("name",)),),
        natural_keys=_NAME_DEFINITION,
    ),
    CapsuleObject(
        stream="teams",
        restore=Restore(RESTORE_MATCH, 20, ("name",)),
        path="/teams",
        list_key="teams",
        item_key="team",
        schema={
            "id": INTEGER,
            "name": STRING,
            "memberships": arr(open_object(id=INTEGER, user=USER_REF)),
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        embed=("memberships",),
    ),
    CapsuleObject(
        stream="track_definitions",
        restore=Restore(RESTORE_MATCH, 60, ("description",)),
        path="/trackdefinitions",
        list_key="trackDefinitions",
        item_key="trackDefinition",
        schema={
            "id": INTEGER,
            "description": STRING,
            "tag": STRING,
            "captureRule": STRING,
            "direction": STRING,
            "taskDefinitions": arr(
                open_object(
                    id=INTEGER,
                    description=STRING,
                    daysAfterRule=STRING,
                    daysAfter=INTEGER,
                    displayOrder=INTEGER,
                    dayDelayRule=STRING,
                    # The model says a Category object; a create example shows a bare id.
                    category={
                        "type": ["object", "integer", "null"],
                        "properties": {"id": INTEGER, "name": STRING, "colour": STRING},
                        "additionalProperties": True,
                    },
                    trackTaskAssignee=open_object(assigneeType=STRING, owner=USER_REF),
                    **TIMESTAMPS,
                )
            ),
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        params={"type": "all"},
    ),
    CapsuleObject(
        stream="resthooks",
        not_restored="REST hooks belong to the OAuth app that registered them (and need an "
        "administrator); a backup's hooks point at that app's URLs, so its owner re-subscribes",
        path="/resthooks",
        list_key="restHooks",
        item_key="restHook",
        schema={
            "id": INTEGER,
            "event": STRING,
            "targetUrl": STRING,
            "description": STRING,
            "embed": STRING,
            "batched": BOOLEAN,
            "clientId": INTEGER,  # the REST Hook model: Integer, read only
            "user": USER_REF,
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        operations=frozenset({INSERT, DELETE}),
        rules=(Required(("event", "targetUrl")),),
        read_only=frozenset({"clientId", "user"}),
    ),
    CapsuleObject(
        stream="boards",
        restore=Restore(RESTORE_MATCH, 40, ("name",)),
        path="/boards",
        list_key="boards",
        item_key="board",
        schema={
            "id": INTEGER,
            "name": STRING,
            "description": STRING,
            "deleted": BOOLEAN,
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        params={"status": "all"},
    ),
    CapsuleObject(
        stream="stages",
        restore=Restore(RESTORE_MATCH, 50, ("board.name", "name")),
        path="/stages",
        list_key="stages",
        item_key="stage",
        schema={
            "id": INTEGER,
            "name": STRING,
            "description": STRING,
            "board": REF,
            "displayOrder": INTEGER,
            "archived": BOOLEAN,
            **TIMESTAMPS,
        },
        replication_key="updatedAt",
        params={"status": "all", "includeOnDeletedBoard": "true"},
    ),
    CapsuleObject(
        stream="users",
        references={"party": "parties"},
        restore=Restore(RESTORE_MATCH, 10, ("username",)),
        path="/users",
        list_key="users",
        item_key="user",
        schema={
            "id": INTEGER,
            "username": STRING,
            "name": STRING,
            "locale": STRING,
            "currency": STRING,
            "timezone": STRING,
            "status": STRING,
            "lastLoginAt": DATETIME,
            "taskReminder": BOOLEAN,  # the User model: Boolean (example: true)
            "party": PARTY_REF,
            # Recorded in real responses (not on the model page).
            "deleted": BOOLEAN,
            "loggedIn": BOOLEAN,
            "pictureURL": STRING,
            **TIMESTAMPS,
        },
        embed=("party",),
        operations=frozenset({UPDATE}),
        read_only=frozenset({"username", "status", "lastLoginAt", "party", "deleted", "loggedIn"}),
    ),
    CapsuleObject(
        stream="categories",
        restore=Restore(RESTORE_SETTING, 130, ("name",)),
        path="/categories",
        list_key="categories",
        item_key="category",
        schema={"id": INTEGER, "name": STRING, "colour": STRING},
        operations=ALL_OPERATIONS,
        rules=(Required(("name",)),),
        natural_keys=_NAME_DEFINITION,
    ),
    CapsuleObject(
        stream="activity_types",
        restore=Restore(RESTORE_SETTING, 140, ("name",)),
        path="/activitytypes",
        list_key="activityTypes",
        item_key="activityType",
        schema={
            "id": INTEGER,
            "name": STRING,
            # icon.id is a string key such as "NOTE" or "PHONE" in every documented example.
            "icon": open_object(
                id=STRING,
                order=INTEGER,
                displayName=STRING,
                iconName=STRING,
                isSystem=BOOLEAN,
            ),
            "updateLastContacted": BOOLEAN,
        },
        operations=ALL_OPERATIONS,
        rules=(Required(("name",)),),
        natural_keys=_NAME_DEFINITION,
        builtin_negative_ids=True,
    ),
    CapsuleObject(
        stream="custom_titles",
        restore=Restore(RESTORE_SETTING, 160, ("title",)),
        path="/titles",
        list_key="personTitles",
        item_key="personTitle",
        schema={"id": INTEGER, "title": STRING},
        operations=ALL_OPERATIONS,
        rules=(Required(("title",)),),
        natural_keys=(NaturalKey(("title",)),),
        replace_on_update=True,
    ),
    CapsuleObject(
        stream="countries",
        not_restored="Capsule's own fixed list: every account has the same countries",
        path="/countries",
        list_key="countries",
        item_key="country",
        schema={
            "name": STRING,
            "alpha2Code": STRING,
            "alpha3Code": STRING,
            # Integer in the example response (4, 248), String on the Country model page.
            "numericCode": STRING_OR_INTEGER,
        },
        key_properties=("alpha2Code",),
    ),
    CapsuleObject(
        stream="currencies",
        not_restored="Capsule's own fixed list: every account has the same currencies",
        path="/currencies",
        list_key="currencies",
        item_key="currency",
        schema={"code": STRING, "symbol": STRING, "name": STRING, "pluralName": STRING},
        key_properties=("code",),
    ),
    _tag_definitions("party_tags", "/parties", 70),
    _tag_definitions("opportunity_tags", "/opportunities", 80),
    _tag_definitions("case_tags", "/kases", 90),
    _field_definitions("party_custom_fields", "/parties", 100),
    _field_definitions("opportunity_custom_fields", "/opportunities", 110),
    _field_definitions("case_custom_fields", "/kases", 120),
    _party_links("opportunity_parties", "opportunities", "/opportunities", "opportunityId", 230),
    _party_links("case_parties", "cases", "/kases", "caseId", 240),
    _tracks(
        "opportunity_tracks", "opportunities", "/opportunities", "opportunityId", "OPPORTUNITY", 250
    ),
    _tracks("case_tracks", "cases", "/kases", "caseId", "CASEFILE", 260),
)

BY_STREAM: dict[str, CapsuleObject] = {o.stream: o for o in OBJECTS}


def _reference_streams() -> dict[str, str]:
    """Every object's reference fields in one map; a field means the same stream everywhere."""
    merged: dict[str, str] = {}
    for obj in OBJECTS:
        for field, stream in obj.references.items():
            if merged.setdefault(field, stream) != stream:
                raise ValueError(f"{field} refers to {merged[field]} and {stream}")
    return merged


# Record field -> the stream whose ids it holds, over the whole catalogue (the id map's view).
REFERENCE_STREAMS: dict[str, str] = _reference_streams()


DELETED_SUFFIX = "_deleted"


def deleted_stream(obj: CapsuleObject) -> str:
    """The name of the stream of `obj`'s deletions (`tombstones: stream`): `<stream>_deleted`."""
    return obj.stream + DELETED_SUFFIX


def deletions_of(stream: str) -> CapsuleObject | None:
    """The object whose deletions a `<stream>_deleted` stream names, else None."""
    if not stream.endswith(DELETED_SUFFIX):
        return None
    return BY_STREAM.get(stream.removesuffix(DELETED_SUFFIX))


def get(stream: str) -> CapsuleObject:
    """The catalogue entry of a stream; an unknown name lists the known ones."""
    try:
        return BY_STREAM[stream]
    except KeyError:
        known = ", ".join(sorted(BY_STREAM))
        raise KeyError(f"Unknown Capsule stream {stream!r}; known streams: {known}") from None


def path_fields(template: str) -> list[str]:
    """The record fields a catalogue path names in braces (`{opportunityId}`)."""
    return re.findall(r"{(\w+)}", template)


def fill_path(template: str, values: t.Mapping[str, t.Any]) -> str:
    """Fill `{field}` placeholders of a catalogue path from a record or context.

    Each value is percent-escaped whole (`/`, `?`, `#` and `..` included), so a value can only
    ever name one path segment of the object the template belongs to.
    """
    return template.format_map(
        {name: quote(str(values[name]), safe="") for name in path_fields(template)}
    )


def parent_of(obj: CapsuleObject) -> CapsuleObject | None:
    """The entry of a child object's parent, None for top-level objects."""
    return BY_STREAM[obj.parent] if obj.parent else None
