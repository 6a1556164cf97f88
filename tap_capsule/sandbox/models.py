"""Capsule's documented record vocabulary that the sandbox's store, views and seed share.

Which keys reference which object, the contact rows a party carries, which keys Capsule computes
itself (a write that sends them is not an error: they are ignored), and the id ranges the seed uses.
"""

from __future__ import annotations

import json
import typing as t

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
