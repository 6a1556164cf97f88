"""`target-capsule`: the shared entry point (`tap_capsule.cli`), with one-line errors."""

from __future__ import annotations

import typing as t

from tap_capsule.cli import run

if t.TYPE_CHECKING:
    from singer_sdk.plugin_base import PluginBase


def _load_target() -> type[PluginBase]:
    from target_capsule.target import TargetCapsule  # only once the arguments are checked

    return TargetCapsule


def main() -> None:
    """`target-capsule`."""
    run(_load_target, "target-capsule")
