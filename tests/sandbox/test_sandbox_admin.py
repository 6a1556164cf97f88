"""Admin endpoints: request counts (admin calls never counted), clock, touch, determinism."""

from tap_capsule.sandbox import Sandbox


def test_requests_count_by_path_and_route(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    opps = [t["opportunityId"] for t in state["opportunity_tracks"]][:2]
    session.get(sandbox.url + "/parties?perPage=5")
    session.get(sandbox.url + "/parties", params={"page": 2})
    for oid in opps:
        session.get(f"{sandbox.url}/opportunities/{oid}/tracks")
    session.post(sandbox.url + "/tasks", json={"task": {"description": "x", "dueOn": "2026-01-01"}})
    counts = sandbox.requests()
    assert counts["total"] == 3 + len(opps)
    assert counts["writes"] == 1
    assert counts["by_path"]["GET /parties"] == 2
    assert counts["by_path"]["POST /tasks"] == 1
    assert counts["by_route"]["GET /opportunities/{opportunityId}/tracks"] == len(opps)
    for oid in opps:
        assert counts["by_path"][f"GET /opportunities/{oid}/tracks"] == 1


def test_admin_calls_are_not_counted_and_reset_works(sandbox, sandbox_http):
    sandbox.state()
    sandbox.set_clock(None)
    assert sandbox.requests()["total"] == 0
    sandbox_http().get(sandbox.url + "/users")
    assert sandbox.requests()["total"] == 1
    sandbox.reset_requests()
    assert sandbox.requests() == {
        "total": 0,
        "writes": 0,
        "oauth": 0,
        "by_path": {},
        "by_route": {},
    }


def test_unauthorised_and_throttled_requests_are_counted(sandbox, sandbox_http):
    sandbox_http(token="bad").get(sandbox.url + "/users")
    assert sandbox.requests()["total"] == 1


def test_same_seed_same_state_and_different_seed_differs(sandbox_token):
    with (
        Sandbox(token=sandbox_token, scale=40, seed=11) as a,
        Sandbox(token=sandbox_token, scale=40, seed=11) as b,
        Sandbox(token=sandbox_token, scale=40, seed=12) as c,
    ):
        assert a.state() == b.state()
        assert a.state() != c.state()


def test_scale_sets_volumes(sandbox_factory):
    state = sandbox_factory(scale=200, seed=1).state()
    parties = state["parties"]
    assert 180 <= len(parties) <= 200
    orgs = [p for p in parties if p["type"] == "organisation"]
    assert 0.3 < len(orgs) / len(parties) < 0.5
    assert len({o["name"] for o in orgs}) == len(orgs)
    assert 80 <= len(state["opportunities"]) <= 100
    assert 40 <= len(state["cases"]) <= 50
    assert {"note", "email", "task"} == {e["type"] for e in state["entries"]}
    assert {"OPEN", "COMPLETED", "PENDING"} == {t["status"] for t in state["tasks"]}
    assert {"OPEN", "CLOSED"} == {k["status"] for k in state["cases"]}
    assert state["case_parties"] and state["opportunity_parties"]
    assert all(e["subject"] and e["participants"] for e in state["entries"] if e["type"] == "email")
    assert all(e["activityType"]["id"] == -4 for e in state["entries"] if e["type"] == "task")


def test_seed_timestamps_are_fixed_not_wall_clock(sandbox):
    state = sandbox.state()
    assert all(p["updatedAt"].startswith("2025-") for p in state["parties"])


def test_set_clock_stamps_writes_and_touch_bumps(sandbox, sandbox_http):
    sandbox.set_clock("2030-01-01T00:00:00Z")
    created = (
        sandbox_http()
        .post(sandbox.url + "/parties", json={"party": {"type": "person", "lastName": "Clock"}})
        .json()["party"]
    )
    assert created["createdAt"] == "2030-01-01T00:00:00Z"
    sandbox.set_clock("2030-02-01T00:00:00+00:00")
    touched = sandbox.touch("parties", created["id"], lastName="Ticked")
    assert touched["lastName"] == "Ticked" and touched["updatedAt"] == "2030-02-01T00:00:00Z"
    assert sandbox.requests()["total"] == 1  # touch is not an API request
    same = sandbox.touch(
        "parties", created["id"], updatedAt="2030-02-01T00:00:00Z", about="same second"
    )
    assert same["updatedAt"] == "2030-02-01T00:00:00Z"
