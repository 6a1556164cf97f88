"""The package boundaries, checked on the source (every import statement) and at run time.

- `target_capsule` uses only the shared core of `tap_capsule`: the catalogue, the HTTP layer (the
  `api_client` package and its modules), custom fields and the token cache; never the tap, its
  streams, its bookmarks or the sandbox.
- `tap_capsule/sandbox/` uses only the catalogue: never the tap, the target, the Singer SDK or
  requests (it must behave like Capsule, not like our client).
- The tap never imports the target.
- The target's kernel (the Singer target and its write path) never imports the account tools in
  `target_capsule/account/`: they build on the kernel, not the other way round.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORE = {
    "tap_capsule.catalogue",
    "tap_capsule.api_client",
    "tap_capsule.custom_fields",
    "tap_capsule.token_cache",
    "tap_capsule.private_files",
    "tap_capsule.secrets",
    "tap_capsule.cli",  # both plugins' entry points: one-line errors for user mistakes
    "tap_capsule.setting_names",  # every command refuses unknown setting names the same way
}
CORE_PACKAGES = ("tap_capsule.api_client",)  # the shared core includes their modules too


def in_shared_core(module: str) -> bool:
    return module in SHARED_CORE or module.startswith(tuple(f"{p}." for p in CORE_PACKAGES))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module an import statement of this file names (`from a import b` gives a.b or a)."""
    found = set()
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def project_imports(files: list[Path]) -> dict[str, set[str]]:
    """Per file, the project modules it imports (a `from pkg import name` counts as pkg.name
    only when pkg.name is a module)."""
    result = {}
    for path in files:
        names = set()
        for name in imports_of(path):
            if not name.startswith(("tap_capsule", "target_capsule")):
                continue
            as_path = ROOT / Path(*name.split("."))
            if as_path.with_suffix(".py").exists() or (as_path / "__init__.py").exists():
                names.add(name)
        result[str(path.relative_to(ROOT))] = names
    return result


def sources(directory: str, exclude: str | None = None) -> list[Path]:
    files = sorted((ROOT / directory).rglob("*.py"))
    return [f for f in files if exclude is None or not str(f).startswith(str(ROOT / exclude))]


def test_target_imports_only_the_shared_core_of_the_tap():
    bad = {
        file: sorted(
            m
            for m in modules
            if m.startswith("tap_capsule") and m != "tap_capsule" and not in_shared_core(m)
        )
        for file, modules in project_imports(sources("target_capsule")).items()
    }
    assert {f: m for f, m in bad.items() if m} == {}


def test_sandbox_imports_only_the_catalogue():
    outside = {
        file: sorted(
            m
            for m in modules
            if not m.startswith("tap_capsule.sandbox")
            and m not in {"tap_capsule.catalogue"}
            and m != "tap_capsule"
        )
        for file, modules in project_imports(sources("tap_capsule/sandbox")).items()
    }
    assert {f: m for f, m in outside.items() if m} == {}
    third_party = {
        file: sorted(
            m for m in imports_of(ROOT / file) if m.split(".")[0] in {"singer_sdk", "requests"}
        )
        for file in outside
    }
    assert {f: m for f, m in third_party.items() if m} == {}


def test_tap_never_imports_the_target():
    found = {
        file: sorted(m for m in modules if m.startswith("target_capsule"))
        for file, modules in project_imports(sources("tap_capsule")).items()
    }
    assert {f: m for f, m in found.items() if m} == {}


def test_target_kernel_never_imports_the_account_tools():
    found = {
        file: sorted(m for m in modules if m.startswith("target_capsule.account"))
        for file, modules in project_imports(
            sources("target_capsule", exclude="target_capsule/account")
        ).items()
    }
    assert {f: m for f, m in found.items() if m} == {}
    # The scan sees the account tools' own imports of the kernel, so it would see the reverse.
    undo = project_imports([ROOT / "target_capsule" / "account" / "undo.py"])
    assert "target_capsule.writes" in undo["target_capsule/account/undo.py"]


def test_the_scan_sees_imports():
    """The scans above would see a forbidden import: they see the allowed ones."""
    target = project_imports([ROOT / "target_capsule" / "target.py"])["target_capsule/target.py"]
    assert {"tap_capsule.catalogue", "tap_capsule.api_client"} <= target
    # A module inside the HTTP layer's package is seen as itself, so the rules above judge it.
    session = ROOT / "tap_capsule" / "api_client" / "session.py"
    assert (
        "tap_capsule.api_client.errors"
        in project_imports([session])["tap_capsule/api_client/session.py"]
    )
    assert "tap_capsule.catalogue" in imports_of(
        ROOT / "tap_capsule" / "sandbox" / "__init__.py"
    ) | {m for f in sources("tap_capsule/sandbox") for m in imports_of(f)}


@pytest.mark.parametrize("entry", ["target_capsule.target", "target_capsule.sinks"])
def test_target_loads_only_the_shared_core_at_run_time(entry):
    code = f"import json, sys, {entry}\nprint(json.dumps(sorted(sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m for m in json.loads(out.stdout) if m.startswith("tap_capsule")}
    assert "tap_capsule.api_client.session" in loaded or entry != "target_capsule.target"
    assert {m for m in loaded if m != "tap_capsule" and not in_shared_core(m)} == set()


def test_the_shared_core_rule_takes_the_http_layer_modules_only():
    assert in_shared_core("tap_capsule.api_client")
    assert in_shared_core("tap_capsule.api_client.pacing")
    assert not in_shared_core("tap_capsule.api_client_extra")
    assert not in_shared_core("tap_capsule.streams")
    assert not in_shared_core("tap_capsule.sandbox.app")
