"""The sandbox must stand alone: stdlib plus the catalogue, never the tap, target or Singer SDK."""

import json
import pkgutil
import subprocess
import sys

import tap_capsule.sandbox

FORBIDDEN = [
    "singer_sdk",
    "target_capsule",
    "tap_capsule.tap",
    "tap_capsule.streams",
    "tap_capsule.api_client",
    "requests",
]
# Every module of the sandbox package (the split into small modules must not hide one).
MODULES = [
    "tap_capsule.sandbox",
    *sorted(
        info.name
        for info in pkgutil.walk_packages(tap_capsule.sandbox.__path__, "tap_capsule.sandbox.")
        if not info.name.endswith("__main__")
    ),
]


def test_sandbox_imports_only_the_catalogue_from_the_project():
    code = (
        "import importlib, json, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not [m for m in FORBIDDEN if m in loaded]
    project = {m for m in loaded if m.startswith(("tap_capsule", "target_capsule"))}
    assert project <= {"tap_capsule", "tap_capsule.catalogue"} | set(MODULES)
