"""Guardrails: `max_deletes` and `max_changed_share`, checked on the whole plan before any write.

One bad export (an empty column, a wrong key, a filter left off) can update or delete every record
it touches. With a guardrail set, the target first reads its whole input into a private temporary
file and plans it exactly as a dry run does (the same matching and diffs, no write). Only if the
plan stays within the limits is the input written, from that file; otherwise nothing is written,
the plan's summary is printed with the limit crossed, and the run exits 1. `--force` (or the
setting `force`) writes anyway.

Cost: the input is copied to disk once (memory stays as in any run: one entry per planned change);
the reads for matching and diffs are made twice (plan, then write: the write must compare with
Capsule as it is then), the writes once. A dry run only warns when its plan crosses a limit.

`max_changed_share` is the share of the existing records the run looked at (read for matching
and diffs, or deleted by id) that it would update or delete: 10 updates among 1,000 people read
for upsert matching is 0.01; updating 10 records by id is 1.0.
"""

from __future__ import annotations

import shutil
import typing as t

from tap_capsule.private_files import open_private

if t.TYPE_CHECKING:
    from pathlib import Path

    from target_capsule.run import WriteRun

SETTINGS = ("max_deletes", "max_changed_share")


def wanted(config: t.Mapping[str, t.Any]) -> bool:
    """Is a guardrail set (and not overridden)?"""
    return any(config.get(s) is not None for s in SETTINGS) and not config.get("force")


def crossed(plan: WriteRun, config: t.Mapping[str, t.Any]) -> str | None:
    """The limit a planned run crosses, in words, or None."""
    deletes = plan.changes.deletes()
    most = config.get("max_deletes")
    if most is not None and deletes > int(most):
        return f"the run would delete {deletes} record(s), more than max_deletes {most}"
    share_limit = config.get("max_changed_share")
    changed = plan.changes.changed()
    if share_limit is not None and changed:
        seen = changed | plan.records_seen()
        share = len(changed) / len(seen)
        if share > float(share_limit):
            return (
                f"the run would change {len(changed)} of the {len(seen)} existing records it "
                f"read ({share:.0%}), more than max_changed_share {share_limit}"
            )
    return None


def spool(source: t.IO[str], folder: Path) -> Path:
    """Copy the input to a private file in `folder` (0600), so it can be read twice."""
    path = folder / "input.jsonl"
    with open_private(path, "w") as handle:
        shutil.copyfileobj(source, handle)
    return path
