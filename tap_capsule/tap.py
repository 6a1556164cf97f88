"""tap-capsule: every Capsule CRM object as a Singer stream."""

from __future__ import annotations

import functools
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from typing_extensions import override

from tap_capsule import catalogue as cat
from tap_capsule import secrets
from tap_capsule.api_client import (
    CapsuleConfigError,
    CapsuleSession,
    check_connection_settings,
    connection_settings,
)
from tap_capsule.bookmarks import (
    bookmark_problem,
    capsule_now,
    start_date_problem,
    state_bookmarks,
)
from tap_capsule.custom_fields import CustomFieldMap
from tap_capsule.progress import run_table
from tap_capsule.streams import (
    DEFAULT_LOOKBACK_DAYS,
    ENTRIES_MODES,
    TASKS_MODES,
    TOMBSTONE_MODES,
    CapsuleStream,
    DeletedRecordsStream,
    deleted_stream_classes,
    new_table_version,
    stream_classes,
    tombstone_mode,
)
from tap_capsule.writer import CapsuleMessageWriter

# The key of the final STATE's end-of-sync mark (`{"complete": true}`); never read back as state.
SYNC_MARK = "tap_capsule_sync"


def refuse_if(problem: str | None) -> None:
    """End the run on a user's mistake: the CLI prints the one line that says what to fix."""
    if problem:
        raise CapsuleConfigError(problem)


class TapCapsule(Tap):
    """Reads Capsule CRM through its REST API v2."""

    name = "tap-capsule"
    # msgspec's C encoder, one SCHEMA per stream, records written in blocks (see writer.py).
    message_writer_class = CapsuleMessageWriter

    config_jsonschema = th.PropertiesList(
        *connection_settings().wrapped.values(),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="Earliest `updatedAt` to read (ISO 8601) on a first sync of incremental "
            "streams. Later runs resume from the bookmarks in the state.",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=100),
            default=100,
            title="Page size",
            description="Records per request (`perPage`, 1-100). 100 spends the fewest of "
            "Capsule's 4,000 hourly requests.",
        ),
        th.Property(
            "tombstones",
            th.StringType(allowed_values=list(TOMBSTONE_MODES)),
            default="stream",
            title="Tombstones",
            description="How deleted (or restricted) parties, opportunities and cases arrive: "
            "`stream` (the default) as separate `<stream>_deleted` streams of `{id, deletedAt, "
            "restricted}` to join on `id`, so the object's row keeps its last values; `inline` "
            "as `{id, _sdc_deleted_at}` records in the object's own stream, which a SQL loader "
            "that upserts (target-postgres) writes over the row, turning every other column into "
            "NULL, since Capsule's deleted feeds give only an id and a time; `off` for none.",
        ),
        th.Property(
            "emit_activate_version_messages",
            th.BooleanType,
            default=True,
            title="Emit ACTIVATE_VERSION messages",
            description="After each stream this run read whole, send `ACTIVATE_VERSION`: the "
            "Singer message that says these records are the whole table, so a loader that "
            "supports it (target-postgres) deletes or marks deleted (`hard_delete`) the rows that "
            "are gone from Capsule. Whole reads: the settings, definition and lookup streams and "
            "`entries` on every run (all their records are emitted, at no extra request), tasks "
            "with `tasks_mode: full`, and every stream on a first sync or full refresh. Records "
            "of those reads carry the table version.",
        ),
        th.Property(
            "tasks_mode",
            th.StringType(allowed_values=list(TASKS_MODES)),
            default="incremental",
            title="Tasks mode",
            description="Capsule has no deleted feed for tasks. `incremental`: read the tasks "
            "changed since the bookmark; deleted tasks leave the copy at the next full refresh "
            "(the reconcile). `full`: read every task on every run (one request per 100 tasks) "
            "and send ACTIVATE_VERSION, so deleted tasks leave the copy on every run.",
        ),
        th.Property(
            "child_streams",
            th.BooleanType,
            default=False,
            title="Child streams",
            description="Select the link and track streams (`opportunity_parties`, "
            "`case_parties`, `opportunity_tracks`, `case_tracks`) by default, as a backup needs. "
            "Each costs one request per opportunity or case. A catalog or Meltano's `select` "
            "still decides when given.",
        ),
        th.Property(
            "entries_mode",
            th.StringType(allowed_values=list(ENTRIES_MODES)),
            default="full",
            title="Entries mode",
            description="How an incremental run reads `/entries` (notes, emails, completed "
            "tasks), which has no `since`: `full` reads every page, exact but ⌈entries/100⌉ "
            "requests each run; `recent` reads newest first and stops one page past the "
            "bookmark minus `entries_lookback_days`, so a run costs what was added. `recent` "
            "misses a note back-dated past the lookback, an edit to an older note and any "
            "deletion: run `full` now and then (a reconcile) to pick those up.",
        ),
        th.Property(
            "entries_lookback_days",
            th.IntegerType(minimum=0),
            default=DEFAULT_LOOKBACK_DAYS,
            title="Entries lookback (days)",
            description="With `entries_mode: recent`: how many days before the bookmark the "
            "read of `/entries` (by `entryAt`) reaches back, to catch back-dated notes.",
        ),
        th.Property(
            "date_times_as_text",
            th.BooleanType,
            default=False,
            title="Date-times as text",
            description="Declare date-time fields as plain strings in the SCHEMA messages. "
            "Values are unchanged (ISO 8601, as Capsule sends them); loaders such as target-csv "
            "then write them as they are instead of `str()` of a parsed datetime "
            "(`2025-10-26 17:48:21+00:00`). Bookmarks are unaffected. For flat-file loaders; SQL "
            "loaders want the default.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:  # noqa: ANN401 - the SDK signature
        """Mask the secret settings in every log line before the SDK logs anything."""
        secrets.install_early(kwargs.get("config"), "TAP_CAPSULE")
        super().__init__(*args, **kwargs)
        secrets.install(self.config)
        try:  # settings that cannot work end the run before any request
            check_connection_settings(self.config)
        except CapsuleConfigError as exc:
            self.logger.error("%s", exc)
            raise SystemExit(1) from None

    @override
    def setup_mapper(self) -> None:
        """Refuse an unusable `start_date` before discovery and before any output."""
        refuse_if(start_date_problem(self.config.get("start_date")))
        super().setup_mapper()

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """Refuse a state whose bookmarks would stall a sync, before any output.

        A bookmark that is not a date, or later than Capsule's clock, would make each read send
        a `since` Capsule can't use or that matches nothing until that day: the sync would end
        "successfully" with nothing, and write the bookmark back. It is refused with the fix.
        """
        refuse_if(start_date_problem(self.config.get("start_date")))
        state = {k: v for k, v in state.items() if k != SYNC_MARK}  # last run's end is no news
        if state.get("bookmarks"):
            # Discovery's own requests (the custom-field definitions, needed for the schemas
            # anyway) measure Capsule's clock, which decides what "later" means.
            _ = self.streams
            now = capsule_now(self.capsule_session.pacer.server_now())
            for stream, value in state_bookmarks(state):
                refuse_if(bookmark_problem(stream, value, now))
        super().load_state(state)

    @functools.cached_property
    def capsule_session(self) -> CapsuleSession:
        """The one HTTP session of the run: every stream's requests share its pacing and budget."""
        return CapsuleSession(self.config, user_agent=f"tap-capsule/{self.plugin_version}")

    # Whether list reads still ask for `embed=meta` (undocumented): a 400 to it turns it off for
    # the rest of the run, so every stream reads on without the expected totals.
    embed_meta: bool = True

    @functools.cached_property
    def table_version(self) -> int:
        """This run's Singer table version, the same for every stream the run reads whole."""
        return new_table_version()

    @functools.cache  # noqa: B019 - one tap instance per run, so the cache can't leak instances
    def field_definitions(self, stream: str) -> tuple[dict, ...]:
        """The custom field definitions of one object, read once per run (discovery and sync)."""
        definitions = cat.get(stream)
        return tuple(self.capsule_session.paginate(definitions.path, definitions.list_key))

    def custom_field_map(self, obj: cat.CapsuleObject) -> CustomFieldMap:
        """Typed `custom_fields` columns of an object with custom fields."""
        assert obj.custom_fields
        return CustomFieldMap(self.field_definitions(obj.custom_fields))

    @override
    def discover_streams(self) -> list[CapsuleStream | DeletedRecordsStream]:
        """One stream per catalogue object (and `<stream>_deleted` ones with tombstones: stream)."""
        streams: list[CapsuleStream | DeletedRecordsStream] = []
        for cls in stream_classes():
            schema = cls.obj.json_schema()
            if cls.obj.custom_fields:
                schema["properties"]["custom_fields"] = self.custom_field_map(cls.obj).schema()
            if self.config.get("flattening_enabled"):
                schema = flattenable(schema)
            streams.append(cls(tap=self, schema=schema))
        if tombstone_mode(self.config) == "stream":
            streams.extend(cls(tap=self) for cls in deleted_stream_classes())
        return streams

    def log_sync_end(self) -> None:
        """The run's table and totals, called by the last stream's `log_sync_costs`.

        (`sync_all` is final in the SDK, so the last stream to finish calls it.)
        """
        figures = []
        for stream in self.streams.values():
            if "progress" in vars(stream):  # streams that ran
                progress = t.cast("CapsuleStream", stream).progress
                progress.finish()
                figures.append(progress)
        pacer = self.capsule_session.pacer
        self.logger.info(
            "Sync finished: %d requests to Capsule, %.0f s spent waiting on the rate limit; %s\n%s",
            pacer.requests_sent,
            pacer.waited_seconds,
            pacer.budget_line(),
            run_table(figures),
        )
        # The last message: a STATE that says every selected stream was read to its end, so a
        # backup can tell a finished read from a killed one (whose last message may be a STATE).
        final: dict[str, t.Any] = {**dict(self.state), SYNC_MARK: {"complete": True}}
        self.state_writer.write_state(t.cast("t.Any", final))


def flattenable(schema: dict) -> dict:
    """`schema` with its open objects of no declared field written without `properties: {}`.

    The two say the same in JSON Schema, but the SDK's flattening turns an object with
    `properties: {}` into no column at all (its values would be lost), and one without
    `properties` into a column of JSON text.
    """
    props = {
        name: {k: v for k, v in prop.items() if k != "properties"}
        if prop.get("properties") == {} and "object" in (prop.get("type") or ())
        else prop
        for name, prop in schema.get("properties", {}).items()
    }
    return {**schema, "properties": props}


if __name__ == "__main__":
    TapCapsule.cli()
