"""Regenerates the settings tables in docs/settings.md from the commands themselves.

Each table sits between two markers in the page (the convention of `generated_blocks.py`):

    <!-- BEGIN generated: tap-capsule --about --format=markdown -->
    ...
    <!-- END generated -->

and is the "Settings" table of that command's output, as it prints it. The prose around the markers
is written by hand. `make docs-settings` rewrites the tables; `--check` exits 1 when the page and
the commands disagree (the test suite runs the same comparison).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generated_blocks  # the module beside this script

PAGE = Path(__file__).resolve().parent / "settings.md"
BLOCK = generated_blocks.BLOCK


def executable(name: str) -> str:
    """The command next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


@functools.cache
def settings_table(command: str) -> str:
    """The "## Settings" table of `command`'s markdown about text (run once per process)."""
    name, *args = command.split()
    about = subprocess.run(
        [executable(name), *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    section = about.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    table = generated_blocks.table_lines(section)
    if not table:
        msg = f"`{command}` printed no settings table"
        raise SystemExit(msg)
    return table


def render(page: str) -> str:
    """The page with every generated block replaced by its command's current table."""
    return generated_blocks.render(page, settings_table)


def main(argv: list[str]) -> int:
    """Rewrite docs/settings.md, or with `--check` report whether it is current."""
    current = PAGE.read_text(encoding="utf-8")
    if not BLOCK.search(current):
        print(f"{PAGE}: no generated blocks", file=sys.stderr)
        return 1
    return generated_blocks.update(
        PAGE, render(current), check="--check" in argv, remedy="make docs-settings"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
