"""Capsule's 422 answers, in Capsule's exact shape."""

import pytest


def post(session, sb, path, key, record):
    return session.post(sb.url + path, json={key: record})


def assert_422(response, resource, field, message=None):
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "Validation Failed"
    assert any(
        e["resource"] == resource
        and e["field"] == field
        and (message is None or e["message"] == message)
        for e in body["errors"]
    ), body
    assert all(set(e) == {"message", "resource", "field"} for e in body["errors"])


def ids(sb, stream):
    return [r["id"] for r in sb.state()[stream]]


def test_party_type_required(sandbox, sandbox_http):
    assert_422(
        post(sandbox_http(), sandbox, "/parties", "party", {"name": "X"}),
        "party",
        "type",
        "type is required",
    )


def test_person_needs_a_first_or_last_name_and_one_is_enough(sandbox, sandbox_http):
    session = sandbox_http()
    assert_422(post(session, sandbox, "/parties", "party", {"type": "person"}), "party", "lastName")
    assert (
        post(
            session, sandbox, "/parties", "party", {"type": "person", "lastName": "Solo"}
        ).status_code
        == 201
    )
    assert (
        post(
            session, sandbox, "/parties", "party", {"type": "person", "firstName": "Solo"}
        ).status_code
        == 201
    )


def test_organisation_needs_a_name(sandbox, sandbox_http):
    assert_422(
        post(sandbox_http(), sandbox, "/parties", "party", {"type": "organisation"}),
        "party",
        "name",
        "name is required",
    )


def test_organisation_names_are_unique(sandbox, sandbox_http):
    existing = next(p for p in sandbox.state()["parties"] if p["type"] == "organisation")
    response = post(
        sandbox_http(),
        sandbox,
        "/parties",
        "party",
        {"type": "organisation", "name": existing["name"].upper()},
    )
    assert_422(response, "party", "name", "name must be unique")


def test_address_country_must_be_a_capsule_country_name(sandbox, sandbox_http):
    session = sandbox_http()
    record = {
        "type": "organisation",
        "name": "Country Co",
        "addresses": [{"city": "London", "country": "UK"}],
    }
    assert_422(
        post(session, sandbox, "/parties", "party", record),
        "party",
        "address.country",
        "address.country: unknown country",
    )
    record["addresses"][0]["country"] = "United Kingdom"
    assert post(session, sandbox, "/parties", "party", record).status_code == 201


def test_person_organisation_must_be_an_organisation(sandbox, sandbox_http):
    person = next(p for p in sandbox.state()["parties"] if p["type"] == "person")
    response = post(
        sandbox_http(),
        sandbox,
        "/parties",
        "party",
        {"type": "person", "lastName": "X", "organisation": {"id": person["id"]}},
    )
    assert response.status_code == 404


@pytest.mark.parametrize("missing", ["name", "party", "milestone"])
def test_opportunity_required_fields(sandbox, sandbox_http, missing):
    state = sandbox.state()
    record = {
        "name": "Deal",
        "party": {"id": state["parties"][0]["id"]},
        "milestone": {"id": state["milestones"][0]["id"]},
    }
    del record[missing]
    assert_422(
        post(sandbox_http(), sandbox, "/opportunities", "opportunity", record),
        "opportunity",
        missing,
        f"{missing} is required",
    )


def test_opportunity_owner_defaults_to_token_user(sandbox, sandbox_http):
    state = sandbox.state()
    response = post(
        sandbox_http(),
        sandbox,
        "/opportunities",
        "opportunity",
        {
            "name": "Deal",
            "party": {"id": state["parties"][0]["id"]},
            "milestone": {"id": state["milestones"][0]["id"]},
        },
    )
    assert response.status_code == 201
    assert response.json()["opportunity"]["owner"]["id"] == state["users"][0]["id"]


def test_kase_requires_party_name_and_owner_or_team(sandbox, sandbox_http):
    session = sandbox_http()
    party = {"id": sandbox.state()["parties"][0]["id"]}
    assert_422(
        post(session, sandbox, "/kases", "kase", {"name": "P", "party": party}),
        "kase",
        "owner",
        "owner or team is required",
    )
    assert_422(
        post(session, sandbox, "/kases", "kase", {"party": party, "team": {"id": 1}}),
        "kase",
        "name",
    )
    assert_422(
        post(session, sandbox, "/kases", "kase", {"name": "P", "owner": {"id": 1}}), "kase", "party"
    )
    created = post(
        session, sandbox, "/kases", "kase", {"name": "P", "party": party, "team": {"id": 1}}
    )
    assert created.status_code == 201 and created.json()["kase"]["status"] == "OPEN"


def test_task_requires_description_and_due_on(sandbox, sandbox_http):
    session = sandbox_http()
    assert_422(
        post(session, sandbox, "/tasks", "task", {"description": "Call"}),
        "task",
        "dueOn",
        "dueOn is required",
    )
    assert_422(
        post(session, sandbox, "/tasks", "task", {"dueOn": "2026-01-01"}), "task", "description"
    )


def test_task_belongs_to_at_most_one_record(sandbox, sandbox_http):
    state = sandbox.state()
    response = post(
        sandbox_http(),
        sandbox,
        "/tasks",
        "task",
        {
            "description": "Call",
            "dueOn": "2026-01-01",
            "party": {"id": state["parties"][0]["id"]},
            "opportunity": {"id": state["opportunities"][0]["id"]},
        },
    )
    assert_422(response, "task", "opportunity")


def test_task_status_pending_is_rejected(sandbox, sandbox_http):
    response = post(
        sandbox_http(),
        sandbox,
        "/tasks",
        "task",
        {"description": "Call", "dueOn": "2026-01-01", "status": "PENDING"},
    )
    assert_422(response, "task", "status")


def test_entries_create_notes_only_on_exactly_one_record(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    party, opp = {"id": state["parties"][0]["id"]}, {"id": state["opportunities"][0]["id"]}
    assert_422(
        post(
            session, sandbox, "/entries", "entry", {"type": "email", "content": "x", "party": party}
        ),
        "entry",
        "type",
    )
    assert_422(
        post(session, sandbox, "/entries", "entry", {"type": "note", "content": "x"}),
        "entry",
        "party",
    )
    assert_422(
        post(
            session,
            sandbox,
            "/entries",
            "entry",
            {"type": "note", "content": "x", "party": party, "opportunity": opp},
        ),
        "entry",
        "party",
    )
    created = post(
        session, sandbox, "/entries", "entry", {"type": "note", "content": "x", "party": party}
    )
    assert created.status_code == 201
    entry = created.json()["entry"]
    assert entry["type"] == "note" and entry["activityType"]["id"] == -1
    assert entry["creator"]["id"] == state["users"][0]["id"]


def test_track_capture_rule_must_match(sandbox, sandbox_http):
    state = sandbox.state()
    casefile = next(d for d in state["track_definitions"] if d["captureRule"] == "CASEFILE")
    response = post(
        sandbox_http(),
        sandbox,
        "/tracks",
        "track",
        {
            "definition": {"id": casefile["id"]},
            "opportunity": {"id": state["opportunities"][0]["id"]},
        },
    )
    assert_422(response, "track", "definition")


def test_unknown_reference_is_404(sandbox, sandbox_http):
    response = post(
        sandbox_http(),
        sandbox,
        "/opportunities",
        "opportunity",
        {"name": "Deal", "party": {"id": 1}, "milestone": {"id": 1}},
    )
    assert response.status_code == 404
    assert response.json() == {"message": "Could not find resource"}


def test_body_must_be_wrapped(sandbox, sandbox_http):
    session = sandbox_http()
    assert (
        session.post(sandbox.url + "/parties", json={"type": "person", "lastName": "X"}).status_code
        == 400
    )
    assert (
        session.post(
            sandbox.url + "/parties", data="{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_validation_does_not_read_the_catalogue_rules():
    import inspect

    from tap_capsule.sandbox import validation

    assert ".rules" not in inspect.getsource(validation)
