"""Reverting one change: does Capsule still hold what it wrote, which body puts the old back.

Pure functions over records and change-log lines; nothing here talks to Capsule. Capsule merges
contact lists, tags and custom values on PUT rather than replacing them, so a value that a change
added is taken away again with `{"id": <row id>, "_delete": true}`, and a custom value is set back
to its old value (or its row deleted when it had none).
"""

from __future__ import annotations

import typing as t

from target_capsule.payload import (
    CONTACT_LISTS,
    PayloadError,
    blank,
    contact_present,
    insert_body,
    is_ref,
    normalize,
    ref,
    same,
)

if t.TYPE_CHECKING:
    from tap_capsule import catalogue as cat


def _field_values(items: t.Any) -> dict[str, t.Any]:  # noqa: ANN401 - a record's `fields`
    """Custom values by definition id (as text) from a `fields` array."""
    out: dict[str, t.Any] = {}
    for item in items or ():
        if not isinstance(item, dict):
            continue
        definition = item.get("definition")
        def_id = definition.get("id") if isinstance(definition, dict) else definition
        if def_id is not None:
            out[str(def_id)] = item.get("value")
    return out


def _tag_names(items: t.Any) -> set[str]:  # noqa: ANN401 - a record's `tags`
    return {
        str(tag.get("name") or "").strip().casefold()
        for tag in items or ()
        if isinstance(tag, dict) and not blank(tag.get("name"))
    }


def _split(items: t.Any) -> tuple[list[dict], set[str]]:  # noqa: ANN401 - a written list
    """Items a write added or changed, and the row ids it removed (`{"id", "_delete": true}`)."""
    kept = [i for i in items or () if isinstance(i, dict) and not i.get("_delete")]
    removed = {str(i.get("id")) for i in items or () if isinstance(i, dict) and i.get("_delete")}
    return kept, removed


def _row_ids(rows: t.Any) -> set[str]:  # noqa: ANN401 - a record's list
    return {str(r.get("id")) for r in rows or () if isinstance(r, dict) and r.get("id") is not None}


def differences(
    obj: cat.CapsuleObject, written: t.Mapping[str, t.Any], current: t.Mapping[str, t.Any]
) -> list[str]:
    """The written fields that Capsule's `current` record no longer holds (empty: it holds all).

    A field Capsule never echoes back (a track's `definition`) cannot have been changed by anyone
    through the record, so it is not compared.
    """
    changed = []
    for key, value in written.items():
        if key not in current:
            continue
        have = current.get(key)
        if key in (*CONTACT_LISTS, "tags", "fields"):
            value, removed = _split(value)
            if removed & _row_ids(have):  # a row the write removed is back
                changed.append(key)
                continue
        if key in CONTACT_LISTS:
            held = all(contact_present(item, have or [], key) for item in value or ())
        elif key == "tags":
            held = _tag_names(value) <= _tag_names(have)
        elif key == "fields":
            mine, theirs = _field_values(value), _field_values(have)
            held = all(same(v, theirs.get(d)) for d, v in mine.items())
        else:
            held = same(value, have)
        if not held:
            changed.append(key)
    return changed


def restore_body(
    obj: cat.CapsuleObject,
    written: t.Mapping[str, t.Any],
    before: t.Mapping[str, t.Any],
    current: t.Mapping[str, t.Any],
) -> dict:
    """The PUT body that gives the written fields back their `before` values."""
    body: dict[str, t.Any] = {}
    for key, value in written.items():
        old = before.get(key)
        have = current.get(key) or []
        removed: set[str] = set()
        if key in (*CONTACT_LISTS, "tags", "fields"):
            value, removed = _split(value)
        # Rows the write removed come back as they were before it (Capsule gives new row ids).
        back = [r for r in old or () if isinstance(r, dict) and str(r.get("id")) in removed]
        if key in CONTACT_LISTS:
            rows = [
                {"id": row["id"], "_delete": True}
                for row in have
                if isinstance(row, dict)
                and row.get("id") is not None
                and any(contact_present(item, [row], key) for item in value or ())
                and not contact_present(row, old or [], key)
            ]
            rows += [{k: v for k, v in r.items() if k != "id"} for r in back]
            if rows:
                body[key] = rows
        elif key == "tags":
            added = _tag_names(value) - _tag_names(old)
            rows = [
                {"id": tag["id"], "_delete": True}
                for tag in have
                if isinstance(tag, dict)
                and tag.get("id") is not None
                and str(tag.get("name") or "").strip().casefold() in added
            ]
            rows += [{"name": r["name"]} for r in back if r.get("name")]
            if rows:
                body[key] = rows
        elif key == "fields":
            old_values = _field_values(old)
            row_ids = {
                str((row.get("definition") or {}).get("id")): row.get("id")
                for row in have
                if isinstance(row, dict) and isinstance(row.get("definition"), dict)
            }
            items = []
            for def_id in _field_values(value):
                if def_id in old_values and old_values[def_id] is not None:
                    items.append({"definition": {"id": int(def_id)}, "value": old_values[def_id]})
                elif row_ids.get(def_id) is not None:
                    items.append({"id": row_ids[def_id], "_delete": True})
            items += [
                {"definition": {"id": int(d)}, "value": v}
                for d, v in _field_values(back).items()
                if str(d).isdigit()
            ]
            if items:
                body[key] = items
        elif is_ref(obj.schema.get(key)):
            body[key] = ref(old)
        else:
            body[key] = old
    return body


def creation_body(obj: cat.CapsuleObject, record: t.Mapping[str, t.Any]) -> dict:
    """The POST body that recreates `record` (Capsule's copy of it) as far as the API allows.

    Raises PayloadError with the reason when the record cannot be recreated.
    """
    if obj.insertable_types and record.get("type") not in (None, *obj.insertable_types):
        raise PayloadError(
            f"a {record.get('type')} entry cannot be recreated: Capsule's API creates "
            f"{' and '.join(obj.insertable_types)} entries only"
        )
    if obj.capture_rule and blank(record.get("definition")):
        raise PayloadError(
            "a track cannot be recreated: Capsule never returns which track definition it came from"
        )
    body = insert_body(normalize(obj, record))
    # A record lists its attachments, not their files: a restore uploads them from the backup and
    # sends their tokens; an undo (whose change log keeps no files) recreates the note without.
    body.pop("attachments", None)
    if obj.insertable_types:
        body["type"] = record.get("type") or obj.insertable_types[0]
    if obj.tags:
        names = sorted(_tag_names(record.get("tags")))
        originals = {
            str(tag.get("name")).strip().casefold(): str(tag.get("name")).strip()
            for tag in record.get("tags") or ()
            if isinstance(tag, dict) and not blank(tag.get("name"))
        }
        if names:
            body["tags"] = [{"name": originals[n]} for n in names]
    if obj.custom_fields:
        fields = [
            {"definition": {"id": int(d)}, "value": v}
            for d, v in _field_values(record.get("fields")).items()
            if v is not None and str(d).isdigit()
        ]
        if fields:
            body["fields"] = fields
    return body
