"""Comparing and reading single values the way Capsule represents them.

Payload building, rule checks and upsert keys all need the same notion of "unset", "already
equal" and "the id of a reference"; they live here so the three cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import math


def blank(value: object) -> bool:
    """Unset for Capsule's purposes: None, "", [], {} or a reference without id and name."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return len(value) == 0
    if isinstance(value, dict):
        return all(blank(v) for v in value.values())
    return False


def int_or_same(value: object) -> object:
    """An integer when the value reads as one (ids arrive as text from CSV), else the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return value
    try:
        return int(value)
    except ValueError:
        return value


def ref_id(value: object) -> object:
    """The id a reference names: `{"id": 5}`, `5` or `"5"` all name 5; anything else None."""
    if isinstance(value, dict):
        return value.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, str)) and str(value).strip().isdigit():
        return int(value)
    return None


def parse_datetime(value: object) -> dt.datetime | None:
    """An instant in UTC to the second, or None when the value is not a date-time."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) < 11:  # a bare date is not a datetime
            return None
        try:
            moment = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0)


def _scalar_key(value: object) -> str:
    return "" if value is None else str(value)


def same(ours: object, theirs: object) -> bool:
    """Does Capsule's value `theirs` already hold everything `ours` says?

    Loose where Capsule's representation differs from an equivalent input: "" and None are both
    unset, 5 equals 5.0 and "5", datetimes compare as instants, references compare by id, objects
    compare on the keys we send, lists of objects on their items.
    """
    if blank(ours) and blank(theirs):
        return True
    if isinstance(ours, dict):
        if "id" in ours and len(ours) == 1:
            return isinstance(theirs, dict) and str(theirs.get("id")) == str(ours["id"])
        if not isinstance(theirs, dict):
            return False
        return all(same(v, theirs.get(k)) for k, v in ours.items())
    if isinstance(ours, list):
        if not isinstance(theirs, list):
            return False
        if all(not isinstance(i, (dict, list)) for i in ours):
            return sorted(map(_scalar_key, ours)) == sorted(map(_scalar_key, theirs))
        return len(ours) == len(theirs) and all(any(same(i, j) for j in theirs) for i in ours)
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return str(ours).lower() == str(theirs).lower()
    if isinstance(ours, (int, float)) or isinstance(theirs, (int, float)):
        try:
            a_num, b_num = float(ours), float(theirs)  # type: ignore[arg-type]  # caught below
        except (TypeError, ValueError):
            return False
        return math.isclose(a_num, b_num, rel_tol=0, abs_tol=1e-9)
    if isinstance(ours, str) and isinstance(theirs, str):
        if ours == theirs:
            return True
        a, b = parse_datetime(ours), parse_datetime(theirs)
        return a is not None and a == b
    return ours == theirs
