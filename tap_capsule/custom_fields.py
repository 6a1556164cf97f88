"""Typed `custom_fields` columns from Capsule's field definitions.

Capsule returns custom values as a `fields` array of `{definition: {id, name}, value}` with numbers
as strings. Warehouses want one typed column per field, so each record also gets a `custom_fields`
object whose properties come from the definitions endpoint at discovery. Property names are stable
slugs of the definition names (a clash gets the definition id appended), so the same account always
yields the same columns.
"""

from __future__ import annotations

import logging
import re
import typing as t
from decimal import Decimal, InvalidOperation

logger = logging.getLogger(__name__)

JSON_TYPES: dict[str, dict] = {
    "number": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "date": {"type": ["string", "null"], "format": "date"},
    "text": {"type": ["string", "null"]},
    "list": {"type": ["string", "null"]},
    "link": {"type": ["string", "null"]},
}


def slug(name: str) -> str:
    """A column name from a definition name: lower-case ASCII letters, digits and underscores."""
    s = re.sub(r"[^0-9a-zA-Z]+", "_", name or "").strip("_").lower()
    return s or "field"


class CustomFieldMap:
    """Maps definition ids to typed property names for one Capsule object."""

    def __init__(self, definitions: t.Iterable[t.Mapping[str, t.Any]]) -> None:
        """Names every definition, in id order so that a clash always renames the newer one."""
        self.by_id: dict[int, tuple[str, str]] = {}
        used: set[str] = set()
        for d in sorted(definitions, key=lambda d: d["id"]):
            name = slug(str(d.get("name", "")))
            if name in used:
                name = f"{name}_{d['id']}"
            used.add(name)
            self.by_id[int(d["id"])] = (name, str(d.get("type") or "text"))
        self._warned: set[object] = set()

    def schema(self) -> dict:
        """The JSON schema of the `custom_fields` object: one nullable property per definition."""
        return {
            "type": ["object", "null"],
            "properties": {
                name: dict(JSON_TYPES.get(kind, JSON_TYPES["text"]))
                for name, kind in self.by_id.values()
            },
        }

    def typed(self, fields: list | None, allowed: t.Container[str]) -> dict:
        """The `custom_fields` object of one record; unknown definitions are left to `fields`."""
        out: dict[str, t.Any] = {}
        for value in fields or ():
            definition = value.get("definition") or {}
            def_id = definition.get("id") if isinstance(definition, dict) else definition
            mapped = self.by_id.get(def_id) if isinstance(def_id, int) else None
            if mapped is None or mapped[0] not in allowed:
                if def_id not in self._warned:
                    self._warned.add(def_id)
                    logger.warning(
                        "Custom field definition %s (%r) is not in the catalog; its values stay "
                        "in `fields`. Run discovery again to get a typed column for it.",
                        def_id,
                        definition.get("name") if isinstance(definition, dict) else None,
                    )
                continue
            name, kind = mapped
            out[name] = convert(value.get("value"), kind)
        return out


def convert(value: object, kind: str) -> object:
    """One custom value as its JSON type: Capsule sends numbers as strings; blank is null."""
    if value is None or value == "":
        return None
    if kind == "number":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            logger.warning("Custom number value %r is not a number; emitted as null", value)
            return None
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in {"true", "1", "yes"}
    return value if isinstance(value, str) else str(value)
