"""Capsule's documented record vocabulary that the sandbox's store, views and seed share.

Which keys reference which object, the contact rows a party carries, which keys Capsule computes
itself (a write that sends them is not an error: they are ignored), and the id ranges the seed uses.
"""

from __future__ import annotations

import json
import typing as t

from tap_capsule.catalogue import ALL_OPERATIONS, DELETE, INSERT, UPDATE

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject

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
CONTACT_DEFAULTS: dict[str, dict[str, t.Any]] = {
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
    "task": {"completedBy", "hasTrack", "nextTask"},
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


def dump(value: t.Any) -> str:  # noqa: ANN401 - any JSON value
    """A canonical JSON text of `value`, to tell a no-op write from a real change."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def ref_id(value: t.Any) -> int | None:  # noqa: ANN401 - whatever a client sent
    """The id of a reference given as `{id}`, a bare number, or a numeric string."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# Operations Capsule documents per object (by wrapper key) where they differ from the catalogue's,
# which lists what the target writes. Custom titles: list, create and delete only (no PUT). REST
# hooks: no PUT. Users: only PUT. Milestones, categories, activity types and lost reasons also have
# DELETE. Settings lists without a documented write are read-only.
DOCUMENTED_OPERATIONS: dict[str, frozenset[str]] = {
    "personTitle": frozenset({INSERT, DELETE}),
    "restHook": frozenset({INSERT, DELETE}),
    "user": frozenset({UPDATE}),
    "milestone": ALL_OPERATIONS,
    "lostReason": ALL_OPERATIONS,
    "category": ALL_OPERATIONS,
    "activityType": ALL_OPERATIONS,
    **{
        key: frozenset()
        for key in ("pipeline", "board", "stage", "team", "trackDefinition", "country", "currency")
    },
}
# Objects whose single record has no GET (custom titles are only listed).
NO_SHOW = frozenset({"personTitle"})
# Lists that take `since` (tasks too: Capsule's own client sends it, though the Task page omits it).
SINCE_LISTS = frozenset({"party", "opportunity", "kase", "task"})
# Objects that several comma-joined ids fetch in one GET (up to 10; 404 if any is missing).
MULTI_GET = frozenset({"party", "opportunity", "kase", "task"})
# A PUT that sets `owner` without `team` clears the team on these (live-verified for cases only).
OWNER_CLEARS_TEAM = frozenset({"kase"})


def operations(o: CapsuleObject) -> frozenset[str]:
    """The writes Capsule documents for `o` (the catalogue's for objects the docs don't fix)."""
    return DOCUMENTED_OPERATIONS.get(o.item_key, o.operations)
