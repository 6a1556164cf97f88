"""References between records, and the id map that carries them from old ids to new ones.

When a record is recreated (an undo of a DELETE, a restore), Capsule gives it a new id, and every
record that pointed to the old one must point to the new one. The reference fields below name
which stream an id in a record belongs to; `IdMap` keeps old id → new id per stream, and can
persist itself as JSON so an interrupted run resumes with it.
"""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path

# Record field → the stream whose ids it holds: nested references (`party: {id}`) and the flat
# parent/link keys of child records (`opportunityId`).
REFERENCE_STREAMS: dict[str, str] = {
    "party": "parties",
    "organisation": "parties",
    "partyId": "parties",
    "opportunity": "opportunities",
    "opportunityId": "opportunities",
    "kase": "cases",
    "caseId": "cases",
    "milestone": "milestones",
    "lostReason": "lost_reasons",
    "category": "categories",
    "activityType": "activity_types",
    "pipeline": "pipelines",
    "pipelineId": "pipelines",
    "stage": "stages",
    "owner": "users",
    "team": "teams",
}


def positive_id(value: t.Any) -> int | None:  # noqa: ANN401 - any untrusted JSON value
    """`value` as a positive integer id, or None when it is not one (never guessed)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


class IdMap:
    """Old id → new id, per stream; saved to `path` after every change when a path is given."""

    def __init__(self, path: str | Path | None = None, data: t.Mapping | None = None) -> None:
        """Start from `data`, else from the file at `path` when it exists."""
        self.path = Path(path) if path else None
        self.map: dict[str, dict[str, int]] = {}
        source = data
        if source is None and self.path is not None and self.path.is_file():
            source = json.loads(self.path.read_text(encoding="utf-8"))
        for stream, pairs in (source or {}).items():
            if isinstance(pairs, dict):
                self.map[str(stream)] = {
                    str(k): int(v) for k, v in pairs.items() if positive_id(v) is not None
                }

    def get(self, stream: str, old: t.Any) -> int | None:  # noqa: ANN401 - ids arrive as str or int
        """The new id of `old` in `stream`, or None when it was not recreated."""
        return self.map.get(stream, {}).get(str(old))

    def put(self, stream: str, old: t.Any, new: int) -> None:  # noqa: ANN401 - as in get
        """Record that `old` now lives at `new` (and persist at once: a kill loses nothing)."""
        self.map.setdefault(stream, {})[str(old)] = int(new)
        self.save()

    def save(self) -> None:
        """Write the file atomically (a temporary file renamed over it)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        temporary.write_text(json.dumps(self.map, sort_keys=True), encoding="utf-8")
        os.replace(temporary, self.path)

    def remap(self, record: t.Mapping[str, t.Any]) -> dict:
        """A copy of `record` whose references point to the recreated records' new ids."""
        out = dict(record)
        for key, stream in REFERENCE_STREAMS.items():
            value = out.get(key)
            if isinstance(value, dict) and value.get("id") is not None:
                new = self.get(stream, value["id"])
                if new is not None:
                    out[key] = {**value, "id": new}
            elif value is not None and not isinstance(value, (dict, list)):
                new = self.get(stream, value)
                if new is not None:
                    out[key] = new
        return out

    def as_dict(self) -> dict[str, dict[str, int]]:
        """A JSON-ready copy, e.g. for the STATE."""
        return {s: dict(pairs) for s, pairs in self.map.items()}
