"""`capsule undo` on a `capsule sync` run's change log reverts exactly that run's Capsule writes.

The oracle is the sandbox's own store before the sync: after the undo, every synced object holds
the same values again (a record the sync deleted comes back with its values, under a new id), what
the sync created is gone, and no record the sync did not write was touched. The next sync then
carries the reverted values into the database, and both sides agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sync_helpers import TOKEN, capsule_live, run_sync

from tap_capsule.api_client import CapsuleSession
from target_capsule.account.sync.objects import OBJECTS

pytestmark = pytest.mark.postgres

BIN = Path(sys.executable).parent


def values_of(sb) -> dict[str, Counter]:
    """Per object, the multiset of synced values (no ids: a recreated record has a new one)."""
    return {
        obj.table: Counter(
            json.dumps(v, sort_keys=True) for v in capsule_live(sb, obj.table).values()
        )
        for obj in OBJECTS
    }


def stamps(sb) -> dict[tuple[str, int], str]:
    state = sb.state()
    return {
        (stream, r["id"]): r.get("updatedAt")
        for stream in ("parties", "opportunities", "cases", "tasks", "entries")
        for r in state.get(stream, [])
    }


def applied(log: Path) -> set[tuple[str, str, int]]:
    """The writes a change log says were applied: (stream, operation, id)."""
    if not log.exists():
        return set()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return {(x["stream"], x["operation"], x["id"]) for x in lines if x.get("status") == "applied"}


def capsule(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "capsule"), *args], capture_output=True, text=True, timeout=180
    )


def test_undo_reverts_exactly_the_writes_of_a_sync(sandbox, schema, tmp_path):
    session = CapsuleSession({"access_token": TOKEN, "api_url": sandbox.url})
    standalone = session.call(
        "POST", "/tasks", json_body={"task": {"description": "Standalone", "dueOn": "2030-01-01"}}
    ).json()["task"]["id"]
    config = tmp_path / "sync.json"
    log = tmp_path / "sync-changes.jsonl"
    config.write_text(
        json.dumps(
            {
                "access_token": TOKEN,
                "api_url": sandbox.url,
                "schema": schema.schema,
                "change_log_path": str(log),
            }
        )
    )
    first = capsule("sync", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert applied(log) == set()  # the first run copies Capsule into the database only
    before, before_stamps = values_of(sandbox), stamps(sandbox)

    state = sandbox.state()
    people = [p["id"] for p in state["parties"] if p["type"] == "person"]
    opportunity = state["opportunities"][0]["id"]
    schema.update("parties", people[0], about="edited in SQL", job_title="CFO")
    schema.update("opportunities", opportunity, name="Renamed in SQL")
    schema.insert("parties", type="person", first_name="Grace", last_name="Hopper")
    schema.insert("tasks", description="Inserted in SQL", due_on="2031-02-03")
    schema.insert("notes", content="A note from SQL", party_id=people[1])
    schema.delete("tasks", standalone)
    synced = capsule("sync", "--config", str(config))
    assert synced.returncode == 0, synced.stderr
    writes = applied(log)
    assert {(s, o) for s, o, _ in writes} == {
        ("parties", "UPDATE"),
        ("opportunities", "UPDATE"),
        ("parties", "INSERT"),
        ("tasks", "INSERT"),
        ("entries", "INSERT"),
        ("tasks", "DELETE"),
    }
    assert values_of(sandbox) != before

    target_config = tmp_path / "target.json"
    target_config.write_text(json.dumps({"access_token": TOKEN, "api_url": sandbox.url}))
    undone = capsule("undo", "--config", str(target_config), str(log))
    assert undone.returncode == 0, undone.stderr
    report = json.loads(undone.stdout)
    assert report["totals"]["reverted"] == len(writes), report
    assert report["totals"]["failed"] == report["totals"]["skipped"] == 0

    # Capsule holds what it held before the sync: the same values, object by object.
    assert values_of(sandbox) == before
    assert capsule_live(sandbox, "parties")[people[0]]["about"] == next(
        p for p in state["parties"] if p["id"] == people[0]
    ).get("about")
    # Nothing the sync did not write was touched (the only records whose stamp moved are the two
    # it updated; the deleted task is back under a new id).
    after_stamps = stamps(sandbox)
    moved = {k for k, v in before_stamps.items() if k in after_stamps and after_stamps[k] != v}
    assert moved == {("parties", people[0]), ("opportunities", opportunity)}
    assert ("tasks", standalone) not in after_stamps

    # The next sync carries the reverted values into the database: both sides agree.
    again = capsule("sync", "--config", str(config))
    assert again.returncode == 0, again.stderr
    for obj in OBJECTS:
        assert schema.live(obj.table) == capsule_live(sandbox, obj.table), obj.table
    assert not schema.select("parties", "last_name = 'Hopper' AND NOT deleted")
    assert run_sync(sandbox, schema.schema).counts["parties"].writes == 0
