"""The sandbox must stand alone: stdlib plus the catalogue, never the tap, target or Singer SDK."""

import json
import subprocess
import sys

FORBIDDEN = [
    "singer_sdk",
    "target_capsule",
    "tap_capsule.tap",
    "tap_capsule.streams",
    "tap_capsule.api_client",
    "requests",
]
MODULES = [
    "tap_capsule.sandbox",
    "tap_capsule.sandbox.server",
    "tap_capsule.sandbox.cli",
    "tap_capsule.sandbox.store",
    "tap_capsule.sandbox.seed",
    "tap_capsule.sandbox.validation",
    "tap_capsule.sandbox.faults",
    "tap_capsule.sandbox.ratelimit",
    "tap_capsule.sandbox.auth",
    "tap_capsule.sandbox.harness",
    "tap_capsule.sandbox.clock",
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
    assert project <= {"tap_capsule", "tap_capsule.catalogue"} | set(MODULES) | {
        "tap_capsule.sandbox.errors"
    }
