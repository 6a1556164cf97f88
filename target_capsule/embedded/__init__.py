"""`target-capsule-duckdb`: tap-capsule's streams in one local DuckDB file, deletions included.

The embedded copy keeps the guarantees of the PostgreSQL copy (upsert on the stream's key,
tombstones, `ACTIVATE_VERSION`), written through the `duckdb` library itself: no maintained Singer
loader for DuckDB or SQLite applies `ACTIVATE_VERSION`, so tasks and notes deleted in Capsule would
stay in their files until they were rebuilt. `tables` holds the SQL, `target` the Singer side.
"""
