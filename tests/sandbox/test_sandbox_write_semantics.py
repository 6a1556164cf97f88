"""Capsule's write semantics as its documentation and live-verified clients record them.

A case PUT that names only the owner clears the team; a track's definition and parent are
write-only; custom titles have no GET by id and no PUT; a boolean custom field refuses null;
nested rows go with `{"id": rowId, "_delete": true}`; contact lists merge; only notes, with an
explicit type, are created; additional parties answer 204; settings lists have DELETE.
"""

import pytest


def org(session, sandbox, name="Semantics Ltd", **extra):
    response = session.post(
        sandbox.url + "/parties", json={"party": {"type": "organisation", "name": name, **extra}}
    )
    assert response.status_code == 201, response.text
    return response.json()["party"]


def test_case_put_with_owner_alone_clears_the_team(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    team, user = state["teams"][0], state["users"][0]
    party = state["parties"][0]["id"]
    kase = session.post(
        sandbox.url + "/kases",
        json={
            "kase": {
                "name": "Team case",
                "party": {"id": party},
                "owner": {"id": user["id"]},
                "team": {"id": team["id"]},
            }
        },
    ).json()["kase"]
    assert kase["team"]["id"] == team["id"]
    url = f"{sandbox.url}/kases/{kase['id']}"
    both = session.put(
        url, json={"kase": {"owner": {"id": user["id"]}, "team": {"id": team["id"]}}}
    )
    assert both.json()["kase"]["team"]["id"] == team["id"]  # owner and team together: kept
    alone = session.put(url, json={"kase": {"owner": {"id": state["users"][1]["id"]}}})
    assert alone.status_code == 200
    assert alone.json()["kase"]["team"] is None
    assert session.get(url).json()["kase"]["team"] is None


def test_party_put_with_owner_alone_keeps_the_team_unless_configured(sandbox_factory, sandbox_http):
    session = sandbox_http()
    for clears, expected in (((), True), (("kase", "party"), False)):
        sb = sandbox_factory(scale=5, seed=2, owner_clears_team=clears)
        state = sb.state()
        team, user = state["teams"][0], state["users"][1]
        party = org(session, sb, team={"id": team["id"]}, owner={"id": user["id"]})
        after = session.put(
            f"{sb.url}/parties/{party['id']}", json={"party": {"owner": {"id": user["id"]}}}
        ).json()["party"]
        assert (after["team"] is not None) is expected, clears


def test_track_definition_and_parent_are_write_only(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    definition = next(d for d in state["track_definitions"] if d["captureRule"] == "OPPORTUNITY")
    opp = state["opportunities"][0]
    created = session.post(
        sandbox.url + "/tracks",
        json={"track": {"definition": {"id": definition["id"]}, "opportunity": {"id": opp["id"]}}},
    )
    assert created.status_code == 201
    track = created.json()["track"]
    url = f"{sandbox.url}/tracks/{track['id']}"
    answers = [
        track,
        session.get(url).json()["track"],
        session.put(url, json={"track": {"description": "New"}}).json()["track"],
        *session.get(f"{sandbox.url}/opportunities/{opp['id']}/tracks").json()["tracks"],
    ]
    for answer in answers:
        assert not {"definition", "opportunity", "kase", "opportunityId"} & set(answer), answer
    assert answers[2]["description"] == "New"


def test_custom_titles_list_create_delete_only(sandbox, sandbox_http):
    session = sandbox_http()
    created = session.post(sandbox.url + "/titles", json={"personTitle": {"title": "Sir"}})
    assert created.status_code == 201
    title = created.json()["personTitle"]
    assert "Sir" in [
        t["title"] for t in session.get(sandbox.url + "/titles").json()["personTitles"]
    ]
    url = f"{sandbox.url}/titles/{title['id']}"
    assert session.get(url).status_code == 405
    assert session.put(url, json={"personTitle": {"title": "Dame"}}).status_code == 405
    assert session.delete(url).status_code == 204
    assert "Sir" not in [t["title"] for t in sandbox.state()["custom_titles"]]


def test_boolean_custom_field_refuses_null_and_goes_with_delete(sandbox, sandbox_http):
    session = sandbox_http()
    newsletter = next(d for d in sandbox.state()["party_custom_fields"] if d["type"] == "boolean")
    party = org(session, sandbox)
    url = f"{sandbox.url}/parties/{party['id']}?embed=fields"
    ref = {"definition": {"id": newsletter["id"]}}
    fields = session.put(url, json={"party": {"fields": [{**ref, "value": True}]}}).json()["party"][
        "fields"
    ]
    row = next(f for f in fields if f["definition"]["id"] == newsletter["id"])
    refused = session.put(url, json={"party": {"fields": [{**ref, "value": None}]}})
    assert refused.status_code == 422
    (err,) = refused.json()["errors"]
    assert "invalid type for field" in err["message"] and err["field"] == "fields"
    gone = session.put(url, json={"party": {"fields": [{"id": row["id"], "_delete": True}]}})
    assert newsletter["id"] not in {f["definition"]["id"] for f in gone.json()["party"]["fields"]}


ROWS = {
    "emailAddresses": {"type": "Work", "address": "row@example.com"},
    "phoneNumbers": {"type": "Work", "number": "+44 1"},
    "addresses": {"type": "Office", "street": "1 Row St", "country": "United Kingdom"},
    "websites": {"service": "URL", "address": "https://row.example.com"},
}


@pytest.mark.parametrize("key", [*ROWS, "tags", "fields"])
def test_nested_rows_are_removed_with_underscore_delete(sandbox, sandbox_http, key):
    session = sandbox_http()
    party = org(session, sandbox)
    url = f"{sandbox.url}/parties/{party['id']}?embed=tags,fields"
    if key == "tags":
        first, second = [{"name": "Row tag A"}], [{"name": "Row tag B"}]
    elif key == "fields":
        defs = {d["name"]: d for d in sandbox.state()["party_custom_fields"]}
        first = [{"definition": {"id": defs["Notes"]["id"]}, "value": "a"}]
        second = [{"definition": {"id": defs["Employees"]["id"]}, "value": 3}]
    else:
        first, second = [ROWS[key]], [{**ROWS[key], "type": "Home"}]
    session.put(url, json={"party": {key: first}})
    rows = session.put(url, json={"party": {key: second}}).json()["party"][key]
    assert len(rows) == 2  # the second PUT appended
    doomed = rows[0]["id"]
    after = session.put(url, json={"party": {key: [{"id": doomed, "_delete": True}]}})
    assert after.status_code == 200
    assert [r["id"] for r in after.json()["party"][key]] == [rows[1]["id"]]


def test_contact_lists_merge_and_an_empty_list_changes_nothing(sandbox, sandbox_http):
    session = sandbox_http()
    sandbox.set_clock("2026-03-01T00:00:00Z")
    party = org(session, sandbox, emailAddresses=[{"address": "a@example.com"}])
    sandbox.set_clock("2026-03-02T00:00:00Z")
    url = f"{sandbox.url}/parties/{party['id']}"
    same = session.put(url, json={"party": {"emailAddresses": [], "websites": []}}).json()["party"]
    assert same["updatedAt"] == "2026-03-01T00:00:00Z"
    assert [e["address"] for e in same["emailAddresses"]] == ["a@example.com"]
    more = session.put(url, json={"party": {"emailAddresses": [{"address": "b@example.com"}]}})
    assert [e["address"] for e in more.json()["party"]["emailAddresses"]] == [
        "a@example.com",
        "b@example.com",
    ]


@pytest.mark.parametrize(
    "entry,status,message",
    [
        ({"content": "No type"}, 422, "type is required"),
        ({"type": "email", "content": "An email"}, 422, "only notes can be created"),
        ({"type": "task", "content": "A task"}, 422, "only notes can be created"),
        ({"type": "note", "content": "A note"}, 201, None),
    ],
)
def test_entry_type_is_required_and_only_notes_are_created(
    sandbox, sandbox_http, entry, status, message
):
    party = sandbox.state()["parties"][0]["id"]
    response = sandbox_http().post(
        sandbox.url + "/entries", json={"entry": {**entry, "party": {"id": party}}}
    )
    assert response.status_code == status, response.text
    if message:
        assert {"message": message, "resource": "entry", "field": "type"} in response.json()[
            "errors"
        ]
    else:
        assert response.json()["entry"]["type"] == "note"


@pytest.mark.parametrize("parent,stream", [("opportunities", "opportunities"), ("kases", "cases")])
def test_additional_party_post_and_delete_answer_204_empty(sandbox, sandbox_http, parent, stream):
    session = sandbox_http()
    state = sandbox.state()
    url = f"{sandbox.url}/{parent}/{state[stream][0]['id']}/parties/{state['parties'][-2]['id']}"
    for method in ("POST", "DELETE"):
        response = session.request(method, url)
        assert response.status_code == 204 and response.content == b"", method
        assert "Content-Type" not in response.headers


@pytest.mark.parametrize(
    "path,stream", [("/milestones", "milestones"), ("/categories", "categories"),
                    ("/activitytypes", "activity_types"), ("/lostreasons", "lost_reasons")],
)  # fmt: skip
def test_settings_lists_have_delete(sandbox, sandbox_http, path, stream):
    rid = sandbox.state()[stream][-1]["id"]
    session = sandbox_http()
    assert session.delete(f"{sandbox.url}{path}/{rid}").status_code == 204
    assert rid not in {r["id"] for r in sandbox.state()[stream]}
    assert session.get(f"{sandbox.url}{path}/{rid}").status_code == 404
