"""The README's demo (`make demo` runs .ci/demo).

A first full run into CSV files, then an incremental second run that reads only what changed. Run
on a free port with its own output and state.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import re
import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.meltano

ROOT = Path(__file__).resolve().parents[2]


def summary(output: str) -> dict[str, int]:
    """{stream: records this run} from the demo's summary table."""
    rows = re.findall(r"^  (\w+)\s+(\d+)\s+\d*\s+\S+\.csv$", output, flags=re.M)
    return {stream: int(count) for stream, count in rows}


def requests_column(output: str) -> dict[str, int]:
    """{stream: requests} from the demo's summary table (the SDK's METRIC lines, summed)."""
    rows = re.findall(r"^  (\w+)\s+\d+\s+(\d+)\s+\S+\.csv$", output, flags=re.M)
    return {stream: int(count) for stream, count in rows}


def deletions_line(output: str) -> dict[str, int]:
    """{stream: rows} from the demo's line that explains its `<stream>_deleted` files."""
    line = next(ln for ln in output.splitlines() if ln.startswith("Deletions: "))
    return {s: int(n) for n, s in re.findall(r"(\d+) (\w+_deleted)", line)}


DATE_TIMES = {
    "createdAt", "updatedAt", "lastContactedAt", "lastStageChangedAt", "completedAt", "entryAt",
    "lastLoginAt",
}  # fmt: skip
ISO_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def check_csv_files(run_dir: Path) -> None:
    """Every CSV file loads with the csv module, with flat columns and no Python reprs."""
    for path in run_dir.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            for column, cell in row.items():
                assert cell not in {"None", "nan"}, (path.name, column, cell)
                assert "Decimal(" not in cell and not cell.startswith("{'"), (column, cell)
                if cell and cell[0] in "[{":
                    json.loads(cell)  # deeper values and lists are JSON text
                if column in DATE_TIMES and cell:
                    # ISO 8601 as Capsule sends it (`2025-10-26T17:48:21Z`), not str(datetime).
                    assert ISO_DATE_TIME.fullmatch(cell), (path.name, column, cell)
                    assert datetime.datetime.fromisoformat(cell).tzinfo is not None, cell
    with (run_dir / "parties.csv").open(newline="", encoding="utf-8") as fh:
        parties = list(csv.DictReader(fh))
    columns = set(parties[0])
    # Custom fields in columns of their own; nested references flattened one level.
    custom = {c for c in columns if c.startswith("custom_fields__")}
    assert len(custom) >= 3 and "custom_fields" not in columns
    assert {"owner__name", "organisation__name", "team__name"} <= columns
    assert not {"owner", "organisation", "team"} & columns
    people = [p for p in parties if p["type"] == "person" and p["organisation__name"]]
    assert people, "some people belong to an organisation"
    assert any(p["owner__name"] for p in parties)
    numbers = [p["custom_fields__employees"] for p in parties if p.get("custom_fields__employees")]
    assert numbers and all(float(n) >= 0 for n in numbers)
    with (run_dir / "opportunities.csv").open(newline="", encoding="utf-8") as fh:
        opportunity = next(csv.DictReader(fh))
    assert any(c.startswith("custom_fields__") for c in opportunity)
    assert json.loads(opportunity["tags"]) is not None and opportunity["milestone__name"]


def test_demo_runs_twice_and_the_second_run_is_incremental(meltano, tmp_path):
    env = {
        "DEMO_PORT": "0",
        "DEMO_OUTPUT": str(tmp_path / "out"),
        "DEMO_STATE_DB": str(tmp_path / "demo.db"),
        "MELTANO_BIN": meltano.executable,
    }

    def demo() -> str:
        proc = subprocess.run(
            ["bash", str(ROOT / ".ci" / "demo")],
            cwd=ROOT,
            env=meltano.env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "Sandbox stopped" in proc.stdout
        return proc.stdout

    first = demo()
    assert "first run (full extract)" in first
    counts = summary(first)
    # The 200 live parties; deletions (the sandbox seeds some) in a file of their own, since
    # `tombstones: stream` is the default: parties.csv holds no tombstone rows.
    assert counts["parties"] == 200 and counts["opportunities"] > 0 and counts["tasks"] > 0
    runs = sorted((tmp_path / "out" / "csv").iterdir())
    assert len(runs) == 1 and (runs[0] / "parties.csv").exists()
    check_csv_files(runs[0])
    with (runs[0] / "parties_deleted.csv").open(newline="", encoding="utf-8") as fh:
        deleted = list(csv.DictReader(fh))
    assert deleted and set(deleted[0]) >= {"id", "deletedAt", "restricted"}
    with (runs[0] / "parties.csv").open(newline="", encoding="utf-8") as fh:
        live = {row["id"] for row in csv.DictReader(fh)}
    assert not live & {row["id"] for row in deleted}
    # The demo says what those files hold.
    assert deletions_line(first)["parties_deleted"] == counts["parties_deleted"] == len(deleted)
    # The table's requests (the tap's own figures) and the documented formulas agree.
    table = requests_column(first)
    # Two pages, and one look at the deleted feed since the read began (pages a deletion during
    # the read may have shifted); the deleted feed itself is parties_deleted's (one page).
    assert table["parties"] == math.ceil(200 / 100) + 1
    assert table["parties_deleted"] == 1
    assert table["milestones"] == 1 + counts["pipelines"]  # the pipeline list, then each one
    # The same account in a DuckDB file, and one query's result next to the CSV files.
    assert (tmp_path / "out" / "warehouse.duckdb").is_file()
    assert "open_opportunities" in first and "Ada Admin" in first

    # A port that is taken (an earlier sandbox left running): the demo says so and moves on.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env["DEMO_PORT"] = str(busy.getsockname()[1])
        second = demo()
    assert f"Port {env['DEMO_PORT']} is taken" in second
    assert "incremental run" in second
    again = summary(second)
    assert again["parties"] == 3  # the three parties the demo edits between runs
    table = requests_column(second)
    assert table["parties"] == 1  # one page of changes (the deleted feed is parties_deleted's)
    # The streams Capsule filters with `since` send only what changed; the lists read whole on
    # every run (entries, settings, lookups) send every record again, for their ACTIVATE_VERSION.
    incremental = ("parties", "opportunities", "cases", "tasks")
    assert sum(again[s] for s in incremental) < sum(counts[s] for s in incremental) / 10
    assert again["entries"] == counts["entries"]
    assert second.split("open_opportunities", 1)[1] == first.split("open_opportunities", 1)[1]
