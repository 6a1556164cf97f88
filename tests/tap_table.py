"""The tap's closing table, read back: `| stream | records | of which tombstones | requests |`.

Shared by the tap tests (the CLI's stderr) and the pipeline tests (a meltano run's log, where each
line of the tap's stderr carries meltano's own prefix and suffix).
"""

from __future__ import annotations

import re

TABLE_ROW = re.compile(r"\| (\w+) +\| +(\d+) \| +(\d+) \| +(\d+) \|")


def table_rows(text: str) -> dict[str, tuple[int, int, int]]:
    """{stream: (records, tombstones, requests)}, the `total` row included; the last run wins."""
    return {m[0]: (int(m[1]), int(m[2]), int(m[3])) for m in TABLE_ROW.findall(text)}
