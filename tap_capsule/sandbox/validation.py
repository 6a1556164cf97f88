"""Capsule's own 422 rules, as its documentation and live-verified clients record them.

Deliberately independent of the catalogue's `rules` (those are the target's pre-checks): the sandbox
plays Capsule, so a target that forgets a check meets Capsule's answer here, not a copy of its own.
Rules are keyed by the wrapper name (`party`, `task`, ...) because that is how Capsule names the
`resource` in its error bodies.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from tap_capsule.sandbox.errors import ValidationFailedError, error

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.sandbox.store import Store


def _blank(value: t.Any) -> bool:  # noqa: ANN401 - any field value
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _required(resource: str, record: dict, fields: t.Iterable[str], errors: list[dict]) -> None:
    errors.extend(
        error(resource, field, f"{field} is required")
        for field in fields
        if _blank(record.get(field))
    )


def _party(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
    kind = rec.get("type")
    if kind not in ("person", "organisation"):
        errors.append(
            error("party", "type", "type is required" if _blank(kind) else "type is invalid")
        )
    elif kind == "person":
        # Capsule accepts a person with only one of the two names.
        if _blank(rec.get("firstName")) and _blank(rec.get("lastName")):
            errors.append(error("party", "lastName", "firstName or lastName is required"))
    else:
        if _blank(rec.get("name")):
            errors.append(error("party", "name", "name is required"))
        elif "name" in body or creating:
            wanted = str(rec["name"]).strip().casefold()
            for other in store.rows["parties"].values():
                if (
                    other["id"] != rec.get("id")
                    and other.get("type") == "organisation"
                    and str(other.get("name") or "").strip().casefold() == wanted
                ):
                    errors.append(error("party", "name", "name must be unique"))
                    break
    countries = store.country_names()
    for address in body.get("addresses") or []:
        if isinstance(address, dict) and not address.get("_delete"):
            country = address.get("country")
            if not _blank(country) and country not in countries:
                errors.append(error("party", "address.country", "address.country: unknown country"))


def _opportunity(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
    _required("opportunity", rec, ("name", "party", "milestone"), errors)
    value = rec.get("value")
    if (
        isinstance(value, dict)
        and value.get("amount") is not None
        and _blank(value.get("currency"))
    ):
        errors.append(error("opportunity", "value.currency", "value.currency is required"))
    if rec.get("durationBasis") == "FIXED" and rec.get("duration") is not None:
        errors.append(
            error("opportunity", "duration", "duration must be null when durationBasis is FIXED")
        )


def _kase(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
    _required("kase", rec, ("party", "name"), errors)
    if _blank(rec.get("owner")) and _blank(rec.get("team")):
        errors.append(error("kase", "owner", "owner or team is required"))
    if rec.get("status") not in ("OPEN", "CLOSED"):
        errors.append(error("kase", "status", "status is invalid"))


def _task(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
    _required("task", rec, ("description", "dueOn"), errors)
    links = [k for k in ("party", "opportunity", "kase") if not _blank(rec.get(k))]
    if len(links) > 1:
        errors.append(
            error("task", links[1], "a task can belong to only one of party, opportunity or kase")
        )
    if "status" in body and body["status"] not in ("OPEN", "COMPLETED"):
        errors.append(error("task", "status", "status must be OPEN or COMPLETED"))
    due = rec.get("dueOn")
    if isinstance(due, str) and due:
        try:
            dt.date.fromisoformat(due)
        except ValueError:
            errors.append(error("task", "dueOn", "dueOn is invalid"))


def _entry(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
    if creating and _blank(body.get("type")):
        errors.append(error("entry", "type", "type is required"))
    elif creating and body.get("type") != "note":
        errors.append(error("entry", "type", "only notes can be created"))
    if creating:
        links = [k for k in ("party", "opportunity", "kase") if not _blank(body.get(k))]
        if len(links) != 1:
            errors.append(
                error("entry", "party", "exactly one of party, kase or opportunity is required")
            )
    if _blank(rec.get("content")) and not rec.get("attachments"):
        errors.append(error("entry", "content", "content is required"))


def _track(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
    if not creating:
        return
    _required("track", body, ("definition",), errors)
    links = [k for k in ("opportunity", "kase") if not _blank(body.get(k))]
    if len(links) != 1:
        errors.append(
            error("track", "opportunity", "exactly one of opportunity or kase is required")
        )


def _named(resource: str, field: str = "name") -> t.Callable[..., None]:
    def check(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
        _required(resource, rec, (field,), errors)

    return check


def _definition(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
    _required("definition", rec, ("name", "type"), errors)
    kind = rec.get("type")
    if kind and kind not in ("text", "date", "list", "boolean", "number", "link"):
        errors.append(error("definition", "type", "type is invalid"))
    if kind == "list" and _blank(rec.get("options")):
        errors.append(error("definition", "options", "options are required for a list field"))


def _resthook(rec: dict, body: dict, store: Store, creating: bool, errors: list[dict]) -> None:
    _required("restHook", rec, ("event", "targetUrl"), errors)


RULES: dict[str, t.Callable[..., None]] = {
    "party": _party,
    "opportunity": _opportunity,
    "kase": _kase,
    "task": _task,
    "entry": _entry,
    "track": _track,
    "tag": _named("tag"),
    "definition": _definition,
    "milestone": _named("milestone"),
    "lostReason": _named("lostReason"),
    "category": _named("category"),
    "activityType": _named("activityType"),
    "personTitle": _named("personTitle", "title"),
    "restHook": _resthook,
}


def check(resource: str, record: dict, body: dict, store: Store, creating: bool) -> None:
    """Raise `ValidationFailedError` with every rule `record` (after the merge) or `body` breaks."""
    rule = RULES.get(resource)
    errors: list[dict] = []
    if rule is not None:
        rule(record, body, store, creating, errors)
    if errors:
        raise ValidationFailedError(errors)


def check_field_value(entity: str, definition: dict, value: t.Any) -> t.Any:  # noqa: ANN401 - any field value
    """Validate one custom-field value against its definition; return it as Capsule stores it."""
    kind, name = definition.get("type"), definition.get("name")
    if value is None:
        if kind == "boolean":  # live-verified: remove a boolean value with `_delete` instead
            raise ValidationFailedError(
                [error(entity, "fields", f"{name}: invalid type for field")]
            )
        return None
    bad = ValidationFailedError(
        [error(entity, "fields", f"{name}: value is invalid for a {kind} field")]
    )
    if kind == "number":
        if isinstance(value, bool):
            raise bad
        try:
            float(value)
        except (TypeError, ValueError):
            raise bad from None
        return str(value)  # Capsule returns number values as strings
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad
    if kind == "date":
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            raise bad from None
        return str(value)
    if kind == "list":
        if value not in (definition.get("options") or []):
            raise bad
        return value
    return str(value)
