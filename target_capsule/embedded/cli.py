"""`target-capsule-duckdb`: the shared entry point (`tap_capsule.cli`), with one-line errors."""

from __future__ import annotations

import typing as t

from tap_capsule.cli import run

if t.TYPE_CHECKING:
    from singer_sdk.plugin_base import PluginBase

NAME = "target-capsule-duckdb"


def main() -> None:
    """`target-capsule-duckdb --config CONFIG`: Singer messages on stdin into a DuckDB file."""

    def load() -> type[PluginBase]:
        from target_capsule.embedded.target import TargetCapsuleDuckDB

        return TargetCapsuleDuckDB

    run(load, NAME)
