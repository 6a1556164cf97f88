"""Counts per stream, operation and outcome, logged at the end and put into the STATE.

Outcomes: `applied` (written), `unchanged` (Capsule already held it: no write), `already_gone` (a
DELETE of a record Capsule no longer has), `rejected`, `unresolved` (a write still ambiguous after
every retry and check); in a dry run `planned` replaces `applied`.

Next to the outcomes, per-stream counters say how the target got there, where the user should
know: `matched_on_content` (an id-less record without a natural key taken for an existing record
because Capsule already holds everything it sets), `rows_removed` (nested rows removed because
the stream mirrors the source's lists), `kept_by_fill_empty` (fields not written because Capsule
held a value) and `from_pending` (records sent again from the last run's pending file).
"""

from __future__ import annotations

import threading
import typing as t

OUTCOMES = ("applied", "planned", "unchanged", "already_gone", "rejected", "unresolved")
COUNTERS = ("matched_on_content", "rows_removed", "kept_by_fill_empty", "from_pending")


class Summary:
    """Outcome counts and counters of one run; thread-safe as the SDK may drain sinks in threads."""

    def __init__(self, dry_run: bool = False) -> None:
        """Start from zero; in a dry run `applied` is counted as `planned`."""
        self.dry_run = dry_run
        self.counts: dict[str, dict[str, dict[str, int]]] = {}
        self.counters: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def add(self, stream: str, operation: str, outcome: str) -> None:
        """Count one record's outcome."""
        if outcome == "applied" and self.dry_run:
            outcome = "planned"
        with self._lock:
            per_op = self.counts.setdefault(stream, {}).setdefault(operation, {})
            per_op[outcome] = per_op.get(outcome, 0) + 1

    def count(self, stream: str, counter: str, n: int = 1) -> None:
        """Add `n` to one of the COUNTERS of a stream."""
        if n <= 0:
            return
        with self._lock:
            per = self.counters.setdefault(stream, {})
            per[counter] = per.get(counter, 0) + n

    def total(self, outcome: str) -> int:
        """All records with this outcome (or all of a counter), across streams."""
        if outcome in COUNTERS:
            return sum(per.get(outcome, 0) for per in self.counters.values())
        return sum(ops.get(outcome, 0) for per in self.counts.values() for ops in per.values())

    def as_dict(self) -> dict[str, t.Any]:
        """The summary as it goes into the STATE, under `target_capsule`."""
        out: dict[str, t.Any] = {
            "dry_run": self.dry_run,
            "totals": {o: self.total(o) for o in OUTCOMES if self.total(o) or o == "rejected"},
            "summary": {
                s: {op: dict(sorted(c.items())) for op, c in sorted(ops.items())}
                for s, ops in sorted(self.counts.items())
            },
        }
        if self.counters:
            out["counters"] = {s: dict(sorted(c.items())) for s, c in sorted(self.counters.items())}
        return out

    def lines(self) -> list[str]:
        """One readable line per stream and operation, then one per stream with counters."""
        out = []
        for stream, ops in sorted(self.counts.items()):
            for op, counts in sorted(ops.items()):
                parts = ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts.get(o))
                out.append(f"{stream} {op}: {parts}")
        for stream, counters in sorted(self.counters.items()):
            parts = ", ".join(f"{counters[c]} {c}" for c in COUNTERS if counters.get(c))
            out.append(f"{stream}: {parts}")
        return out
