"""Record → request body, and the diff of a body against Capsule's copy of the record.

Records arrive in the tap's shapes: nested references as objects (`party: {id, name, ...}`), tags as
`[{id, name}]`, custom values both as Capsule's raw `fields` array and as the tap's `custom_fields`
object. This module turns them into what Capsule accepts on a write, and works out which parts of
the body Capsule does not hold yet (so an identical record costs no write).

Nothing here talks to Capsule: definitions and current records are passed in.
"""

from __future__ import annotations

import typing as t

from tap_capsule import catalogue as cat
from tap_capsule.custom_fields import CustomFieldMap, convert, slug
from target_capsule.values import blank, int_or_same, same

# Contact sub-lists: Capsule merges these on PUT (new items are appended), so only items it does
# not hold yet may be sent, or a replay would append them again.
CONTACT_LISTS = frozenset({"emailAddresses", "phoneNumbers", "addresses", "websites"})


class PayloadError(ValueError):
    """The record cannot become a request body (an unknown custom field, tag, ...)."""


# --- References -------------------------------------------------------------------------------


def is_ref(prop_schema: t.Mapping | None) -> bool:
    """A nested reference (`party`, `milestone`, `owner`, ...): an object with a numeric `id`.

    An object whose `id` is a text key (an activity type's `icon`: `"NOTE"`) is a value, not a
    reference to another record.
    """
    if not prop_schema:
        return False
    types = prop_schema.get("type")
    types = types if isinstance(types, list) else [types]
    id_schema = (prop_schema.get("properties") or {}).get("id")
    if "object" not in types or not id_schema:
        return False
    id_types = id_schema.get("type")
    return "integer" in (id_types if isinstance(id_types, list) else [id_types])


def ref(value: object) -> dict | None:
    """A reference as Capsule wants it on a write: `{id}`, or `{name}` when only a name is given."""
    if blank(value):
        return None
    if isinstance(value, bool):
        raise PayloadError(f"{value!r} is not a reference")
    if isinstance(value, (int, str)) and str(value).strip().isdigit():
        return {"id": int(value)}
    if isinstance(value, dict):
        if value.get("id") not in (None, ""):
            return {"id": int_or_same(value["id"])}
        if not blank(value.get("name")):
            return {"name": value["name"]}
    raise PayloadError(f"{value!r} is not a reference (expected an object with an id)")


# What identifies a contact item; other parts (its `type` label) do not make it a new item.
CONTACT_IDENTITY = {
    "emailAddresses": ("address",),
    "phoneNumbers": ("number",),
    "websites": ("address", "service"),
    "addresses": ("street", "city", "state", "zip", "country"),
}


def _contact_value(key: str, value: object) -> str:
    text = "" if value is None else str(value).strip().casefold()
    if key == "number":
        text = "".join(ch for ch in text if ch.isdigit() or ch == "+")
    return " ".join(text.split())


def contact_present(item: dict, current: t.Iterable[object], kind: str = "emailAddresses") -> bool:
    """Does Capsule already hold this contact item (an email, phone, address or website)?

    An item with the id of one of Capsule's rows is present when that row already has its values;
    an item without id is present when a row has the same identifying values (address, number,
    ...), whatever its `type` label.
    """
    identity = CONTACT_IDENTITY.get(kind, ())
    for have in current or ():
        if not isinstance(have, dict):
            continue
        if item.get("id") is not None:
            if have.get("id") == item.get("id"):
                return all(same(v, have.get(k)) for k, v in item.items() if k != "id")
            continue
        keys = [k for k in identity if not blank(item.get(k))] or [
            k for k, v in item.items() if not blank(v)
        ]
        if keys and all(
            _contact_value(k, item.get(k)) == _contact_value(k, have.get(k)) for k in keys
        ):
            return True
    return False


# --- Custom fields and tags ---------------------------------------------------------------------


class FieldDefinitions:
    """The custom-field definitions of one entity, looked up by id, slug or name."""

    def __init__(self, stream: str, definitions: t.Iterable[t.Mapping[str, t.Any]]) -> None:
        """Index the definitions by id, by the tap's column name and by name."""
        self.stream = stream
        self.definitions = {int(d["id"]): dict(d) for d in definitions}
        self.map = CustomFieldMap(self.definitions.values())  # the tap's property names
        self.by_slug = {name: def_id for def_id, (name, _kind) in self.map.by_id.items()}
        self.by_name: dict[str, int] = {}
        for def_id, d in sorted(self.definitions.items()):
            self.by_name.setdefault(str(d.get("name") or "").strip().casefold(), def_id)

    def kind(self, def_id: int) -> str:
        """The definition's value type (text, number, boolean, date, list, link)."""
        return str(self.definitions[def_id].get("type") or "text")

    def resolve(self, key: object) -> int:
        """A definition id from an id, the tap's property name or the definition's name."""
        if isinstance(key, dict):
            if key.get("id") not in (None, ""):
                key = key["id"]
            elif key.get("name"):
                key = key["name"]
            else:
                raise PayloadError(f"custom field value names no definition: {key!r}")
        if isinstance(key, int) and not isinstance(key, bool):
            if key in self.definitions:
                return key
            raise PayloadError(f"unknown custom field definition id {key} for {self.stream}")
        text = str(key)
        if text in self.by_slug:
            return self.by_slug[text]
        folded = text.strip().casefold()
        if folded in self.by_name:
            return self.by_name[folded]
        if slug(text) in self.by_slug:
            return self.by_slug[slug(text)]
        if text.strip().isdigit() and int(text) in self.definitions:
            return int(text)
        known = ", ".join(sorted(self.by_slug)) or "none"
        raise PayloadError(
            f"unknown custom field {text!r} (rule: custom values name an existing "
            f"{self.stream} definition; known: {known})"
        )

    def desired(self, record: t.Mapping[str, t.Any]) -> dict[int, t.Any]:
        """Definition id → value wanted by the record (`custom_fields` wins over `fields`)."""
        wanted: dict[int, t.Any] = {}
        for item in record.get("fields") or ():
            if not isinstance(item, dict):
                raise PayloadError(f"fields item {item!r} is not an object")
            definition = item.get("definition")
            if definition is None and "name" in item:
                definition = item["name"]
            def_id = self.resolve(definition)
            wanted[def_id] = item.get("value")
        for key, value in (record.get("custom_fields") or {}).items():
            wanted[self.resolve(key)] = value
        return wanted

    def rows_of(self, current: t.Mapping[str, t.Any] | None) -> dict[int, dict]:
        """Capsule's value rows by definition id (a row carries its own id, used to remove it)."""
        out: dict[int, dict] = {}
        for item in (current or {}).get("fields") or ():
            if not isinstance(item, dict):
                continue
            definition = item.get("definition")
            def_id = definition.get("id") if isinstance(definition, dict) else definition
            if def_id is not None:
                out[int(def_id)] = item
        return out

    def values_of(self, current: t.Mapping[str, t.Any] | None) -> dict[int, t.Any]:
        """Capsule's values by definition id."""
        return {def_id: row.get("value") for def_id, row in self.rows_of(current).items()}

    def body(
        self,
        wanted: dict[int, t.Any],
        current: t.Mapping[str, t.Any] | None,
        replace: bool = False,
    ) -> list[dict]:
        """`fields` items for what Capsule does not hold yet (all non-empty ones on insert).

        A value the record clears, and with `replace` a value the record does not name, is
        removed with `{"id": <row id>, "_delete": true}`: Capsule refuses `value: null` on a
        boolean field with a 422, and `_delete` is how every kind of value row is removed.
        """
        rows = self.rows_of(current)
        out: list[dict] = []
        for def_id, value in sorted(wanted.items()):
            kind = self.kind(def_id)
            mine = convert(value, kind)
            if current is None:
                if mine is None:
                    continue
            elif def_id in rows and convert(rows[def_id].get("value"), kind) == mine:
                continue
            elif mine is None:
                if def_id in rows:
                    out.append(self._removal(def_id, rows[def_id]))
                continue
            out.append({"definition": {"id": def_id}, "value": value})
        if replace and current is not None:
            out.extend(
                self._removal(def_id, row)
                for def_id, row in sorted(rows.items())
                if def_id not in wanted and not blank(row.get("value"))
            )
        return out

    def _removal(self, def_id: int, row: t.Mapping[str, t.Any]) -> dict:
        if row.get("id") is None:
            name = self.definitions.get(def_id, {}).get("name", def_id)
            raise PayloadError(
                f"custom field {name!r} cannot be cleared: Capsule's copy of the value has no "
                "row id to remove"
            )
        return {"id": row["id"], "_delete": True}


def tag_names(
    record: t.Mapping[str, t.Any], tag_definitions: t.Callable[[], list[dict]], stream: str
) -> list[str]:
    """Tag names wanted by the record; tags given only by id are named from the definitions."""
    names: list[str] = []
    by_id: dict[int, str] | None = None
    for tag in record.get("tags") or ():
        if isinstance(tag, str):
            name = tag
        elif isinstance(tag, dict) and not blank(tag.get("name")):
            name = str(tag["name"])
        elif isinstance(tag, dict) and tag.get("id") is not None:
            if by_id is None:
                by_id = {int(d["id"]): str(d.get("name")) for d in tag_definitions()}
            tag_id = int_or_same(tag["id"])
            if tag_id not in by_id:
                raise PayloadError(
                    f"unknown tag id {tag['id']} (rule: tags name an existing {stream} tag, or "
                    "give a name to create one)"
                )
            name = by_id[tag_id]
        else:
            raise PayloadError(f"tag {tag!r} has neither a name nor an id")
        if name.strip().casefold() not in {n.casefold() for n in names}:
            names.append(name.strip())
    return names


def tags_body(
    names: list[str], current: t.Mapping[str, t.Any] | None, replace: bool = False
) -> list[dict]:
    """Tags to add by name; with `replace`, Capsule's tags the record lacks are removed by id."""
    current_tags = [tag for tag in (current or {}).get("tags") or () if isinstance(tag, dict)]
    have = {str(tag.get("name") or "").strip().casefold() for tag in current_tags}
    out: list[dict] = [{"name": n} for n in names if n.casefold() not in have]
    if replace and current is not None:
        wanted = {n.casefold() for n in names}
        out.extend(
            {"id": tag["id"], "_delete": True}
            for tag in current_tags
            if tag.get("id") is not None
            and str(tag.get("name") or "").strip().casefold() not in wanted
        )
    return out


# --- The body -----------------------------------------------------------------------------------


def parent_ref_key(obj: cat.CapsuleObject) -> str | None:
    """The body key that names a child's parent (`opportunity`, `kase`, `pipeline`)."""
    parent = cat.parent_of(obj)
    return parent.item_key if parent is not None else None


def normalize(
    obj: cat.CapsuleObject, record: t.Mapping[str, t.Any], ignored: set[str] | None = None
) -> dict:
    """The writable fields of a record, references reduced to `{id}`.

    Drops `id`, `_sdc_*`, read-only fields, the link/parent keys and fields the catalogue does not
    know (listed in `ignored`). Tags, `fields` and `custom_fields` are left to their resolvers.
    """
    props = obj.schema
    body: dict[str, t.Any] = {}
    skip = set(obj.all_read_only) | {"id", "tags", "fields", "custom_fields"}
    if obj.parent_key:
        skip.add(obj.parent_key)
    for key, value in record.items():
        if key.startswith("_sdc_") or key in skip:
            continue
        if key not in props:
            if ignored is not None:
                ignored.add(key)
            continue
        if is_ref(props[key]):
            body[key] = ref(value)
        elif key in CONTACT_LISTS:
            body[key] = [
                dict(i)
                for i in value or ()
                if isinstance(i, dict) and not blank({k: v for k, v in i.items() if k != "id"})
            ] or None
        else:
            body[key] = value
    parent_key_name = parent_ref_key(obj)
    if obj.parent_key and parent_key_name and not obj.is_link:
        parent_id = record.get(obj.parent_key)
        if blank(body.get(parent_key_name)) and not blank(parent_id):
            body[parent_key_name] = ref(parent_id)
    return body


# References Capsule's docs and a live client send as a bare id, not `{id}`: a case's `stage`
# ("stage": 149 in the create example; bare on PUT too). Capsule reads both, so only the wire
# form changes; diffs and change logs keep `{id}`.
BARE_ID_REFS: dict[str, tuple[str, ...]] = {"kase": ("stage",)}


def wrapped(obj: cat.CapsuleObject, body: t.Mapping[str, t.Any]) -> dict:
    """The request body of a write: `body` under the object's wrapper key, in its wire form."""
    out = dict(body)
    for key in BARE_ID_REFS.get(obj.item_key, ()):
        value = out.get(key)
        if isinstance(value, dict) and value.get("id") is not None and len(value) == 1:
            out[key] = value["id"]
    return {obj.item_key: out}


def insert_body(body: dict) -> dict:
    """An INSERT sends what is set: no nulls, no ids inside contact items."""
    out = {}
    for key, value in body.items():
        if blank(value):
            continue
        if key in CONTACT_LISTS:
            value = [{k: v for k, v in i.items() if k != "id" and not blank(v)} for i in value]
        out[key] = value
    return out


def update_body(
    obj: cat.CapsuleObject,
    body: dict,
    current: t.Mapping[str, t.Any],
    replace: bool = False,
) -> dict:
    """The part of `body` that Capsule's `current` record does not hold yet.

    Contact lists are merged by Capsule: only missing items are sent. With `replace` the record's
    list is the whole truth, and Capsule's rows it lacks are sent as `{"id", "_delete": true}`.
    """
    allowed = obj.updatable
    parent_key_name = parent_ref_key(obj)
    out: dict[str, t.Any] = {}
    for key, value in body.items():
        if allowed is not None and key not in allowed:
            continue
        if key == parent_key_name and obj.parent_key:
            continue  # a child's parent is fixed (and is not always echoed back)
        if key not in current and blank(value):
            continue
        if key in CONTACT_LISTS:
            items = contact_changes(key, value or [], current.get(key) or [], replace)
            if items:
                out[key] = items
            continue
        if not same(value, current.get(key)):
            out[key] = value
    keep_team(obj, body, current, out)
    return out


def contact_changes(kind: str, wanted: list, have: list, replace: bool) -> list[dict]:
    """Contact items Capsule lacks, and with `replace` removals of the rows the record lacks."""
    out = [
        {k: v for k, v in i.items() if not blank(v) or k == "id"}
        for i in wanted
        if not contact_present(i, have, kind)
    ]
    if replace:
        out.extend(
            {"id": row["id"], "_delete": True}
            for row in have
            if isinstance(row, dict)
            and row.get("id") is not None
            and not any(_names_row(i, row, kind) for i in wanted)
        )
    return out


def _names_row(item: dict, row: dict, kind: str) -> bool:
    """Does a wanted item stand for Capsule's row (by the row's id, else by its values)?"""
    if item.get("id") is not None:
        return str(item["id"]) == str(row.get("id"))
    return contact_present(item, [row], kind)


def keep_team(
    obj: cat.CapsuleObject, body: t.Mapping[str, t.Any], current: t.Mapping[str, t.Any], out: dict
) -> None:
    """Send the team along with a new owner, or Capsule drops it.

    Capsule clears a case's `team` when a PUT sets `owner` without `team` (seen on the live API;
    unverified for parties and opportunities, so they are treated the same: sending the team
    they already hold changes nothing if Capsule keeps it).
    """
    if "owner" not in out or "team" in out or "team" not in obj.schema:
        return
    team = body["team"] if "team" in body else current.get("team")
    if not blank(team):
        out["team"] = ref(team)


def removals(diff: t.Mapping[str, t.Any]) -> int:
    """How many nested rows a diff removes (`_delete` items in its lists)."""
    return sum(
        1
        for value in diff.values()
        if isinstance(value, list)
        for item in value
        if isinstance(item, dict) and item.get("_delete")
    )
