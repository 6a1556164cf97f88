"""tap-capsule through its CLI against the Capsule sandbox."""

from __future__ import annotations

import collections
import json
import math

import pytest
import requests

from tap_capsule import catalogue

STREAMS = [o.stream for o in catalogue.OBJECTS]
# `tombstones: stream`, the default: one stream of deletions per object with a deleted feed.
DELETED = {catalogue.deleted_stream(o) for o in catalogue.OBJECTS if o.deleted_path}


def expected_count(state: dict, stream: str) -> int:
    return len(state[stream])


# One request per parent: not selected unless asked for.
OPT_IN = {"opportunity_parties", "case_parties", "opportunity_tracks", "case_tracks"}


def live(records: list[dict]) -> list[dict]:
    """The records that are not tombstones (a first sync reads the deleted feeds too)."""
    return [r for r in records if not r.get("_sdc_deleted_at")]


def without_sync_times(records: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Records with the one run-dependent value blanked: a restricted record's tombstone time,
    which is the sync's own time since Capsule gives none."""
    return {
        stream: [
            {**r, "_sdc_deleted_at": "(sync time)"}
            if r.get("_sdc_deleted_at") and r.get("updatedAt") is None
            else r
            for r in rows
        ]
        for stream, rows in records.items()
    }


def test_full_sync_emits_every_record_of_every_stream(sandbox, tap_config, run_tap):
    run = run_tap(tap_config, streams=set(STREAMS) | DELETED)  # no `tombstones` setting
    state = sandbox.state()
    live = {s: run.records.get(s, []) for s in STREAMS}
    assert not [r for s in STREAMS for r in live[s] if "_sdc_deleted_at" in r]  # no tombstone
    counts = {s: len(live[s]) for s in STREAMS}
    expected = {s: expected_count(state, s) for s in STREAMS}
    assert counts == expected
    assert all(expected[s] > 0 for s in STREAMS), "the sandbox seeds every object"
    # No record is emitted twice within one stream.
    for stream in STREAMS:
        keys = [tuple(r[k] for k in catalogue.get(stream).key_properties) for r in live[stream]]
        assert len(keys) == len(set(keys)), stream
    # A first sync reads the deleted feeds too, into `<stream>_deleted`: a full refresh over
    # existing downstream data marks what was deleted since it was loaded.
    for stream in ("parties", "opportunities", "cases"):
        deleted = {r["id"] for r in run.records[f"{stream}_deleted"]}
        gone = {d["id"] for d in state["_deleted"][stream]} | {
            r["id"] for r in state["_restricted"][stream]
        }
        assert gone and deleted == gone, stream


def test_default_selection_leaves_out_the_per_parent_streams(sandbox, tap_config, run_tap):
    found = run_tap(tap_config, discover=True)
    catalog = json.loads(found.stdout)
    by_default = {
        e["tap_stream_id"]: next(
            m["metadata"].get("selected-by-default") for m in e["metadata"] if m["breadcrumb"] == []
        )
        for e in catalog["streams"]
    }
    assert {s for s, on in by_default.items() if not on} == OPT_IN
    # Deletions are streams of their own by default (`tombstones: stream`), selected too.
    assert set(by_default) == set(STREAMS) | DELETED
    sandbox.reset_requests()
    run = run_tap(tap_config, catalog=catalog)  # the discovered catalog as it is
    assert set(run.records) == (set(STREAMS) - OPT_IN) | DELETED
    routes = sandbox.requests()["by_route"]
    assert not [r for r in routes if "{opportunityId}" in r or "{caseId}" in r]


def test_child_streams_setting_selects_them_for_a_plain_pipe(sandbox, tap_config, run_tap):
    # A backup pipes the tap without a catalog: `child_streams` is its way to include them.
    run = run_tap({**tap_config, "child_streams": True, "tombstones": "off"})
    assert set(run.records) == set(STREAMS)
    state = sandbox.state()
    assert len(run.records["opportunity_tracks"]) == len(state["opportunity_tracks"])


def test_date_times_as_text_changes_the_schema_only(sandbox, tap_config, run_tap):
    # The default run is the judge: same records, same bookmarks; only the declared formats differ.
    streams = {"parties", "parties_deleted", "tasks", "pipelines"}
    plain = run_tap({**tap_config, "tombstones": "stream"}, streams=streams)
    text = run_tap(
        {**tap_config, "tombstones": "stream", "date_times_as_text": True}, streams=streams
    )

    # A restricted record's tombstone carries the sync's own time: each run has its own.
    def same_across_runs(records: dict) -> dict:
        return {
            stream: [{**r, "deletedAt": "(this sync)"} if r.get("restricted") else r for r in rows]
            for stream, rows in records.items()
        }

    assert same_across_runs(text.records) == same_across_runs(plain.records)
    # ... and so does the deleted stream's bookmark, which they advance; the rest must be equal.
    plain_marks, text_marks = plain.state["bookmarks"], text.state["bookmarks"]
    assert plain_marks.keys() == text_marks.keys()
    for stream, mark in plain_marks.items():
        if stream != "parties_deleted":
            assert text_marks[stream] == mark, stream
    for stream in ("parties", "parties_deleted"):
        declared = plain.schemas[stream]["properties"]
        as_text = text.schemas[stream]["properties"]
        formatted = {k for k, v in declared.items() if v.get("format") == "date-time"}
        assert formatted, stream
        assert not {k for k, v in as_text.items() if v.get("format") == "date-time"}, stream
        assert {k: {**v, "format": "date-time"} for k, v in as_text.items() if k in formatted} == {
            k: declared[k] for k in formatted
        }
    # The bookmark still works as a time: a second run reads only what changed since.
    again = run_tap(
        {**tap_config, "tombstones": "stream", "date_times_as_text": True},
        streams={"parties"},
        state=text.state,
    )
    assert len(again.records.get("parties", [])) < len(plain.records["parties"])


def test_records_keep_every_field_capsule_returns(sandbox, tap_config, run_tap):
    run = run_tap(tap_config, streams={"parties", "tasks"})
    stored = {p["id"]: p for p in sandbox.state()["parties"]}
    for record in live(run.records["parties"]):
        raw = stored[record["id"]]
        for key in ("emailAddresses", "addresses", "phoneNumbers", "websites", "tags", "fields"):
            assert record.get(key) == raw.get(key), key
    statuses = {t["status"] for t in run.records["tasks"]}
    assert statuses == {"OPEN", "COMPLETED", "PENDING"}


def test_custom_fields_are_typed_columns(sandbox, tap_config, run_tap):
    run = run_tap(tap_config, streams={"parties", "opportunities", "cases"})
    props = run.schemas["parties"]["properties"]["custom_fields"]["properties"]
    definitions = sandbox.state()["party_custom_fields"]
    kinds = {d["type"] for d in definitions}
    assert kinds >= {"text", "date", "list", "boolean", "number", "link"}
    number_cols = [n for n, s in props.items() if s["type"][0] == "number"]
    assert number_cols and any(s["type"][0] == "boolean" for s in props.values())
    assert any(s.get("format") == "date" for s in props.values())
    seen_number = False
    for record in run.records["parties"]:
        for col, value in (record.get("custom_fields") or {}).items():
            assert col in props
            if col in number_cols and value is not None:
                assert isinstance(value, (int, float)) and not isinstance(value, bool)
                seen_number = True
    assert seen_number, "some party carries a number custom value (returned as a string)"
    for stream in ("opportunities", "cases"):
        assert run.schemas[stream]["properties"]["custom_fields"]["properties"]


def test_a_definition_created_after_discovery_does_not_break_the_sync(
    sandbox, tap_config, run_tap, select_streams
):
    catalog = run_tap(tap_config, discover=True).schemas["catalog"]
    # A Capsule user adds a field definition and fills it on a party after discovery.
    headers = {"Authorization": f"Bearer {tap_config['access_token']}"}
    created = requests.post(
        f"{sandbox.url}/parties/fields/definitions",
        headers=headers,
        json={"definition": {"name": "Added later", "type": "number"}},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    def_id = created.json()["definition"]["id"]
    party = sandbox.state()["parties"][0]
    updated = requests.put(
        f"{sandbox.url}/parties/{party['id']}",
        headers=headers,
        timeout=10,
        json={"party": {"fields": [{"definition": {"id": def_id}, "value": "5"}]}},
    )
    assert updated.status_code == 200, updated.text
    run = run_tap(tap_config, catalog=select_streams(catalog, {"parties"}))
    mine = next(r for r in run.records["parties"] if r["id"] == party["id"])
    assert any((f.get("definition") or {}).get("id") == def_id for f in mine["fields"])
    assert "added_later" not in mine["custom_fields"]
    assert "Run discovery again" in run.stderr


def test_second_run_emits_only_changes(sandbox, tap_config, run_tap):
    streams = {"parties", "opportunities", "cases", "tasks", "entries", "lost_reasons"}
    first = run_tap(tap_config, streams=streams)
    bookmark = first.state["bookmarks"]["parties"]["replication_key_value"]
    # The newest change read: an update, or a deletion from the deleted feed.
    changes = [p["updatedAt"] for p in sandbox.state()["parties"]]
    changes += [d["deletedAt"] for d in sandbox.state()["_deleted"]["parties"]]
    assert bookmark == max(changes)
    party = sandbox.state()["parties"][2]["id"]
    sandbox.touch("parties", party, about="edited later")
    task = sandbox.state()["tasks"][0]["id"]
    sandbox.touch("tasks", task, detail="edited task")
    second = run_tap(tap_config, streams=streams, state=first.state)
    boundary = {p["id"] for p in sandbox.state()["parties"] if p["updatedAt"] == bookmark}
    assert party in second.ids("parties")
    assert {r["id"] for r in live(second.records["parties"])} <= boundary | {party}
    assert second.ids("tasks") == [task]
    for stream in ("opportunities", "cases"):
        assert live(second.records.get(stream, [])) == [], stream
        state = sandbox.state()
        gone = {d["id"] for d in state["_deleted"][stream] + state["_restricted"][stream]}
        tombstones = {r["id"] for r in second.records.get(stream, [])}
        assert tombstones <= gone, stream
    # Lists without `since` are read whole anyway: with ACTIVATE_VERSION (the default) every
    # record is emitted, so the loader can tell what is gone; without it, only what changed.
    state = sandbox.state()
    for stream in ("entries", "lost_reasons"):
        assert sorted(second.ids(stream)) == sorted(r["id"] for r in state[stream]), stream
    quiet = {**tap_config, "emit_activate_version_messages": False}
    third = run_tap(quiet, streams={"entries", "lost_reasons"}, state=second.state)
    assert third.ids("entries") == [] and third.ids("lost_reasons") == []


@pytest.mark.parametrize("stream", ["parties", "tasks"])  # server-side since; client filter
def test_changes_in_the_sync_second_are_never_lost(sandbox, tap_config, run_tap, stream):
    # Capsule's clock stands still inside one second: a record changes just before the sync,
    # the sync runs, then another record changes within that same second.
    sandbox.set_clock("2026-03-04T05:06:07Z")
    rows = sandbox.state()[stream]
    before, during = rows[0]["id"], rows[1]["id"]
    sandbox.touch(stream, before, **{"about" if stream == "parties" else "detail": "before"})
    first = run_tap(tap_config, streams={stream})
    assert before in first.ids(stream)
    sandbox.touch(stream, during, **{"about" if stream == "parties" else "detail": "during"})
    second = run_tap(tap_config, streams={stream}, state=first.state)
    assert during in second.ids(stream)
    # Once Capsule's clock has moved on, the boundary second is re-sent once, then never again.
    sandbox.set_clock(None)
    third = run_tap(tap_config, streams={stream}, state=second.state)
    assert set(third.ids(stream)) == {before, during}
    fourth = run_tap(tap_config, streams={stream}, state=third.state)
    assert fourth.ids(stream) == []


def test_bookmark_never_passes_the_sync_start_on_capsules_clock(sandbox, tap_config, run_tap):
    # Records stamped "in the future" of the sync (changed while it ran) are read again next time.
    sandbox.set_clock("2030-01-01T00:00:00Z")
    sandbox.touch("parties", sandbox.state()["parties"][0]["id"], about="x")
    sandbox.set_clock("2029-12-31T23:59:00Z")  # Capsule's clock at sync start
    run = run_tap(tap_config, streams={"parties"})
    assert run.state["bookmarks"]["parties"]["replication_key_value"] <= "2029-12-31T23:58:59Z"


def test_start_date_is_honoured(sandbox, tap_config, run_tap):
    parties = sorted(p["updatedAt"] for p in sandbox.state()["parties"])
    start = parties[len(parties) // 2]
    run = run_tap({**tap_config, "start_date": start}, streams={"parties", "tasks"})
    assert live(run.records["parties"])
    assert all(r["updatedAt"] >= start for r in live(run.records["parties"]))
    assert len(live(run.records["parties"])) == sum(1 for u in parties if u >= start)
    deleted = [r for r in run.records["parties"] if r["updatedAt"] is not None]
    assert all(r["_sdc_deleted_at"] >= start for r in deleted if r.get("_sdc_deleted_at"))
    assert all(r["updatedAt"] >= start for r in run.records.get("tasks", []))


def test_deletions_arrive_in_deleted_streams_by_default(sandbox, tap_config, run_tap):
    streams = {"parties", "opportunities", "cases"} | DELETED
    first = run_tap(tap_config, streams=streams)
    state = sandbox.state()
    gone_party = state["parties"][3]["id"]
    hidden_case = state["cases"][0]["id"]
    sandbox.delete_record("parties", gone_party)
    sandbox.restrict_record("cases", hidden_case)
    second = run_tap(tap_config, streams=streams, state=first.state)
    # The deletions since the first run (and at most its boundary second again), and nothing
    # inline in the objects' streams.
    deleted = {r["id"]: r for r in second.records["parties_deleted"]}
    assert deleted[gone_party]["restricted"] is False and deleted[gone_party]["deletedAt"]
    assert set(deleted) - {gone_party} <= {r["id"] for r in first.records["parties_deleted"]}
    assert (hidden_case, True) in [
        (r["id"], r["restricted"]) for r in second.records["cases_deleted"]
    ]
    for stream in ("parties", "opportunities", "cases"):
        assert not [r for r in second.records.get(stream, []) if "_sdc_deleted_at" in r]
    # The deleted feed is the `_deleted` stream's cost, not the object's own stream's.
    assert second.table["parties"][2] == 1
    assert second.table["parties_deleted"] == (len(deleted), len(deleted), 1)


def test_deletions_arrive_as_tombstones(sandbox, tap_config, run_tap):
    tap_config = {**tap_config, "tombstones": "inline"}
    first = run_tap(tap_config, streams={"parties", "opportunities", "cases"})
    state = sandbox.state()
    gone_party = state["parties"][3]["id"]
    gone_opp = state["opportunities"][0]["id"]
    hidden_case = state["cases"][0]["id"]
    sandbox.delete_record("parties", gone_party)
    sandbox.delete_record("opportunities", gone_opp)
    sandbox.restrict_record("cases", hidden_case)
    second = run_tap(tap_config, streams={"parties", "opportunities", "cases"}, state=first.state)
    tomb = {r["id"]: r for r in second.records["parties"] if r.get("_sdc_deleted_at")}
    assert gone_party in tomb
    assert set(tomb[gone_party]) == {"id", "_sdc_deleted_at", "updatedAt"}
    assert gone_opp in {
        r["id"] for r in second.records["opportunities"] if r.get("_sdc_deleted_at")
    }
    assert hidden_case in {r["id"] for r in second.records["cases"] if r.get("_sdc_deleted_at")}
    # The deleted feed's requests count towards the stream's own progress line.
    assert second.table["parties"][2] == 2
    assert second.table["parties"][1] == len(tomb)  # the table counts the tombstones apart
    for stream in ("parties", "opportunities", "cases"):
        assert "_sdc_deleted_at" in second.schemas[stream]["properties"]


def test_listing_parties_costs_one_request_per_hundred(sandbox_factory, sandbox_token, run_tap):
    sb = sandbox_factory(token=sandbox_token, scale=250, seed=3)
    config = {"access_token": sandbox_token, "api_url": sb.url}
    n = len(sb.state()["parties"])
    sb.reset_requests()
    run = run_tap(config, streams={"parties"})
    assert len(live(run.records["parties"])) == n
    counts = sb.requests()["by_path"]
    assert counts["GET /parties"] == math.ceil(n / 100)
    # Progress a person can follow: the stream's own requests (the list and its deleted feed)
    # and the budget left.
    assert counts["GET /parties/deleted"] == 1
    emitted = len(run.records["parties"])
    assert run.table["parties"][0] == emitted
    assert run.table["parties"][2] == math.ceil(n / 100) + 1
    assert "rate-limit budget:" in run.stderr
    # Discovery reads the three custom-field definition lists, nothing else.
    other = {k: v for k, v in counts.items() if k not in {"GET /parties", "GET /parties/deleted"}}
    assert set(other) <= {
        f"GET {catalogue.get(s).path}"
        for s in ("party_custom_fields", "opportunity_custom_fields", "case_custom_fields")
    }


def test_child_streams_keep_one_small_state_entry(sandbox, tap_config, run_tap):
    run = run_tap(
        tap_config,
        streams={
            "opportunities",
            "opportunity_tracks",
            "opportunity_parties",
            "pipelines",
            "milestones",
        },
    )
    assert run.records["opportunity_tracks"] and run.records["opportunity_parties"]
    for stream in ("opportunity_tracks", "opportunity_parties", "milestones"):
        entry = run.state["bookmarks"].get(stream, {})
        assert "partitions" not in entry or entry["partitions"] == [], stream
        assert len(str(entry)) < 300, entry
    n_opps = len(sandbox.state()["opportunities"])
    by_route = sandbox.requests()["by_route"]
    assert by_route["GET /opportunities/{opportunityId}/tracks"] == n_opps
    assert by_route["GET /opportunities/{opportunityId}/parties"] == n_opps
    # One SCHEMA per stream in the run, not one per parent.
    schemas = collections.Counter(
        m["stream"] for m in map(json.loads, run.stdout.splitlines()) if m["type"] == "SCHEMA"
    )
    assert schemas["opportunity_tracks"] == schemas["opportunity_parties"] == 1
    # Each stream's figures: one METRIC line of requests and a closing line with the same count.
    for child in ("opportunity_tracks", "opportunity_parties"):
        assert run.table[child] == (len(run.records[child]), 0, n_opps)


def test_a_parent_gone_mid_run_is_skipped_with_a_warning(sandbox, sandbox_token, caplog):
    from tap_capsule.tap import TapCapsule

    tap = TapCapsule(
        config={"access_token": sandbox_token, "api_url": sandbox.url}, validate_config=True
    )
    stream = tap.streams["opportunity_tracks"]
    assert list(stream.get_records({"opportunityId": 987654321})) == []
    assert any("is gone (404)" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "faults",
    [
        {"throttle_next": 3},
        {"error_every": 4, "error_status": 503},
        {"malformed_every": 5},
        {"drop_every": 6},
    ],
)
def test_faults_do_not_change_the_output(sandbox_factory, sandbox_token, run_tap, faults):
    streams = {"parties", "opportunities", "tasks", "opportunity_tracks", "pipelines", "milestones"}
    clean_sb = sandbox_factory(token=sandbox_token, scale=120, seed=11)
    clean = run_tap({"access_token": sandbox_token, "api_url": clean_sb.url}, streams=streams)
    faulty_sb = sandbox_factory(token=sandbox_token, scale=120, seed=11)
    faulty_sb.set_faults(**faults)
    faulty = run_tap({"access_token": sandbox_token, "api_url": faulty_sb.url}, streams=streams)
    assert without_sync_times(faulty.records) == without_sync_times(clean.records)
    assert faulty.state["bookmarks"].keys() == clean.state["bookmarks"].keys()


def test_a_bad_token_ends_the_run_with_a_fix_and_without_the_token(sandbox, run_tap):
    bad = "wrong-token-c0ffee"
    run = run_tap({"access_token": bad, "api_url": sandbox.url}, check=False, discover=True)
    assert run.returncode != 0
    assert "access_token" in run.stderr and "401" in run.stderr
    assert bad not in run.stdout + run.stderr


def test_oauth_refresh_recovers_from_an_expired_token(sandbox_factory, run_tap, select_streams):
    sb = sandbox_factory(
        token="valid-token-aa11",
        scale=10,
        seed=2,
        client_id="cid",
        client_secret="csecret",
        refresh_token="refresh-bb22",
    )
    catalog = run_tap(
        {"access_token": "valid-token-aa11", "api_url": sb.url}, discover=True
    ).schemas["catalog"]
    run = run_tap(
        {
            "access_token": "expired-token-cc33",
            "refresh_token": "refresh-bb22",
            "client_id": "cid",
            "client_secret": "csecret",
            "api_url": sb.url,
        },
        catalog=select_streams(catalog, {"parties", "tasks"}),
    )
    assert len(run.records["tasks"]) > 0  # the second stream reuses the refreshed token
    assert len(live(run.records["parties"])) == len(sb.state()["parties"])
    for secret in ("expired-token-cc33", "refresh-bb22", "csecret"):
        assert secret not in run.stdout + run.stderr


def test_rotating_refresh_tokens_need_the_cache_across_processes(
    sandbox_factory, run_tap, tmp_path
):
    sb = sandbox_factory(
        token="valid-token-aa11",
        scale=10,
        seed=2,
        client_id="cid",
        client_secret="csecret",
        refresh_token="refresh-bb22",
    )
    config = {
        "access_token": "expired-token-cc33",
        "refresh_token": "refresh-bb22",
        "client_id": "cid",
        "client_secret": "csecret",
        "api_url": sb.url,
    }
    # Without a cache the discovery process rotates the refresh token and the sync can't refresh.
    catalog = run_tap(config, discover=True).schemas["catalog"]
    lost = run_tap(config, catalog=catalog, check=False)
    assert lost.returncode != 0 and "already rotated" in lost.stderr
    # With one, the sync starts from the pair the discovery process received.
    sb2 = sandbox_factory(
        token="valid-token-aa11",
        scale=10,
        seed=2,
        client_id="cid",
        client_secret="csecret",
        refresh_token="refresh-bb22",
    )
    cached = {**config, "api_url": sb2.url, "oauth_token_cache": str(tmp_path / "t.json")}
    catalog = run_tap(cached, discover=True).schemas["catalog"]
    run = run_tap(cached, catalog=catalog)
    assert len(live(run.records["parties"])) == len(sb2.state()["parties"])
    for secret in ("refresh-bb22", "csecret", "expired-token-cc33"):
        assert secret not in run.stdout + run.stderr + lost.stderr


def test_plain_http_to_a_remote_host_is_refused(run_tap):
    run = run_tap(
        {"access_token": "t", "api_url": "http://capsule.example.com/api/v2"},
        check=False,
        discover=True,
    )
    assert run.returncode != 0
    assert "plain http://" in run.stderr


def test_no_output_ever_contains_the_token(sandbox, tap_config, run_tap, sandbox_token):
    sandbox.set_faults(error_every=7)
    run = run_tap(tap_config)
    assert sandbox_token not in run.stdout
    assert sandbox_token not in run.stderr
