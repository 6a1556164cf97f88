"""Regenerates the cost and benchmark tables in docs/*.md by running the benchmark scripts.

Each table sits between two markers (the convention of `generated_blocks.py`) that name the
script and its arguments, run from the repository's root with this Python:

    <!-- BEGIN generated: benchmarks/backup_cost.py --scales 200 1000 -->
    ...
    <!-- END generated -->

The script prints the table as the page carries it. `make docs-tables` runs every one (several
minutes: the throughput and latency figures are measured on this machine);
`make docs-tables TABLES=backup_cost` runs the named scripts only. tests/test_docs_tables.py checks
the pages against the scripts: request counts row for row at a small size, machine-dependent
figures by their rows, columns and units.
"""

from __future__ import annotations

import functools
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generated_blocks  # the module beside this script

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md"))


def is_benchmark(command: str) -> bool:
    """Whether a block's command is a script under benchmarks/ (the settings blocks are not)."""
    return command.startswith("benchmarks/")


def script(command: str) -> str:
    """The script's name without folder and suffix: `backup_cost` for its commands."""
    return Path(shlex.split(command)[0]).stem


@functools.cache
def run(command: str) -> str:
    """The Markdown table that `command` (a script under benchmarks/ and its arguments) prints."""
    proc = subprocess.run(
        [sys.executable, *shlex.split(command)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode:
        msg = f"`{command}` failed:\n{proc.stderr[-3000:]}"
        raise SystemExit(msg)
    table = generated_blocks.table_lines(proc.stdout)
    if not table:
        msg = f"`{command}` printed no table"
        raise SystemExit(msg)
    return table


def tables() -> list[tuple[Path, str, str]]:
    """(page, command, table in the page) of every benchmark block in docs/."""
    return [
        (page, command, table)
        for page in PAGES
        for command, table in generated_blocks.blocks(page.read_text(encoding="utf-8"))
        if is_benchmark(command)
    ]


def main(argv: list[str]) -> int:
    """Rerun the named scripts (all without names) and rewrite their tables in the pages."""
    names = set(argv)
    commands = [command for _, command, _ in tables()]
    unknown = names - {script(command) for command in commands}
    if unknown:
        print(f"no table comes from {', '.join(sorted(unknown))}", file=sys.stderr)
        return 1

    def wanted(command: str) -> bool:
        return is_benchmark(command) and (not names or script(command) in names)

    for command in filter(wanted, commands):
        run(command)  # the slow part first, so a page is read and written in one go below
    for page in PAGES:
        fresh = generated_blocks.render(page.read_text(encoding="utf-8"), run, wanted)
        generated_blocks.update(page, fresh, check=False, remedy="make docs-tables")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
