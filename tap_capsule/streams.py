"""Singer streams generated from the catalogue.

One `CapsuleStream` subclass per catalogue entry. The catalogue says what differs between objects
(path, wrappers, embeds, `since`, deleted feed, parent); this module says how any of them is read.
"""

from __future__ import annotations

import datetime
import functools
import typing as t
from urllib.parse import parse_qsl

from singer_sdk import RESTStream, Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.pagination import HeaderLinkPaginator
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    CapsuleNotFound,
    CapsuleSession,
    raise_for_capsule_status,
    response_json,
)
from tap_capsule.bookmarks import Window, capsule_time, signpost, window
from tap_capsule.progress import PER_REQUEST_METRICS, RunCounter, RunTimer, StreamProgress

if t.TYPE_CHECKING:
    import logging

    import requests
    from singer_sdk import metrics
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
        schema = schema_for(tap.config, schema or self.obj.json_schema())
        super().__init__(tap=tap, name=self.obj.stream, schema=schema)
        self.primary_keys = list(self.obj.key_properties)
        self.replication_key = self.obj.replication_key
        self.path = self.obj.path
        self._capsule_tap = tap
        self._first_query: dict[tuple, dict] = {}  # per parent context

    @property
    @override
    def is_timestamp_replication_key(self) -> bool:
        """Capsule's replication keys are timestamps, even when declared as text.

        With `date_times_as_text` the schema drops `format: date-time`; the bookmark must still
        be compared and capped as a time.
        """
        return self.replication_key is not None

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
    def request_decorator(self, func: t.Callable) -> t.Callable:
        """No SDK backoff: CapsuleSession retries.

        The SDK's backoff wrapper, built anew for every partition (every parent of a child
        stream), would try once and only cost CPU.
        """
        return func

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

    # --- Progress: one set of figures per stream and run --------------------------------------

    @functools.cached_property
    def progress(self) -> StreamProgress:
        """This stream's records and requests in this run (SDK metrics and progress lines)."""
        return StreamProgress(
            self.name, self.path, self._capsule_tap.logger, self.capsule_session.pacer
        )

    @override
    def get_http_request_counter(self) -> metrics.Counter:
        return self.progress.requests

    @override
    def get_record_counter(
        self, *, endpoint: str | None = None, log_interval: float = 60
    ) -> RunCounter:
        return self.progress.record_counter

    @override
    def get_sync_timer(self) -> RunTimer:
        return self.progress.timer

    def finish_progress(self) -> None:
        """Log this stream's figures and its children's (all of them are done by now)."""
        self.progress.finish()
        for child in self.child_streams:
            if child.selected:
                t.cast("CapsuleStream", child).finish_progress()

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self._read(context)
        if context is None:
            self.finish_progress()

    def _read(self, context: Context | None) -> t.Iterator[dict]:
        bounds = self.read_window(context) if self.replication_key else Window(None, False)
        progress = self.progress
        try:
            for record in self.request_records(context):
                # Also where Capsule filters on `since`: a server that ignores the parameter
                # (undocumented for /tasks) must not turn an incremental read into a full one.
                if self.replication_key and not bounds.admits(record.get(self.replication_key)):
                    continue
                progress.records += 1
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
        pages = deleted_stubs(
            self.capsule_session, self.obj, bounds, self.config, self.progress.request_made
        )
        for stub in pages:
            self.progress.records += 1
            self.progress.tombstones += 1
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

    # --- Record messages ----------------------------------------------------------------------

    @functools.cached_property
    def everything_selected(self) -> bool:
        """Every property is selected, so there is nothing to take out of a record.

        The SDK's selection mask answers for a breadcrumb it doesn't list with its parent's
        answer, so when every listed breadcrumb is selected, every property of every record is.
        """
        return all(self.mask.values())

    @functools.cached_property
    def objects_flattened(self) -> dict[str, frozenset[str]]:
        """Top-level object properties that the SDK's flattening turns into columns, and theirs.

        Empty unless `flattening_enabled`. The SDK flattens `owner: {id, name}` into `owner__id`
        and `owner__name`, and its flattened schema has exactly the declared properties, but:
        - it keeps `owner: null` as a column `owner` that the schema doesn't have;
        - it makes a column of every key of the record, declared or not (an embedded
          `organisation` carries the whole organisation, beyond the reference's declared fields).
        target-csv then stops: "dict contains fields not in fieldnames". So for flattening a null
        object becomes an empty one (no columns: empty cells) and an object keeps its declared
        keys (the whole embedded record is in its own stream).
        """
        if not self.config.get("flattening_enabled"):
            return {}
        props = self.effective_schema.get("properties") or {}
        return {
            name: frozenset(prop["properties"])
            for name, prop in props.items()
            if "properties" in prop and "object" in (prop.get("type") or ())
        }

    @override
    def _generate_record_messages(self, record: dict) -> t.Generator[RecordMessage, None, None]:
        if self.objects_flattened:
            record = {**record}
            for name, declared in self.objects_flattened.items():
                value = record.get(name, ())
                if value is None:
                    record[name] = {}
                elif not declared:  # a catalog with `properties: {}`: no column to put it in
                    record.pop(name, None)
                elif isinstance(value, dict) and not value.keys() <= declared:
                    record[name] = {k: v for k, v in value.items() if k in declared}
        # The SDK walks every key of every record, nested objects included, to drop deselected
        # properties: the largest CPU cost in the tap's own code once HTTP is done. With
        # everything selected the walk removes nothing and is skipped; type conformance is off
        # for these streams (see TYPE_CONFORMANCE_LEVEL), so what remains is the stream maps.
        if not self.everything_selected or self.TYPE_CONFORMANCE_LEVEL != TypeConformanceLevel.NONE:
            yield from super()._generate_record_messages(record)
            return
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=datetime.datetime.now(datetime.timezone.utc),
                )


def without_date_time_format(schema: dict) -> dict:
    """`schema` with every `format: date-time` dropped, nested objects and list items included."""
    out = {k: v for k, v in schema.items() if not (k == "format" and v == "date-time")}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: without_date_time_format(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = without_date_time_format(out["items"])
    return out


def schema_for(config: t.Mapping[str, t.Any], schema: dict) -> dict:
    """The schema a stream declares: date-times as plain text with `date_times_as_text`.

    target-csv (through the SDK's sinks) parses every `format: date-time` value into a Python
    datetime and writes its `str()`, `2025-10-26 17:48:21+00:00`. Declared as text, the value
    reaches the file as Capsule sent it, `2025-10-26T17:48:21Z`. The values never change, and the
    bookmark keeps treating the replication key as a timestamp (`is_timestamp_replication_key`).
    """
    return without_date_time_format(schema) if config.get("date_times_as_text") else schema


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
    session: CapsuleSession,
    obj: cat.CapsuleObject,
    read: Window,
    config: t.Mapping[str, t.Any],
    on_page: t.Callable[[], None] | None = None,
) -> t.Iterator[dict]:
    """Every stub of an object's deleted feed since the read window (or since ever).

    Restricted stubs (records no longer visible to this user) carry `restricted: true`.
    `on_page` is called once per page read (the stream's request count).
    """
    assert obj.deleted_path
    params = {"since": read.since_param or EARLIEST_SINCE}
    for body in session.pages(obj.deleted_path, params, config.get("page_size", 100)):
        if on_page is not None:
            on_page()
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
            schema=schema_for(tap.config, schema or {**cat.DELETED_RECORD_SCHEMA}),
        )
        self.primary_keys = ["id"]
        self.replication_key = "deletedAt"
        self._capsule_tap = tap

    @property
    @override
    def is_timestamp_replication_key(self) -> bool:
        """`deletedAt` is a timestamp, even when declared as text (`date_times_as_text`)."""
        return True

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        """Never later than one second before the sync started on Capsule's clock."""
        return signpost(self._capsule_tap.capsule_session.pacer.server_now())

    @override
    def log_sync_costs(self) -> None:
        """Also the end of the whole sync when this is the last stream (as CapsuleStream's)."""
        super().log_sync_costs()
        if list(self._capsule_tap.streams.values())[-1] is self:
            self._capsule_tap.log_sync_end()

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """One record per deleted or restricted record since the bookmark (or start_date)."""
        state = self.get_context_state(context)
        read = window(state.get("replication_key_value"), self.config.get("start_date"))
        session = self._capsule_tap.capsule_session
        stamp = signpost(session.pacer.server_now())
        progress = self.progress
        for stub in deleted_stubs(session, self.obj, read, self.config, progress.request_made):
            deleted_at = capsule_time(stub["deletedAt"]) if stub.get("deletedAt") else stamp
            progress.records += 1
            progress.tombstones += 1
            yield {"id": stub["id"], "deletedAt": deleted_at, "restricted": stub["restricted"]}
        progress.finish()

    @functools.cached_property
    def progress(self) -> StreamProgress:
        """This stream's records and requests in this run, as for the tap's other streams."""
        session = self._capsule_tap.capsule_session
        return StreamProgress(
            self.name, self.obj.deleted_path or "", self._capsule_tap.logger, session.pacer
        )

    @override
    def get_record_counter(
        self, *, endpoint: str | None = None, log_interval: float = 60
    ) -> RunCounter:
        return self.progress.record_counter

    @override
    def get_sync_timer(self) -> RunTimer:
        return self.progress.timer


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
        ids: list[int] = []
        for body in self.capsule_session.pages(parent.path, parent.list_query):
            self.progress.request_made()  # the walk is this stream's cost
            ids.extend(r["id"] for r in body.get(parent.list_key) or ())
        return [{self.obj.parent_key: i} for i in ids]

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self._read(context)
        if not self.partitions or context == self.partitions[-1]:
            self.finish_progress()


class ChildStream(CapsuleStream):
    """A child list read once per parent emitted in this run (links and tracks).

    One request per parent makes these the costliest streams by far, so they are not selected
    by default. The SDK logs two lines per parent for them; those are left out (the stream's own
    progress lines say how far it has got).
    """

    selected_by_default = False
    state_partitioning_keys: t.ClassVar[list[str]] = []  # one small bookmark, not one per parent

    def __init__(self, tap: TapCapsule, schema: dict | None = None) -> None:
        """A stream of the tap whose per-parent SDK log lines are left out."""
        super().__init__(tap=tap, schema=schema)
        # Opt-in by a setting too: a plain pipe (a backup) has no catalog to select them in.
        self.selected_by_default = bool(self.config.get("child_streams"))
        self.logger.addFilter(_drop_per_parent_lines)
        PER_REQUEST_METRICS.leave_out(self.name)


_PER_PARENT_LINES = ("Beginning sync of", "Pagination stopped after")


def _drop_per_parent_lines(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg.startswith(_PER_PARENT_LINES))


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
            base = ChildStream
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
