"""What the target reads from Capsule, each list read at most once per run.

Definitions (custom fields, tags, track definitions), upsert indexes and the current copy of records
about to be updated. Lists are read page by page through the shared session and cached for the run;
after a write the cache is updated from Capsule's answer, so later records see it.
"""

from __future__ import annotations

import logging
import typing as t

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    CapsuleNotFound,
    CapsuleSession,
    raise_for_capsule_status,
    response_json,
)
from target_capsule.natural_keys import Index
from target_capsule.payload import FieldDefinitions

logger = logging.getLogger(__name__)

# After this many single GETs of one stream, read its whole list instead (one request per 100).
SINGLE_GETS_BEFORE_LIST = 20


def small(obj: cat.CapsuleObject) -> bool:
    """A settings list (definitions, categories, users...): reading it whole is cheapest."""
    return not obj.since and (bool(obj.natural_keys) or obj.replication_key is None)


class Lookups:
    def __init__(
        self, session: CapsuleSession, upsert_keys: t.Mapping[str, t.Any] | None = None
    ) -> None:
        self.session = session
        self.upsert_keys = upsert_keys or {}
        self._indexes: dict[str, Index] = {}
        self._complete: set[str] = set()  # list paths read in full
        self._field_defs: dict[str, FieldDefinitions] = {}
        self._lists: dict[str, list[dict]] = {}
        self._single_gets: dict[str, int] = {}

    # --- lists ----------------------------------------------------------------------------

    def read_list(self, obj: cat.CapsuleObject, path: str) -> list[dict]:
        return list(self.session.paginate(path, obj.list_key, obj.list_query))

    def definitions(self, stream: str) -> list[dict]:
        """All records of a small settings list (tag, field or track definitions)."""
        if stream not in self._lists:
            obj = cat.get(stream)
            if obj.path in self._complete:
                self._lists[stream] = list(self._indexes[obj.path].by_id.values())
            else:
                self._lists[stream] = self.read_list(obj, obj.path)
        return self._lists[stream]

    def field_definitions(self, obj: cat.CapsuleObject) -> FieldDefinitions:
        assert obj.custom_fields
        if obj.custom_fields not in self._field_defs:
            self._field_defs[obj.custom_fields] = FieldDefinitions(
                obj.stream, self.definitions(obj.custom_fields)
            )
        return self._field_defs[obj.custom_fields]

    def track_definition(self, wanted: t.Any) -> dict | None:
        key = (
            wanted.get("id")
            if isinstance(wanted, dict) and wanted.get("id") is not None
            else (
                wanted.get("description") or wanted.get("name")
                if isinstance(wanted, dict)
                else wanted
            )
        )
        for d in self.definitions("track_definitions"):
            if str(d.get("id")) == str(key):
                return d
        for d in self.definitions("track_definitions"):
            if str(d.get("description") or "").strip().casefold() == str(key).strip().casefold():
                return d
        return None

    # --- indexes --------------------------------------------------------------------------

    def list_path(self, obj: cat.CapsuleObject, values: t.Mapping[str, t.Any]) -> str | None:
        """The list path of a record (child lists need their parent's id), or None."""
        names = cat.path_fields(obj.path)
        if not names:
            return obj.path
        if any(values.get(n) in (None, "") for n in names):
            return None
        return cat.fill_path(obj.path, values)

    def index(
        self,
        obj: cat.CapsuleObject,
        path: str,
        keys: t.Sequence[cat.NaturalKey],
        refresh: bool = False,
    ) -> Index:
        """The upsert index of one list, read in full once (again when `refresh`)."""
        cached = self._indexes.get(path)
        if cached is None or refresh or path not in self._complete:
            if not refresh and path == obj.path and obj.stream in self._lists:
                records = list(self._lists[obj.stream])
            else:
                records = self.read_list(obj, path)
            index = Index(keys, records)
            if cached is not None and not refresh:
                for rid, rec in cached.by_id.items():  # keep fresher single reads
                    index.by_id.setdefault(rid, rec)
            self._indexes[path] = index
            self._complete.add(path)
            logger.info("Read %d %s from %s for matching and diffs", len(records), obj.stream, path)
        return self._indexes[path]

    def remember(self, obj: cat.CapsuleObject, path: str | None, record: dict) -> None:
        """Keep Capsule's answer to a write as the current copy of the record."""
        for p in {path, obj.path} - {None}:
            idx = self._indexes.get(p)  # type: ignore[arg-type]
            if idx is not None:
                idx.add(record)

    def forget(self, obj: cat.CapsuleObject, rid: t.Any) -> None:
        for idx in self._indexes.values():
            if rid in idx.by_id and idx.by_id[rid] is not None:
                idx.remove(rid)

    def current(
        self,
        obj: cat.CapsuleObject,
        rid: t.Any,
        path: str | None,
        keys: t.Sequence[cat.NaturalKey],
        fresh: bool = False,
    ) -> dict | None:
        """Capsule's copy of one record: from a list read in full, else one GET (None: 404)."""
        if not fresh:
            for p in (path, obj.path):
                idx = self._indexes.get(p) if p else None
                if idx is not None and rid in idx.by_id:
                    return idx.by_id[rid]
            if path and not cat.path_fields(path) and path not in self._complete:
                count = self._single_gets.get(path, 0)
                if count >= SINGLE_GETS_BEFORE_LIST or path in self._indexes or small(obj):
                    idx = self.index(obj, path, keys)
                    if rid in idx.by_id:
                        return idx.by_id[rid]
                self._single_gets[path] = count + 1
        record = self.get_one(obj, rid)
        if record is not None and path:
            idx = self._indexes.get(path)
            if idx is not None:
                idx.add(record)
        return record

    def get_one(self, obj: cat.CapsuleObject, rid: t.Any) -> dict | None:
        params = {"embed": ",".join(obj.embed)} if obj.embed else None
        response = self.session.call(
            "GET", cat.fill_path(obj.single_path, {"id": rid}), params=params
        )
        if response.status_code == 404:
            return None
        raise_for_capsule_status(response)
        body = response_json(response) or {}
        return body.get(obj.item_key) or body

    # --- links ----------------------------------------------------------------------------

    def linked_ids(
        self, obj: cat.CapsuleObject, parent_id: t.Any, refresh: bool = False
    ) -> set | None:
        """Ids linked to a parent (additional parties); None when the parent is gone."""
        path = cat.fill_path(obj.path, {obj.parent_key: parent_id})
        if refresh or path not in self._lists:
            try:
                self._lists[path] = self.read_list(obj, path)
            except CapsuleNotFound:
                return None
        return {str(r.get("id")) for r in self._lists[path]}

    def link_changed(
        self, obj: cat.CapsuleObject, parent_id: t.Any, child_id: t.Any, linked: bool
    ) -> None:
        path = cat.fill_path(obj.path, {obj.parent_key: parent_id})
        rows = self._lists.setdefault(path, [])
        rows[:] = [r for r in rows if str(r.get("id")) != str(child_id)]
        if linked:
            rows.append({"id": child_id})
