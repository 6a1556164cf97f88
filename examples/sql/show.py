"""Print the result of a SQL file run on the embedded DuckDB copy: `show.py FILE.duckdb QUERY.sql`.

Opens the file read-only, so it never holds the write lock a running load needs.
"""

import sys
from pathlib import Path

import duckdb


def main() -> None:
    """Run the query and print its rows as a table."""
    database, query = sys.argv[1], sys.argv[2]
    if not Path(database).is_file():
        sys.exit(f"{database} does not exist: load it first (`make sql`)")
    with duckdb.connect(database, read_only=True) as connection:
        connection.sql(Path(query).read_text(encoding="utf-8")).show(max_width=120)


if __name__ == "__main__":
    main()
