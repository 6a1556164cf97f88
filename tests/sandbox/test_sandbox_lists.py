"""Endpoint-specific list behaviour (the known traps) and catalogue-driven routes."""

import dataclasses

from tap_capsule import catalogue
from tap_capsule.catalogue import INTEGER, STRING, CapsuleObject
from tap_capsule.sandbox import Sandbox


def listed(session, url, key, **params):
    return session.get(url, params={"perPage": 100, **params}).json()[key]


def test_tasks_default_to_open_only(sandbox, sandbox_http):
    session = sandbox_http()
    assert {t["status"] for t in listed(session, sandbox.url + "/tasks", "tasks")} == {"OPEN"}
    every = listed(session, sandbox.url + "/tasks", "tasks", status="open,Completed,PENDING")
    assert {t["status"] for t in every} == {"OPEN", "COMPLETED", "PENDING"}
    assert len(every) == len(sandbox.state()["tasks"])


def test_boards_hide_deleted_unless_status_all(sandbox, sandbox_http):
    session = sandbox_http()
    active = listed(session, sandbox.url + "/boards", "boards")
    every = listed(session, sandbox.url + "/boards", "boards", status="all")
    assert not any(b["deleted"] for b in active)
    assert any(b["deleted"] for b in every) and len(every) == len(sandbox.state()["boards"])


def test_stages_hide_archived_and_deleted_board_stages(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    deleted_boards = {b["id"] for b in state["boards"] if b["deleted"]}
    # Capsule's Stage records carry no archived flag: the sandbox's state knows which are.
    archived = {s["id"] for s in state["stages"] if s["archived"]}
    active = listed(session, sandbox.url + "/stages", "stages")
    assert archived and not {s["id"] for s in active} & archived
    assert not any("archived" in s for s in active)
    assert not any(s["board"]["id"] in deleted_boards for s in active)
    all_status = listed(session, sandbox.url + "/stages", "stages", status="all")
    assert {s["id"] for s in all_status} & archived
    assert not any(s["board"]["id"] in deleted_boards for s in all_status)
    every = listed(
        session, sandbox.url + "/stages", "stages", status="all", includeOnDeletedBoard="true"
    )
    assert len(every) == len(state["stages"])


def test_track_definitions_by_type(sandbox, sandbox_http):
    session = sandbox_http()
    url = sandbox.url + "/trackdefinitions"
    assert {d["captureRule"] for d in listed(session, url, "trackDefinitions")} == {
        "CASEFILE",
        "OPPORTUNITY",
    }
    assert {d["captureRule"] for d in listed(session, url, "trackDefinitions", type="kases")} == {
        "CASEFILE"
    }
    assert {
        d["captureRule"] for d in listed(session, url, "trackDefinitions", type="opportunities")
    } == {"OPPORTUNITY"}


def test_legacy_milestones_cover_only_the_oldest_active_pipeline(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    active = [p for p in state["pipelines"] if not p["deleted"]]
    assert len(active) == 2 and len(state["pipelines"]) == 3
    # The archived pipeline is the oldest of all: /milestones must still skip it.
    assert min(state["pipelines"], key=lambda p: p["createdAt"])["deleted"]
    legacy = listed(session, sandbox.url + "/milestones", "milestones")
    oldest = min(active, key=lambda p: p["createdAt"])
    # Each item names its pipeline, as Capsule's own client reads it: the oldest active one.
    assert legacy and {m["pipeline"]["id"] for m in legacy} == {oldest["id"]}
    per_pipeline = [
        m
        for p in state["pipelines"]
        for m in listed(session, f"{sandbox.url}/pipelines/{p['id']}/milestones", "milestones")
    ]
    assert len(per_pipeline) == len(state["milestones"]) > len(legacy)
    assert all("pipelineId" not in m for m in per_pipeline)  # Capsule sends pipeline{id,name}


def test_closed_opportunities_have_lost_reasons(sandbox_factory):
    state = sandbox_factory(scale=120, seed=5).state()
    lost = {m["id"] for m in state["milestones"] if m["complete"] and m["probability"] == 0}
    opps = [o for o in state["opportunities"] if o["milestone"]["id"] in lost]
    assert opps and all(o["lostReason"] and o["closedOn"] for o in opps)


def test_child_list_of_missing_parent_is_404(sandbox, sandbox_http):
    session = sandbox_http()
    for path in (
        "/opportunities/1/tracks",
        "/kases/1/parties",
        "/pipelines/1/milestones",
        "/parties/1/entries",
        "/parties/1/opportunities",
    ):
        response = session.get(sandbox.url + path)
        assert response.status_code == 404, path
        assert response.json() == {"message": "Could not find resource"}


def test_tracks_and_additional_parties_lists(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    track = state["opportunity_tracks"][0]
    tracks = listed(
        session, f"{sandbox.url}/opportunities/{track['opportunityId']}/tracks", "tracks"
    )
    assert track["id"] in [t["id"] for t in tracks]
    assert all("opportunityId" not in t for t in tracks)
    link = state["opportunity_parties"][0]
    parties = listed(
        session, f"{sandbox.url}/opportunities/{link['opportunityId']}/parties", "parties"
    )
    assert link["partyId"] in [p["id"] for p in parties]


def test_reference_lists_and_extras(sandbox, sandbox_http):
    session = sandbox_http()
    assert listed(session, sandbox.url + "/titles", "personTitles")[0].keys() == {"id", "title"}
    assert {"name", "alpha2Code", "alpha3Code", "numericCode"} == set(
        listed(session, sandbox.url + "/countries", "countries")[0]
    )
    activity = {
        a["id"]: a["name"] for a in listed(session, sandbox.url + "/activitytypes", "activityTypes")
    }
    assert activity[-1] == "Note" and activity[-2] == "Meeting" and activity[-3] == "Call"
    assert session.get(sandbox.url + "/users/current").json()["user"]["id"] == 1
    assert set(session.get(sandbox.url + "/site").json()["site"]) == {"url", "subdomain", "name"}
    org = next(p for p in sandbox.state()["parties"] if p["type"] == "organisation")
    people = listed(session, f"{sandbox.url}/parties/{org['id']}/people", "parties")
    assert all(p["organisation"]["id"] == org["id"] for p in people)
    assert session.get(f"{sandbox.url}/activitytypes/-1").json()["activityType"]["name"] == "Note"


def test_tag_and_field_definition_ids_are_reused_across_entities(sandbox):
    state = sandbox.state()
    assert {t["id"] for t in state["party_tags"]} & {t["id"] for t in state["case_tags"]}
    assert {f["id"] for f in state["party_custom_fields"]} & {
        f["id"] for f in state["opportunity_custom_fields"]
    }


def test_a_new_catalogue_entry_gets_routes_and_generic_rows(
    monkeypatch, sandbox_http, sandbox_token
):
    widgets = CapsuleObject(
        stream="widgets",
        path="/widgets",
        list_key="widgets",
        item_key="widget",
        schema={"id": INTEGER, "name": STRING, "owner": catalogue.USER_REF, **catalogue.TIMESTAMPS},
        replication_key="updatedAt",
        operations=catalogue.ALL_OPERATIONS,
    )
    parts = dataclasses.replace(
        widgets,
        stream="widget_parts",
        path="/widgets/{widgetId}/parts",
        list_key="parts",
        item_key="part",
        parent="widgets",
        parent_key="widgetId",
        item_path="/parts/{id}",
        create_path="/parts",
        schema={"id": INTEGER, "label": STRING, "widgetId": INTEGER},
    )
    monkeypatch.setattr(catalogue, "OBJECTS", (*catalogue.OBJECTS, widgets, parts))
    with Sandbox(token=sandbox_token, scale=20, seed=1) as sb:
        session = sandbox_http()
        rows = listed(session, sb.url + "/widgets", "widgets")
        assert len(rows) >= 3 and all(r["name"] and r["owner"]["id"] for r in rows)
        one = session.get(f"{sb.url}/widgets/{rows[0]['id']}").json()["widget"]
        assert one == rows[0]
        parts_list = listed(session, f"{sb.url}/widgets/{rows[0]['id']}/parts", "parts")
        assert parts_list and all("widgetId" not in p for p in parts_list)
        created = session.post(sb.url + "/widgets", json={"widget": {"name": "New"}})
        assert created.status_code == 201 and created.json()["widget"]["name"] == "New"
        part = session.post(
            sb.url + "/parts", json={"part": {"label": "P", "widget": {"id": rows[0]["id"]}}}
        )
        assert part.status_code == 201
        assert sb.state()["widget_parts"][-1]["widgetId"] == rows[0]["id"]
