"""What the target reads from Capsule, and how it keeps that cheap.

Definitions (custom fields, tags, track definitions), upsert indexes and the current copy of records
about to be updated. Everything read is cached for the run; after a write the cache is updated
from Capsule's answer, so later records see it.

What matching costs follows the input, not the account. Two ways to find an id-less record's
match in a large list (parties, opportunities, cases): one search per record
(`GET /parties/search?q=<key value>`), or one read of the whole list (a request per 100 records).
Which is cheaper depends on how many records come, which a stream does not say in advance. So
each search also reads the next page of the list: n records cost 2n requests while the list is
unread, and once its last page is in, no more searches are needed. Either way the reads stay
within twice the cheaper of the two. Reads of records to update work the same way, with up to 10
records per GET (`/parties/1,2,3`) where Capsule serves several ids at once. Notes are matched in
their parent's entries (`/parties/{id}/entries`), tracks and milestones in their parent's list.
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
from target_capsule.natural_keys import Index, search_terms
from target_capsule.payload import FieldDefinitions
from target_capsule.values import ref_id

logger = logging.getLogger(__name__)

MULTI_GET = 10  # ids Capsule serves in one GET of `/{entity}/{id1},{id2},...`
ENTRY_PAGE = 50  # per-record entries lists take perPage up to 50

# Notes are matched within their parent's entries, not in the account's whole list.
ENTRY_PARENTS = (("party", "/parties"), ("opportunity", "/opportunities"), ("kase", "/kases"))


def small(obj: cat.CapsuleObject) -> bool:
    """A settings list (definitions, categories, users...): reading it whole is cheapest."""
    return not obj.since and (bool(obj.natural_keys) or obj.replication_key is None)


class Lookups:
    """Every read of one run, cached: lists, indexes, definitions and records to update."""

    def __init__(
        self, session: CapsuleSession, upsert_keys: t.Mapping[str, t.Any] | None = None
    ) -> None:
        """Nothing is read until a record needs it."""
        self.session = session
        self.upsert_keys = upsert_keys or {}
        self._indexes: dict[str, Index] = {}
        self._owner: dict[str, str] = {}  # list path -> the stream whose records it holds
        self._complete: set[str] = set()  # list paths read in full
        self._field_defs: dict[str, FieldDefinitions] = {}
        self._lists: dict[str, list[dict]] = {}
        self._pagers: dict[str, str | None] = {}  # lists being read a page at a time: next URL

    # --- lists ----------------------------------------------------------------------------

    def read_list(self, obj: cat.CapsuleObject, path: str) -> list[dict]:
        """Every record of a list, page by page (small lists and per-parent lists)."""
        records = list(
            self.session.paginate(path, obj.list_key, obj.list_query, self.page_size(path))
        )
        return records

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
        """The custom-field definitions of an entity, read once."""
        assert obj.custom_fields
        if obj.custom_fields not in self._field_defs:
            self._field_defs[obj.custom_fields] = FieldDefinitions(
                obj.stream, self.definitions(obj.custom_fields)
            )
        return self._field_defs[obj.custom_fields]

    def track_definition(self, wanted: object) -> dict | None:
        """The track definition a track names: by id, else by description or name."""
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
        if obj.stream == "entries":
            for ref_key, parent_path in ENTRY_PARENTS:
                parent_id = ref_id(values.get(ref_key))
                if isinstance(parent_id, int) and parent_id > 0:
                    return f"{parent_path}/{parent_id}/entries"
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
        if not refresh and path in self._pagers:  # a list half read: read the rest
            while self.advance(obj, path, keys):
                pass
            return self._indexes[path]
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
            self._owner[path] = obj.stream
            self._complete.add(path)
            logger.info("Read %d %s from %s for matching and diffs", len(records), obj.stream, path)
        return self._indexes[path]

    def advance(self, obj: cat.CapsuleObject, path: str, keys: t.Sequence[cat.NaturalKey]) -> bool:
        """Read the next page of a list into its index; False once the list is complete.

        The list is complete as soon as a page carries no `Link: rel="next"`, so the last page
        is never followed by a request that finds nothing.
        """
        if path in self._complete:
            return False
        if path not in self._pagers:
            self._pagers[path] = None
            self._indexes.setdefault(path, Index(keys))
            self._owner[path] = obj.stream
        index = self._indexes[path]
        url = self._pagers[path]
        if url is None:
            query: t.Mapping | None = {**obj.list_query, "perPage": self.page_size(path)}
            response = self.session.call("GET", path, params=query)
        else:
            response = self.session.call("GET", url)
        raise_for_capsule_status(response)
        for record in (response_json(response) or {}).get(obj.list_key) or ():
            if record.get("id") not in index.by_id:  # a copy this run wrote is fresher
                index.add(record)
        next_url = response.links.get("next", {}).get("url")
        if next_url:
            self._pagers[path] = next_url
            return True
        del self._pagers[path]
        self._complete.add(path)
        logger.info("Read all %d %s of %s", len(index.by_id), obj.stream, path)
        return False

    @staticmethod
    def page_size(path: str) -> int:
        """Records per page: per-record entries lists take at most 50, other lists 100."""
        return ENTRY_PAGE if path.endswith("/entries") and path != "/entries" else 100

    def candidates(
        self,
        obj: cat.CapsuleObject,
        path: str,
        keys: t.Sequence[cat.NaturalKey],
        body: t.Mapping[str, t.Any],
    ) -> Index:
        """The records an id-less record may match, read as cheaply as the input allows.

        Lists that are small or belong to one parent are read whole. A large searchable list
        is searched for the record's key (or name) and read one more page per search, until
        it is complete (see the module's docstring for why that bounds the cost).
        """
        if path in self._complete:
            return self._indexes[path]
        terms = search_terms(body, keys) if obj.searchable and path == obj.path else []
        if not terms:
            return self.index(obj, path, keys)
        self.advance(obj, path, keys)
        index = self._indexes[path]
        if path in self._complete:
            return index
        for term in terms:
            params = {**obj.list_query, "q": term}
            found = list(self.session.paginate(f"{path}/search", obj.list_key, params))
            for record in found:
                if record.get("id") not in index.by_id:
                    index.add(record)
        return index

    def records_seen(self) -> set[tuple[str, str]]:
        """(stream, id) of every existing record read for matching and diffs.

        What the `max_changed_share` guardrail measures against; records a dry run planned are not.
        """
        return {
            (self._owner.get(path, ""), str(rid))
            for path, index in self._indexes.items()
            for rid in index.by_id
            if not str(rid).startswith("planned:")
        }

    def cached(self, path: str | None, rid: object) -> dict | None:
        """The copy of a record this run already read or wrote, if any."""
        index = self._indexes.get(path) if path else None
        return index.by_id.get(rid) if index is not None else None

    def remember(self, obj: cat.CapsuleObject, path: str | None, record: dict) -> None:
        """Keep Capsule's answer to a write as the current copy of the record."""
        for p in {path, obj.path} - {None}:
            idx = self._indexes.get(p)  # type: ignore[arg-type]
            if idx is not None:
                idx.add(record)

    def forget(self, obj: cat.CapsuleObject, rid: object) -> None:
        """Drop a deleted record from its own object's lists only: ids repeat across objects."""
        for path, idx in self._indexes.items():
            if self._owner.get(path) == obj.stream:
                idx.remove(rid)

    def current(
        self,
        obj: cat.CapsuleObject,
        rid: object,
        path: str | None,
        keys: t.Sequence[cat.NaturalKey],
        fresh: bool = False,
        upcoming: t.Sequence[t.Any] = (),
    ) -> dict | None:
        """Capsule's copy of one record (None: it does not exist).

        From what the run already read; else small lists are read whole; else a GET, of up to
        10 records at once (this one and the `upcoming` ids) where Capsule serves several,
        each GET also reading one more page of the list (so reads stay within twice the
        cheaper of "GET them all" and "read the list").
        """
        if not fresh:
            for p in (path, obj.path):
                idx = self._indexes.get(p) if p else None
                if idx is not None and rid in idx.by_id:
                    return idx.by_id[rid]
            if path and not cat.path_fields(path) and small(obj):
                return self.index(obj, path, keys).by_id.get(rid)
            if not cat.path_fields(obj.path) and obj.path not in self._complete:
                self.advance(obj, obj.path, keys)  # "rent" a GET, "save" one page of the list
                found = self.cached(obj.path, rid)
                if found is not None:
                    return found
        ids = [rid]
        if obj.multi_get and not fresh:
            ids += [
                i
                for i in dict.fromkeys(upcoming)
                if i != rid and self.cached(path, i) is None and self.cached(obj.path, i) is None
            ][: MULTI_GET - 1]
        records = self.get_many(obj, ids) if len(ids) > 1 else [self.get_one(obj, rid)]
        record = None
        for got in records:
            if got is None:
                continue
            for p in {path, obj.path} - {None}:
                self._indexes.setdefault(p, Index(keys))  # type: ignore[arg-type]
                self._owner.setdefault(p, obj.stream)  # type: ignore[arg-type]
                self._indexes[p].add(got)  # type: ignore[index]
            if str(got.get("id")) == str(rid):
                record = got
        return record

    def get_many(self, obj: cat.CapsuleObject, ids: t.Sequence[t.Any]) -> list[dict | None]:
        """Several records in one GET; Capsule answers 404 if any is missing, then one by one."""
        joined = ",".join(str(int(i)) for i in ids)
        path = obj.single_path.replace("{id}", joined)
        params = {"embed": ",".join(obj.embed)} if obj.embed else None
        response = self.session.call("GET", path, params=params)
        if response.status_code == 404:
            return [self.get_one(obj, i) for i in ids]
        raise_for_capsule_status(response)
        body = response_json(response) or {}
        found = body.get(obj.list_key)
        if not isinstance(found, list):
            one = body.get(obj.item_key)
            found = [one] if isinstance(one, dict) else []
        return [r for r in found if isinstance(r, dict)]

    def get_one(self, obj: cat.CapsuleObject, rid: object) -> dict | None:
        """One record by id (None on 404)."""
        params = {"embed": ",".join(obj.embed)} if obj.embed else None
        response = self.session.call(
            "GET", cat.fill_path(obj.single_path, {"id": rid}), params=params
        )
        if response.status_code == 404:
            return None
        raise_for_capsule_status(response)
        body = response_json(response) or {}
        return body.get(obj.item_key) or body

    def with_parent(self, obj: cat.CapsuleObject, record: dict) -> dict:
        """`record` naming its parent (a milestone its pipeline), for a copy that must recreate it.

        Capsule's answer to `GET /milestones/{id}` may leave the pipeline out (the list under
        the pipeline carries it): then the parents' lists are read until one holds the record.
        """
        parent = cat.parent_of(obj)
        if parent is None or not obj.parent_key or cat.path_fields(parent.path) or parent.since:
            return record  # (a large parent list, e.g. opportunities, is never read for this)
        if ref_id(record.get(parent.item_key)) is not None or record.get(obj.parent_key):
            return record
        for owner in self.session.paginate(parent.path, parent.list_key, parent.list_query):
            path = cat.fill_path(obj.path, {obj.parent_key: owner.get("id")})
            try:
                children = self.read_list(obj, path)
            except CapsuleNotFound:
                continue
            if any(str(c.get("id")) == str(record.get("id")) for c in children):
                return {**record, parent.item_key: {"id": owner.get("id")}}
        return record

    # --- links ----------------------------------------------------------------------------

    def linked_ids(
        self, obj: cat.CapsuleObject, parent_id: object, refresh: bool = False
    ) -> set | None:
        """Ids linked to a parent (additional parties); None when the parent is gone."""
        path = cat.fill_path(obj.path, {str(obj.parent_key): parent_id})
        if refresh or path not in self._lists:
            try:
                self._lists[path] = self.read_list(obj, path)
            except CapsuleNotFound:
                return None
        return {str(r.get("id")) for r in self._lists[path]}

    def link_changed(
        self, obj: cat.CapsuleObject, parent_id: object, child_id: object, linked: bool
    ) -> None:
        """Keep the cached links of a parent in step with a link written or removed."""
        path = cat.fill_path(obj.path, {str(obj.parent_key): parent_id})
        rows = self._lists.setdefault(path, [])
        rows[:] = [r for r in rows if str(r.get("id")) != str(child_id)]
        if linked:
            rows.append({"id": child_id})
