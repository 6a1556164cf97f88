"""target-capsule-duckdb: Singer messages (written by hand from the Singer spec) into a DuckDB file.

Each test reads the file back with duckdb and compares with what the messages mean: an upsert
replaces its row, a tombstone or a `<stream>_deleted` row marks its row deleted and keeps its
values, ACTIVATE_VERSION marks deleted what a whole read did not carry, and a schema change adds
or widens columns without losing a value. A hypothesis test compares random message sequences with
a model of the table.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from target_capsule.embedded.target import TargetCapsuleDuckDB

EXECUTABLE = str(Path(sys.executable).parent / "target-capsule-duckdb")
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_TEXT = {"type": ["string", "null"]}
WHEN = {"type": ["string", "null"], "format": "date-time"}
TASKS = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "description": NULLABLE_TEXT,
        "owner": {"type": ["object", "null"], "properties": {"name": NULLABLE_TEXT}},
        "tags": {"type": ["array", "null"], "items": {"type": "object"}},
        "updatedAt": WHEN,
        "_sdc_deleted_at": WHEN,
    },
}


def schema(stream: str = "tasks", properties: dict | None = None) -> dict:
    body = {"type": "object", "properties": properties} if properties else TASKS
    return {"type": "SCHEMA", "stream": stream, "schema": body, "key_properties": ["id"]}


def record(stream: str, version: int | None = None, **values: object) -> dict:
    message: dict = {"type": "RECORD", "stream": stream, "record": values}
    if version is not None:
        message["version"] = version
    return message


def activate(stream: str, version: int) -> dict:
    return {"type": "ACTIVATE_VERSION", "stream": stream, "version": version}


def load(path: Path, messages: list[dict], **config: object) -> None:
    """One run of the target, in process, on these messages."""
    target = TargetCapsuleDuckDB(config={"path": str(path), **config}, validate_config=True)
    text = "".join(json.dumps(m) + "\n" for m in messages)
    target.listen(file_input=io.StringIO(text))


def rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.sql(sql).fetchall()


def by_id(path: Path, table: str, columns: str) -> dict:
    found = rows(path, f"SELECT id, {columns} FROM capsule.{table} ORDER BY id")
    return {r[0]: r[1:] for r in found}


def test_upsert_on_key_with_flattened_columns(tmp_path):
    db = tmp_path / "copy.duckdb"
    load(
        db,
        [
            schema(),
            record("tasks", id=1, description="a", owner={"name": "Ada"}, tags=[{"name": "x"}]),
            record("tasks", id=2, description="b"),
            record("tasks", id=1, description="a, again", owner={"name": "Bo"}),
            {"type": "STATE", "value": {"bookmarks": {"tasks": {"at": 1}}}},
        ],
    )
    load(db, [schema(), record("tasks", id=2, description="b changed")])
    assert by_id(db, "tasks", "description, owner__name, tags, _sdc_deleted_at") == {
        1: ("a, again", "Bo", None, None),
        2: ("b changed", None, None, None),
    }
    load(db, [schema(), record("tasks", id=3, tags=[{"name": "x"}])])
    assert json.loads(by_id(db, "tasks", "tags")[3][0]) == [{"name": "x"}]  # a list: JSON text
    assert oct(db.stat().st_mode & 0o777) == "0o600"


def test_a_tombstone_marks_its_row_and_keeps_its_values(tmp_path):
    db = tmp_path / "copy.duckdb"
    load(db, [schema(), record("tasks", id=1, description="kept", owner={"name": "Ada"})])
    at = "2026-01-02T03:04:05+00:00"
    load(
        db,
        [
            schema(),
            record("tasks", id=1, _sdc_deleted_at=at, updatedAt=at),
            record(
                "tasks", id=9, _sdc_deleted_at=at, updatedAt=at
            ),  # never loaded: a row of its own
        ],
    )
    found = by_id(db, "tasks", "description, owner__name, strftime(_sdc_deleted_at, '%Y-%m-%d')")
    assert found == {1: ("kept", "Ada", "2026-01-02"), 9: (None, None, "2026-01-02")}
    load(db, [schema(), record("tasks", id=1, description="back")])  # seen again: live again
    assert by_id(db, "tasks", "description, _sdc_deleted_at IS NULL")[1] == ("back", True)


@pytest.mark.parametrize("deletions_first", [False, True])
def test_a_deleted_stream_marks_the_rows_of_its_stream(tmp_path, deletions_first):
    """`tombstones: stream`: `<stream>_deleted` rows, in whichever order the two streams come."""
    db = tmp_path / "copy.duckdb"
    deleted_schema = schema(
        "tasks_deleted",
        {"id": {"type": "integer"}, "deletedAt": WHEN, "restricted": {"type": "boolean"}},
    )
    load(db, [schema(), record("tasks", id=1, description="a"), record("tasks", id=2)])
    deletions = [
        deleted_schema,
        record("tasks_deleted", id=1, deletedAt="2026-02-03T00:00:00Z", restricted=False),
    ]
    objects = [schema(), record("tasks", id=3, description="new")]
    load(db, deletions + objects if deletions_first else objects + deletions)
    found = by_id(db, "tasks", "description, strftime(_sdc_deleted_at, '%Y-%m-%d')")
    assert found == {1: ("a", "2026-02-03"), 2: (None, None), 3: ("new", None)}
    assert rows(db, "SELECT id, restricted FROM capsule.tasks_deleted") == [(1, False)]
    # A record sent again while its deletion is on file stays deleted (the two streams agree).
    load(db, [schema(), record("tasks", id=1, description="a")])
    assert by_id(db, "tasks", "_sdc_deleted_at IS NOT NULL")[1] == (True,)


def test_activate_version_marks_what_a_whole_read_did_not_carry(tmp_path):
    db = tmp_path / "copy.duckdb"
    load(
        db,
        [
            schema(),
            record("tasks", 100, id=1, description="a"),
            record("tasks", 100, id=2, description="b"),
            activate("tasks", 100),
        ],
    )
    load(db, [schema(), record("tasks", id=3, description="incremental")])  # no version
    load(
        db,
        [
            schema(),
            record("tasks", 200, id=2, description="b"),
            activate("tasks", 200),
            record("tasks", id=4, description="after"),
        ],
    )
    found = by_id(db, "tasks", "description, _sdc_deleted_at IS NOT NULL")
    assert found == {
        1: ("a", True),  # not in the whole read: deleted, values kept
        2: ("b", False),
        3: ("incremental", True),
        4: ("after", False),  # after the ACTIVATE_VERSION
    }
    load(db, [schema(), activate("tasks", 300)])  # a whole read of nothing: every row deleted
    assert all(deleted for (deleted,) in by_id(db, "tasks", "_sdc_deleted_at IS NOT NULL").values())


def test_schema_changes_add_and_widen_columns(tmp_path):
    db = tmp_path / "copy.duckdb"
    first = {"id": {"type": "integer"}, "seats": NULLABLE_INT, "code": NULLABLE_INT, "at": WHEN}
    load(db, [schema("t", first), record("t", id=1, seats=3, code=7, at="2026-01-01T00:00:00Z")])
    types = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'"
    before = dict(rows(db, types))
    load(db, [schema("t", first), record("t", id=2, seats=4)])
    assert dict(rows(db, types)) == before  # the same schema again changes nothing
    assert before["at"] == "TIMESTAMP WITH TIME ZONE" and before["seats"] == "BIGINT"
    second = {
        "id": {"type": "integer"},
        "seats": {"type": ["number", "null"]},
        "code": NULLABLE_TEXT,
        "note": NULLABLE_TEXT,
    }
    load(db, [schema("t", second), record("t", id=3, seats=2.5, code="A-1", note="new")])
    after = dict(rows(db, types))
    assert (after["seats"], after["code"], after["note"]) == ("DOUBLE", "VARCHAR", "VARCHAR")
    assert "at" in after  # a column that left the schema stays
    assert by_id(db, "t", 'seats, code, note, "at" IS NOT NULL') == {
        1: (3.0, "7", None, True),
        2: (4.0, None, None, False),
        3: (2.5, "A-1", "new", False),
    }


def run_cli(config: dict, tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return subprocess.run(
        [EXECUTABLE, "--config", str(path)],
        input="",
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_settings_are_checked_by_name(tmp_path):
    db = str(tmp_path / "copy.duckdb")
    wrong = run_cli({"pth": db}, tmp_path)
    assert wrong.returncode == 1
    assert "unknown setting `pth` in the config; did you mean `path`?" in wrong.stderr
    wrong = run_cli({"path": db}, tmp_path, {"TARGET_CAPSULE_DUCKDB_PAHT": db})
    assert wrong.returncode == 1
    assert "TARGET_CAPSULE_DUCKDB_PAHT names no setting" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    # The SDK's load methods other than upsert would break the copy's guarantees: refused.
    wrong = run_cli({"path": db, "load_method": "overwrite"}, tmp_path)
    assert wrong.returncode == 1
    assert 'setting load_method is "overwrite" but must be one of upsert' in wrong.stderr
    done = run_cli({"path": db}, tmp_path, {"TARGET_CAPSULE_DUCKDB_DEFAULT_TARGET_SCHEMA": "x"})
    assert done.returncode == 0, done.stderr
    # A file another process holds (a load, an open client): one line, exit 1.
    with duckdb.connect(db):
        busy = subprocess.run(
            [EXECUTABLE, "--config", str(tmp_path / "config.json")],
            input=json.dumps(schema()) + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 1, busy.stderr
    last = busy.stderr.strip().splitlines()[-1]
    assert last.startswith(f"target-capsule-duckdb: error: cannot open the DuckDB file {db}")
    assert "Traceback" not in busy.stderr
    # target-capsule leaves the DuckDB loader's variables alone (its prefix begins with ours).
    capsule = subprocess.run(
        [str(Path(sys.executable).parent / "target-capsule"), "--about"],
        capture_output=True,
        text=True,
        env={**os.environ, "TARGET_CAPSULE_DUCKDB_PATH": db},
        timeout=60,
    )
    assert capsule.returncode == 0, capsule.stderr


# --- A model of the table against random message sequences ----------------------------------

IDS = st.integers(min_value=1, max_value=6)
STEP = st.one_of(
    st.tuples(st.just("upsert"), IDS, st.text("abc", max_size=3)),
    st.tuples(st.just("tombstone"), IDS, st.none()),
    st.tuples(st.just("feed"), IDS, st.none()),  # a `tasks_deleted` row (tombstones: stream)
    st.tuples(st.just("whole"), st.sets(IDS), st.text("xyz", max_size=2)),
)
FEED_SCHEMA = schema("tasks_deleted", {"id": {"type": "integer"}, "deletedAt": WHEN})


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(runs=st.lists(st.lists(STEP, min_size=1, max_size=5), min_size=1, max_size=4))
def test_random_message_sequences_match_a_model(tmp_path_factory, runs):
    """The model: the last upsert of an id gives its values; a tombstone, a whole read without
    the id, or a row of the deleted feed marks it deleted with its values kept; an id in the
    deleted feed stays deleted (Capsule never gives a deleted id back)."""
    db = tmp_path_factory.mktemp("model") / "copy.duckdb"
    model: dict[int, dict] = {}  # id -> {"description", "deleted"}
    feed: set[int] = set()
    version = 0
    at = "2026-01-01T00:00:00Z"

    def seen(i: int, text: str | None) -> None:
        model[i] = {"description": text, "deleted": i in feed}

    for steps in runs:
        messages = [schema(), FEED_SCHEMA]
        for kind, what, text in steps:
            if kind == "upsert":
                messages.append(record("tasks", id=what, description=text))
                seen(what, text)
            elif kind == "tombstone":
                messages.append(record("tasks", id=what, _sdc_deleted_at=at, updatedAt=at))
                model[what] = {**model.get(what, {"description": None}), "deleted": True}
            elif kind == "feed":
                messages.append(record("tasks_deleted", id=what, deletedAt=at))
                feed.add(what)
                if what in model:
                    model[what]["deleted"] = True
            else:  # a whole read of the ids in `what`, then ACTIVATE_VERSION
                version += 1
                for i in sorted(what):
                    messages.append(record("tasks", version, id=i, description=text))
                    seen(i, text)
                messages.append(activate("tasks", version))
                for i in set(model) - what:
                    model[i]["deleted"] = True
        load(db, messages)
        found = by_id(db, "tasks", "description, _sdc_deleted_at IS NOT NULL")
        assert found == {i: (m["description"], m["deleted"]) for i, m in model.items()}
