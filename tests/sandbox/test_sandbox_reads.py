"""Documented reads: search, structured filters, multi-get, `since` on tasks, archived pipelines,
an organisation's people for a person, and the site.
"""

import pytest


def ids_of(response, key):
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()[key]]


def test_party_search_matches_names_and_email_addresses(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    person = next(p for p in state["parties"] if p["type"] == "person")
    address = person["emailAddresses"][0]["address"]
    by_email = ids_of(
        session.get(sandbox.url + "/parties/search", params={"q": address.upper()}), "parties"
    )
    assert by_email == [person["id"]]
    org = next(p for p in state["parties"] if p["type"] == "organisation")
    word = org["name"].split()[1]
    by_name = ids_of(
        session.get(sandbox.url + "/parties/search", params={"q": word, "perPage": 100}), "parties"
    )
    assert org["id"] in by_name
    assert all(word.casefold() in str(p.get("name")).casefold() for p in state["parties"]
               if p["id"] in by_name and p["type"] == "organisation")  # fmt: skip


@pytest.mark.parametrize("path,stream,key", [("/opportunities", "opportunities", "opportunities"),
                                             ("/kases", "cases", "kases")])  # fmt: skip
def test_opportunity_and_case_search_by_name(sandbox, sandbox_http, path, stream, key):
    rec = sandbox.state()[stream][0]
    found = ids_of(
        sandbox_http().get(f"{sandbox.url}{path}/search", params={"q": rec["name"]}), key
    )
    assert rec["id"] in found
    wanted = rec["name"].casefold()
    assert all(wanted in r["name"].casefold() for r in sandbox.state()[stream] if r["id"] in found)


def run_filter(session, sandbox, entity, *conditions, **extra):
    body = {"filter": {"conditions": [dict(zip(("field", "operator", "value"), c, strict=True))
                                      for c in conditions], **extra}}  # fmt: skip
    return session.post(f"{sandbox.url}/{entity}/filters/results?perPage=100", json=body)


def test_party_filters_by_email_name_and_updated_on(sandbox, sandbox_http):
    session = sandbox_http()
    parties = sandbox.state()["parties"]
    person = next(p for p in parties if p["type"] == "person")
    address = person["emailAddresses"][0]["address"]
    found = ids_of(run_filter(session, sandbox, "parties", ("email", "is", address)), "parties")
    assert found == [person["id"]]
    assert person["id"] not in ids_of(
        run_filter(session, sandbox, "parties", ("email", "is not", address)), "parties"
    )
    day = sorted(p["updatedAt"][:10] for p in parties)[len(parties) // 2]
    after = ids_of(
        run_filter(session, sandbox, "parties", ("updatedOn", "is after", day)), "parties"
    )
    assert set(after) == {p["id"] for p in parties if p["updatedAt"][:10] > day}
    both = ids_of(
        run_filter(
            session, sandbox, "parties", ("updatedOn", "is after", day), ("type", "is", "person")
        ),
        "parties",
    )
    assert set(both) == {
        p["id"] for p in parties if p["updatedAt"][:10] > day and p["type"] == "person"
    }
    contains = ids_of(run_filter(session, sandbox, "parties", ("name", "contains", "e")), "parties")
    assert contains and len(contains) < len(parties)


def test_filters_on_opportunities_and_cases(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    won = ids_of(
        run_filter(session, sandbox, "opportunities", ("probability", "is greater than", 90)),
        "opportunities",
    )
    assert set(won) == {o["id"] for o in state["opportunities"] if o["probability"] > 90}
    closed = ids_of(run_filter(session, sandbox, "kases", ("status", "is", "closed")), "kases")
    assert set(closed) == {k["id"] for k in state["cases"] if k["status"] == "CLOSED"}


def test_filter_order_by_and_paging(sandbox, sandbox_http):
    session = sandbox_http()
    response = run_filter(
        session, sandbox, "parties", ("type", "is", "organisation"),
        orderBy=[{"field": "name", "direction": "descending"}],
    )  # fmt: skip
    names = [p["name"] for p in response.json()["parties"]]
    assert names == sorted(names, key=str.casefold, reverse=True) and len(names) > 2
    first = session.post(
        f"{sandbox.url}/parties/filters/results?perPage=2",
        json={"filter": {"conditions": [{"field": "type", "operator": "is", "value": "person"}]}},
    )
    assert 'rel="next"' in first.headers["Link"] and len(first.json()["parties"]) == 2


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"filter": {"conditions": [{"field": "name", "operator": "is after", "value": "x"}]}},
         "is after"),
        ({"filter": {"conditions": [{"field": "updatedOn", "operator": "is", "value": "soon"}]}},
         "date"),
        ({"conditions": []}, "filter"),
    ],
)  # fmt: skip
def test_bad_filters_are_400_naming_the_problem(sandbox, sandbox_http, body, needle):
    response = sandbox_http().post(sandbox.url + "/parties/filters/results", json=body)
    assert response.status_code == 400
    assert needle in response.json()["message"]


@pytest.mark.parametrize(
    "path,stream,key",
    [("/parties", "parties", "parties"), ("/opportunities", "opportunities", "opportunities"),
     ("/kases", "cases", "kases"), ("/tasks", "tasks", "tasks")],
)  # fmt: skip
def test_multi_get_up_to_ten_ids(sandbox, sandbox_http, path, stream, key):
    session = sandbox_http()
    wanted = [r["id"] for r in sandbox.state()[stream][:3]]
    joined = ",".join(map(str, wanted))
    assert ids_of(session.get(f"{sandbox.url}{path}/{joined}"), key) == wanted
    assert session.get(f"{sandbox.url}{path}/{joined},999999").status_code == 404
    eleven = ",".join(str(wanted[0]) for _ in range(11))
    assert session.get(f"{sandbox.url}{path}/{eleven}").status_code == 400


def test_tasks_take_since(sandbox, sandbox_http):
    tasks = sandbox.state()["tasks"]
    cut = sorted(t["updatedAt"] for t in tasks)[len(tasks) // 2]
    found = ids_of(
        sandbox_http().get(
            sandbox.url + "/tasks",
            params={"since": cut, "status": "open,completed,pending", "perPage": 100},
        ),
        "tasks",
    )
    assert set(found) == {t["id"] for t in tasks if t["updatedAt"] > cut}
    assert 0 < len(found) < len(tasks)


def test_archived_pipelines_only_with_include_deleted(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    archived = [p for p in state["pipelines"] if p["deleted"]]
    assert archived
    plain = ids_of(session.get(sandbox.url + "/pipelines"), "pipelines")
    every = ids_of(session.get(sandbox.url + "/pipelines?includeDeleted=true"), "pipelines")
    assert not set(plain) & {p["id"] for p in archived}
    assert set(every) == {p["id"] for p in state["pipelines"]}
    old = archived[0]["id"]
    milestones = ids_of(session.get(f"{sandbox.url}/pipelines/{old}/milestones"), "milestones")
    assert milestones
    # An opportunity still sits in the archived pipeline.
    assert any(o["milestone"]["id"] in milestones for o in state["opportunities"])


def test_people_of_a_person_is_an_empty_list(sandbox, sandbox_http):
    session = sandbox_http()
    person = next(p for p in sandbox.state()["parties"] if p["type"] == "person")
    response = session.get(f"{sandbox.url}/parties/{person['id']}/people")
    assert response.status_code == 200 and response.json() == {"parties": []}
    assert session.get(f"{sandbox.url}/parties/999999/people").status_code == 404


def test_site(sandbox, sandbox_http):
    response = sandbox_http().get(sandbox.url + "/site")
    assert response.status_code == 200
    site = response.json()["site"]
    assert set(site) == {"url", "subdomain", "name"}
    assert site["url"].startswith("https://") and site["subdomain"] in site["url"]
