"""Singer streams generated from the catalogue.

One `CapsuleStream` subclass per catalogue entry. The catalogue says what differs between objects
(path, wrappers, embeds, `since`, deleted feed, parent); this module says how any of them is read.
"""

from __future__ import annotations

import functools
import typing as t
from urllib.parse import parse_qsl

from singer_sdk import RESTStream, Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import HeaderLinkPaginator
from typing_extensions import override

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    CapsuleNotFound,
    CapsuleSession,
    raise_for_capsule_status,
    response_json,
)
from tap_capsule.bookmarks import Window, capsule_time, signpost, window

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Auth, Context

    from tap_capsule.custom_fields import CustomFieldMap
    from tap_capsule.tap import TapCapsule


class CapsuleStream(RESTStream):
    """A Capsule list endpoint read page by page through the shared `CapsuleSession`."""

    obj: t.ClassVar[cat.CapsuleObject]
    # Capsule already sends JSON-typed values and the tap adds only JSON values, so the SDK's
    # per-value conformance pass would cost CPU for nothing (see benchmarks/).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    is_sorted = False  # Capsule documents no order for its lists
    STATE_MSG_FREQUENCY = 10_000

    def __init__(self, tap: TapCapsule, schema: dict | None = None) -> None:
        """Takes name, keys and path from the class's catalogue entry; schema from discovery."""
        super().__init__(tap=tap, name=self.obj.stream, schema=schema or self.obj.json_schema())
        self.primary_keys = list(self.obj.key_properties)
        self.replication_key = self.obj.replication_key
        self.path = self.obj.path
        self._capsule_tap = tap
        self._first_query: dict[tuple, dict] = {}  # per parent context

    # --- HTTP through the shared layer ------------------------------------------------------

    @property
    @override
    def url_base(self) -> str:
        return self.capsule_session.api_url

    @property
    def capsule_session(self) -> CapsuleSession:
        """The tap's one session: pacing, retries and the request budget span all streams."""
        return self._capsule_tap.capsule_session

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.capsule_session

    @property
    @override
    def authenticator(self) -> Auth:
        return self.capsule_session.authenticator

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]  # the SDK says int; requests takes float
        """`request_timeout`: the SDK passes this to every list read, in place of its 300 s."""
        return self.capsule_session.timeout

    @property
    @override
    def http_headers(self) -> dict:
        return {}  # the session carries Accept and User-Agent

    @override
    def backoff_max_tries(self) -> int:
        return 1  # CapsuleSession retries; a second layer would multiply waits

    @override
    def validate_response(self, response: requests.Response) -> None:
        raise_for_capsule_status(response)

    @override
    def get_new_paginator(self) -> HeaderLinkPaginator:
        return HeaderLinkPaginator()

    @override
    def get_url_params(self, context: Context | None, next_page_token: t.Any) -> dict:
        """The first page's query; a next page keeps it under what its `Link` URL says.

        Capsule's `Link` keeps the original query, but a next page read without `embed`,
        `since` or `status` would silently change what the sync reads, so the first query is
        kept for every page of the same read and the link only adds to it (the page number).
        """
        key = _context_key(context)
        if next_page_token is None or key not in self._first_query:
            params: dict[str, t.Any] = {
                "perPage": self.config.get("page_size", 100),
                **self.obj.list_query,
            }
            if self.obj.since:
                since = self.read_window(context).since_param
                if since:
                    params["since"] = since
            self._first_query[key] = params
        if next_page_token is None:
            return dict(self._first_query[key])
        return {**self._first_query[key], **dict(parse_qsl(next_page_token.query))}

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        body = response_json(response) or {}
        return body.get(self.obj.list_key) or ()

    # --- Incremental reads ------------------------------------------------------------------

    def read_window(self, context: Context | None) -> Window:
        """Where this read starts: the partition's bookmark, else `start_date`."""
        state = self.get_context_state(context)
        return window(state.get("replication_key_value"), self.config.get("start_date"))

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        if not self.replication_key:
            return None
        return signpost(self.capsule_session.pacer.server_now())

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        pacer = self.capsule_session.pacer
        spent_before = pacer.requests_sent
        yield from self._read(context)
        if context is None:  # per-parent reads of child streams would flood the log
            self.logger.info(
                "%s: %d requests to Capsule; %s",
                self.name,
                pacer.requests_sent - spent_before,
                pacer.budget_line(),
            )

    def _read(self, context: Context | None) -> t.Iterator[dict]:
        bounds = self.read_window(context) if self.replication_key else Window(None, False)
        try:
            for record in self.request_records(context):
                # Also where Capsule filters on `since`: a server that ignores the parameter
                # (undocumented for /tasks) must not turn an incremental read into a full one.
                if self.replication_key and not bounds.admits(record.get(self.replication_key)):
                    continue
                yield record
        except CapsuleNotFound:
            if not self.obj.parent:
                raise
            self.logger.warning("%s: the parent %s is gone (404); skipped", self.name, context)
            return
        if self.obj.deleted_path and tombstone_mode(self.config) == "inline":
            # On a first sync and a full refresh too: a full refresh over existing downstream
            # data must mark what was deleted since that data was loaded.
            yield from self.tombstones(bounds)

    def tombstones(self, bounds: Window) -> t.Iterator[dict]:
        """`{id, _sdc_deleted_at}` for deleted and restricted records (both count as gone)."""
        assert self.obj.deleted_path
        stamp = signpost(self.capsule_session.pacer.server_now())
        for stub in deleted_stubs(self.capsule_session, self.obj, bounds, self.config):
            yield tombstone(stub, stamp)

    @override
    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        """Add the parent key, reshape link records, type custom fields.

        A record without its replication key (the docs' pipelines have no `updatedAt`) is kept
        with the key set to null: the SDK's bookmark step needs the key present, and a record is
        never dropped for lacking it.
        """
        if self.replication_key and self.replication_key not in row:
            row[self.replication_key] = None
        if self.obj.parent_key and context:
            row[self.obj.parent_key] = context[self.obj.parent_key]
        if self.obj.link_item_key:
            row = {
                self.obj.parent_key: row[self.obj.parent_key],
                self.obj.child_key: row["id"],
                self.obj.link_item_key: {k: v for k, v in row.items() if k != self.obj.parent_key},
            }
        if self.obj.custom_fields and "_sdc_deleted_at" not in row:
            row["custom_fields"] = self.field_map.typed(row.get("fields"), self.typed_fields)
        return row

    @override
    def log_sync_costs(self) -> None:
        """Also the end of the whole sync: the SDK calls this once per stream, after every read."""
        super().log_sync_costs()
        if list(self._capsule_tap.streams.values())[-1] is self:
            self._capsule_tap.log_sync_end()

    @functools.cached_property
    def field_map(self) -> CustomFieldMap:
        """Typed custom-field columns of this stream's object (read once per run)."""
        return self._capsule_tap.custom_field_map(self.obj)

    @functools.cached_property
    def typed_fields(self) -> frozenset[str]:
        """Custom-field columns of the schema in force (the input catalog's, when given)."""
        props = self.effective_schema.get("properties", {}).get("custom_fields") or {}
        return frozenset((props.get("properties") or {}).keys())

    @override
    def generate_child_contexts(
        self, record: dict, context: Context | None
    ) -> t.Iterator[Context | None]:
        if not self.child_streams or "_sdc_deleted_at" in record:
            return  # no children, or a deleted parent whose children are gone with it
        yield {
            child.obj.parent_key: record["id"]
            for child in self.child_streams
            if isinstance(child, CapsuleStream) and child.obj.parent_key
        }


def _context_key(context: Context | None) -> tuple:
    return tuple(sorted((context or {}).items()))


# Tombstones (deleted and restricted records), by the `tombstones` setting:
# - inline: `{id, _sdc_deleted_at}` records in the object's own stream;
# - stream: `<stream>_deleted` streams of `{id, deletedAt, restricted}`;
# - off: none.
TOMBSTONE_MODES = ("inline", "stream", "off")
# Capsule needs `since` on /parties/deleted. Without a bookmark or start_date the whole feed is
# wanted: Capsule's own pages are dated from 2008, so nothing was deleted before this.
EARLIEST_SINCE = "2000-01-01T00:00:00Z"


def tombstone_mode(config: t.Mapping[str, t.Any]) -> str:
    """The `tombstones` setting (inline by default)."""
    return str(config.get("tombstones") or "inline")


def deleted_stubs(
    session: CapsuleSession, obj: cat.CapsuleObject, read: Window, config: t.Mapping[str, t.Any]
) -> t.Iterator[dict]:
    """Every stub of an object's deleted feed since the read window (or since ever).

    Restricted stubs (records no longer visible to this user) carry `restricted: true`.
    """
    assert obj.deleted_path
    params = {"since": read.since_param or EARLIEST_SINCE}
    for body in session.pages(obj.deleted_path, params, config.get("page_size", 100)):
        for i, key in enumerate(obj.deleted_keys):
            for stub in body.get(key) or ():
                yield {**stub, "restricted": i > 0}


def tombstone(stub: dict, stamp: str) -> dict:
    """The inline tombstone of one deleted-feed stub.

    Restricted records (no longer visible to this user) come without `deletedAt`: they are gone
    for this user as of the sync, so they take the sync's own time, but leave the bookmark alone
    (`updatedAt` null): a time Capsule did not give must not decide where the next sync starts.
    """
    if stub.get("deletedAt"):
        deleted_at = capsule_time(stub["deletedAt"])
        return {"id": stub["id"], "_sdc_deleted_at": deleted_at, "updatedAt": deleted_at}
    return {"id": stub["id"], "_sdc_deleted_at": stamp, "updatedAt": None}


class DeletedRecordsStream(Stream):
    """`<stream>_deleted`: the ids and deletion times of an object's deleted feed.

    With `tombstones: stream`, deletions are a table of their own that a warehouse joins on `id`,
    and the object's rows keep their data (an inline tombstone upserted into a SQL table replaces
    the row's columns with NULLs).
    """

    obj: t.ClassVar[cat.CapsuleObject]
    is_sorted = False  # Capsule documents no order for the deleted feeds

    def __init__(self, tap: TapCapsule, schema: dict | None = None) -> None:
        """A stream named `<stream>_deleted`, keyed on `id`, incremental on `deletedAt`."""
        super().__init__(
            tap=tap,
            name=f"{self.obj.stream}_deleted",
            schema=schema or {**cat.DELETED_RECORD_SCHEMA},
        )
        self.primary_keys = ["id"]
        self.replication_key = "deletedAt"
        self._capsule_tap = tap

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        """Never later than one second before the sync started on Capsule's clock."""
        return signpost(self._capsule_tap.capsule_session.pacer.server_now())

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """One record per deleted or restricted record since the bookmark (or start_date)."""
        state = self.get_context_state(context)
        read = window(state.get("replication_key_value"), self.config.get("start_date"))
        session = self._capsule_tap.capsule_session
        stamp = signpost(session.pacer.server_now())
        for stub in deleted_stubs(session, self.obj, read, self.config):
            deleted_at = capsule_time(stub["deletedAt"]) if stub.get("deletedAt") else stamp
            yield {"id": stub["id"], "deletedAt": deleted_at, "restricted": stub["restricted"]}


class WalkedChildStream(CapsuleStream):
    """A child list whose parents are read from the parent list itself (one extra request).

    Used when the parent stream is filtered on the client (pipelines): a parent left out of the
    incremental output can still have changed children.
    """

    state_partitioning_keys: t.ClassVar[list[str]] = []  # one small bookmark, not one per parent

    @functools.cached_property
    @override
    def partitions(self) -> list[dict] | None:
        parent = cat.parent_of(self.obj)
        assert parent is not None
        ids = [
            r["id"]
            for r in self.capsule_session.paginate(parent.path, parent.list_key, parent.list_query)
        ]
        return [{self.obj.parent_key: i} for i in ids]


def stream_classes() -> list[type[CapsuleStream]]:
    """One stream class per catalogue entry, parents before children."""
    classes: dict[str, type[CapsuleStream]] = {}
    for obj in cat.OBJECTS:
        name = "".join(p.title() for p in obj.stream.split("_")) + "Stream"
        attrs: dict[str, t.Any] = {"obj": obj, "__doc__": f"Capsule `{obj.path}`."}
        base: type[CapsuleStream] = CapsuleStream
        parent = cat.parent_of(obj)
        if parent is not None and parent.since:
            # Server-filtered parent: read the children of every parent that changed.
            attrs["parent_stream_type"] = classes[parent.stream]
            attrs["state_partitioning_keys"] = []
        elif parent is not None:
            base = WalkedChildStream
        classes[obj.stream] = type(name, (base,), attrs)
    return list(classes.values())


def deleted_stream_classes() -> list[type[DeletedRecordsStream]]:
    """One `<stream>_deleted` stream class per object with a deleted feed."""
    return [
        type(
            "".join(p.title() for p in obj.stream.split("_")) + "DeletedStream",
            (DeletedRecordsStream,),
            {"obj": obj, "__doc__": f"Capsule `{obj.deleted_path}`."},
        )
        for obj in cat.OBJECTS
        if obj.deleted_path
    ]
