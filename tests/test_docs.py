"""The documentation holds together: links and anchors resolve, each page opens with a table of
contents, and the settings reference is what the commands print.

Anchors are GitHub's: the heading in lower case, every character but letters, digits, spaces,
hyphens and underscores dropped, spaces turned into hyphens, and `-1`, `-2`, … after repeats.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose(text: str) -> list[str]:
    """The page's lines outside fenced code blocks, with inline code spans removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def github_anchor(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def links(path: Path) -> list[str]:
    return [
        m.group(1) for line in prose(path.read_text(encoding="utf-8")) for m in LINK.finditer(line)
    ]


def test_github_anchors():
    assert github_anchor("Database → Capsule") == "database--capsule"
    assert github_anchor("What a restore can't bring back") == "what-a-restore-cant-bring-back"
    assert github_anchor("Rate limit, retries and errors (shared with the target)") == (
        "rate-limit-retries-and-errors-shared-with-the-target"
    )
    assert github_anchor("`capsule sync`") == "capsule-sync"


def test_the_docs_pages_exist():
    names = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert names >= {
        "README.md",
        "tap.md",
        "target.md",
        "recipes.md",
        "account-tools.md",
        "sandbox.md",
        "settings.md",
        "benchmarks.md",
        "sync.md",
        "CONTRIBUTING.md",
    }


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_and_anchor_resolves(page: Path):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, …: not checked here
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
        elif anchor and linked.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not a page")
    assert broken == [], f"{page.relative_to(ROOT)} has broken links"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_page_opens_with_a_table_of_contents(page: Path):
    """The lines between the title and the first section link to every section of the page."""
    lines = prose(page.read_text(encoding="utf-8"))
    sections = [github_anchor(m.group(2)) for m in map(HEADING.match, lines) if m and m[1] == "##"]
    first = next(i for i, line in enumerate(lines) if line.startswith("## "))
    toc = {m.group(1) for line in lines[:first] for m in LINK.finditer(line)}
    missing = [s for s in sections if f"#{s}" not in toc]
    assert missing == [], f"add these sections to the contents at the top of {page.name}"


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "generate_settings", ROOT / "docs" / "generate_settings.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_reference_is_what_the_commands_print():
    generator = load_generator()
    page = generator.PAGE.read_text(encoding="utf-8")
    commands = [m.group("command") for m in generator.BLOCK.finditer(page)]
    assert commands == [
        "tap-capsule --about --format=markdown",
        "target-capsule --about --format=markdown",
        "target-capsule-duckdb --about --format=markdown",
    ]
    assert generator.render(page) == page, "docs/settings.md is out of date: make docs-settings"


def test_settings_check_fails_on_a_stale_page(tmp_path, monkeypatch):
    """The comparison can fail: a page missing one setting is reported, and rewritten."""
    generator = load_generator()
    stale = generator.PAGE.read_text(encoding="utf-8").replace("| page_size |", "| page_size_x |")
    monkeypatch.setattr(generator, "PAGE", tmp_path / "settings.md")
    generator.PAGE.write_text(stale, encoding="utf-8")
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0
    assert "| page_size |" in generator.PAGE.read_text(encoding="utf-8")
    assert generator.main(["--check"]) == 0
