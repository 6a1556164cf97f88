"""Rate-limit headers on every API response and Capsule's 429 when the window is used up."""

import time


def test_every_response_has_rate_limit_headers(sandbox, sandbox_http):
    session = sandbox_http()
    for path in ("/parties", "/parties/999999999", "/nope"):
        response = session.get(sandbox.url + path)
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
            response.headers
        )
        assert response.headers["X-RateLimit-Limit"] == "4000"


def test_remaining_counts_down_and_reset_is_window_end(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=2, seed=1, rate_limit=10, rate_window=600)
    session = sandbox_http()
    first = session.get(sb.url + "/users")
    second = session.get(sb.url + "/users")
    assert int(first.headers["X-RateLimit-Remaining"]) == 9
    assert int(second.headers["X-RateLimit-Remaining"]) == 8
    reset = int(first.headers["X-RateLimit-Reset"])
    assert time.time() + 590 < reset <= time.time() + 601


def test_over_the_limit_is_429_with_capsule_body(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=2, seed=1, rate_limit=3, rate_window=3600)
    session = sandbox_http()
    statuses = [session.get(sb.url + "/users").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = session.get(sb.url + "/users")
    assert response.json() == {"error": "rate limit reached"}
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert "X-RateLimit-Reset" in response.headers


def test_set_rate_limit_resets_the_window(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=2, seed=1, rate_limit=1)
    session = sandbox_http()
    session.get(sb.url + "/users")
    assert session.get(sb.url + "/users").status_code == 429
    sb.set_rate_limit(limit=5, window=60)
    response = session.get(sb.url + "/users")
    assert response.status_code == 200 and response.headers["X-RateLimit-Remaining"] == "4"


def test_window_rolls_over(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=2, seed=1, rate_limit=1, rate_window=0.3)
    session = sandbox_http()
    assert session.get(sb.url + "/users").status_code == 200
    assert session.get(sb.url + "/users").status_code == 429
    time.sleep(0.35)
    assert session.get(sb.url + "/users").status_code == 200
