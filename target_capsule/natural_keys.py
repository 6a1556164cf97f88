"""Upsert matching: which existing Capsule record an id-less record is.

Keys come from the catalogue (`natural_keys`) unless the `upsert_keys` setting names other field
paths for a stream (an empty list turns upsert off). A path may go into nested objects
(`pipeline.id`) and lists (`emailAddresses[].address`: any item). Text values compare as Capsule's
search compares them: case-insensitively, trimmed and with inner runs of spaces collapsed ("john "
and "TWIN" are John Twin), email addresses too. Ids compare exactly.

A record that carries no value for any of its keys (a person without an email address, a task: no
catalogue key at all) is matched on its content instead: an existing record that already holds
every field the record sets is that record. That keeps a replay of the same input from creating
second copies.

The index is built once per list (one paginated pass) and kept up to date with what the run writes.
"""

from __future__ import annotations

import itertools
import typing as t

from tap_capsule import catalogue as cat
from target_capsule.values import blank, parse_datetime, ref_id, same

# Fields that make a good first cut for content matching (the rest is compared in full).
CONTENT_BUCKET_FIELDS = (
    "name",
    "title",
    "description",
    "content",
    "lastName",
    "firstName",
    "subject",
    "event",
    "targetUrl",
    "trackDateOn",
)


def keys_for(
    obj: cat.CapsuleObject, upsert_keys: t.Mapping[str, t.Any] | None
) -> tuple[cat.NaturalKey, ...] | None:
    """The keys of a stream; None when upsert is turned off for it."""
    configured = (upsert_keys or {}).get(obj.stream)
    if configured is None:
        return obj.natural_keys
    if not configured:
        return None
    if all(isinstance(p, str) for p in configured):
        return (cat.NaturalKey(tuple(configured)),)
    return tuple(cat.NaturalKey(tuple(k)) for k in configured)  # a list of alternative keys


def fold(text: str) -> str:
    """Text as Capsule's search sees it: case-insensitive, trimmed, inner spaces collapsed."""
    return " ".join(text.split()).casefold()


def _norm(value: object) -> str | None:
    if blank(value):
        return None
    if isinstance(value, dict):
        value = ref_id(value) if value.get("id") is not None else value.get("name")
        if blank(value):
            return None
    return fold(str(value))


def folded(value: object) -> object:
    """A value with its texts folded (not date-times: they compare as instants, nor ids)."""
    if isinstance(value, str):
        return value if parse_datetime(value) is not None else fold(value)
    if isinstance(value, dict):
        return {k: v if k == "id" else folded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [folded(v) for v in value]
    return value


def matches(ours: object, theirs: object) -> bool:
    """Does Capsule's value hold ours, for matching (texts folded; a diff compares exactly)?"""
    return same(folded(ours), folded(theirs))


def values_at(record: t.Mapping[str, t.Any], path: str) -> list[str]:
    """Normalized values of a field path; several for a path through a list."""
    current: list[t.Any] = [record]
    for part in path.split("."):
        many = part.endswith("[]")
        name = part[:-2] if many else part
        nxt: list[t.Any] = []
        for item in current:
            if not isinstance(item, dict):
                continue
            value = item.get(name)
            if many:
                nxt.extend(value or ())
            else:
                nxt.append(value)
        current = nxt
    out = []
    for value in current:
        normed = _norm(value)
        if normed is not None and normed not in out:
            out.append(normed)
    return out


def record_keys(
    record: t.Mapping[str, t.Any], keys: t.Sequence[cat.NaturalKey]
) -> list[tuple[int, tuple[str, ...]]]:
    """Every (key number, value tuple) the record can be found by."""
    found: list[tuple[int, tuple[str, ...]]] = []
    for number, key in enumerate(keys):
        if any(record.get(k) != v for k, v in key.when.items()):
            continue
        per_field = [values_at(record, path) for path in key.fields]
        if any(not values for values in per_field):
            continue
        found.extend((number, combo) for combo in itertools.product(*per_field))
    return found


def describe(record: t.Mapping[str, t.Any], keys: t.Sequence[cat.NaturalKey]) -> str:
    """The record's key values, for a rejection ("emailAddresses[].address='a@b.c'")."""
    for key in keys:
        if all(record.get(k) == v for k, v in key.when.items()):
            parts = [f"{p}={values_at(record, p)[0]!r}" for p in key.fields if values_at(record, p)]
            if len(parts) == len(key.fields):
                return ", ".join(parts)
    return "its content"


class Index:
    """The records of one list endpoint, by id, by natural key and by content bucket."""

    def __init__(self, keys: t.Sequence[cat.NaturalKey], records: t.Iterable[dict] = ()) -> None:
        """Index `records` on `keys`; more are added as the run reads and writes them."""
        self.keys = tuple(keys)
        self.by_id: dict[t.Any, dict] = {}
        self._by_key: dict[tuple[int, tuple[str, ...]], set] = {}
        self._by_bucket: dict[str | None, set] = {}
        for record in records:
            self.add(record)

    def add(self, record: dict) -> None:
        """Add or replace a record (the newest copy wins)."""
        rid = record.get("id")
        if rid is None:
            return
        self.remove(rid)
        self.by_id[rid] = record
        for k in record_keys(record, self.keys):
            self._by_key.setdefault(k, set()).add(rid)
        for bucket in self._buckets(record):
            self._by_bucket.setdefault(bucket, set()).add(rid)

    def remove(self, rid: object) -> None:
        """Drop a record from every part of the index."""
        old = self.by_id.pop(rid, None)
        if old is None:
            return
        for k in record_keys(old, self.keys):
            self._by_key.get(k, set()).discard(rid)
        for bucket in self._buckets(old):
            self._by_bucket.get(bucket, set()).discard(rid)

    @staticmethod
    def _buckets(record: t.Mapping[str, t.Any]) -> list[str | None]:
        out: list[str | None] = [None]
        for field in CONTENT_BUCKET_FIELDS:
            normed = _norm(record.get(field))
            if normed is not None:
                out.append(f"{field}={normed}")
        return out

    def match_key(self, record: t.Mapping[str, t.Any]) -> list | None:
        """Ids whose natural key equals the record's; None when the record has no key value."""
        found = record_keys(record, self.keys)
        if not found:
            return None
        ids: list = []
        for k in found:
            for rid in sorted(self._by_key.get(k, ()), key=str):
                if rid not in ids:
                    ids.append(rid)
        return ids

    def match_content(self, record: t.Mapping[str, t.Any], holds: t.Callable[[dict], bool]) -> list:
        """Ids of records for which `holds(current)` is true (Capsule holds all the record sets)."""
        bucket = None
        for field in CONTENT_BUCKET_FIELDS:
            normed = _norm(record.get(field))
            if normed is not None:
                bucket = f"{field}={normed}"
                break
        candidates = self._by_bucket.get(bucket, set())
        return [rid for rid in sorted(candidates, key=str) if holds(self.by_id[rid])]


def search_terms(record: t.Mapping[str, t.Any], keys: t.Sequence[cat.NaturalKey]) -> list[str]:
    """What to search Capsule for to find a record's matches: its key values, else its name.

    Capsule's search looks in names and email addresses; every candidate it returns is still
    compared in full, so a loose search costs nothing in correctness.
    """
    found = record_keys(record, keys)
    if found:  # the most telling value of each key (an email, a name; never a bare id)
        return sorted(
            {max(values, key=lambda v: (not v.isdigit(), len(v))) for _n, values in found}
        )
    for field in ("name", "lastName", "firstName", "title"):
        normed = _norm(record.get(field))
        if normed is not None:
            return [normed]
    return []


def content_of(obj: cat.CapsuleObject, body: t.Mapping[str, t.Any]) -> dict:
    """The part of a body that content matching compares with Capsule's copy.

    Left out: the parent reference of a child read from its parent's list (the list already
    says it, and Capsule does not always echo it), and a track's `definition`, which Capsule
    never returns (write-only), so a track is known by its parent, date and description.
    """
    parent = cat.parent_of(obj)
    skip = {parent.item_key} if parent is not None and cat.path_fields(obj.path) else set()
    if obj.capture_rule:
        skip.add("definition")
    return {k: v for k, v in body.items() if k not in skip}


def holds_scalars(body: t.Mapping[str, t.Any], current: t.Mapping[str, t.Any]) -> bool:
    """Content match: every set field of the body equals Capsule's value (texts folded)."""
    return all(matches(v, current.get(k)) for k, v in body.items() if not blank(v))


# Fields Capsule may set itself on a create, whatever was sent: an opportunity's probability comes
# from its milestone, its close date and stage-change time follow the milestone too. A check
# after a lost answer never compares them.
SET_BY_CAPSULE = frozenset({"probability", "closedOn", "lastStageChangedAt", "lastOpenMilestone"})


def made_from(
    obj: cat.CapsuleObject, keys: t.Sequence[cat.NaturalKey] | None, body: t.Mapping[str, t.Any]
) -> t.Callable[[t.Mapping[str, t.Any]], bool]:
    """Does a record of Capsule's look like the one a create with `body` made?

    On the upsert key when the body has a value for one; else on the fields Capsule stores as
    sent (never on what it sets, defaults or normalises itself).
    """
    keys = tuple(keys or ())
    own = set(record_keys(body, keys))
    wanted = {k: v for k, v in content_of(obj, body).items() if k not in SET_BY_CAPSULE}

    def matches(record: t.Mapping[str, t.Any]) -> bool:
        if own:
            return bool(own & set(record_keys(record, keys)))
        return holds_scalars(wanted, record)

    return matches
