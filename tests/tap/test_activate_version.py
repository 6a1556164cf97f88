"""ACTIVATE_VERSION: after every whole-table read, once per stream, after the stream's last record.

A whole-table read is one that emits every record of the stream (from `start_date`): the FULL_TABLE
lookups and definitions, the lists Capsule can't filter with `since` (entries, the settings lists)
on every run, tasks with `tasks_mode: full`, and every stream on a first sync or full refresh, the
link and track streams included. The records of such a read carry the table version; a loader drops
(or marks deleted) the rows of older versions when the message arrives.
"""

from __future__ import annotations

import collections
import json

import pytest

from tap_capsule.catalogue import OBJECTS

# Streams read in full on every run, whatever the bookmark.
EVERY_RUN = {o.stream for o in OBJECTS if not o.since and not o.parent} | {"milestones"}
# Streams read from their bookmark (or their parent's) on an incremental run.
INCREMENTAL = {"parties", "opportunities", "cases", "tasks"}
CHILDREN = {"opportunity_parties", "case_parties", "opportunity_tracks", "case_tracks"}
# `<stream>_deleted` (`tombstones: stream`, the default): whole on a first sync.
DELETED = {"parties_deleted", "opportunities_deleted", "cases_deleted"}


def messages(run) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines()]


def activations(run) -> dict[str, list[int]]:
    found = collections.defaultdict(list)
    for m in messages(run):
        if m["type"] == "ACTIVATE_VERSION":
            found[m["stream"]].append(m["version"])
    return dict(found)


def record_versions(run) -> dict[str, set]:
    found = collections.defaultdict(set)
    for m in messages(run):
        if m["type"] == "RECORD":
            found[m["stream"]].add(m.get("version"))
    return dict(found)


def assert_after_last_record(run, stream: str) -> None:
    kinds = [m["type"] for m in messages(run) if m.get("stream") == stream]
    activate = kinds.index("ACTIVATE_VERSION")
    assert "RECORD" not in kinds[activate:], f"{stream}: a record after ACTIVATE_VERSION"
    assert kinds.index("SCHEMA") < activate, f"{stream}: ACTIVATE_VERSION before its SCHEMA"


@pytest.fixture
def config(tap_config) -> dict:
    return {**tap_config, "child_streams": True}


def test_first_sync_activates_every_stream_once_after_its_records(config, run_tap):
    first = run_tap(config)
    found = activations(first)
    versions = record_versions(first)
    (version,) = {v for vs in found.values() for v in vs}  # one table version per run
    assert set(found) == EVERY_RUN | INCREMENTAL | CHILDREN | DELETED
    for stream, sent in found.items():
        assert sent == [version], stream  # once, even for a child stream read per parent
        assert_after_last_record(first, stream)
        assert versions.get(stream, {version}) == {version}, stream


def test_incremental_run_activates_only_the_streams_read_whole(sandbox, config, run_tap):
    first = run_tap(config)
    party = sandbox.state()["parties"][0]["id"]
    sandbox.touch("parties", party, about="changed")
    second = run_tap(config, state=first.state)
    found = activations(second)
    assert set(found) == EVERY_RUN
    (version,) = {v for vs in found.values() for v in vs}
    assert version > activations(first)["parties"][0]
    versions = record_versions(second)
    # Every record of a stream read whole, stamped; the incremental ones carry no version.
    state = sandbox.state()
    for stream in ("entries", "lost_reasons", "party_tags"):
        assert sorted(second.ids(stream)) == sorted(r["id"] for r in state[stream]), stream
        assert versions[stream] == {version}, stream
    assert versions["parties"] == {None}
    assert party in second.ids("parties")


def test_the_setting_turns_it_off(sandbox, config, run_tap):
    quiet = {**config, "emit_activate_version_messages": False}
    first = run_tap(quiet)
    assert activations(first) == {}
    assert {v for vs in record_versions(first).values() for v in vs} == {None}
    second = run_tap(quiet, state=first.state)
    assert second.ids("entries") == []  # client-filtered on the bookmark, as before


def test_tasks_mode_full_reads_every_task_and_activates(sandbox, config, run_tap):
    first = run_tap(config, streams={"tasks"})
    gone = sandbox.state()["tasks"][0]["id"]
    sandbox.delete_record("tasks", gone)
    incremental = run_tap(config, streams={"tasks"}, state=first.state)
    assert "tasks" not in activations(incremental)
    full = run_tap({**config, "tasks_mode": "full"}, streams={"tasks"}, state=first.state)
    assert "tasks" in activations(full)
    assert sorted(full.ids("tasks")) == sorted(t["id"] for t in sandbox.state()["tasks"])
    assert gone not in full.ids("tasks")


def test_stream_maps_activate_the_alias_and_skip_a_removed_stream(config, run_tap):
    maps = {"lost_reasons": {"__alias__": "reasons"}, "teams": None}
    run = run_tap({**config, "stream_maps": maps}, streams={"lost_reasons", "teams"})
    assert set(activations(run)) == {"reasons"}


def test_a_child_stream_without_parents_still_gets_its_schema_first(sandbox, config, run_tap):
    for opportunity in sandbox.state()["opportunities"]:
        sandbox.delete_record("opportunities", opportunity["id"])
    run = run_tap(config, streams={"opportunities", "opportunity_parties"})
    assert "opportunity_parties" in activations(run)
    assert_after_last_record(run, "opportunity_parties")
