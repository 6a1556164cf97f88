"""Singer streams generated from the catalogue.

One `CapsuleStream` subclass per catalogue entry. The catalogue says what differs between objects
(path, wrappers, embeds, `since`, deleted feed, parent); this module says how any of them is read.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import time
import typing as t
from urllib.parse import parse_qsl, urlencode, urlparse

from singer_sdk import RESTStream, Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.pagination import HeaderLinkPaginator
from singer_sdk.singerlib import ActivateVersionMessage, RecordMessage
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from typing_extensions import override

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    CapsuleAPIError,
    CapsuleNotFound,
    CapsuleSession,
    raise_for_capsule_status,
    response_json,
)
from tap_capsule.bookmarks import Window, capsule_time, parse_iso, signpost, window
from tap_capsule.checkpoints import KEY as CHECKPOINT
from tap_capsule.checkpoints import ParentsDone, ReadPosition
from tap_capsule.progress import PER_REQUEST_METRICS, RunCounter, RunTimer, StreamProgress
from tap_capsule.shifts import ShiftWatch

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
        # Mid-stream checkpoints (see checkpoints.py): where this run's read stands.
        self.position: ReadPosition | None = None
        self._signpost: str | None = None
        self._first_page = 1
        self._watch: ShiftWatch | None = None
        self.oldest_entry_at: str | None = None
        self.schema_sent = False  # a read began in this run, so the SDK sent the SCHEMA

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
        """No SDK backoff: CapsuleSession retries; a refused `embed=meta` is asked again without.

        The SDK's backoff wrapper, built anew for every partition (every parent of a child
        stream), would try once and only cost CPU. `embed=meta` is not in Capsule's public docs
        (only Capsule's own client sends it), and the docs don't say whether an unknown embed
        value is ignored or refused: a 400 to a read that asked for it costs one request, and
        the run reads on without it.
        """

        def send(prepared: requests.PreparedRequest, context: Context | None) -> requests.Response:
            try:
                return func(prepared, context)
            except CapsuleAPIError as exc:
                if exc.status != 400 or not self._capsule_tap.embed_meta:
                    raise
                url = urlparse(prepared.url or "")
                query = parse_qsl(url.query, keep_blank_values=True)
                if not any(k == "embed" and "meta" in v.split(",") for k, v in query):
                    raise
            self._capsule_tap.embed_meta = False
            self.progress.requests.increment()  # the refused request was spent too
            self.logger.warning(
                "Capsule refused embed=meta (HTTP 400); reading on without it, so progress lines "
                "give no expected totals"
            )
            for key, params in self._first_query.items():
                self._first_query[key] = dict(without_meta(params.items()))
            prepared.prepare_url(url._replace(query=urlencode(without_meta(query))).geturl(), None)
            return func(prepared, context)

        return send

    @override
    def validate_response(self, response: requests.Response) -> None:
        raise_for_capsule_status(response)

    @override
    def get_new_paginator(self) -> HeaderLinkPaginator:
        stop_before = self.recent_entries_threshold()
        if stop_before is None:
            return HeaderLinkPaginator()
        return RecentEntriesPaginator(self, stop_before)

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
            if self.resumable and self._capsule_tap.embed_meta:
                # `meta.totalCount` (undocumented, used by Capsule's own client) gives the
                # progress lines their expected total; an answer without it just has none.
                params["embed"] = ",".join(filter(None, (params.get("embed"), "meta")))
            self._first_query[key] = params
        if next_page_token is None:
            first = dict(self._first_query[key])
            if self._first_page > 1:  # a resumed read continues at its checkpoint's page
                first["page"] = self._first_page
            return first
        return {**self._first_query[key], **dict(parse_qsl(next_page_token.query))}

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        body = response_json(response) or {}
        rows = body.get(self.obj.list_key) or ()
        if self.position is not None:
            # Every record of the pages before this one went out: a resume starts here.
            page = page_of(response)
            self.checkpoint("list", page)
            if page == self._first_page and self.progress.expected is None:
                self.expect_requests(body.get("meta"), page)
        if self._watch is not None:
            self._watch.page(page_of(response), self.capsule_session.pacer.server_now())
        if self.recent_entries_threshold() is not None:
            stamps = [capsule_time(r["entryAt"]) for r in rows if r.get("entryAt")]
            self.oldest_entry_at = min(stamps) if stamps else None
        return rows

    # --- Mid-stream checkpoints ---------------------------------------------------------------

    @property
    def resumable(self) -> bool:
        """Whether this stream checkpoints its read: incremental streams read from a list.

        Child streams record which parents are done instead (see `ChildStream`).
        """
        return bool(self.replication_key) and not self.obj.parent

    @functools.cached_property
    def resumed(self) -> ReadPosition | None:
        """The checkpoint of a killed run's read, when this run's read is the same one."""
        if not self.resumable:
            return None
        state = self.get_context_state(None)
        found = ReadPosition.from_state(state)
        if found is None:
            state.pop(CHECKPOINT, None)
            return None
        if not found.same_read(self.read_window(None), self.page_size):
            self.logger.info(
                "%s: the state's checkpoint belongs to another read (bookmark, start_date or "
                "page_size changed); reading from the start",
                self.name,
            )
            state.pop(CHECKPOINT, None)
            return None
        self.logger.info(
            "%s: resuming a stopped read at page %d of its %s (one page is read again)",
            self.name,
            found.page,
            "list" if found.phase == "list" else "deleted feed",
        )
        return found

    @property
    def page_size(self) -> int:
        """Records per request (the `page_size` setting)."""
        return int(self.config.get("page_size", 100))

    def checkpoint(self, phase: str, page: int) -> None:
        """Save where the read stands in the STATE and send it (before the page's records)."""
        position = self.position
        assert position is not None
        if (phase, page) == (position.phase, position.page) and page == 1:
            return  # a read that is still on its first page has nothing to save
        position.phase, position.page = phase, page
        self.save_position()
        self.emit_state()

    def save_position(self) -> None:
        """Write the read's position into the state (the caller sends the STATE)."""
        assert self.position is not None
        self.get_context_state(None)[CHECKPOINT] = self.position.to_state()

    def emit_state(self) -> None:
        """Send the tap's STATE now (through the SDK's writer, which drops an unchanged one)."""
        tap = self._capsule_tap
        tap.state_writer.write_state(tap.state)

    def begin_read(self, bounds: Window) -> ReadPosition:
        """This run's position: the killed run's checkpoint, or the start of a new read."""
        resumed = self.resumed
        if resumed is None:
            for child in self.child_streams:
                if isinstance(child, ChildStream):
                    child.forget_parents_done()
            position = ReadPosition.begin(bounds, self.page_size, self._signpost)
            position.version = self.table_version
            return position
        if resumed.seen and self.replication_key:
            # The bookmark this read sets covers what the killed runs sent too.
            self.state_manager.increment_state(
                {self.replication_key: resumed.seen},
                context=None,
                replication_key=self.replication_key,
            )
        return dataclasses.replace(resumed)

    def end_read(self) -> None:
        """The read is complete: no checkpoint is left in the state, nor in its children's."""
        self.position = None
        self.get_context_state(None).pop(CHECKPOINT, None)
        for child in self.child_streams:
            if isinstance(child, ChildStream):
                child.forget_parents_done()

    def expect_requests(self, meta: object, first_page: int) -> None:
        """Tell the progress lines how many requests this read should take in all."""
        total = meta.get("totalCount") if isinstance(meta, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            return
        pages = max(1, -(-total // self.page_size))
        feed = 1 if self.obj.deleted_path else 0  # the deleted feed: a page, usually
        if self.recent_entries_threshold() is None:
            left = max(0, pages - first_page)
            self.progress.expect(self.progress.requests.total + left + feed)

    # --- entries_mode: recent -----------------------------------------------------------------

    @functools.cache  # noqa: B019 - one stream instance per run
    def recent_entries_threshold(self) -> str | None:
        """How far back `entries_mode: recent` reads: the bookmark minus the lookback.

        The read goes on while pages reach back to this `entryAt`. None: read every page (the
        `full` mode, or a first sync).
        """
        if self.obj.stream != "entries" or self.config.get("entries_mode", "full") != "recent":
            return None
        start = parse_iso(self.read_window(None).start)
        if start is None:
            return None  # a first sync reads every entry
        days = int(self.config.get("entries_lookback_days", DEFAULT_LOOKBACK_DAYS))
        return capsule_time(start.subtract(days=days))

    # --- Incremental reads ------------------------------------------------------------------

    def read_window(self, context: Context | None) -> Window:
        """Where this read starts: the partition's bookmark, else `start_date`.

        A stream that sends its whole table (`sends_whole_table`) reads from `start_date` whatever
        the bookmark says.
        """
        if self.sends_whole_table:
            return window(None, self.config.get("start_date"))
        state = self.get_context_state(context)
        return window(state.get("replication_key_value"), self.config.get("start_date"))

    # --- Whole-table reads and ACTIVATE_VERSION -----------------------------------------------

    @functools.cached_property
    def sends_whole_table(self) -> bool:
        """This run emits every record of an incremental stream, whatever its bookmark.

        With ACTIVATE_VERSION on, a stream that is read in full anyway (no `since` on its list:
        entries and the settings lists) emits all of it, so that its ACTIVATE_VERSION can say
        which rows are gone, at no extra request. So do tasks with `tasks_mode: full`.
        """
        if not self.replication_key or not activate_versions(self.config):
            return False
        if self.obj.stream == "tasks":
            return tasks_mode(self.config) == "full"
        if self.obj.stream == "entries" and self.config.get("entries_mode", "full") == "recent":
            return False  # it reads only the newest pages
        return not self.obj.since and not isinstance(self, ChildStream)

    @functools.cached_property
    def reads_whole_table(self) -> bool:
        """This run emits every record of the stream from `start_date` (a full-table read).

        True for FULL_TABLE streams, for `sends_whole_table`, and for an incremental stream
        without a bookmark (a first sync or a full refresh). A link or track stream reads the
        children of every parent emitted, so it is whole when its parent is.
        """
        if isinstance(self, ChildStream):
            parent = self._capsule_tap.streams[self.obj.parent or ""]
            return t.cast("CapsuleStream", parent).reads_whole_table
        if not self.replication_key or self.replication_method == REPLICATION_FULL_TABLE:
            return True
        return self.sends_whole_table or not self.read_window(None).exclusive

    @functools.cached_property
    def table_version(self) -> int | None:
        """The Singer table version of this run's records when the read is whole, else None.

        A resumed read keeps the version its first run began with: the rows the killed runs
        sent carry it, and a new one would make the loader drop them at the ACTIVATE_VERSION.
        """
        if not (activate_versions(self.config) and self.reads_whole_table):
            return None
        reader = self.parent_reader if isinstance(self, ChildStream) else self
        resumed = reader.resumed
        if resumed is not None and resumed.version is not None:
            return resumed.version
        return self._capsule_tap.table_version

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """Never the SDK's: it sends ACTIVATE_VERSION before a FULL_TABLE stream's records.

        Sent first, the message makes target-postgres delete (or mark deleted) every row before
        the new ones arrive, so a run that fails half-way leaves the table half empty; a child
        stream would also send one per parent. The tap sends it once, after the last record of a
        whole-table read (`end_whole_table`), under the `emit_activate_version_messages` setting.
        """
        return False

    def start_whole_table(self) -> None:
        """Stamp this run's records with the table version (None: records carry no version)."""
        self._stream_version = self.table_version

    def end_whole_table(self) -> None:
        """ACTIVATE_VERSION for this stream and its link and track streams, after their records."""
        if self.selected:
            activate_version(self._capsule_tap, self, self.table_version)
        for child in self.child_streams:
            if isinstance(child, ChildStream) and child.selected:
                if child.table_version is not None and not child.schema_sent:
                    # No parent this run, so no SCHEMA yet: the target needs one for the stream.
                    child._write_schema_message()
                activate_version(self._capsule_tap, child, child.table_version)

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> str | None:
        """One second before the read started on Capsule's clock (a resumed read: its first)."""
        if not self.replication_key:
            return None
        resumed = self.resumed if context is None else None
        value = (
            resumed.signpost
            if resumed and resumed.signpost
            else signpost(self.capsule_session.pacer.server_now())
        )
        if context is None:
            self._signpost = value
        return value

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
        self.start_whole_table()
        yield from self._read(context)
        if context is None:
            self.end_whole_table()
            self.finish_progress()

    def _read(self, context: Context | None) -> t.Iterator[dict]:
        self.schema_sent = True
        bounds = self.read_window(context) if self.replication_key else Window(None, False)
        inline_tombstones = bool(self.obj.deleted_path) and tombstone_mode(self.config) == "inline"
        position = self.begin_read(bounds) if self.resumable and context is None else None
        self.position = position
        watch = None
        if position is not None and self.obj.deleted_path:
            # A resumed read's earlier pages were read by another run: see shifts.py.
            run_started = self.capsule_session.pacer.server_now() if self.resumed else None
            watch = ShiftWatch(run_started, position.page)
        if position is None or position.phase == "list":
            try:
                yield from self._list(context, bounds, position.page if position else 1, watch)
            except CapsuleNotFound:
                if not self.obj.parent:
                    raise
                self.logger.warning("%s: the parent %s is gone (404); skipped", self.name, context)
                return
        deleted: list[dict] | None = [] if watch is not None and inline_tombstones else None
        if inline_tombstones:
            # On a first sync and a full refresh too: a full refresh over existing downstream
            # data must mark what was deleted since that data was loaded.
            first = position.page if position and position.phase == "deleted" else 1
            yield from self.tombstones(bounds, first, deleted)
        if watch is not None:
            yield from self.reread_shifted(context, bounds, watch, deleted)
        if position is not None:
            self.end_read()

    def _list(
        self, context: Context | None, bounds: Window, first_page: int, watch: ShiftWatch | None
    ) -> t.Iterator[dict]:
        """The records of the list from `first_page` on, within `bounds`."""
        self._first_page, self._watch = first_page, watch
        progress, position, key = self.progress, self.position, self.replication_key
        try:
            for record in self.request_records(context):
                # Also where Capsule filters on `since`: a server that ignores the parameter
                # (undocumented for /tasks) must not turn an incremental read into a full one.
                if key and not bounds.admits(record.get(key)):
                    continue
                progress.records += 1
                if position is not None:
                    value = record.get(key) if key else None
                    if value and (position.seen is None or value > position.seen):
                        position.seen = value
                if watch is not None:
                    watch.seen.add(record.get("id"))
                yield record
        finally:
            self._first_page, self._watch = 1, None

    def reread_shifted(
        self, context: Context | None, bounds: Window, watch: ShiftWatch, deleted: list[dict] | None
    ) -> t.Iterator[dict]:
        """Read again the pages that deletions during the read may have shifted (see shifts.py)."""
        position = self.position
        if position is None or len(watch.pages) < 2:
            return
        if deleted is None:  # tombstones not inline: one look at the feed since the read began
            since = Window(position.signpost, exclusive=True)
            deleted = list(
                deleted_stubs(
                    self.capsule_session, self.obj, since, self.config, self.progress.request_made
                )
            )
        verdict = watch.verdict(deleted, position.signpost)
        if not verdict.deleted:
            return
        if verdict.reread_from is None:
            self.logger.warning(
                "%s: %d records were deleted while an earlier run of this read ran, so pages it "
                "read may have shifted and skipped records; the next full refresh (the reconcile) "
                "reads them",
                self.name,
                verdict.deleted,
            )
            return
        self.logger.warning(
            "%s: %d records were deleted while the read ran, so the pages from %d on may have "
            "shifted; reading them again",
            self.name,
            verdict.deleted,
            verdict.reread_from,
        )
        yield from self._list(context, bounds, verdict.reread_from, None)

    def tombstones(
        self, bounds: Window, first_page: int = 1, collect: list[dict] | None = None
    ) -> t.Iterator[dict]:
        """`{id, _sdc_deleted_at}` for deleted and restricted records (both count as gone).

        `collect` gets every stub (the shifted-pages check reads them).
        """
        assert self.obj.deleted_path
        stamp = signpost(self.capsule_session.pacer.server_now())
        pages = iter(range(first_page, 1 << 62))

        def on_page() -> None:
            self.progress.request_made()
            if self.position is not None:
                self.checkpoint("deleted", next(pages))

        if self.position is not None:
            self.checkpoint("deleted", first_page)  # the list is done
        session, config = self.capsule_session, self.config
        stubs = deleted_stubs(session, self.obj, bounds, config, on_page, first_page)
        for stub in stubs:
            if collect is not None:
                collect.append(stub)
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


def page_of(response: requests.Response) -> int:
    """The page number an answer is for (`page` of its request; 1 when not given)."""
    query = dict(parse_qsl(urlparse(response.request.url or "").query))
    try:
        return max(1, int(query.get("page", 1)))
    except ValueError:
        return 1


# entries_mode: recent reads /entries (newest first) back to this many days before the bookmark.
ENTRIES_MODES = ("full", "recent")
DEFAULT_LOOKBACK_DAYS = 7


class RecentEntriesPaginator(HeaderLinkPaginator):
    """Follows `Link: rel="next"` until a page reaches back past the lookback.

    Capsule documents `/entries` as newest first (by `entryAt`) and has no `since`, so a run
    that only wants what changed stops one page past the bookmark minus the lookback.
    """

    def __init__(self, stream: CapsuleStream, stop_before: str) -> None:
        """Stop after the page whose oldest `entryAt` is earlier than `stop_before`."""
        super().__init__()
        self.stream = stream
        self.stop_before = stop_before

    @override
    def has_more(self, response: requests.Response) -> bool:
        oldest = self.stream.oldest_entry_at
        if oldest is not None and oldest < self.stop_before:
            return False
        return super().has_more(response)


# Tombstones (deleted and restricted records), by the `tombstones` setting:
# - inline: `{id, _sdc_deleted_at}` records in the object's own stream;
# - stream: `<stream>_deleted` streams of `{id, deletedAt, restricted}`;
# - off: none.
TOMBSTONE_MODES = ("inline", "stream", "off")
# Capsule needs `since` on /parties/deleted. Without a bookmark or start_date the whole feed is
# wanted: Capsule's own pages are dated from 2008, so nothing was deleted before this.
EARLIEST_SINCE = "2000-01-01T00:00:00Z"


TASKS_MODES = ("incremental", "full")


def activate_versions(config: t.Mapping[str, t.Any]) -> bool:
    """The `emit_activate_version_messages` setting (on by default)."""
    return bool(config.get("emit_activate_version_messages", True))


def tasks_mode(config: t.Mapping[str, t.Any]) -> str:
    """The `tasks_mode` setting: `incremental` (the default) or `full`."""
    return str(config.get("tasks_mode") or "incremental")


def new_table_version() -> int:
    """A Singer table version later than any earlier one: milliseconds, never repeated.

    Loaders drop the rows whose version is lower than the one activated, so two runs in the
    same second (or millisecond, in one process) must still get increasing versions.
    """
    global _last_version  # one counter per process
    _last_version = max(int(time.time() * 1000), _last_version + 1)
    return _last_version


_last_version = 0


def activate_version(tap: TapCapsule, stream: Stream, version: int | None) -> None:
    """Say that `version` is now the whole table: one ACTIVATE_VERSION per output stream.

    Stream maps may rename a stream (`__alias__`) or drop it (`__NULL__`); the message goes to
    each name the records went to, as the SDK's own does.
    """
    if version is None:
        return
    for stream_map in stream.stream_maps:
        if isinstance(stream_map, RemoveRecordTransform):
            continue
        message = ActivateVersionMessage(stream=stream_map.stream_alias, version=version)
        tap.write_message(message)


def tombstone_mode(config: t.Mapping[str, t.Any]) -> str:
    """The `tombstones` setting: `stream` by default.

    An inline tombstone can only be `{id, _sdc_deleted_at}` (Capsule's deleted feeds give an id
    and a time), and a SQL loader's upsert writes every column, so it would turn the row into
    NULLs; a `<stream>_deleted` record leaves the row and its last values alone.
    """
    return str(config.get("tombstones") or "stream")


def deleted_stubs(
    session: CapsuleSession,
    obj: cat.CapsuleObject,
    read: Window,
    config: t.Mapping[str, t.Any],
    on_page: t.Callable[[], None] | None = None,
    first_page: int = 1,
) -> t.Iterator[dict]:
    """Every stub of an object's deleted feed since the read window (or since ever).

    Restricted stubs (records no longer visible to this user) carry `restricted: true`.
    `on_page` is called once per page read (the stream's request count); `first_page` > 1
    continues a read that a killed run began.
    """
    assert obj.deleted_path
    params: dict[str, t.Any] = {"since": read.since_param or EARLIEST_SINCE}
    if first_page > 1:
        params["page"] = first_page
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
            name=cat.deleted_stream(self.obj),
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

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """Never the SDK's (see `CapsuleStream`); `get_records` sends it after a whole feed."""
        return False

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
        # Without a bookmark the whole feed is read: its ACTIVATE_VERSION follows the records.
        version = None
        if activate_versions(self.config) and not read.exclusive:
            version = self._capsule_tap.table_version
        self._stream_version = version
        session = self._capsule_tap.capsule_session
        stamp = signpost(session.pacer.server_now())
        progress = self.progress
        for stub in deleted_stubs(session, self.obj, read, self.config, progress.request_made):
            deleted_at = capsule_time(stub["deletedAt"]) if stub.get("deletedAt") else stamp
            progress.records += 1
            progress.tombstones += 1
            yield {"id": stub["id"], "deletedAt": deleted_at, "restricted": stub["restricted"]}
        if self.selected:
            activate_version(self._capsule_tap, self, version)
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
        self.start_whole_table()
        yield from self._read(context)
        if not self.partitions or context == self.partitions[-1]:
            self.end_whole_table()
            self.finish_progress()


class ChildStream(CapsuleStream):
    """A child list read once per parent emitted in this run (links and tracks).

    One request per parent makes these the costliest streams by far, so they are not selected
    by default. The SDK logs two lines per parent for them; those are left out (the stream's own
    progress lines say how far it has got).

    The parents done are saved in the STATE at most every `page_size` parents or
    `CHECKPOINT_SECONDS`, not after each one (a STATE per parent made a 40,000-parent backup write
    hundreds of MB of STATE), and always before the next parent's first record: a kill sends again
    the children of one parent at most, as before, and asks again for at most a page of parents
    that had no children.
    """

    CHECKPOINT_SECONDS = 5.0

    selected_by_default = False
    state_partitioning_keys: t.ClassVar[list[str]] = []  # one small bookmark, not one per parent

    def __init__(self, tap: TapCapsule, schema: dict | None = None) -> None:
        """A stream of the tap whose per-parent SDK log lines are left out."""
        super().__init__(tap=tap, schema=schema)
        # Opt-in by a setting too: a plain pipe (a backup) has no catalog to select them in.
        self.selected_by_default = bool(self.config.get("child_streams"))
        self.logger.addFilter(_drop_per_parent_lines)
        PER_REQUEST_METRICS.leave_out(self.name)

    @functools.cached_property
    def parent_reader(self) -> CapsuleStream:
        """The parent stream instance of this run (its position says which page it is on)."""
        parent = cat.parent_of(self.obj)
        assert parent is not None
        return t.cast("CapsuleStream", self._capsule_tap.streams[parent.stream])

    @functools.cached_property
    def parents_done(self) -> ParentsDone:
        """The parents of the parent's current page whose children were read (a killed run's)."""
        return ParentsDone.from_state(self.stream_state)

    def forget_parents_done(self) -> None:
        """The parent starts a new read, or ended one: no parent is done any more."""
        self.stream_state.pop(CHECKPOINT, None)
        self.__dict__.pop("parents_done", None)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """The parent's children, unless a killed run read them already; then note it done."""
        position = self.parent_reader.position
        parent_id = (context or {}).get(self.obj.parent_key or "")
        if position is None or not isinstance(parent_id, int):
            yield from super().get_records(context)
            return
        if self.parents_done.skips(position.page, parent_id):
            return
        for record in super().get_records(context):
            self.save_parents_done()  # before this parent's first record: done ones stay done
            yield record
        self.parents_done.finished(position.page, parent_id)
        self.stream_state[CHECKPOINT] = self.parents_done.to_state()
        # The parent's position too, even on its first page: the list of parents done is only
        # used by a run that resumes that same read.
        self.parent_reader.save_position()
        self._unsaved += 1
        if (
            self._unsaved >= self.page_size
            or time.monotonic() - self._saved_at >= self.CHECKPOINT_SECONDS
        ):
            self.save_parents_done()

    _unsaved = 0  # parents done since the last STATE
    _saved_at = 0.0

    def save_parents_done(self) -> None:
        """Send the STATE if parents were done since the last one."""
        if self._unsaved:
            self.emit_state()
            self._unsaved, self._saved_at = 0, time.monotonic()


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


def without_meta(query: t.Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
    """A query's pairs with `meta` out of `embed` (and no `embed` if that empties it)."""
    pairs: list[tuple[str, object]] = []
    for key, value in query:
        if key == "embed":
            value = ",".join(e for e in str(value).split(",") if e and e != "meta")
            if not value:
                continue
        pairs.append((key, value))
    return pairs
