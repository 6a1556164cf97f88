"""What `capsule sync` keeps equal on both sides: five objects and a few fields of each.

Each object is one table in the sync schema, one column per synced field. A field maps a column
to a path in Capsule's record (`party_id` <- `party.id`). Values are normalised the same way on
both sides (an empty string is NULL, an id is an int, a date is `YYYY-MM-DD`), so a value read
back from the side it was written to compares equal and is never seen as a change.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from tap_capsule import catalogue as cat

TEXT, ID, DATE = "text", "id", "date"
SQL_TYPES = {TEXT: "text", ID: "bigint", DATE: "date"}

Values = dict[str, t.Any]  # column -> normalised value


@dataclasses.dataclass(frozen=True)
class Field:
    """One synced column and where Capsule keeps it."""

    column: str
    path: tuple[str, ...]  # ("about",) or ("party", "id")
    kind: str = TEXT
    create_only: bool = False  # Capsule takes it on create, not on update (a party's type)


@dataclasses.dataclass(frozen=True)
class SyncObject:
    """A synced object: its table, its Capsule stream and its fields."""

    table: str
    stream: str
    fields: tuple[Field, ...]
    only: t.Mapping[str, str] = dataclasses.field(default_factory=dict)  # e.g. entries: notes

    @property
    def capsule(self) -> cat.CapsuleObject:
        """The catalogue entry: paths, wrappers, feeds and rules."""
        return cat.get(self.stream)

    @property
    def columns(self) -> list[str]:
        """The synced columns, in order."""
        return [f.column for f in self.fields]

    def keeps(self, record: t.Mapping[str, t.Any]) -> bool:
        """Whether a record of the stream belongs to this object (entries: notes only)."""
        return all(record.get(k) == v for k, v in self.only.items())

    def from_capsule(self, record: t.Mapping[str, t.Any]) -> Values:
        """The synced values of a Capsule record."""
        out: Values = {}
        for f in self.fields:
            value: t.Any = record
            for step in f.path:
                value = value.get(step) if isinstance(value, t.Mapping) else None
            out[f.column] = normalise(f.kind, value)
        return out

    def body(self, values: t.Mapping[str, t.Any], *, create: bool) -> dict[str, t.Any]:
        """Capsule's body (inside its wrapper) for these values."""
        body: dict[str, t.Any] = dict(self.only) if create else {}
        for f in self.fields:
            if f.column not in values or (f.create_only and not create):
                continue
            value = values[f.column]
            if len(f.path) == 2:
                body[f.path[0]] = {f.path[1]: value} if value is not None else None
            else:
                body[f.path[0]] = value
        if create:  # a create leaves out what it does not set, so Capsule keeps its defaults
            body = {k: v for k, v in body.items() if v is not None}
        return body


def normalise(kind: str, value: object) -> t.Any:  # noqa: ANN401 - a column's value
    """One spelling per value on both sides, so equal means equal."""
    if value is None or value == "":
        return None
    if kind == ID:
        if isinstance(value, bool):
            raise ValueError(f"not an id: {value!r}")
        return int(value)  # type: ignore[call-overload]
    if kind == DATE:
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()[:10]
        return dt.date.fromisoformat(str(value)[:10]).isoformat()
    return str(value)


OBJECTS: tuple[SyncObject, ...] = (
    SyncObject(
        "parties",
        "parties",
        (
            Field("type", ("type",), create_only=True),
            Field("first_name", ("firstName",)),
            Field("last_name", ("lastName",)),
            Field("name", ("name",)),
            Field("job_title", ("jobTitle",)),
            Field("about", ("about",)),
        ),
    ),
    SyncObject(
        "opportunities",
        "opportunities",
        (
            Field("name", ("name",)),
            Field("description", ("description",)),
            Field("party_id", ("party", "id"), ID),
            Field("milestone_id", ("milestone", "id"), ID),
            Field("expected_close_on", ("expectedCloseOn",), DATE),
        ),
    ),
    SyncObject(
        "cases",
        "cases",
        (
            Field("name", ("name",)),
            Field("description", ("description",)),
            Field("party_id", ("party", "id"), ID),
            Field("status", ("status",)),
        ),
    ),
    SyncObject(
        "tasks",
        "tasks",
        (
            Field("description", ("description",)),
            Field("detail", ("detail",)),
            Field("due_on", ("dueOn",), DATE),
        ),
    ),
    SyncObject(
        "notes",
        "entries",
        (
            Field("content", ("content",)),
            Field("party_id", ("party", "id"), ID, create_only=True),
            Field("opportunity_id", ("opportunity", "id"), ID, create_only=True),
            Field("case_id", ("kase", "id"), ID, create_only=True),
        ),
        only={"type": "note"},
    ),
)

BY_TABLE = {o.table: o for o in OBJECTS}
