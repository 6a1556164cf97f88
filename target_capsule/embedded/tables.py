"""The DuckDB side of the embedded copy: tables that follow the streams' schemas, and three writes.

- `upsert`: a batch of records replaces the rows with the same key (a row is never doubled);
- `mark_deleted`: a tombstone, or a row of a `<stream>_deleted` stream, sets `_sdc_deleted_at` on
  the row it names, which keeps its last values;
- `retire_versions`: after a read of a whole stream (`ACTIVATE_VERSION`), every row that read did
  not carry is marked deleted the same way (soft delete), so the file equals Capsule after a full
  refresh, even for records Capsule deletes without a tombstone (tasks, notes).

Each write is one transaction. A batch reaches DuckDB as one newline-delimited JSON file read with
the table's own column types (`read_json`), which is about a hundred times faster than one INSERT
per row and never guesses a header or a type. Tables have no PRIMARY KEY constraint: the key is
kept by deleting the batch's keys before inserting them, so a column's type can still be changed.

Schema changes: a new column is added; a column whose type changes becomes DOUBLE (an integer that
turned into a number) or VARCHAR (anything else, values kept as text); a column that left the
schema stays, NULL in newer rows. Column names are the (flattened) field names in lower case.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import tempfile
import typing as t
from pathlib import Path

import duckdb

from tap_capsule.api_client import CapsuleConfigError
from tap_capsule.private_files import make_private, private_folder

# Columns every table has: when and from which read a row came, and when it left Capsule.
DELETED_AT = "_sdc_deleted_at"
VERSION = "_sdc_table_version"
# Types by the names DuckDB's information_schema gives them, so that a table compares equal.
TIMESTAMP = "TIMESTAMP WITH TIME ZONE"
METADATA_COLUMNS = {
    "_sdc_extracted_at": TIMESTAMP,
    "_sdc_received_at": TIMESTAMP,
    "_sdc_batched_at": TIMESTAMP,
    DELETED_AT: TIMESTAMP,
    VERSION: "BIGINT",
}
DELETED_STREAM_SUFFIX = "_deleted"  # `parties_deleted` marks rows of `parties` (tombstones: stream)


def quote(name: str) -> str:
    """A SQL identifier, quoted (field names can be keywords: `at`, `order`)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def column_type(prop: t.Mapping[str, t.Any]) -> str:
    """The DuckDB type of one JSON-schema property (nullable or not)."""
    kinds: set[str] = set()
    formats: set[str] = set()
    for branch in prop.get("anyOf") or prop.get("oneOf") or [prop]:
        kind = branch.get("type", "string")
        kinds.update([kind] if isinstance(kind, str) else kind)
        if branch.get("format"):
            formats.add(branch["format"])
    kinds.discard("null")
    if kinds == {"integer"}:
        return "BIGINT"
    if kinds and kinds <= {"integer", "number"}:
        return "DOUBLE"
    if kinds == {"boolean"}:
        return "BOOLEAN"
    if kinds == {"string"} and formats == {"date-time"}:
        return TIMESTAMP
    if kinds == {"string"} and formats == {"date"}:
        return "DATE"
    return "VARCHAR"  # text, and objects or lists as JSON text


def merged_type(old: str, new: str) -> str:
    """The type a column takes when its schema changes type."""
    if old == new:
        return old
    if {old, new} <= {"BIGINT", "DOUBLE", "INTEGER"}:
        return "DOUBLE"
    return "VARCHAR"


def _json_value(value: object) -> object:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_json_default, sort_keys=True)
    return value


def _json_default(value: object) -> object:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"cannot store a {type(value).__name__} in the embedded copy")


class Warehouse:
    """One DuckDB file, one schema of it, opened for the length of a run."""

    def __init__(self, path: str | Path, schema: str) -> None:
        """Open (or create) the file, private (0600) as every file with personal data here.

        One connection, used by one thread at a time (the target drains its sinks one by one).
        """
        self.path = Path(path).expanduser()
        try:
            private_folder(self.path.parent)
            self.connection = duckdb.connect(str(self.path))
        except (OSError, duckdb.IOException) as exc:
            # Another load, or a client holding the file open, has DuckDB's lock (one writer).
            reason = str(exc).split(". See also")[0].removeprefix("IO Error: ")
            raise CapsuleConfigError(
                f"cannot open the DuckDB file {self.path}: {reason}; "
                "stop the other load or close the client that holds it open"
            ) from None
        make_private(self.path)
        self.schema = schema
        self.connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        self._scratch = tempfile.TemporaryDirectory(prefix="capsule-duckdb-")
        self._batches = 0

    def close(self) -> None:
        """Checkpoint and close the file (its WAL folded in), and drop the batch files."""
        self.connection.execute("CHECKPOINT")
        self.connection.close()
        self._scratch.cleanup()

    def table(self, name: str) -> str:
        """The schema-qualified, quoted name of a table."""
        return f"{quote(self.schema)}.{quote(name)}"

    def columns(self, table: str) -> dict[str, str]:
        """The table's columns and their types ({} when it does not exist)."""
        found = self.connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [self.schema, table],
        ).fetchall()
        return dict(found)

    def prepare(self, table: str, wanted: t.Mapping[str, str]) -> dict[str, str]:
        """Create the table or bring it to `wanted` (plus the metadata columns); its columns."""
        wanted = {**wanted, **METADATA_COLUMNS}
        have = self.columns(table)
        if not have:
            body = ", ".join(f"{quote(c)} {kind}" for c, kind in wanted.items())
            self.connection.execute(f"CREATE TABLE {self.table(table)} ({body})")
            return dict(wanted)
        for name, kind in wanted.items():
            if name not in have:
                self.connection.execute(
                    f"ALTER TABLE {self.table(table)} ADD COLUMN {quote(name)} {kind}"
                )
                have[name] = kind
            elif (merged := merged_type(have[name], kind)) != have[name]:
                self.connection.execute(
                    f"ALTER TABLE {self.table(table)} ALTER {quote(name)} TYPE {merged}"
                )
                have[name] = merged
        return have

    def _staged(self, table: str, columns: t.Mapping[str, str], rows: list[dict]) -> str:
        """A `read_json(...)` of `rows` written to a private scratch file, typed as `columns`."""
        self._batches += 1
        path = Path(self._scratch.name) / f"{self._batches}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                line = {c: _json_value(row.get(c)) for c in columns}
                handle.write(json.dumps(line, default=_json_default) + "\n")
        types = ", ".join(f"{literal(c)}: {literal(kind)}" for c, kind in columns.items())
        return (
            f"read_json({literal(str(path))}, format = 'newline_delimited', columns = {{{types}}})"
        )

    def upsert(self, table: str, keys: list[str], rows: list[dict]) -> None:
        """Replace the rows of the batch's keys with the batch (the last record of a key wins)."""
        if not rows:
            return
        columns = self.columns(table)
        source = self._staged(table, columns, rows)
        target = self.table(table)
        with self._transaction():
            self.connection.execute(f"CREATE OR REPLACE TEMP TABLE batch AS SELECT * FROM {source}")
            if keys:
                match = " AND ".join(f"{target}.{quote(k)} = batch.{quote(k)}" for k in keys)
                self.connection.execute(f"DELETE FROM {target} USING batch WHERE {match}")
            self.connection.execute(f"INSERT INTO {target} BY NAME SELECT * FROM batch")
            deletions = table + DELETED_STREAM_SUFFIX
            if keys == ["id"] and "id" in self.columns(deletions):
                # tombstones: stream, in whichever order the two streams' batches arrive
                self._mark_from(table, deletions, only_batch=True)
            self.connection.execute("DROP TABLE batch")

    def mark_deleted(self, table: str, keys: list[str], tombstones: list[dict]) -> None:
        """Set `_sdc_deleted_at` on the rows the tombstones name; insert those not there yet."""
        if not tombstones or not keys:
            return
        columns = self.columns(table)
        source = self._staged(table, columns, tombstones)
        target = self.table(table)
        match = " AND ".join(f"{target}.{quote(k)} = gone.{quote(k)}" for k in keys)
        with self._transaction():
            self.connection.execute(f"CREATE OR REPLACE TEMP TABLE gone AS SELECT * FROM {source}")
            self.connection.execute(
                f"UPDATE {target} SET {DELETED_AT} = gone.{DELETED_AT}, "
                f"{VERSION} = coalesce(gone.{VERSION}, {target}.{VERSION}) "
                f"FROM gone WHERE {match}"
            )
            self.connection.execute(
                f"INSERT INTO {target} BY NAME SELECT * FROM gone "
                f"WHERE NOT EXISTS (SELECT 1 FROM {target} WHERE {match})"
            )
            self.connection.execute("DROP TABLE gone")

    def mark_from_deleted_stream(self, deletions: str) -> None:
        """Rows of a `<stream>_deleted` table mark the rows of `<stream>` with their id."""
        table = deletions.removesuffix(DELETED_STREAM_SUFFIX)
        if "id" not in self.columns(table) or "id" not in self.columns(deletions):
            return
        with self._transaction():
            self._mark_from(table, deletions, only_batch=False)

    def _mark_from(self, table: str, deletions: str, *, only_batch: bool) -> None:
        target, gone = self.table(table), self.table(deletions)
        at = "deletedat" if "deletedat" in self.columns(deletions) else None
        when = f"coalesce(TRY_CAST(d.{at} AS {TIMESTAMP}), now())" if at else "now()"
        scope = f" AND {target}.id IN (SELECT id FROM batch)" if only_batch else ""
        self.connection.execute(
            f"UPDATE {target} SET {DELETED_AT} = {when} FROM {gone} d "
            f"WHERE {target}.id = d.id AND {target}.{DELETED_AT} IS NULL{scope}"
        )

    def retire_versions(self, table: str, version: int) -> int:
        """Mark deleted every live row older than table version `version`; how many.

        A row loaded by an incremental read carries no version: it is older than any whole read.
        """
        if not self.columns(table):
            return 0
        with self._transaction():
            retired = self.connection.execute(
                f"UPDATE {self.table(table)} SET {DELETED_AT} = now() "
                f"WHERE ({VERSION} IS NULL OR {VERSION} < ?) AND {DELETED_AT} IS NULL",
                [version],
            ).fetchone()
        return int(retired[0]) if retired else 0

    def _transaction(self) -> t.ContextManager[None]:
        return _Transaction(self.connection)


class _Transaction:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("BEGIN TRANSACTION")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")
