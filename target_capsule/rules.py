"""The catalogue's rules, checked before any request, so a record that breaks one costs nothing.

Each violation is one sentence that names the stream, the operation, the field and the rule, e.g.
`parties INSERT: a person needs lastName (rule: person requires firstName and lastName)`.
"""

from __future__ import annotations

import typing as t

from tap_capsule import catalogue as cat
from target_capsule.values import blank

Record = t.Mapping[str, t.Any]


def _join(items: t.Sequence[str], word: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _matches(record: t.Mapping[str, t.Any], when: t.Mapping[str, t.Any]) -> bool:
    return all(record.get(k) == v for k, v in when.items())


def operation_allowed(obj: cat.CapsuleObject, operation: str) -> str | None:
    """A reason when the catalogue does not allow `operation` on this object."""
    if operation in obj.operations:
        return None
    if not obj.operations:
        return (
            f"{obj.stream} {operation}: {obj.stream} cannot be written (rule: {obj.stream} is "
            "read-only in Capsule's API)"
        )
    allowed = _join(sorted(obj.operations))
    return (
        f"{obj.stream} {operation}: {operation} is not allowed (rule: {obj.stream} allows "
        f"{allowed} only)"
    )


def _required(head: str, obj: cat.CapsuleObject, rule: cat.Required, record: Record) -> list[str]:
    if not _matches(record, rule.when):
        return []
    who = " and ".join(f"{v}" for v in rule.when.values()) if rule.when else obj.stream
    article = "an" if who[:1] in "aeiou" else "a"
    text = f"{who} requires {_join(rule.fields)}"
    out = []
    for field in rule.fields:
        if blank(record.get(field)):
            if rule.when:
                out.append(f"{head}: {article} {who} needs {field} (rule: {text})")
            else:
                out.append(f"{head}: {field} is required (rule: {text})")
    return out


def _one_of(head: str, obj: cat.CapsuleObject, rule: cat.OneOf, record: Record) -> list[str]:
    value = record.get(rule.field)
    options = _join([repr(v) for v in rule.values], "or")
    if blank(value):
        if rule.required:
            return [f"{head}: {rule.field} is required (rule: {rule.field} is {options})"]
        return []
    if value not in rule.values:
        return [f"{head}: {rule.field} {value!r} is not allowed (rule: {rule.field} is {options})"]
    return []


def _exactly_one(
    head: str, obj: cat.CapsuleObject, rule: cat.ExactlyOne, record: Record
) -> list[str]:
    present = [f for f in rule.fields if not blank(record.get(f))]
    if len(present) == 1:
        return []
    got = _join(present) if present else "none"
    either = _join(rule.fields, "or")
    return [
        f"{head}: exactly one of {either} must be set, got {got} (rule: exactly one of {either})"
    ]


def _at_most_one(
    head: str, obj: cat.CapsuleObject, rule: cat.AtMostOne, record: Record
) -> list[str]:
    present = [f for f in rule.fields if not blank(record.get(f))]
    if len(present) <= 1:
        return []
    return [
        f"{head}: {_join(present)} are all set (rule: at most one of {_join(rule.fields, 'or')})"
    ]


# One checker per kind of catalogue rule: a new kind of rule is one function and one line here.
CHECKERS: dict[type, t.Callable[[str, cat.CapsuleObject, t.Any, Record], list[str]]] = {
    cat.Required: _required,
    cat.OneOf: _one_of,
    cat.ExactlyOne: _exactly_one,
    cat.AtMostOne: _at_most_one,
}


def check(obj: cat.CapsuleObject, operation: str, record: Record) -> list[str]:
    """Every rule `record` breaks for `operation` (an empty list when it may be sent)."""
    head = f"{obj.stream} {operation}"
    reasons: list[str] = []
    for rule in obj.rules:
        if operation in rule.operations:
            reasons.extend(CHECKERS[type(rule)](head, obj, rule, record))
    if operation == cat.INSERT and obj.insertable_types is not None:
        kind = record.get("type")
        if not blank(kind) and kind not in obj.insertable_types:
            reasons.append(
                f"{head}: type {kind!r} cannot be inserted (rule: only "
                f"{_join(obj.insertable_types, 'or')} {obj.stream} can be created)"
            )
    return reasons


def check_capture_rule(
    obj: cat.CapsuleObject, definition: t.Mapping[str, t.Any] | None, wanted: object
) -> str | None:
    """Tracks: the track definition exists and its captureRule fits this kind of parent."""
    head = f"{obj.stream} {cat.INSERT}"
    if definition is None:
        return (
            f"{head}: track definition {wanted!r} does not exist (rule: a track names an "
            "existing track definition)"
        )
    rule = str(definition.get("captureRule") or "")
    if obj.capture_rule and rule.upper() != obj.capture_rule:
        return (
            f"{head}: track definition {definition.get('id')} has captureRule {rule!r}, "
            f"not {obj.capture_rule!r} (rule: {obj.stream} need a definition whose "
            f"captureRule is {obj.capture_rule})"
        )
    return None
