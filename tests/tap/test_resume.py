"""A first sync killed three times resumes from its checkpoints: nothing lost, one page re-read.

The real `tap-capsule` CLI is killed (SIGKILL) after it delivered N records; the next run gets the
last STATE the killed one delivered, as a Singer target would have saved it. The union of all runs'
records equals a clean run's, per stream; each resume sends again at most one page per stream,
and asks Capsule (the sandbox, counting requests) only for the pages the checkpoint did not cover.
"""

from __future__ import annotations

import collections
import json
import signal
import subprocess
import typing as t

import pytest

from tests.tap.conftest import TAP, discover, select

PAGE = 4
STREAMS = {
    "parties",
    "opportunities",
    "opportunity_parties",
    "cases",
    "case_parties",
    "entries",
    "tasks",
}
LIST_PATHS = {
    "parties": "GET /parties",
    "opportunities": "GET /opportunities",
    "entries": "GET /entries",
    "tasks": "GET /tasks",
}


class Run(t.NamedTuple):
    records: list[tuple[str, dict]]
    state: dict
    requests: dict[str, int]
    killed: bool
    messages: list[dict]  # RECORD and ACTIVATE_VERSION messages, in order


def key_of(stream: str, record: dict) -> tuple:
    if stream in {"opportunity_parties", "case_parties"}:
        parent = "opportunityId" if stream.startswith("opportunity") else "caseId"
        return stream, record[parent], record["partyId"]
    return stream, record["id"]


def comparable(record: dict) -> dict:
    """A restricted record's tombstone carries its run's own time: compare that it is one."""
    if "_sdc_deleted_at" in record and record.get("updatedAt") is None:
        return {**record, "_sdc_deleted_at": "restricted"}
    return record


@pytest.fixture
def resumable_tap(tmp_path, sandbox_factory, sandbox_token):
    sandbox = sandbox_factory(scale=30, seed=7)
    # entries_mode recent: with full (and ACTIVATE_VERSION on) every run sends every entry by
    # design, which would hide what a resume sends again.
    config = {
        "access_token": sandbox_token,
        "api_url": sandbox.url,
        "page_size": PAGE,
        "entries_mode": "recent",
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    catalog = discover(config_path)
    counter = iter(range(100))

    def run(state: dict | None, kill_after: int | None = None, streams: set[str] = STREAMS) -> Run:
        catalog_path = tmp_path / f"catalog{next(counter)}.json"
        catalog_path.write_text(json.dumps(select(catalog, streams)))
        command = [TAP, "--config", str(config_path), "--catalog", str(catalog_path)]
        if state:
            state_path = tmp_path / f"state{next(counter)}.json"
            state_path.write_text(json.dumps(state))
            command += ["--state", str(state_path)]
        sandbox.reset_requests()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert process.stdout is not None
        records: list[tuple[str, dict]] = []
        messages: list[dict] = []
        last_state = state or {}
        killed = False
        for line in process.stdout:
            message = json.loads(line)
            if message["type"] == "STATE":
                last_state = message["value"]
            elif message["type"] == "ACTIVATE_VERSION":
                messages.append(message)
            elif message["type"] == "RECORD":
                messages.append(message)
                records.append((message["stream"], message["record"]))
                if kill_after is not None and len(records) >= kill_after:
                    process.send_signal(signal.SIGKILL)
                    killed = True
                    break
        process.stdout.close()
        process.wait(timeout=120)
        if not killed:
            assert process.returncode == 0
        return Run(records, last_state, sandbox.requests()["by_path"], killed, messages)

    return run


def test_a_first_sync_killed_three_times_resumes_with_nothing_lost(resumable_tap):
    clean = resumable_tap(None)
    clean_records = {key_of(s, r): comparable(r) for s, r in clean.records}
    assert {s for s, _ in clean.records} >= {"parties", "opportunity_parties", "entries", "tasks"}

    runs: list[Run] = []
    state: dict = {}
    for kill_after in (23, 37, 61):
        run = resumable_tap(state, kill_after=kill_after)
        assert run.killed, "the tap ended before the kill: use fewer records per run"
        runs.append(run)
        state = run.state
    checkpoints = [
        (stream, entry["checkpoint"])
        for stream, entry in state["bookmarks"].items()
        if "checkpoint" in entry
    ]
    assert checkpoints, "the last kill left no checkpoint to resume from"
    final = resumable_tap(state)
    runs.append(final)

    # Nothing lost: the union of the four runs is the clean run, per stream and record.
    union = {key_of(s, r): comparable(r) for run in runs for s, r in run.records}
    assert union == clean_records

    # Each resume sent again at most one page per stream.
    seen: set[tuple] = set()
    for number, run in enumerate(runs):
        again = collections.Counter(
            k[0] for k in (key_of(s, r) for s, r in run.records) if k in seen
        )
        if number:
            assert all(n <= PAGE for n in again.values()), (number, again)
        seen |= {key_of(s, r) for s, r in run.records}

    # The final run asked only for the pages its checkpoints did not cover (plus the one re-read).
    for stream, checkpoint in checkpoints:
        if stream in LIST_PATHS and checkpoint["phase"] == "list":
            path = LIST_PATHS[stream]
            assert final.requests[path] == clean.requests[path] - (checkpoint["page"] - 1)

    # The STATE stays small: one checkpoint per stream in progress, a page of parent ids at most.
    for _, checkpoint in checkpoints:
        assert len(checkpoint.get("done", ())) <= PAGE
    assert all("checkpoint" not in entry for entry in final.state["bookmarks"].values())


def test_a_child_stream_read_killed_three_times_reads_each_parent_once_more_at_most(
    resumable_tap,
):
    """Kills while links are read per opportunity: a resume skips the parents already done."""
    clean = resumable_tap(None, streams={"opportunities", "opportunity_parties"})
    clean_links = {key_of(s, r) for s, r in clean.records if s == "opportunity_parties"}
    assert len(clean_links) > PAGE
    runs, state = [], {}
    for _ in range(3):
        run = resumable_tap(state, kill_after=6, streams={"opportunities", "opportunity_parties"})
        assert run.killed
        runs.append(run)
        state = run.state
        done = state["bookmarks"].get("opportunity_parties", {}).get("checkpoint")
        assert done is None or len(done["done"]) <= PAGE
    final = resumable_tap(state, streams={"opportunities", "opportunity_parties"})
    runs.append(final)
    union = {key_of(s, r): comparable(r) for run in runs for s, r in run.records}
    assert union == {key_of(s, r): comparable(r) for s, r in clean.records}
    # The last run reads the parent pages from its checkpoint on, and the links of each
    # parent there but those the killed run finished: none twice, none left out.
    page = state["bookmarks"]["opportunities"]["checkpoint"]["page"]
    parents = [
        r["id"] for s, r in clean.records if s == "opportunities" and "_sdc_deleted_at" not in r
    ]
    done = state["bookmarks"].get("opportunity_parties", {}).get("checkpoint", {"done": []})["done"]
    expected = [p for p in parents[(page - 1) * PAGE :] if p not in done]
    assert link_requests(final) == len(expected)
    # Each resume sent again the links of one parent at most (the one it was reading).
    seen: set[tuple] = set()
    for run in runs:
        again = [
            key_of(s, r)
            for s, r in run.records
            if s == "opportunity_parties" and key_of(s, r) in seen
        ]
        assert len({k[1] for k in again}) <= 1, again
        seen |= {key_of(s, r) for s, r in run.records}


def link_requests(run: Run) -> int:
    return sum(
        n
        for path, n in run.requests.items()
        if path.startswith("GET /opportunities/") and path.endswith("/parties")
    )


def test_a_resumed_read_sets_the_first_runs_start_as_its_limit(resumable_tap):
    """Records changed while the killed run ran are the next run's: the signpost carries over."""
    killed = resumable_tap(None, kill_after=30)
    entries = killed.state["bookmarks"]["entries"]
    assert entries["checkpoint"]["phase"] == "list"
    signpost = entries["checkpoint"]["signpost"]
    final = resumable_tap(killed.state)
    assert final.state["bookmarks"]["entries"]["replication_key_value"] <= signpost


def test_a_checkpoint_of_another_read_is_not_resumed(resumable_tap):
    """A bookmark or page size that changed makes a different read: it starts from page 1."""
    killed = resumable_tap(None, kill_after=30)
    state = json.loads(json.dumps(killed.state))
    state["bookmarks"]["entries"]["checkpoint"]["perPage"] = PAGE + 1
    final = resumable_tap(state)
    clean = resumable_tap(None)
    assert final.requests["GET /entries"] == clean.requests["GET /entries"]


def test_a_resumed_whole_table_read_keeps_its_table_version(resumable_tap):
    """A loader that drops rows of older versions at ACTIVATE_VERSION keeps the killed runs' rows.

    The first sync is a whole-table read: its rows carry a table version, and an ACTIVATE_VERSION
    follows its last record. The resumed runs use the first run's version, so the rows the killed
    runs sent are not dropped as stale.
    """
    clean = resumable_tap(None)
    runs, state = [], {}
    for kill_after in (23, 37):
        run = resumable_tap(state, kill_after=kill_after)
        runs.append(run)
        state = run.state
    runs.append(resumable_tap(state))
    table: dict[tuple, int | None] = {}  # what a versioned loader holds: key -> row version
    for run in runs:
        for message in run.messages:
            stream = message["stream"]
            if message["type"] == "RECORD":
                table[key_of(stream, message["record"])] = message.get("version")
            else:
                activated = message["version"]
                table = {k: v for k, v in table.items() if k[0] != stream or (v or 0) >= activated}
    assert set(table) == {key_of(s, r) for s, r in clean.records}
