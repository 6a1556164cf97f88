"""The installed distribution declares what the two packages import, and nothing imports the old
`backoff` distribution."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tap_capsule", "target_capsule")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports() -> set[str]:
    """Top-level names of every non-stdlib, non-project module the packages import."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(PACKAGES) - {"__future__"}


def declared() -> set[str]:
    """Runtime requirements of tap-capsule (no extras, no markers that exclude this Python)."""
    names = set()
    for requirement in metadata.requires("tap-capsule") or []:
        name, _, marker = requirement.partition(";")
        if "extra ==" in marker:
            continue
        names.add(normalize(re.split(r"[\s\[<>=~!]", name.strip(), maxsplit=1)[0]))
    return names


def test_every_runtime_import_is_a_declared_dependency():
    providers = metadata.packages_distributions()
    imports = third_party_imports()
    assert {"singer_sdk", "requests", "pendulum", "backoff", "typing_extensions"} <= imports
    missing = {
        module: providers.get(module)
        for module in imports
        if not {normalize(d) for d in providers.get(module, [])} & declared()
    }
    assert missing == {}


def test_backoff_comes_from_python_backoff_only():
    assert metadata.packages_distributions()["backoff"] == ["python-backoff"]
    assert "python-backoff" in declared()
    assert "backoff" not in declared()


def test_metadata_has_urls_and_both_packages_are_typed():
    urls = metadata.metadata("tap-capsule").get_all("Project-URL") or []
    assert urls, "[project.urls] is empty"
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file(), package
