"""`fill_empty`: fields an update writes only where Capsule's value is empty.

A sales rep's edit in Capsule must survive the next import of a stale spreadsheet. Fields named
here are taken out of an UPDATE's diff (and out of an INSERT that matched an existing record)
wherever Capsule already holds a value; the value kept is reported (change log `kept`, the plan,
the counter `kept_by_fill_empty`). An entry names a field of any stream (`jobTitle`), or of one
stream (`parties.jobTitle`); a custom field is named by its definition's name or its column name
(`Contract value`, `contract_value`).
"""

from __future__ import annotations

import typing as t

from target_capsule.values import blank

if t.TYPE_CHECKING:
    from tap_capsule import catalogue as cat
    from target_capsule.payload import FieldDefinitions


class FillEmpty:
    """The `fill_empty` setting, per stream."""

    def __init__(self, entries: t.Iterable[str], streams: t.Iterable[str]) -> None:
        """Split entries into per-stream ones (`stream.field`) and ones for every stream."""
        known = set(streams)
        self.everywhere: set[str] = set()
        self.per_stream: dict[str, set[str]] = {}
        for entry in entries:
            stream, dot, field = str(entry).partition(".")
            if dot and stream in known:
                self.per_stream.setdefault(stream, set()).add(field.strip().casefold())
            else:
                self.everywhere.add(str(entry).strip().casefold())

    def names(self, stream: str) -> set[str]:
        """The folded field names that only fill empty values in `stream`."""
        return self.everywhere | self.per_stream.get(stream, set())

    def apply(
        self,
        obj: cat.CapsuleObject,
        diff: dict,
        current: t.Mapping[str, t.Any],
        definitions: t.Callable[[], FieldDefinitions] | None = None,
    ) -> dict[str, t.Any]:
        """Take the fields Capsule already holds out of `diff`; return them with Capsule's value."""
        names = self.names(obj.stream)
        if not names or not diff:
            return {}
        kept: dict[str, t.Any] = {}
        for field in list(diff):
            if field == "fields":
                continue
            if field.casefold() in names and not blank(current.get(field)):
                kept[field] = current.get(field)
                del diff[field]
        if diff.get("fields") and definitions is not None:
            defs = definitions()
            rows = defs.rows_of(current)
            by_row = {row.get("id"): def_id for def_id, row in rows.items()}
            remaining = []
            for item in diff["fields"]:
                definition = item.get("definition")
                found = (
                    definition.get("id")
                    if isinstance(definition, dict)
                    else by_row.get(item.get("id"))
                )
                def_id = int(found) if found is not None else -1
                name = str(defs.definitions.get(def_id, {}).get("name") or "")
                slug = defs.map.by_id.get(def_id, ("", ""))[0]
                held = rows.get(def_id, {}).get("value")
                if {name.strip().casefold(), str(slug).casefold()} & names and not blank(held):
                    kept[name or str(slug)] = held
                else:
                    remaining.append(item)
            if remaining:
                diff["fields"] = remaining
            else:
                del diff["fields"]
        return kept
