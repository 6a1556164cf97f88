"""The cost and benchmark tables in docs/*.md are what the scripts under benchmarks/ print.

Each table sits between `BEGIN generated` / `END generated` markers that name the script and its
arguments (`make docs-tables` reruns them). The full runs take minutes, so each script runs here
once, small:

- request counts are deterministic on the seeded sandbox: every row the script prints at a small
  size must be in the page's table, as printed (header included);
- CPU time and latency depend on the machine: the page's table must have the rows, columns and
  units the script prints at a tiny size, with every number masked. No figure is compared. So is
  the large account's table: measured at 100,000 parties for the page (half an hour), at 100 here.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Script -> (how its table is compared, the small command that the test runs).
PLAN = {
    "target_requests": ("rows", "benchmarks/target_requests.py --accounts 30 --imports 5"),
    "backup_cost": (
        "rows",
        "benchmarks/backup_cost.py --scales 200 --estimate 10000 2000 500 30000 5000",
    ),
    "tap_throughput": (
        "shape",
        "benchmarks/tap_throughput.py --markdown --repeat 1 --small 50 --large 100",
    ),
    "sandbox_latency": (
        "shape",
        "benchmarks/sandbox_latency.py --compare --markdown --requests 5 --scale 20",
    ),
    "large_account": ("shape", "benchmarks/large_account.py --parties 100 --kills 3"),
}
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|\bnan\b|\binf\b")


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = load("generate_tables")


def documented(script: str) -> str:
    """The table the docs carry for `script` (exactly one block names it)."""
    found = [
        table for _, command, table in generator.tables() if generator.script(command) == script
    ]
    assert len(found) == 1, f"{len(found)} generated tables come from {script}"
    return found[0]


def rows_disagree(page: str, printed: str) -> list[str]:
    """What the page's table lacks of the printed one: its header, or a row as printed."""
    page_rows, printed_rows = page.splitlines(), printed.splitlines()
    problems = []
    if page_rows[:2] != printed_rows[:2]:
        problems.append(
            f"header: the page has {page_rows[:2]}, the script prints {printed_rows[:2]}"
        )
    problems += [f"missing row: {row}" for row in printed_rows[2:] if row not in page_rows]
    return problems


def shape(table: str) -> list[str]:
    """The table's lines with every number masked: labels, columns and units remain."""
    return [NUMBER.sub("#", line) for line in table.splitlines()]


def test_every_benchmark_table_has_a_plan():
    scripts = [generator.script(command) for _, command, _ in generator.tables()]
    assert sorted(scripts) == sorted(PLAN)
    for _, command, table in generator.tables():
        assert table, f"the block of `{command}` holds no table"
        assert (ROOT / command.split()[0]).is_file()


@pytest.mark.parametrize("script", [s for s, (kind, _) in PLAN.items() if kind == "rows"])
def test_request_counts_in_the_docs_are_what_the_script_prints(script: str):
    printed = generator.run(PLAN[script][1])
    assert len(printed.splitlines()) > 2, printed
    assert rows_disagree(documented(script), printed) == [], (
        f"the table from {script} is stale: make docs-tables TABLES={script}"
    )


@pytest.mark.parametrize("script", [s for s, (kind, _) in PLAN.items() if kind == "shape"])
def test_measured_tables_have_the_rows_columns_and_units_the_script_prints(script: str):
    printed = generator.run(PLAN[script][1])
    assert len(printed.splitlines()) > 2, printed
    assert shape(documented(script)) == shape(printed), (
        f"the table from {script} has other rows or units: make docs-tables TABLES={script}"
    )


def test_the_backup_formula_matches_every_measured_count_in_the_docs():
    """account-tools.md says the formula matched the count: each measured row shows both."""
    rows = [line.split("|")[1:-1] for line in documented("backup_cost").splitlines()[2:]]
    measured = [
        (r[5].strip(), r[6].strip()) for r in rows if r[5].strip().replace(",", "").isdigit()
    ]
    assert measured, "no measured row"
    assert all(requests == formula for requests, formula in measured), measured


def test_a_stale_table_fails_and_make_docs_tables_rewrites_it(tmp_path, monkeypatch):
    small = PLAN["target_requests"][1]
    printed = generator.run(small)  # cached from the test above when it ran
    row = printed.splitlines()[2]
    cells = row.split(" | ")
    cells[4] = str(int(cells[4]) + 1)  # one more read than the script counts
    stale_row = " | ".join(cells)
    stale = documented("target_requests").replace(row, stale_row)
    assert rows_disagree(stale, printed) == [f"missing row: {row}"]
    assert rows_disagree(stale.replace("| reads |", "| GETs |"), printed)[0].startswith("header")

    latency = generator.run(PLAN["sandbox_latency"][1])
    assert shape(latency.replace(" ms", " s")) != shape(latency)  # another unit
    assert shape("\n".join(latency.splitlines()[:-1])) != shape(latency)  # a row fewer

    page = tmp_path / "page.md"
    begin, end = f"<!-- BEGIN generated: {small} -->", "<!-- END generated -->"
    page.write_text(f"Prose.\n\n{begin}\n\n{stale}\n{end}\n\nMore.\n", encoding="utf-8")
    monkeypatch.setattr(generator, "PAGES", [page])
    assert generator.main(["tap_throughput_typo"]) == 1
    assert generator.main(["target_requests"]) == 0
    assert page.read_text(encoding="utf-8") == f"Prose.\n\n{begin}\n\n{printed}\n{end}\n\nMore.\n"


def test_the_generators_share_one_marker_convention():
    settings = load("generate_settings")
    assert settings.BLOCK is generator.generated_blocks.BLOCK
