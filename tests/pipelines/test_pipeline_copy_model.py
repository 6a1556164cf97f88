"""The model-based test's end state in PostgreSQL: a generated sequence through `meltano run`.

hypothesis draws a short sequence of creates, updates, deletes and link changes of the objects
Capsule lets a user write (the same generators as tests/tap/test_copy_model.py), applied through
the sandbox's HTTP API. Between them `meltano run tap-capsule target-postgres` (upsert on the key,
`hard_delete: false`, the tap's default settings) runs incrementally from the state it keeps; at
the end a full refresh (`--full-refresh`, the reconcile) runs over that copy.

A row is live in PostgreSQL when its `_sdc_deleted_at` is NULL and, for parties, opportunities and
cases, its id is not in `<stream>_deleted` (the join the docs give). Checked:
- after each incremental run: no row of Capsule is missing, and no deleted row is live, except in
  the streams the guarantee table (docs/tap.md) marks "at the reconcile";
- after the full refresh: the live rows equal a fresh full sync of the tap, row for row, and value
  for value on the compared columns, and Capsule's keys exactly.

Affordable in CI: one first sync, then two examples of one or two incremental runs and a
reconcile each (an example goes on from the account and the copy the one before left, equal to
Capsule after its reconcile); `derandomize` (the same sequences on every run) and a seeded
sandbox; no shrinking (each step costs a `meltano run`): the failing sequence is printed as drawn.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import typing as t

import pytest
from capsule_changes import (
    DELETIONS_AT_RECONCILE,
    NEW_AT_RECONCILE,
    TOUCHED,
    Capsule,
    any_change,
    comparable,
)
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from tap_capsule.sandbox import Sandbox
from tap_capsule.tap import TapCapsule

pytestmark = [pytest.mark.meltano, pytest.mark.postgres]

TOKEN = "pt-7c1e94d2b8f3a6e05d"  # as tests/pipelines/conftest.py's `token` fixture

# Every stream the changes touch, links and tracks included, and the deletions of the objects
# that have a deleted feed (`tombstones: stream`, the tap's default).
STREAMS = list(TOUCHED)
DELETED = ["parties_deleted", "opportunities_deleted", "cases_deleted"]
KEYS = {"opportunity_parties": ("opportunityId", "partyId"), "case_parties": ("caseId", "partyId")}
# Columns compared value for value: the scalars the changes write, and the times (read back as
# instants: PostgreSQL writes `+00:00` where Capsule writes `Z`). Nested objects are left out:
# their shape changes on the way into a SQL column.
COMPARED = (
    "name",
    "firstName",
    "lastName",
    "about",
    "description",
    "content",
    "detail",
    "status",
    "title",
    "type",
    "dueOn",
    "probability",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "restricted",
)


def keys_of(stream: str) -> tuple[str, ...]:
    return KEYS.get(stream, ("id",))


class Copy:
    """The copy in one PostgreSQL schema, read back through psql."""

    def __init__(self, postgres, schema: str) -> None:
        self.postgres, self.schema = postgres, schema

    def tables(self) -> set[str]:
        rows = self.postgres.query(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{self.schema}'"
        )
        return {r["table_name"] for r in rows}

    def live(self, stream: str) -> dict[tuple, dict]:
        """Rows not marked deleted (nor listed in `<stream>_deleted`), by key."""
        if stream not in self.tables():
            return {}
        where = "_sdc_deleted_at IS NULL"
        if f"{stream}_deleted" in self.tables():
            where += f' AND id NOT IN (SELECT id FROM "{self.schema}"."{stream}_deleted")'
        rows = self.postgres.query(f'SELECT * FROM "{self.schema}"."{stream}" WHERE {where}')
        return {tuple(r[k] for k in keys_of(stream)): r for r in rows}


def fresh_full_sync(url: str) -> dict[str, dict[tuple, dict]]:
    """The oracle: what a full sync of the account holds now (the real tap, in process)."""
    config = {"access_token": TOKEN, "api_url": url, "child_streams": True}
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out):
        TapCapsule(config=config).sync_all()
        out.flush()
    found: dict[str, dict[tuple, dict]] = {s: {} for s in STREAMS + DELETED}
    for line in out.buffer.getvalue().splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD" and message["stream"] in found:
            record = message["record"]
            found[message["stream"]][tuple(record[k] for k in keys_of(message["stream"]))] = record
    return found


def compared(stream: str, row: dict, columns: t.Iterable[str]) -> dict:
    """The compared columns of a row (None where the record has no such field)."""
    row = comparable(stream, row)
    out = {}
    for column in columns:
        value = row.get(column)
        if column.endswith("At") and isinstance(value, str) and value[:1].isdigit():
            # target-postgres keeps UTC times without their zone (`timestamp` columns)
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            value = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        out[column] = value
    return out


class Account:
    """Capsule (a seeded sandbox) and its copy in PostgreSQL, kept by `meltano run`s."""

    def __init__(self, sb: Sandbox, meltano, postgres, schema: str, database) -> None:
        self.sb, self.meltano, self.database = sb, meltano, database
        self.capsule = Capsule(sb, TOKEN)
        self.copy = Copy(postgres, schema)
        self.env = {
            "TAP_CAPSULE_API_URL": sb.url,
            "TAP_CAPSULE_ACCESS_TOKEN": TOKEN,
            "TAP_CAPSULE__SELECT": json.dumps([f"{s}.*" for s in STREAMS + DELETED]),
            **postgres.target_env(schema),
        }

    def run(self, *flags: str) -> None:
        """`meltano run tap-capsule target-postgres`, from the state of the run before."""
        self.meltano(
            "--environment=dev",
            "run",
            *flags,
            "tap-capsule",
            "target-postgres",
            env=self.env,
            database=self.database,
        )

    def keys(self, stream: str) -> set[tuple]:
        return {tuple(r[k] for k in keys_of(stream)) for r in self.capsule.rows(stream)}


@pytest.fixture(scope="module")
def account(meltano, postgres, tmp_path_factory):
    """The first sync, once: each example goes on from the copy the one before reconciled
    (equal to Capsule by then), so an example costs its own runs only."""
    schema = f"copy_model_{os.getpid()}"
    postgres.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    database = tmp_path_factory.mktemp("copy-model") / "meltano.db"
    try:
        with Sandbox(token=TOKEN, scale=3, seed=11) as sb:
            account = Account(sb, meltano, postgres, schema, database)
            account.run()
            yield account
    finally:
        postgres.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_generated_sequence_through_meltano_run_into_postgres(account, data):
    copy = account.copy
    for _ in range(data.draw(st.integers(1, 2), label="incremental runs")):
        for _ in range(data.draw(st.integers(1, 4), label="changes before the run")):
            note(any_change(account.capsule, data.draw))
        account.run()
        for stream in STREAMS:
            held, live = account.keys(stream), set(copy.live(stream))
            if stream not in NEW_AT_RECONCILE:
                assert held <= live, f"{stream}: missing after an incremental run"
            if stream not in DELETIONS_AT_RECONCILE:
                assert live <= held, f"{stream}: deleted rows live after an incremental run"

    account.run("--full-refresh")  # the reconcile, over the copy
    fresh = fresh_full_sync(account.sb.url)
    for stream in STREAMS + DELETED:
        live = copy.live(stream)
        assert set(live) == set(fresh[stream]), f"{stream}: rows after the reconcile"
        for key, row in fresh[stream].items():
            columns = [c for c in COMPARED if c in live[key]]
            assert compared(stream, live[key], columns) == compared(stream, row, columns), (
                stream,
                key,
            )
        if stream in STREAMS:
            assert set(live) == account.keys(stream), stream
