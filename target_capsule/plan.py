"""The plan of a run: every change it makes (or, in a dry run, would make), readable by people.

Each change the sinks log goes through here as well as into the change log (when there is one). A
dry run writes the plan as a Markdown table to `plan_path`, one row per record and field with
Capsule's current value and the new one, so that someone who does not read JSON can approve an
import. The guardrails count the same plan: deletes, and the share of the existing records the
run looked at that it would change.

Memory: one small entry per planned change, kept only when a plan is wanted (a dry run, a
`plan_path`).
"""

from __future__ import annotations

import dataclasses
import json
import typing as t
from pathlib import Path

from tap_capsule.private_files import write_private
from target_capsule.changelog import ChangeLog, Entry

INSERT, UPDATE, DELETE, KEPT = "INSERT", "UPDATE", "DELETE", "KEPT"
LABEL_FIELDS = ("name", "title", "subject", "description", "content")
CELL = 80  # characters a value shows in the table


@dataclasses.dataclass
class Change:
    """One planned change of one record."""

    stream: str
    operation: str
    rid: object
    written: dict | None
    before: dict | None
    record: dict | None
    keys: dict | None
    kept: dict | None = None


def label(stream: str, rid: object, *values: t.Mapping[str, t.Any] | None) -> str:
    """`parties 12 (Jane Doe)`: the stream, the id (or `new`) and a name from the values."""
    name = None
    for value in values:
        if not value:
            continue
        first, last = value.get("firstName"), value.get("lastName")
        if first or last:
            name = " ".join(str(p) for p in (first, last) if p)
            break
        found = next((value[f] for f in LABEL_FIELDS if value.get(f)), None)
        if found:
            name = str(found)
            break
    head = f"{stream} {rid if rid is not None else 'new'}"
    return f"{head} ({name})" if name else head


def cell(value: object) -> str:
    """A value as a Markdown table cell: text as it is, the rest as JSON; short, one line."""
    if value is None or value == "" or value == [] or value == {}:
        return "(empty)"
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= CELL else text[: CELL - 1] + "…"


class PlannedChangeLog(ChangeLog):
    """The change log that also keeps the run's changes for the plan (when one is wanted)."""

    def __init__(self, *args: t.Any, keep: bool = False, **kwargs: t.Any) -> None:  # noqa: ANN401
        """`keep`: hold every change in memory for the plan and the guardrails."""
        super().__init__(*args, **kwargs)
        self.keep = keep
        self.planned: list[Change] = []

    def ahead(
        self,
        stream: str,
        operation: str,
        rid: object,
        written: t.Mapping[str, t.Any] | None,
        before: t.Mapping[str, t.Any] | None = None,
        **kwargs: t.Any,  # noqa: ANN401 - ChangeLog.ahead's keywords
    ) -> Entry:
        """Log the change ahead of its write (with a path) and keep it for the plan (if wanted)."""
        if self.keep:
            self.planned.append(
                Change(
                    stream,
                    operation,
                    rid,
                    dict(written) if written is not None else None,
                    dict(before) if before is not None else None,
                    dict(kwargs["record"]) if kwargs.get("record") else None,
                    dict(kwargs["keys"]) if kwargs.get("keys") else None,
                    dict(kwargs["kept"]) if kwargs.get("kept") else None,
                )
            )
        return super().ahead(stream, operation, rid, written, before, **kwargs)

    def note_kept(self, stream: str, rid: object, kept: t.Mapping[str, t.Any]) -> None:
        """Fields `fill_empty` kept on a record that needs no write otherwise (plan only)."""
        if self.keep and kept:
            self.planned.append(Change(stream, KEPT, rid, None, None, None, None, dict(kept)))

    # --- what the guardrails count ---------------------------------------------------------

    def deletes(self) -> int:
        """Records (and links) the run deletes."""
        return sum(1 for c in self.planned if c.operation == DELETE)

    def changed(self) -> set[tuple[str, str]]:
        """(stream, id) of the existing records the run updates or deletes."""
        return {
            (c.stream, str(c.rid))
            for c in self.planned
            if c.operation in (UPDATE, DELETE) and c.rid is not None
        }

    # --- the Markdown table -----------------------------------------------------------------

    def rows(self) -> t.Iterator[tuple[str, str, str, str]]:
        """(record, field, current value, new value) per field of every planned change."""
        for c in self.planned:
            if c.keys:  # a link between two records, added or removed
                ends = ", ".join(f"{k} {v}" for k, v in c.keys.items())
                linked = c.operation == INSERT
                yield (
                    f"{c.stream} link",
                    ends,
                    *(("(not linked)", "linked") if linked else ("linked", "(removed)")),
                )
            elif c.operation == INSERT:
                name = label(c.stream, None, c.written)
                for field, value in (c.written or {}).items():
                    yield name, field, "(new record)", cell(value)
            elif c.operation == DELETE:
                yield label(c.stream, c.rid, c.record), "(whole record)", "exists", "(deleted)"
            else:
                name = label(c.stream, c.rid, c.before, c.written)
                for field, value in (c.written or {}).items():
                    yield name, field, cell((c.before or {}).get(field)), cell(value)
            for field, value in (c.kept or {}).items():
                yield label(c.stream, c.rid), field, cell(value), "(kept: fill_empty)"

    def markdown(self, title: str, summary: t.Sequence[str]) -> str:
        """The plan as a Markdown document: a title, the counts, the table."""
        counts: dict[str, int] = {}
        for c in self.planned:
            counts[c.operation] = counts.get(c.operation, 0) + 1
        words = {
            INSERT: "insert(s)",
            UPDATE: "update(s)",
            DELETE: "delete(s)",
            KEPT: "record(s) left as they are by fill_empty",
        }
        lines = [
            f"# {title}",
            "",
            ", ".join(f"{n} {words[o]}" for o, n in counts.items()) or "No changes.",
            "",
            *(f"- {line}" for line in summary),
            "",
            "| Record | Field | Current value | New value |",
            "| --- | --- | --- | --- |",
        ]
        lines += [f"| {r} | {f} | {cur} | {new} |" for r, f, cur, new in self.rows()]
        return "\n".join(lines) + "\n"

    def save_markdown(self, path: str | Path, title: str, summary: t.Sequence[str]) -> Path:
        """Write the plan to `path` (a private file: it holds CRM data)."""
        file = Path(path).expanduser()
        write_private(file, self.markdown(title, summary))
        return file
