"""Structured search: `POST /{parties|opportunities|kases}/filters/results`.

The body is `{"filter": {"conditions": [{"field", "operator", "value"}], "orderBy": [...]}}`; every
condition must hold. Each entity documents its fields and each field type its operators:

- string: is, is not, starts with, ends with, contains (ignoring case)
- number: is, is not, is greater than, is less than
- date (`YYYY-MM-DD`): is, is not, is after, is before; with a number of days: is older than,
  is within last, is within next
- boolean: is, is not

A field with several values (a party's email addresses) matches when any value does ("is not":
when none does). An unknown field is a 422 "invalid field name" in Capsule's Validation Failed
shape (as the live API answers); an operator its type lacks or a value of the wrong type is a 400
that names the condition.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t

from tap_capsule.sandbox.errors import BadRequestError, ValidationFailedError, error

Getter = t.Callable[[dict], list]
STRING, NUMBER, DATE, BOOLEAN = "string", "number", "date", "boolean"
OPERATORS = {
    STRING: {"is", "is not", "starts with", "ends with", "contains"},
    NUMBER: {"is", "is not", "is greater than", "is less than"},
    DATE: {"is", "is not", "is after", "is before", "is older than", "is within last"}
    | {"is within next"},
    BOOLEAN: {"is", "is not"},
}


def _one(value: t.Any) -> list:  # noqa: ANN401 - any stored value
    return [] if value is None else [value]


def _ref(key: str) -> Getter:
    return lambda rec: _one((rec.get(key) or {}).get("id"))


def _ref_name(key: str) -> Getter:
    return lambda rec: _one((rec.get(key) or {}).get("name"))


def _day(key: str) -> Getter:
    return lambda rec: _one((rec.get(key) or "")[:10] or None)


def _rows(key: str, field: str) -> Getter:
    return lambda rec: [r.get(field) for r in rec.get(key) or [] if r.get(field) is not None]


def _name(rec: dict) -> list:
    if rec.get("type") == "person":
        full = " ".join(p for p in (rec.get("firstName"), rec.get("lastName")) if p)
        return _one(full or None)
    return _one(rec.get("name"))


COMMON: dict[str, tuple[str, Getter]] = {
    "id": (NUMBER, lambda rec: _one(rec.get("id"))),
    "name": (STRING, _name),
    "owner": (NUMBER, _ref("owner")),
    "team": (NUMBER, _ref("team")),
    "hasTags": (BOOLEAN, lambda rec: [bool(rec.get("tags"))]),
    "addedOn": (DATE, _day("createdAt")),
    "updatedOn": (DATE, _day("updatedAt")),
}
FIELDS: dict[str, dict[str, tuple[str, Getter]]] = {
    "party": {
        **COMMON,
        "type": (STRING, lambda rec: _one(rec.get("type"))),
        "jobTitle": (STRING, lambda rec: _one(rec.get("jobTitle"))),
        "email": (STRING, _rows("emailAddresses", "address")),
        "phone": (STRING, _rows("phoneNumbers", "number")),
        "city": (STRING, _rows("addresses", "city")),
        "zip": (STRING, _rows("addresses", "zip")),
        "state": (STRING, _rows("addresses", "state")),
        "country": (STRING, _rows("addresses", "country")),
        "hasEmailAddress": (BOOLEAN, lambda rec: [bool(rec.get("emailAddresses"))]),
        "hasPhoneNumber": (BOOLEAN, lambda rec: [bool(rec.get("phoneNumbers"))]),
        "hasAddress": (BOOLEAN, lambda rec: [bool(rec.get("addresses"))]),
        "lastContactedOn": (DATE, _day("lastContactedAt")),
        "org.name": (STRING, _ref_name("organisation")),
    },
    "opportunity": {
        **COMMON,
        "milestone": (STRING, _ref_name("milestone")),
        "probability": (NUMBER, lambda rec: _one(rec.get("probability"))),
        "lostReason": (STRING, _ref_name("lostReason")),
        "currency": (STRING, lambda rec: _one((rec.get("value") or {}).get("currency"))),
        "isOpen": (BOOLEAN, lambda rec: [rec.get("closedOn") is None]),
        "closedOn": (DATE, _day("closedOn")),
        "expectedCloseOn": (DATE, _day("expectedCloseOn")),
    },
    "kase": {
        **COMMON,
        "status": (STRING, lambda rec: _one(rec.get("status"))),
        "stage": (NUMBER, _ref("stage")),
        "isOpen": (BOOLEAN, lambda rec: [rec.get("status") != "CLOSED"]),
        "closedOn": (DATE, _day("closedOn")),
        "expectedCloseOn": (DATE, _day("expectedCloseOn")),
    },
}


def _bad(index: int, message: str) -> BadRequestError:
    return BadRequestError(f"filter.conditions[{index}]: {message}")


def _predicate(kind: str, operator: str, value: t.Any, today: dt.date, index: int) -> t.Callable:  # noqa: ANN401 - a condition's JSON value
    """A test of one stored value against the condition."""
    if kind == STRING:
        if not isinstance(value, str):
            raise _bad(index, "value must be a string")
        wanted = value.casefold()
        tests = {
            "is": lambda v: str(v).casefold() == wanted,
            "is not": lambda v: str(v).casefold() == wanted,  # negated over all values below
            "starts with": lambda v: str(v).casefold().startswith(wanted),
            "ends with": lambda v: str(v).casefold().endswith(wanted),
            "contains": lambda v: wanted in str(v).casefold(),
        }
        return tests[operator]
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(index, "value must be a number")
        tests = {
            "is": lambda v: v == value,
            "is not": lambda v: v == value,
            "is greater than": lambda v: v > value,
            "is less than": lambda v: v < value,
        }
        return tests[operator]
    if kind == BOOLEAN:
        if not isinstance(value, bool):
            raise _bad(index, "value must be true or false")
        return lambda v: v is value
    if operator in ("is older than", "is within last", "is within next"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(index, "value must be a number of days")
        edge = today - dt.timedelta(days=value)
        ahead = today + dt.timedelta(days=value)
        tests = {
            "is older than": lambda v: dt.date.fromisoformat(v) < edge,
            "is within last": lambda v: edge <= dt.date.fromisoformat(v) <= today,
            "is within next": lambda v: today <= dt.date.fromisoformat(v) <= ahead,
        }
        return tests[operator]
    try:
        day = dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None:
        raise _bad(index, "value must be a date (YYYY-MM-DD)")
    tests = {
        "is": lambda v: dt.date.fromisoformat(v) == day,
        "is not": lambda v: dt.date.fromisoformat(v) == day,
        "is after": lambda v: dt.date.fromisoformat(v) > day,
        "is before": lambda v: dt.date.fromisoformat(v) < day,
    }
    return tests[operator]


def parse(body: bytes) -> dict:
    """The `filter` object of a request body, or a 400 saying what is wrong."""
    try:
        data = json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError):
        raise BadRequestError("Request body is not valid JSON") from None
    query = data.get("filter") if isinstance(data, dict) else None
    if not isinstance(query, dict) or not isinstance(query.get("conditions"), list):
        raise BadRequestError('Request body must be {"filter": {"conditions": [...]}}')
    return query


def select(
    resource: str, query: dict, ids: t.Iterable[int], rows: t.Mapping, today: dt.date
) -> list[int]:
    """The ids (in `ids` order, or the query's `orderBy`) whose records meet every condition."""
    fields = FIELDS[resource]
    tests: list[tuple[Getter, t.Callable, bool]] = []
    for index, cond in enumerate(query["conditions"]):
        if not isinstance(cond, dict):
            raise _bad(index, "must be an object with field, operator and value")
        field, operator = cond.get("field"), cond.get("operator")
        if field not in fields:
            # Live Capsule: 422 Validation Failed, "invalid field name".
            raise ValidationFailedError(
                [error("filter", f"conditions[{index}].field", "invalid field name")]
            )
        kind, getter = fields[field]
        if operator not in OPERATORS[kind]:
            raise _bad(index, f"operator {operator!r} does not apply to the {kind} field {field}")
        test = _predicate(kind, operator, cond.get("value"), today, index)
        tests.append((getter, test, operator == "is not"))
    out = []
    for i in ids:
        rec = rows[i]
        ok = True
        for getter, test, negate in tests:
            hit = any(test(v) for v in getter(rec))
            if hit == negate:
                ok = False
                break
        if ok:
            out.append(i)
    return _order(fields, query.get("orderBy"), out, rows)


def _order(fields: dict, order_by: t.Any, ids: list[int], rows: t.Mapping) -> list[int]:  # noqa: ANN401 - the query's orderBy as sent
    """Sort by `orderBy` (`[{"field", "direction": "ascending"|"descending"}]`), last key first."""
    if order_by is None:
        return ids
    if not isinstance(order_by, list):
        raise BadRequestError("filter.orderBy must be a list")
    for spec in reversed(order_by):
        field = spec.get("field") if isinstance(spec, dict) else None
        if field not in fields:
            raise BadRequestError(f"filter.orderBy: unknown field {field!r}")
        descending = str(spec.get("direction", "ascending")).lower() == "descending"
        ids = sorted(ids, key=_sort_key(fields[field][1], rows), reverse=descending)
    return ids


def _sort_key(getter: Getter, rows: t.Mapping) -> t.Callable[[int], tuple[bool, str]]:
    """Records without the value sort last (ascending); text compares ignoring case."""

    def key(i: int) -> tuple[bool, str]:
        values = getter(rows[i])
        return (not values, str(values[0]).casefold() if values else "")

    return key
