"""Checks on a record before any request: ids that go into URLs, and the shape of each field.

Input comes from any tap, a CSV file or a database, so nothing in it is trusted. An id that goes
into a URL must be a positive whole number (a string of digits from a CSV is fine), or a record
could name another object's path (`10000004/../../kases/30000003`) or add a query (`5?x=1`). A
field whose shape is not what the payload builder expects is a rejection that names the field,
never a guess: `tags: "VIP"` would otherwise become the three tags V, I and P.
"""

from __future__ import annotations

import re
import typing as t

from tap_capsule import catalogue as cat
from target_capsule.payload import CONTACT_LISTS, is_ref, parent_ref_key
from target_capsule.values import blank

MAX_ID = 2**63 - 1  # Capsule ids are 64-bit integers
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only: int() also reads "١٢" and "²"


class ValidationError(ValueError):
    """The record cannot be sent as it stands; the message names the field and the rule."""


def show(value: object, limit: int = 60) -> str:
    """A short, readable form of a bad value for a rejection reason (huge strings are cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of(value: object) -> str:
    """The JSON name of a value's type, as a user would call it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        sign = -1 if text.startswith("-") else 1
        if _DIGITS.fullmatch(text.removeprefix("-")):
            return sign * int(text.removeprefix("-"))
    return None


def as_id(value: object) -> int | None:
    """`value` as an id fit for a URL, or None (no exception: for code that only peeks)."""
    number = _whole(value)
    return number if number is not None and 0 < number <= MAX_ID else None


def positive_id(value: object, field: str, head: str, *, builtin: bool = False) -> int:
    """`value` as an id fit for a URL, or `ValidationError` naming `field`.

    `builtin`: the object's built-in records have negative ids (activity types), so a non-zero
    whole number is fit too; a digit string with a minus sign is still nothing but an id.
    """
    number = _whole(value)
    low = -MAX_ID if builtin else 1
    if number is None or not low <= number <= MAX_ID or number == 0:
        rule = "a non-zero whole number" if builtin else "a positive whole number"
        raise ValidationError(
            f"{head}: {field} {show(value)} is not a valid id (rule: an id is {rule})"
        )
    return number


def reference_id(value: object, field: str, head: str) -> int:
    """An id inside a body (`party.id`): a whole number; Capsule's built-in ones are negative."""
    number = _whole(value)
    if number is None or not -MAX_ID <= number <= MAX_ID:
        raise ValidationError(
            f"{head}: {field} {show(value)} is not a valid id (rule: an id is a whole number)"
        )
    return number


def url_fields(obj: cat.CapsuleObject) -> list[str]:
    """Record fields that a catalogue path of this object puts into a URL."""
    names: list[str] = []
    for template in (obj.path, obj.post_path, obj.single_path):
        for name in cat.path_fields(template or ""):
            if name not in names:
                names.append(name)
    return names


def check_ids(obj: cat.CapsuleObject, operation: str, record: dict) -> None:
    """Every id that may go into a URL, normalised to an int in place."""
    head = f"{obj.stream} {operation}"
    for name in {"id", *url_fields(obj)}:
        if name in record and not blank(record[name]):
            builtin = name == "id" and obj.builtin_negative_ids
            record[name] = positive_id(record[name], name, head, builtin=builtin)
    parent_ref = parent_ref_key(obj)
    if parent_ref and obj.parent_key:
        value = record.get(parent_ref)
        if isinstance(value, dict) and not blank(value.get("id")):
            record[parent_ref] = {**value, "id": positive_id(value["id"], f"{parent_ref}.id", head)}
        elif isinstance(value, (int, str)) and not blank(value):
            record[parent_ref] = positive_id(value, parent_ref, head)


def _schema_types(prop: t.Mapping[str, t.Any]) -> set[str]:
    types: set[str] = set()
    for option in [prop, *(prop.get("anyOf") or ()), *(prop.get("oneOf") or ())]:
        kind = option.get("type")
        types.update(kind if isinstance(kind, list) else [kind] if kind else [])
    return types


def _shape_error(head: str, field: str, expected: str, value: object) -> ValidationError:
    return ValidationError(
        f"{head}: {field} must be {expected}, got {kind_of(value)} {show(value)}"
    )


def check_shapes(obj: cat.CapsuleObject, operation: str, record: t.Mapping[str, t.Any]) -> None:
    """Each field in the shape the payload builder reads; `ValidationError` names a misfit."""
    head = f"{obj.stream} {operation}"
    for key, value in record.items():
        if value is None or key.startswith("_sdc_"):
            continue
        if key == "tags" and obj.tags:
            _check_tags(head, value)
        elif key == "custom_fields" and obj.custom_fields:
            if not isinstance(value, dict):
                raise _shape_error(head, key, "an object of custom field values", value)
            for name, item in value.items():
                _check_scalar(head, f"custom_fields.{name}", item)
        elif key == "fields" and obj.custom_fields:
            _check_list_of_objects(head, key, value, "a list of {definition, value} objects")
            for item in value:
                _check_scalar(head, "fields[].value", item.get("value"))
        elif key in CONTACT_LISTS and key in obj.schema:
            _check_list_of_objects(head, key, value, "a list of objects")
            for item in value:
                for part, part_value in item.items():
                    _check_scalar(head, f"{key}[].{part}", part_value)
        elif key in obj.schema:
            prop = obj.schema[key]
            if is_ref(prop):
                _check_ref(head, key, value)
                continue
            types = _schema_types(prop)
            if isinstance(value, dict) and types and "object" not in types:
                raise _shape_error(head, key, _expected(types), value)
            if isinstance(value, list) and types and "array" not in types:
                raise _shape_error(head, key, _expected(types), value)


def _expected(types: set[str]) -> str:
    names = sorted(tp for tp in types if tp != "null")
    return " or ".join(f"a {tp}" if tp[0] not in "aeiou" else f"an {tp}" for tp in names)


def _check_tags(head: str, value: object) -> None:
    expected = "a list of tag names or {name} objects"
    if not isinstance(value, list):
        raise _shape_error(head, "tags", expected, value)
    for item in value:
        if isinstance(item, str) and item.strip():
            continue
        if isinstance(item, dict) and (
            (isinstance(item.get("name"), str) and item["name"].strip())
            or not blank(item.get("id"))
        ):
            if not blank(item.get("id")) and blank(item.get("name")):
                reference_id(item["id"], "tags[].id", head)
            continue
        raise ValidationError(f"{head}: tags item {show(item)} is not {expected[2:]}")


def _check_scalar(head: str, field: str, value: object) -> None:
    """A custom value or a part of a contact item: text, a number, a boolean or null."""
    if isinstance(value, (dict, list, tuple)):
        raise _shape_error(head, field, "a text, number or boolean value", value)


def _check_list_of_objects(head: str, field: str, value: object, expected: str) -> None:
    if not isinstance(value, list):
        raise _shape_error(head, field, expected, value)
    for item in value:
        if not isinstance(item, dict):
            raise ValidationError(
                f"{head}: {field} item {show(item)} must be an object, got {kind_of(item)}"
            )


def _check_ref(head: str, field: str, value: object) -> None:
    if blank(value):
        return
    if isinstance(value, dict):
        if not blank(value.get("id")):
            reference_id(value["id"], f"{field}.id", head)
        return
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        reference_id(value, field, head)
        return
    raise _shape_error(head, field, "a reference ({id} object or id)", value)


def prepare(obj: cat.CapsuleObject, operation: str, record: dict) -> dict:
    """A checked copy of `record` with its URL ids as ints, or `ValidationError`.

    Also fills the one default that saves a request: an entry without `type` is a note, the only
    kind of entry Capsule lets a client create (sending none gets a 422).
    """
    clean = dict(record)
    if operation not in obj.operations:
        return clean  # rejected by the catalogue's rules, with that reason, before any request
    check_ids(obj, operation, clean)
    check_shapes(obj, operation, clean)
    if (
        operation == cat.INSERT
        and obj.insertable_types is not None
        and len(obj.insertable_types) == 1
        and "type" in obj.schema
        and blank(clean.get("type"))
    ):
        clean["type"] = next(iter(obj.insertable_types))
    return clean
