"""The record models Capsule documents, as the sandbox serves them (not the catalogue's schemas).

Capsule's model pages and example responses, and responses real clients recorded, fix which keys a
record carries. The catalogue describes what our tap emits, which may differ (it adds keys such as
`_sdc_deleted_at`, and its types accept more than one reading), so the sandbox keeps its own copy:
a created record starts from its model here, and the seed writes these shapes. An object that this
module does not know (a new catalogue entry) falls back to the catalogue's schema, so it is still
served.
"""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject

_STAMPS = ("createdAt", "updatedAt")
_EMBEDDED = ("tags", "fields", "missingImportantFields")
_CONTACTS = ("addresses", "phoneNumbers", "emailAddresses", "websites")

# Documented keys per object (by wrapper key). Embed-only keys are stored and left out of a view
# unless embedded; write-only and internal keys (below) are stored and never sent.
MODELS: dict[str, tuple[str, ...]] = {
    "party": (
        "id", "type", "about", "title", "firstName", "lastName", "jobTitle", "name",
        "organisation", "lastContactedAt", "pictureURL", *_CONTACTS, "owner", "team",
        *_STAMPS, *_EMBEDDED,
    ),
    "opportunity": (
        "id", "name", "description", "party", "milestone", "lostReason", "value",
        "expectedCloseOn", "probability", "durationBasis", "duration", "closedOn",
        "lastContactedAt", "lastStageChangedAt", "lastOpenMilestone", "owner", "team",
        *_STAMPS, *_EMBEDDED,
    ),
    "kase": (
        "id", "name", "description", "status", "party", "opportunity", "stage", "startOn",
        "expectedCloseOn", "closedOn", "lastContactedAt", "owner", "team", *_STAMPS, *_EMBEDDED,
    ),
    "entry": (
        "id", "type", "entryAt", "subject", "content", "attachments", "creator", "activityType",
        "party", "kase", "opportunity", "parties", "participants", *_STAMPS,
    ),
    "task": (
        "id", "description", "detail", "category", "dueOn", "dueTime", "status", "party",
        "opportunity", "kase", "owner", "completedBy", "completedAt", "daysAfter",
        "taskDelayRule", "taskDayDelayRule", "nextTask", "hasTrack", "repeat", "active", *_STAMPS,
    ),
    # No timestamps on tracks; `definition` is write-only (stored, never sent).
    "track": ("id", "description", "trackDateOn", "direction", "tasks", "definition"),
    "pipeline": ("id", "name", "description", "deleted", *_STAMPS),
    "milestone": (
        "id", "name", "description", "complete", "probability", "daysUntilStale", "pipeline",
        "displayOrder", *_STAMPS,
    ),
    "lostReason": ("id", "name", "includedForConversion", *_STAMPS),
    "team": ("id", "name", "memberships", *_STAMPS),
    "trackDefinition": (
        "id", "description", "tag", "captureRule", "direction", "taskDefinitions", *_STAMPS,
    ),
    "restHook": (
        "id", "event", "targetUrl", "description", "embed", "batched", "clientId", "user",
        *_STAMPS,
    ),
    "board": ("id", "name", "description", "deleted", *_STAMPS),
    "stage": ("id", "name", "description", "board", "displayOrder", "archived", *_STAMPS),
    # No timestamps on users; `deleted`, `loggedIn` and `pictureURL` come in real responses.
    "user": (
        "id", "username", "name", "locale", "currency", "timezone", "status", "lastLoginAt",
        "taskReminder", "party", "deleted", "loggedIn", "pictureURL",
    ),
    "category": ("id", "name", "colour"),
    "activityType": ("id", "name", "icon", "updateLastContacted"),
    "personTitle": ("id", "title"),
    "country": ("name", "alpha2Code", "alpha3Code", "numericCode"),
    "currency": ("code", "symbol", "name", "pluralName"),
    "tag": ("id", "name", "description", "dataTag"),
    "definition": (
        "id", "name", "type", "description", "displayOrder", "important", "tag", "captureRule",
        "options",
    ),
}  # fmt: skip

# Keys stored on a record and never sent: write-only (a track's definition) or the sandbox's own
# bookkeeping (a milestone's order, a stage's archived flag that `status` filters on).
HIDDEN: dict[str, frozenset[str]] = {
    "track": frozenset({"definition", "opportunity", "kase"}),
    "milestone": frozenset({"displayOrder"}),
    "stage": frozenset({"archived"}),
}
# Keys a single-record GET and the legacy /milestones leave out (only a pipeline's milestones
# list names the pipeline).
HIDDEN_OUTSIDE_PIPELINE = {"milestone": frozenset({"pipeline"})}
# Lists ordered by `displayOrder` (within their parent).
DISPLAY_ORDERED = frozenset({"milestone", "stage", "definition"})
# Our tap's own keys, never part of a Capsule record.
TAP_ONLY = frozenset({"_sdc_deleted_at", "custom_fields"})
# The sandbox's registered OAuth application (REST hooks carry its integer client id).
OAUTH_CLIENT_ID = 4321


def fields(o: CapsuleObject) -> tuple[str, ...]:
    """The keys a record of `o` is stored with."""
    model = MODELS.get(o.item_key)
    if model is not None:
        return model
    return tuple(k for k in o.schema if k not in TAP_ONLY)
