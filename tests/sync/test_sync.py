"""`capsule sync` against the sandbox and a real PostgreSQL: what moves, what doesn't, and who
wins a conflict. Capsule is edited through its API, the database through SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sync_helpers import TOKEN, capsule_live, run_sync

from tap_capsule.api_client import CapsuleSession
from target_capsule.account.sync.objects import OBJECTS

pytestmark = pytest.mark.postgres


def api(sb) -> CapsuleSession:
    return CapsuleSession({"access_token": TOKEN, "api_url": sb.url})


def assert_equal_sides(sb, db) -> None:
    for obj in OBJECTS:
        assert db.live(obj.table) == capsule_live(sb, obj.table), obj.table


def quiet_rerun(sb, db, **kw) -> None:
    """A sync with no edits in between writes nothing on either side."""
    sb.reset_requests()
    sync = run_sync(sb, db.schema, **kw)
    assert sb.requests()["writes"] == 0
    assert sum(c.writes for c in sync.counts.values()) == 0, sync.counts


def test_first_run_copies_capsule_and_a_second_writes_nothing(sandbox, schema):
    sync = run_sync(sandbox, schema.schema)
    assert_equal_sides(sandbox, schema)
    assert sync.counts["parties"].database_inserted == len(sandbox.state()["parties"])
    assert sandbox.requests()["writes"] == 0
    quiet_rerun(sandbox, schema)


def test_changes_on_both_sides_move_to_the_other(sandbox, schema, tmp_path):
    session = api(sandbox)
    task = session.call(  # on its own: no deletion of a party cascades to it
        "POST", "/tasks", json_body={"task": {"description": "Standalone", "dueOn": "2030-01-01"}}
    ).json()["task"]["id"]
    run_sync(sandbox, schema.schema)
    state = sandbox.state()
    people = [p["id"] for p in state["parties"] if p["type"] == "person"]
    # Capsule, through its API: an edit, a new task, a deletion.
    session.call("PUT", f"/parties/{people[0]}", json_body={"party": {"about": "from Capsule"}})
    new_task = session.call(
        "POST", "/tasks", json_body={"task": {"description": "Call back", "dueOn": "2030-01-02"}}
    ).json()["task"]["id"]
    session.call("DELETE", f"/parties/{people[1]}")
    # The database, through SQL: an edit, new rows, a soft and a hard deletion.
    schema.update("parties", people[2], about="from the database", job_title="CTO")
    person = schema.insert("parties", type="person", first_name="Ada", last_name="Lovelace")
    note = schema.insert("notes", content="Met at the fair", party_id=people[2])
    opportunity = next(
        o for o in state["opportunities"] if o["party"]["id"] not in (people[1], people[3])
    )
    schema.update(
        "opportunities", opportunity["id"], name="Bigger deal", expected_close_on="2031-05-06"
    )
    schema.delete("parties", people[3])
    schema.delete("tasks", task, hard=True)
    log = tmp_path / "changes.jsonl"

    sync = run_sync(sandbox, schema.schema, log_path=str(log))

    assert_equal_sides(sandbox, schema)
    after = sandbox.state()
    # A row inserted in the database got its Capsule id written back: it never comes back twice.
    rows = {r["row_id"]: r for r in schema.select("parties")}
    created = rows[person]["capsule_id"]
    assert created in {p["id"] for p in after["parties"]}
    assert sum(1 for p in after["parties"] if p.get("lastName") == "Lovelace") == 1
    assert next(r["capsule_id"] for r in schema.select("notes", f"row_id = {note}")) in {
        e["id"] for e in after["entries"]
    }
    assert capsule_live(sandbox, "parties")[people[2]]["job_title"] == "CTO"
    deleted = {d["id"] for d in after["_deleted"]["parties"]}
    assert people[3] in deleted  # soft-deleted row -> deleted in Capsule
    assert task not in {t["id"] for t in after["tasks"]}  # hard-deleted row -> deleted too
    assert schema.select("parties", f"capsule_id = {people[1]}")[0]["deleted"]  # marked, kept
    assert new_task in schema.live("tasks")
    assert schema.live("opportunities")[opportunity["id"]]["expected_close_on"] == "2031-05-06"
    counts = sync.counts
    assert counts["parties"].capsule_created == 1 and counts["notes"].capsule_created == 1
    assert counts["parties"].conflicts == 0
    # Every Capsule write is in the change log, which `capsule undo` reads.
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {(x["stream"], x["operation"]) for x in lines} >= {
        ("parties", "INSERT"),
        ("parties", "UPDATE"),
        ("parties", "DELETE"),
        ("entries", "INSERT"),
        ("tasks", "DELETE"),
    }
    quiet_rerun(sandbox, schema)


@pytest.mark.parametrize("rule", ["capsule", "database", "newest"])
def test_a_field_changed_on_both_sides_is_resolved_by_the_rule_and_logged(sandbox, schema, rule):
    run_sync(sandbox, schema.schema, conflict=rule)
    people = [p["id"] for p in sandbox.state()["parties"] if p["type"] == "person"]
    older, newer = people[0], people[1]
    # `newest` compares Capsule's updatedAt (whole seconds) with the row's updated_at: the first
    # record changed in Capsule before the database, the second after.
    sandbox.touch("parties", older, about="capsule A")
    time.sleep(1.1)
    schema.update("parties", older, about="database A", first_name="Only-DB")
    schema.update("parties", newer, about="database B")
    time.sleep(1.1)
    sandbox.touch("parties", newer, about="capsule B")

    run_sync(sandbox, schema.schema, conflict=rule)

    assert_equal_sides(sandbox, schema)
    winners = {"capsule": ("capsule", "capsule"), "database": ("database", "database")}.get(
        rule, ("database", "capsule")
    )
    values = capsule_live(sandbox, "parties")
    for party, winner, letter in ((older, winners[0], "A"), (newer, winners[1], "B")):
        want = f"{'capsule' if winner == 'capsule' else 'database'} {letter}"
        assert values[party]["about"] == want
    assert values[older]["first_name"] == "Only-DB"  # changed on one side only: no conflict
    logged = {
        (c["capsule_id"], c["field"], c["capsule_value"], c["database_value"], c["winner"])
        for c in schema.conflicts()
    }
    assert logged == {
        (older, "about", "capsule A", "database A", winners[0]),
        (newer, "about", "capsule B", "database B", winners[1]),
    }
    quiet_rerun(sandbox, schema, conflict=rule)


@pytest.mark.parametrize("rule", ["capsule", "database"])
def test_deleted_on_one_side_and_edited_on_the_other(sandbox, schema, rule):
    run_sync(sandbox, schema.schema, conflict=rule)
    people = [p["id"] for p in sandbox.state()["parties"] if p["type"] == "person"]
    gone_in_capsule, gone_in_db = people[0], people[1]
    sandbox.delete_record("parties", gone_in_capsule)
    schema.update("parties", gone_in_capsule, about="edited in the database")
    sandbox.touch("parties", gone_in_db, about="edited in Capsule")
    schema.delete("parties", gone_in_db)

    run_sync(sandbox, schema.schema, conflict=rule)

    assert_equal_sides(sandbox, schema)
    live = capsule_live(sandbox, "parties")
    if rule == "capsule":
        assert gone_in_capsule not in live  # the deletion wins: the row is marked deleted
        assert live[gone_in_db]["about"] == "edited in Capsule"  # the edit wins: row restored
    else:
        assert gone_in_db not in live
        recreated = [p for p in live.values() if p["about"] == "edited in the database"]
        assert len(recreated) == 1  # recreated under a new id, written back to the row
    assert {(c["field"], c["winner"]) for c in schema.conflicts()} == {("(record)", rule)}
    quiet_rerun(sandbox, schema, conflict=rule)


def test_newest_lets_a_task_deleted_in_capsule_win_over_an_edit_in_the_database(sandbox, schema):
    """A task has no deletion time in Capsule: `newest` lets the deletion win, even over an edit
    made after it, and logs the conflict."""
    task = (
        api(sandbox)
        .call(
            "POST",
            "/tasks",
            json_body={"task": {"description": "Standalone", "dueOn": "2030-01-01"}},
        )
        .json()["task"]["id"]
    )
    run_sync(sandbox, schema.schema, conflict="newest")
    sandbox.delete_record("tasks", task)
    time.sleep(0.05)
    schema.update("tasks", task, description="edited after the deletion")

    run_sync(sandbox, schema.schema, conflict="newest")

    assert task not in capsule_live(sandbox, "tasks")
    assert schema.select("tasks", f"capsule_id = {task}")[0]["deleted"]
    assert [(c["field"], c["winner"]) for c in schema.conflicts()] == [("(record)", "capsule")]
    assert_equal_sides(sandbox, schema)
    quiet_rerun(sandbox, schema, conflict="newest")


def test_a_row_that_breaks_capsules_rules_is_kept_and_reported(sandbox, schema):
    run_sync(sandbox, schema.schema)
    row = schema.insert("parties", type="person", first_name="NoLastName")
    sandbox.reset_requests()
    sync = run_sync(sandbox, schema.schema)
    assert sync.counts["parties"].rejected == 1
    assert sandbox.requests()["writes"] == 0
    assert schema.select("parties", f"row_id = {row}")[0]["capsule_id"] is None
    schema.conn.execute(
        f'UPDATE "{schema.schema}".parties SET last_name = %s WHERE row_id = %s', ["Fixed", row]
    )
    sync = run_sync(sandbox, schema.schema)
    assert sync.counts["parties"].capsule_created == 1
    assert_equal_sides(sandbox, schema)


def test_the_command_line(sandbox, schema, tmp_path):
    config = tmp_path / "sync.json"
    config.write_text(json.dumps({"access_token": TOKEN, "api_url": sandbox.url}))

    def capsule_sync(*args, env=None):
        return subprocess.run(
            [str(Path(sys.executable).parent / "capsule"), "sync", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
        )

    done = capsule_sync("--config", str(config), "--schema", schema.schema, "--objects", "parties")
    assert done.returncode == 0, done.stderr
    assert "capsule sync: done" in done.stderr
    assert schema.live("parties") == capsule_live(sandbox, "parties")
    tasks = schema.conn.execute("SELECT to_regclass(%s)", [f"{schema.schema}.tasks"]).fetchone()
    assert tasks == (None,)  # --objects parties: no other table
    # The schema is tied to the account it was synced with.
    schema.conn.execute(
        f'UPDATE "{schema.schema}"._sync_account SET account = %s', ["other.example"]
    )
    other = capsule_sync("--config", str(config), "--schema", schema.schema, "--objects", "parties")
    assert other.returncode == 1
    last = other.stderr.strip().splitlines()[-1]
    assert last.startswith(f"capsule sync: error: schema {schema.schema} is synced with account")
    assert "other.example, not " in last

    config.write_text(json.dumps({"access_token": TOKEN, "conflcit": "capsule"}))
    wrong = capsule_sync("--config", str(config))
    assert wrong.returncode == 1
    last = wrong.stderr.strip().splitlines()[-1]
    assert last.startswith("capsule sync: error: unknown setting `conflcit` in the config;")
    assert "did you mean `conflict`?" in last
    assert "Traceback" not in wrong.stderr
    assert TOKEN not in wrong.stderr
    # A misspelt CAPSULE_SYNC_* variable (how Meltano passes settings) is refused the same way;
    # Meltano's extras (CAPSULE_SYNC__*) and the settings' own variables pass.
    config.write_text(json.dumps({"access_token": TOKEN, "api_url": sandbox.url}))
    misspelt = {"CAPSULE_SYNC_CONFLCIT": "database", "CAPSULE_SYNC__EXTRA": "x"}
    wrong = capsule_sync("--config", str(config), "--schema", schema.schema, env=misspelt)
    assert wrong.returncode == 1, wrong.stderr
    assert wrong.stderr.strip().splitlines() == [
        "capsule sync: error: environment variable CAPSULE_SYNC_CONFLCIT names no setting of "
        "capsule sync; did you mean CAPSULE_SYNC_CONFLICT? Nothing was done; `capsule sync "
        "--help` lists the settings"
    ]
    shown = capsule_sync("--help").stdout  # what the refusal points to lists every setting
    assert "CAPSULE_SYNC_<NAME>" in shown
    assert all(f"  {name}  " in shown for name in ("conflict", "database_url", "change_log_path"))
    meltano_like = {"CAPSULE_SYNC_CONFLICT": "database", "CAPSULE_SYNC__EXTRA": "x"}
    fine = capsule_sync("--config", str(config), "--schema", schema.schema, env=meltano_like)
    assert "CAPSULE_SYNC" not in fine.stderr and "names no setting" not in fine.stderr
    assert "is synced with account other.example" in fine.stderr  # past the settings' check
    config.write_text(json.dumps({"access_token": TOKEN, "objects": ["parties", "emails"]}))
    wrong = capsule_sync("--config", str(config))
    assert wrong.returncode == 1 and "'emails' is not one of" in wrong.stderr
    unreachable = {
        "access_token": TOKEN,
        "api_url": sandbox.url,
        "database_url": "host=127.0.0.1 port=1 connect_timeout=3 password=pg-secret-7",
    }
    config.write_text(json.dumps(unreachable))
    wrong = capsule_sync("--config", str(config))
    assert wrong.returncode == 1, wrong.stderr
    assert wrong.stderr.strip().startswith("capsule sync: error: cannot reach PostgreSQL")
    assert len(wrong.stderr.strip().splitlines()) == 1
    assert "pg-secret-7" not in wrong.stderr and TOKEN not in wrong.stderr
