"""Counts per stream, operation and outcome, logged at the end and put into the STATE.

Outcomes: `applied` (written), `unchanged` (Capsule already held it: no write), `already_gone` (a
DELETE of a record Capsule no longer has), `rejected`; in a dry run `planned` replaces `applied`.
"""

from __future__ import annotations

import threading
import typing as t

OUTCOMES = ("applied", "planned", "unchanged", "already_gone", "rejected")


class Summary:
    def __init__(self, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.counts: dict[str, dict[str, dict[str, int]]] = {}
        self._lock = threading.Lock()

    def add(self, stream: str, operation: str, outcome: str) -> None:
        if outcome == "applied" and self.dry_run:
            outcome = "planned"
        with self._lock:
            per_op = self.counts.setdefault(stream, {}).setdefault(operation, {})
            per_op[outcome] = per_op.get(outcome, 0) + 1

    def total(self, outcome: str) -> int:
        return sum(ops.get(outcome, 0) for per in self.counts.values() for ops in per.values())

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "dry_run": self.dry_run,
            "totals": {o: self.total(o) for o in OUTCOMES if self.total(o) or o == "rejected"},
            "summary": {
                s: {op: dict(sorted(c.items())) for op, c in sorted(ops.items())}
                for s, ops in sorted(self.counts.items())
            },
        }

    def lines(self) -> list[str]:
        out = []
        for stream, ops in sorted(self.counts.items()):
            for op, counts in sorted(ops.items()):
                parts = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts.get(o))
                out.append(f"{stream} {op}: {parts}")
        return out
