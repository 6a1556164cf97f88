"""Injected faults: 5xx, slow, dropped, malformed and throttled answers, counted per API request."""

import json
import threading
import time

import pytest
import requests


def test_error_every_kth_request(sandbox, sandbox_http):
    sandbox.set_faults(error_every=3, error_status=502)
    session = sandbox_http()
    statuses = [session.get(sandbox.url + "/users").status_code for _ in range(6)]
    assert statuses == [200, 200, 502, 200, 200, 502]
    response = session.get(sandbox.url + "/users")
    assert response.status_code == 200


def test_error_has_json_body_and_rate_limit_headers(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=3, seed=1, faults={"error_every": 1})
    response = sandbox_http().get(sb.url + "/users")
    assert response.status_code == 503
    assert response.json()["message"]
    assert "X-RateLimit-Remaining" in response.headers


def test_error_before_write_does_not_apply_it(sandbox, sandbox_http):
    sandbox.set_faults(error_every=1)
    response = sandbox_http().post(
        sandbox.url + "/parties", json={"party": {"type": "organisation", "name": "Ghost Ltd"}}
    )
    assert response.status_code == 503
    assert "Ghost Ltd" not in {p.get("name") for p in sandbox.state()["parties"]}


def test_fault_after_write_applies_the_write_then_fails(sandbox, sandbox_http):
    sandbox.set_faults(error_every=1, fault_after_write=True)
    response = sandbox_http().post(
        sandbox.url + "/parties", json={"party": {"type": "organisation", "name": "Twice Ltd"}}
    )
    assert response.status_code == 503
    assert "Twice Ltd" in {p.get("name") for p in sandbox.state()["parties"]}


def test_drop_closes_the_connection_without_answer(sandbox, sandbox_http):
    sandbox.set_faults(drop_every=2)
    session = sandbox_http()
    assert session.get(sandbox.url + "/users").status_code == 200
    with pytest.raises(requests.ConnectionError):
        session.get(sandbox.url + "/users")
    assert session.get(sandbox.url + "/users").status_code == 200


def test_drop_after_write_still_creates(sandbox, sandbox_http):
    sandbox.set_faults(drop_every=1, fault_after_write=True)
    with pytest.raises(requests.ConnectionError):
        sandbox_http().post(
            sandbox.url + "/parties",
            json={"party": {"type": "organisation", "name": "Dropped Ltd"}},
        )
    assert "Dropped Ltd" in {p.get("name") for p in sandbox.state()["parties"]}


def test_malformed_body_is_200_with_invalid_json(sandbox, sandbox_http):
    sandbox.set_faults(malformed_every=1)
    response = sandbox_http().get(sandbox.url + "/parties")
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_slow_every_kth_request(sandbox, sandbox_http):
    sandbox.set_faults(slow_every=2, slow_seconds=0.3)
    session = sandbox_http()
    timings = []
    for _ in range(2):
        start = time.monotonic()
        assert session.get(sandbox.url + "/users").status_code == 200
        timings.append(time.monotonic() - start)
    assert timings[0] < 0.25 <= 0.3 <= timings[1] + 0.01


def test_throttle_next_gives_429_with_near_reset(sandbox, sandbox_http):
    sandbox.set_faults(throttle_next=2, throttle_reset_seconds=2)
    session = sandbox_http()
    first = session.get(sandbox.url + "/users")
    assert first.status_code == 429 and first.json() == {"error": "rate limit reached"}
    assert first.headers["X-RateLimit-Remaining"] == "0"
    assert time.time() < int(first.headers["X-RateLimit-Reset"]) <= time.time() + 4
    assert session.get(sandbox.url + "/users").status_code == 429
    assert session.get(sandbox.url + "/users").status_code == 200


def test_set_faults_replaces_and_restarts_the_counter(sandbox, sandbox_http):
    session = sandbox_http()
    sandbox.set_faults(error_every=2)
    assert session.get(sandbox.url + "/users").status_code == 200
    sandbox.set_faults(error_every=2)  # counter restarts: the next request is #1 again
    assert session.get(sandbox.url + "/users").status_code == 200
    assert session.get(sandbox.url + "/users").status_code == 503
    sandbox.set_faults()
    assert all(session.get(sandbox.url + "/users").status_code == 200 for _ in range(3))


def test_admin_endpoints_are_never_faulted(sandbox):
    sandbox.set_faults(error_every=1, drop_every=1)
    assert isinstance(sandbox.requests(), dict)
    assert sandbox.state()["parties"]


def test_bad_fault_settings_are_refused(sandbox):
    from tap_capsule.sandbox import SandboxError

    with pytest.raises(SandboxError):
        sandbox.set_faults(error_every=-1)


def test_lost_answer_every_applies_every_kth_write_and_answers_502(sandbox, sandbox_http):
    sandbox.set_faults(lost_answer_every=2)
    session = sandbox_http()
    statuses = []
    for n in range(4):
        assert session.get(sandbox.url + "/users").status_code == 200  # reads are never counted
        statuses.append(
            session.post(
                sandbox.url + "/parties",
                json={"party": {"type": "organisation", "name": f"Lost {n} Ltd"}},
            ).status_code
        )
    assert statuses == [201, 502, 201, 502]
    names = {p.get("name") for p in sandbox.state()["parties"]}
    assert {f"Lost {n} Ltd" for n in range(4)} <= names  # every write applied, answered or not


def test_hold_write_applies_it_and_holds_the_answer_until_released(sandbox, sandbox_http):
    sandbox.set_faults(hold_write=2)
    session = sandbox_http()
    body = {"party": {"type": "organisation", "name": "First Ltd"}}
    assert session.post(sandbox.url + "/parties", json=body).status_code == 201
    answers: list[int] = []
    held = {"party": {"type": "organisation", "name": "Held Ltd"}}
    other = sandbox_http()
    waiter = threading.Thread(
        target=lambda: answers.append(
            other.post(sandbox.url + "/parties", json=held, timeout=30).status_code
        )
    )
    waiter.start()
    deadline = time.monotonic() + 10
    while sandbox.held() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox.held() == 1
    assert answers == []  # the client still waits ...
    assert "Held Ltd" in {p.get("name") for p in sandbox.state()["parties"]}  # ... applied
    assert sandbox.release() == 1
    waiter.join(10)
    assert answers == [201]
    assert sandbox.held() == 0


def test_hold_before_write_holds_it_unapplied_then_drops_it(sandbox, sandbox_http):
    sandbox.set_faults(hold_before_write=1)
    answers: list[object] = []
    body = {"party": {"type": "organisation", "name": "Never Ltd"}}

    def post() -> None:
        try:
            answers.append(sandbox_http().post(sandbox.url + "/parties", json=body, timeout=30))
        except requests.ConnectionError as exc:
            answers.append(exc)

    waiter = threading.Thread(target=post)
    waiter.start()
    deadline = time.monotonic() + 10
    while sandbox.held() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox.held() == 1
    assert "Never Ltd" not in {p.get("name") for p in sandbox.state()["parties"]}  # not applied
    assert sandbox.release() == 1
    waiter.join(10)
    assert len(answers) == 1 and isinstance(answers[0], requests.ConnectionError)  # dropped
    assert "Never Ltd" not in {p.get("name") for p in sandbox.state()["parties"]}  # never applied
    assert sandbox.held() == 0
