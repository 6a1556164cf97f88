"""How the tap reads Capsule, shown on Capsule's own documented responses.

These are unit tests of the read path: requests-mock plays Capsule with the documented bodies from
tests/fixtures/capsule/, so each test can show one thing the sandbox cannot: a `Link` URL that drops
part of the query, a `/tasks` that ignores `since`, pipelines without `updatedAt`.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tap_capsule.tap import TapCapsule

API = "https://api.example.test/api/v2"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "capsule"


def documented(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def make_tap(monkeypatch, *, state: dict | None = None, **config) -> TapCapsule:
    definitions = tuple(documented("fields.definitions.list.json")["definitions"])
    monkeypatch.setattr(TapCapsule, "field_definitions", lambda self, stream: definitions)
    return TapCapsule(
        config={"access_token": "unit-token", "api_url": API, **config},
        state=state,
    )


def query(request) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(request.url).query).items()}


def bookmark(stream: str, value: str) -> dict:
    return {"bookmarks": {stream: {"replication_key": "updatedAt", "replication_key_value": value}}}


def test_tasks_send_since_and_are_still_filtered_when_capsule_ignores_it(
    monkeypatch, requests_mock
):
    # The documented /tasks answer, as a server that ignores `since` would send it: every task.
    requests_mock.get(f"{API}/tasks", json=documented("tasks.list.json"))
    tap = make_tap(monkeypatch, state=bookmark("tasks", "2016-01-01T00:00:00Z"))
    records = list(tap.streams["tasks"].get_records(None))
    sent = query(requests_mock.request_history[0])
    assert sent["since"] == "2016-01-01T00:00:00Z"
    assert sent["status"] == "open,completed,pending"  # all statuses, not only open ones
    # Task 493 (2015) is older than the bookmark: Capsule ignored `since`, the tap did not.
    assert {r["id"] for r in records} == {147248893, 80}


def test_next_pages_keep_the_first_query_when_the_link_drops_part_of_it(monkeypatch, requests_mock):
    first = documented("parties.list.json")
    requests_mock.get(
        f"{API}/parties",
        [
            {
                "json": {"parties": first["parties"][:2]},
                # A Link without embed, since or perPage: only the page number.
                "headers": {"Link": f'<{API}/parties?page=2>; rel="next"'},
            },
            {"json": {"parties": first["parties"][2:]}},
        ],
    )
    requests_mock.get(f"{API}/parties/deleted", json={"parties": [], "restrictedParties": []})
    tap = make_tap(monkeypatch, state=bookmark("parties", "2015-01-01T00:00:00Z"))
    records = list(tap.streams["parties"].get_records(None))
    assert len(records) == 3
    pages = [query(r) for r in requests_mock.request_history if r.path.endswith("/parties")]
    assert len(pages) == 2
    assert pages[1]["page"] == "2"
    for key in ("embed", "since", "perPage"):
        assert pages[1][key] == pages[0][key], key
    assert pages[0]["since"] == "2015-01-01T00:00:00Z"


def test_deleted_feed_pages_keep_since_when_the_link_drops_it(monkeypatch, requests_mock):
    feed = documented("parties.deleted.json")
    requests_mock.get(f"{API}/parties", json={"parties": []})
    requests_mock.get(
        f"{API}/parties/deleted",
        [
            {
                "json": {"parties": feed["parties"], "restrictedParties": []},
                "headers": {"Link": f'<{API}/parties/deleted?page=2>; rel="next"'},
            },
            {"json": {"parties": [], "restrictedParties": feed["restrictedParties"]}},
        ],
    )
    tap = make_tap(monkeypatch, tombstones="inline")  # a first sync: no bookmark, no start_date
    records = list(tap.streams["parties"].get_records(None))
    deleted = [query(r) for r in requests_mock.request_history if r.path.endswith("/deleted")]
    # /parties/deleted requires `since`: from the start of time on a first sync, on every page.
    assert [q["since"] for q in deleted] == ["2000-01-01T00:00:00Z"] * 2
    assert deleted[1]["page"] == "2"
    tombstones = {r["id"] for r in records if r.get("_sdc_deleted_at")}
    assert tombstones == {448354, 448371, 448426, 448427, 448428}


def test_first_sync_reads_deleted_feeds_from_start_date(monkeypatch, requests_mock):
    requests_mock.get(f"{API}/kases", json={"kases": []})
    requests_mock.get(f"{API}/kases/deleted", json=documented("kases.deleted.json"))
    tap = make_tap(monkeypatch, start_date="2015-12-01T00:00:00Z", tombstones="inline")
    records = list(tap.streams["cases"].get_records(None))
    deleted = next(r for r in requests_mock.request_history if r.path.endswith("/deleted"))
    assert query(deleted)["since"] == "2015-11-30T23:59:59Z"  # start_date is inclusive
    assert {r["id"]: r["_sdc_deleted_at"] for r in records if r["updatedAt"]} == {
        11: "2015-12-04T11:51:32Z"
    }


def test_documented_pipelines_without_updated_at_sync_with_archived_milestones(
    monkeypatch, requests_mock, capfd
):
    pipelines = documented("pipelines.list.json")
    requests_mock.get(f"{API}/pipelines", json=pipelines)
    milestones = documented("pipelines.milestones.list.json")["milestones"]
    for p in pipelines["pipelines"]:
        # Each pipeline's milestones (the documented ones, re-parented).
        body = {"milestones": [{**m, "id": m["id"] + p["id"]} for m in milestones]}
        requests_mock.get(f"{API}/pipelines/{p['id']}/milestones", json=body)
    tap = make_tap(monkeypatch)
    catalog = tap.catalog_dict
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = entry["tap_stream_id"] in {"pipelines", "milestones"}
    tap = TapCapsule(config={"access_token": "unit-token", "api_url": API}, catalog=catalog)
    tap.sync_all()
    messages = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    records = [m for m in messages if m["type"] == "RECORD"]
    emitted = {m["record"]["id"] for m in records if m["stream"] == "pipelines"}
    # The docs' pipelines have no updatedAt: every one is emitted, none crashes the bookmark.
    assert emitted == {11589, 11588, 11587}
    assert all("updatedAt" in m["record"] for m in records if m["stream"] == "pipelines")
    # Archived pipeline 11587 was listed (includeDeleted=true) and its milestones emitted.
    listed = [r for r in requests_mock.request_history if r.path.endswith("/pipelines")]
    assert listed and all(query(r).get("includeDeleted") == "true" for r in listed)
    parents = {m["record"]["pipelineId"] for m in records if m["stream"] == "milestones"}
    assert 11587 in parents


@pytest.mark.parametrize("mode", ["stream", "off"])
def test_tombstones_setting_keeps_them_out_of_the_object_stream(monkeypatch, requests_mock, mode):
    requests_mock.get(f"{API}/opportunities", json=documented("opportunities.list.json"))
    requests_mock.get(f"{API}/opportunities/deleted", json=documented("opportunities.deleted.json"))
    tap = make_tap(monkeypatch, tombstones=mode)
    records = list(tap.streams["opportunities"].get_records(None))
    assert {r["id"] for r in records} == {12, 13}
    assert not any(r.get("_sdc_deleted_at") for r in records)
    assert ("opportunities_deleted" in tap.streams) == (mode == "stream")
    if mode == "stream":
        deleted = list(tap.streams["opportunities_deleted"].get_records(None))
        assert deleted[0] == {"id": 15, "deletedAt": "2015-12-04T11:51:32Z", "restricted": False}
        assert deleted[1]["id"] == 16 and deleted[1]["restricted"] is True
