"""`target-capsule`: the shared entry point (`tap_capsule.cli`), with one-line errors."""

from __future__ import annotations

import sys
import typing as t

from tap_capsule.cli import run

if t.TYPE_CHECKING:
    from singer_sdk.plugin_base import PluginBase


def main() -> None:
    """`target-capsule` (`--force`: write even when the plan crosses a guardrail)."""
    args = sys.argv[1:]
    force = "--force" in args

    def load() -> type[PluginBase]:
        from target_capsule.target import TargetCapsule  # only once the arguments are checked

        TargetCapsule.force_flag = force
        return TargetCapsule

    run(load, "target-capsule", [a for a in args if a != "--force"])
