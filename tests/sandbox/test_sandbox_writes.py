"""Write semantics: 201 + Location, PUT merges, 204 / 202 + job, cascades, links."""

import pytest


def org_payload(name="Write Test Ltd", **extra):
    return {"party": {"type": "organisation", "name": name, **extra}}


def test_post_is_201_with_location_and_full_record(sandbox, sandbox_http):
    session = sandbox_http()
    response = session.post(
        sandbox.url + "/parties",
        json=org_payload(
            emailAddresses=[{"type": "Work", "address": "hi@example.com"}], tags=[{"name": "vip"}]
        ),
    )
    assert response.status_code == 201
    party = response.json()["party"]
    assert response.headers["Location"] == f"{sandbox.url}/parties/{party['id']}"
    assert party["id"] > max(p["id"] for p in sandbox.state()["parties"] if p["id"] != party["id"])
    assert party["createdAt"] == party["updatedAt"]
    assert party["emailAddresses"][0]["address"] == "hi@example.com"
    assert isinstance(party["emailAddresses"][0]["id"], int)
    stored = session.get(response.headers["Location"], params={"embed": "tags"}).json()["party"]
    assert [t["name"] for t in stored["tags"]] == ["VIP"]  # matched case-insensitively
    assert sandbox.requests()["writes"] == 1


def test_put_merges_contacts_and_bumps_updated_at(sandbox, sandbox_http):
    session = sandbox_http()
    sandbox.set_clock("2026-01-01T00:00:00Z")
    party = session.post(
        sandbox.url + "/parties", json=org_payload(phoneNumbers=[{"number": "1"}])
    ).json()["party"]
    sandbox.set_clock("2026-01-02T00:00:00Z")
    url = f"{sandbox.url}/parties/{party['id']}"
    updated = session.put(url, json={"party": {"phoneNumbers": [{"number": "2"}]}}).json()["party"]
    assert [p["number"] for p in updated["phoneNumbers"]] == ["1", "2"]
    assert updated["name"] == "Write Test Ltd"  # omitted properties stay
    assert updated["updatedAt"] == "2026-01-02T00:00:00Z"
    first_row = updated["phoneNumbers"][0]["id"]
    after = session.put(url, json={"party": {"phoneNumbers": [{"id": first_row, "_delete": True}]}})
    assert [p["number"] for p in after.json()["party"]["phoneNumbers"]] == ["2"]


def test_noop_put_does_not_bump_updated_at(sandbox, sandbox_http):
    session = sandbox_http()
    sandbox.set_clock("2026-01-01T00:00:00Z")
    party = session.post(sandbox.url + "/parties", json=org_payload()).json()["party"]
    sandbox.set_clock("2026-05-05T00:00:00Z")
    url = f"{sandbox.url}/parties/{party['id']}"
    for body in ({"phoneNumbers": []}, {"name": "Write Test Ltd"}, {}):
        again = session.put(url, json={"party": body}).json()["party"]
        assert again["updatedAt"] == "2026-01-01T00:00:00Z", body


def test_put_tags_add_by_name_and_remove_by_id(sandbox, sandbox_http):
    session = sandbox_http()
    party = session.post(sandbox.url + "/parties", json=org_payload()).json()["party"]
    url = f"{sandbox.url}/parties/{party['id']}"
    tagged = session.put(url + "?embed=tags", json={"party": {"tags": [{"name": "Brand New Tag"}]}})
    tag = tagged.json()["party"]["tags"][0]
    assert tag["name"] == "Brand New Tag"
    assert tag["id"] in {d["id"] for d in sandbox.state()["party_tags"]}  # definition created
    cleared = session.put(
        url + "?embed=tags", json={"party": {"tags": [{"id": tag["id"], "_delete": True}]}}
    )
    assert cleared.json()["party"]["tags"] == []


def test_put_fields_by_definition_id_bare_id_and_name(sandbox, sandbox_http):
    session = sandbox_http()
    defs = {d["name"]: d for d in sandbox.state()["party_custom_fields"]}
    party = session.post(sandbox.url + "/parties", json=org_payload()).json()["party"]
    url = f"{sandbox.url}/parties/{party['id']}?embed=fields"
    body = {
        "fields": [
            {"definition": {"id": defs["Employees"]["id"]}, "value": 42},
            {"definition": defs["Newsletter"]["id"], "value": True},
            {"definition": {"name": "Notes"}, "value": "hello"},
        ]
    }
    fields = session.put(url, json={"party": body}).json()["party"]["fields"]
    values = {f["definition"]["name"]: f["value"] for f in fields}
    assert values == {"Employees": "42", "Newsletter": True, "Notes": "hello"}
    notes = next(f for f in fields if f["definition"]["name"] == "Notes")
    fields = session.put(
        url, json={"party": {"fields": [{"id": notes["id"], "_delete": True}]}}
    ).json()["party"]["fields"]
    assert "Notes" not in {f["definition"]["name"] for f in fields}
    bad = session.put(
        url,
        json={
            "party": {"fields": [{"definition": {"id": defs["Industry"]["id"]}, "value": "Nope"}]}
        },
    )
    assert bad.status_code == 422


def test_delete_party_goes_to_deleted_feed_404s_and_cascades(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    opp = state["opportunities"][0]
    pid = opp["party"]["id"]
    sandbox.set_clock("2026-04-04T04:04:04Z")
    response = session.delete(f"{sandbox.url}/parties/{pid}")
    assert response.status_code == 204 and response.content == b""
    assert session.get(f"{sandbox.url}/parties/{pid}").status_code == 404
    after = sandbox.state()
    assert {"id": pid, "deletedAt": "2026-04-04T04:04:04Z"} in after["_deleted"]["parties"]
    assert opp["id"] in {d["id"] for d in after["_deleted"]["opportunities"]}
    for stream in ("opportunities", "cases", "entries", "tasks"):
        assert not [r for r in after[stream] if (r.get("party") or {}).get("id") == pid], stream


def test_delete_tag_definition_is_202_with_job(sandbox, sandbox_http):
    session = sandbox_http()
    tag = sandbox.state()["party_tags"][0]
    response = session.delete(f"{sandbox.url}/parties/tags/{tag['id']}")
    assert response.status_code == 202
    job_url = response.headers["Location"]
    assert job_url.startswith(sandbox.url + "/jobs/")
    job = session.get(job_url).json()["job"]
    assert set(job) == {"id", "status", "progress", "action"}
    state = sandbox.state()
    assert all(tag["id"] not in {t["id"] for t in p["tags"]} for p in state["parties"])
    # Definition ids are per entity: the opportunity tag with the same id survives.
    assert tag["id"] in {t["id"] for t in state["opportunity_tags"]}


def test_delete_custom_field_definition_is_202(sandbox, sandbox_http):
    field = sandbox.state()["case_custom_fields"][0]
    response = sandbox_http().delete(f"{sandbox.url}/kases/fields/definitions/{field['id']}")
    assert response.status_code == 202 and "/jobs/" in response.headers["Location"]


def test_additional_parties_link_and_unlink(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    opp, party = state["opportunities"][0], state["parties"][-1]
    url = f"{sandbox.url}/opportunities/{opp['id']}/parties"
    linked = session.post(f"{url}/{party['id']}")
    assert linked.status_code == 204 and linked.content == b""  # Capsule: 204, empty body
    assert party["id"] in [p["id"] for p in session.get(url).json()["parties"]]
    assert session.delete(f"{url}/{party['id']}").status_code == 204
    assert party["id"] not in [p["id"] for p in session.get(url).json()["parties"]]
    assert session.delete(f"{url}/{party['id']}").status_code == 404
    assert session.post(f"{url}/999999999").status_code == 404


def test_tracks_create_update_delete(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    definition = next(d for d in state["track_definitions"] if d["captureRule"] == "CASEFILE")
    kase = state["cases"][0]
    response = session.post(
        sandbox.url + "/tracks?embed=task",
        json={
            "track": {
                "definition": {"id": definition["id"]},
                "kase": {"id": kase["id"]},
                "trackDateOn": "2026-02-01",
            }
        },
    )
    assert response.status_code == 201
    track = response.json()["track"]
    assert response.headers["Location"] == f"{sandbox.url}/tracks/{track['id']}"
    assert len(track["tasks"]) == len(definition["taskDefinitions"])
    assert track["id"] in [
        t["id"] for t in session.get(f"{sandbox.url}/kases/{kase['id']}/tracks").json()["tracks"]
    ]
    updated = session.put(
        f"{sandbox.url}/tracks/{track['id']}",
        json={"track": {"description": "Changed", "direction": "END_DATE"}},
    ).json()["track"]
    assert updated["description"] == "Changed" and updated["direction"] == track["direction"]
    assert session.delete(f"{sandbox.url}/tracks/{track['id']}").status_code == 204
    task_ids = {t["id"] for t in sandbox.state()["tasks"]}
    assert not task_ids & {t["id"] for t in track["tasks"]}


def test_users_are_update_only(sandbox, sandbox_http):
    session = sandbox_http()
    user = sandbox.state()["users"][0]
    assert session.post(sandbox.url + "/users", json={"user": {"name": "X"}}).status_code == 405
    assert session.delete(f"{sandbox.url}/users/{user['id']}").json() == {
        "message": "Method not allowed"
    }
    response = session.put(
        f"{sandbox.url}/users/{user['id']}", json={"user": {"timezone": "Europe/Paris"}}
    )
    assert response.status_code == 200 and response.json()["user"]["timezone"] == "Europe/Paris"


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/countries"),
        ("PUT", "/pipelines/100"),
        ("DELETE", "/teams/1"),
        ("PATCH", "/parties"),
    ],
)
def test_operations_missing_from_catalogue_are_405(sandbox, sandbox_http, method, path):
    response = sandbox_http().request(method, sandbox.url + path, json={"x": {}})
    assert response.status_code == 405
    assert response.json() == {"message": "Method not allowed"}


def test_unknown_path_is_404(sandbox, sandbox_http):
    response = sandbox_http().get(sandbox.url + "/widgets")
    assert response.status_code == 404
    assert response.json() == {"message": "Could not find resource"}


def test_task_completion_and_milestone_effects(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    task = session.post(
        sandbox.url + "/tasks", json={"task": {"description": "T", "dueOn": "2026-01-01"}}
    ).json()["task"]
    done = session.put(
        f"{sandbox.url}/tasks/{task['id']}", json={"task": {"status": "COMPLETED"}}
    ).json()["task"]
    assert done["status"] == "COMPLETED" and done["completedAt"]
    won = next(m for m in state["milestones"] if m["name"] == "Won")
    opp = state["opportunities"][0]
    closed = session.put(
        f"{sandbox.url}/opportunities/{opp['id']}",
        json={"opportunity": {"milestone": {"id": won["id"]}}},
    ).json()["opportunity"]
    assert closed["probability"] == 100 and closed["closedOn"]


def test_multi_get_parties(sandbox, sandbox_http):
    session = sandbox_http()
    ids = [p["id"] for p in sandbox.state()["parties"][:3]]
    body = session.get(f"{sandbox.url}/parties/{','.join(map(str, ids))}").json()
    assert [p["id"] for p in body["parties"]] == ids
    assert session.get(f"{sandbox.url}/parties/{ids[0]},1").status_code == 404
