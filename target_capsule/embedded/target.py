"""`target-capsule-duckdb`: a Singer target on the SDK that keeps a DuckDB file equal to Capsule.

The SDK does the Singer work (message parsing, record validation against the stream's schema,
flattening, batching, STATE after each drain); `tables.Warehouse` does the SQL. Nested objects are
flattened one level by default (`owner__name`, `custom_fields__seats`), deeper values and lists
kept as JSON text, as the PostgreSQL and CSV recipes show them.

What a record does to its table:
- a record upserts its row on the stream's key (`id`);
- a record with `_sdc_deleted_at` set (tap-capsule's `tombstones: inline`) marks its row deleted
  and keeps the row's last values;
- a record of `<stream>_deleted` (`tombstones: stream`) is a row of that table and marks the row
  of `<stream>` with the same id deleted, so `WHERE _sdc_deleted_at IS NULL` means "still in
  Capsule" whichever tombstone mode the tap runs in;
- `ACTIVATE_VERSION` (after a read of a whole stream) marks deleted every row that read did not
  carry: tasks and notes deleted in Capsule leave the copy on the next run that reads them whole.

A STATE is emitted only after the records before it are committed, so a killed run is re-read
from the previous state and its upserts repeat harmlessly.
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink
from singer_sdk.target_base import Target
from typing_extensions import override

from target_capsule.embedded.tables import (
    DELETED_AT,
    DELETED_STREAM_SUFFIX,
    Warehouse,
    column_type,
)

DEFAULT_SCHEMA = "capsule"
FLATTENING_DEPTH = 1


def split_batch(rows: list[dict], keys: list[str]) -> tuple[list[dict], list[dict]]:
    """A batch as (full rows, tombstones), one per key, the last of each key winning.

    A tombstone is a record with `_sdc_deleted_at` set (`tombstones: inline`); one that follows
    its key's full record in the batch becomes that record, marked deleted. Without a key every
    record is a row of its own.
    """
    if not keys:
        return rows, []
    latest: dict[tuple, tuple[dict, bool]] = {}
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        gone = row.get(DELETED_AT) is not None
        earlier = latest.get(key)
        if gone and earlier is not None and not earlier[1]:
            row, gone = {**earlier[0], DELETED_AT: row[DELETED_AT]}, False
        latest[key] = (row, gone)
    return (
        [row for row, gone in latest.values() if not gone],
        [row for row, gone in latest.values() if gone],
    )


class DuckDBSink(BatchSink):
    """One stream's table: its records in batches, its deletions, its ACTIVATE_VERSION."""

    def __init__(
        self,
        target: TargetCapsuleDuckDB,
        stream_name: str,
        schema: dict,
        key_properties: t.Sequence[str] | None,
    ) -> None:
        """Bring the table to this schema before any record (a new schema makes a new sink)."""
        super().__init__(target, stream_name, schema, key_properties)
        self.warehouse = target.warehouse
        self.table_name = stream_name.lower()
        self.keys = [k.lower() for k in key_properties or []]
        self._rows: list[dict] = []

    @property
    @override
    def include_sdc_metadata_properties(self) -> bool:
        """Always: `_sdc_table_version` is how ACTIVATE_VERSION tells old rows from new."""
        return True

    @override
    def setup(self) -> None:
        wanted = {
            name.lower(): column_type(prop)
            for name, prop in (self.schema.get("properties") or {}).items()
        }
        self.warehouse.prepare(self.table_name, wanted)

    @override
    def process_record(self, record: dict, context: dict) -> None:
        self._rows.append({k.lower(): v for k, v in record.items()})

    @override
    def process_batch(self, context: dict) -> None:
        self.flush()

    def flush(self) -> None:
        """Write the records held so far: upserts and tombstones, the last of each key winning.

        A tombstone after its record in the same batch marks that record (its values kept).
        """
        rows, self._rows = self._rows, []
        if not rows:
            return
        live, tombstones = split_batch(rows, self.keys)
        if len(live) + len(tombstones) < len(rows):
            self.tally_duplicate_merged(len(rows) - len(live) - len(tombstones))
        self.warehouse.upsert(self.table_name, self.keys, live)
        self.warehouse.mark_deleted(self.table_name, self.keys, tombstones)
        if self.table_name.endswith(DELETED_STREAM_SUFFIX) and live:
            self.warehouse.mark_from_deleted_stream(self.table_name)

    @override
    def activate_version(self, new_version: int) -> None:
        """The records of a whole read are in: every row it did not carry is marked deleted."""
        self.flush()
        retired = self.warehouse.retire_versions(self.table_name, new_version)
        if retired:
            self.logger.info(
                "%s: %d row(s) not in the whole read marked deleted", self.table_name, retired
            )


class TargetCapsuleDuckDB(Target):
    """Singer target: tap-capsule's streams into one local DuckDB file, deletions included."""

    name = "target-capsule-duckdb"
    default_sink_class = DuckDBSink
    config_jsonschema = th.PropertiesList(
        th.Property(
            "path",
            th.StringType,
            required=True,
            title="Database file",
            description="The DuckDB file (created, with its folder, on the first run; 0600).",
        ),
        th.Property(
            "default_target_schema",
            th.StringType,
            default=DEFAULT_SCHEMA,
            title="Schema",
            description="The schema of the tables (one table per stream).",
        ),
        # The SDK's settings that mean one thing here, declared so (--about says so too).
        th.Property(
            "load_method",
            th.StringType(allowed_values=["upsert"]),
            default="upsert",
            title="Load method",
            description="Always `upsert`: a record replaces the row with its key.",
        ),
        th.Property(
            "add_record_metadata",
            th.BooleanType(allowed_values=[True]),
            default=True,
            title="Metadata columns",
            description="Always on: `_sdc_table_version` and `_sdc_deleted_at` keep deletions.",
        ),
        # The SDK's own flattening, on by default here: the documented queries name these columns.
        th.Property(
            "flattening_enabled",
            th.BooleanType,
            default=True,
            title="Flatten nested objects",
            description="One column per field of a nested object (`owner__name`).",
        ),
        th.Property(
            "flattening_max_depth",
            th.IntegerType,
            default=FLATTENING_DEPTH,
            title="Flattening depth",
            description="How many levels to flatten; deeper values are kept as JSON text.",
        ),
    ).to_dict()

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._warehouse: Warehouse | None = None
        # One DuckDB connection, one writer: sinks drain one after the other, never in threads.
        self.max_parallelism = 1

    @property
    def warehouse(self) -> Warehouse:
        """The open file (opened with the first stream, so `--about` never creates one)."""
        if self._warehouse is None:
            schema = str(self.config.get("default_target_schema") or DEFAULT_SCHEMA)
            self._warehouse = Warehouse(self.config["path"], schema)
        return self._warehouse

    @override
    def process_endofpipe(self) -> None:
        """Drain every sink, then checkpoint and close the file."""
        super().process_endofpipe()
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None
