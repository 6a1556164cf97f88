"""Generated blocks in the docs pages: a table a command prints, pasted between two markers.

    <!-- BEGIN generated: tap-capsule --about --format=markdown -->

    | the command's table |

    <!-- END generated -->

The marker names the command; the prose around the markers is written by hand. The page generators
(`generate_settings.py`, `generate_tables.py`) share this module: find the blocks, replace each
one's table with what its command prints now, and rewrite the page or report that it is stale.
"""

from __future__ import annotations

import re
import sys
import typing as t

if t.TYPE_CHECKING:
    from pathlib import Path

BLOCK = re.compile(
    r"(<!-- BEGIN generated: (?P<command>[^>]+?) -->\n)(?P<body>.*?)(<!-- END generated -->)",
    re.S,
)


def table_lines(text: str) -> str:
    """The Markdown table rows of `text` (its lines that start with `|`), newline-terminated."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return "\n".join(rows) + "\n" if rows else ""


def blocks(page: str) -> list[tuple[str, str]]:
    """(command, table) of each generated block of `page`, in page order."""
    return [(m.group("command"), table_lines(m.group("body"))) for m in BLOCK.finditer(page)]


def render(page: str, table: t.Callable[[str], str], wanted: t.Callable[[str], bool] = bool) -> str:
    """`page` with each wanted block's table replaced by `table(command)`; the rest untouched."""

    def fill(match: re.Match[str]) -> str:
        command = match.group("command")
        if not wanted(command):
            return match.group(0)
        return match.group(1) + "\n" + table(command) + "\n" + match.group(4)

    return BLOCK.sub(fill, page)


def update(path: Path, fresh: str, *, check: bool, remedy: str) -> int:
    """Write `fresh` to `path` if it differs; with `check`, only report (1 when it is stale)."""
    current = path.read_text(encoding="utf-8")
    if fresh == current:
        return 0
    if check:
        print(f"{path} is out of date: run `{remedy}`", file=sys.stderr)
        return 1
    path.write_text(fresh, encoding="utf-8")
    print(f"rewrote {path.name}")
    return 0
