"""Unit tests of the shared HTTP layer: pacing, waits, retries, auth and messages."""

from __future__ import annotations

import ast
import http.server
import json
import socket
import threading
import time
from importlib import metadata
from pathlib import Path

import pytest
import requests

from tap_capsule.api_client import (
    AmbiguousWriteError,
    CapsuleAPIError,
    CapsuleAuthError,
    CapsuleConfigError,
    CapsuleRateLimitError,
    CapsuleRetryError,
    CapsuleSession,
    CapsuleUnreachableError,
    RateLimitPacer,
    connection_refused,
    package_version,
    raise_for_capsule_status,
    response_json,
    user_agent,
    validate_api_url,
)
from tap_capsule.api_client import version as version_module

API = "https://api.example.test/api/v2"
TOKEN = "secret-token-9d8e7f"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def session(clock: FakeClock, **config) -> CapsuleSession:
    pacer = RateLimitPacer(
        reserve=config.pop("rate_limit_reserve", 0.2),
        max_wait=config.pop("max_rate_limit_wait", 3900),
        sleep=clock.sleep,
        clock=clock.time,
    )
    return CapsuleSession(
        {"access_token": TOKEN, "api_url": API, **config}, pacer=pacer, sleep=clock.sleep
    )


def limits(remaining: int, reset_in: float, clock: FakeClock, limit: int = 4000) -> dict:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(clock.now + reset_in)),
    }


def test_bearer_token_is_sent(requests_mock, clock):
    requests_mock.get(f"{API}/parties", json={"parties": []})
    session(clock).call("GET", "/parties")
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_429_waits_until_reset_then_succeeds(requests_mock, clock):
    requests_mock.get(
        f"{API}/parties",
        [
            {
                "status_code": 429,
                "json": {"error": "rate limit reached"},
                "headers": limits(0, 120, clock),
            },
            {"json": {"parties": [{"id": 1}]}, "headers": limits(3999, 3600, clock)},
        ],
    )
    resp = session(clock).call("GET", "/parties")
    assert response_json(resp) == {"parties": [{"id": 1}]}
    assert clock.sleeps == [pytest.approx(121, abs=1)]  # until the reset, not a short backoff


def test_429_beyond_max_wait_is_a_clear_error(requests_mock, clock):
    requests_mock.get(
        f"{API}/parties",
        status_code=429,
        json={"error": "rate limit reached"},
        headers=limits(0, 3000, clock),
    )
    with pytest.raises(CapsuleRateLimitError, match="max_rate_limit_wait") as err:
        session(clock, max_rate_limit_wait=60).call("GET", "/parties")
    assert TOKEN not in str(err.value)
    assert clock.sleeps == []


def test_5xx_retries_with_short_backoff_never_the_reset(requests_mock, clock):
    requests_mock.get(
        f"{API}/parties",
        [
            {"status_code": 503, "headers": limits(3000, 3500, clock)},
            {"status_code": 502, "headers": limits(2999, 3500, clock)},
            {"json": {"parties": []}, "headers": limits(2998, 3500, clock)},
        ],
    )
    session(clock).call("GET", "/parties")
    assert len(clock.sleeps) == 2
    assert max(clock.sleeps) < 5


def test_5xx_gives_up_after_max_retries(requests_mock, clock):
    requests_mock.get(f"{API}/parties", status_code=503)
    with pytest.raises(CapsuleRetryError, match="after 2 retries"):
        session(clock, max_retries=2).call("GET", "/parties")
    assert requests_mock.call_count == 3


def test_malformed_json_is_retried(requests_mock, clock):
    requests_mock.get(
        f"{API}/parties",
        [
            {"text": '{"parties": [', "headers": {"Content-Type": "application/json"}},
            {"json": {"parties": [{"id": 7}]}},
        ],
    )
    assert response_json(session(clock).call("GET", "/parties")) == {"parties": [{"id": 7}]}


def test_dropped_connection_is_retried_for_reads(requests_mock, clock):
    requests_mock.get(
        f"{API}/parties",
        [
            {"exc": requests.exceptions.ConnectionError("reset by peer")},
            {"json": {"parties": []}},
        ],
    )
    session(clock).call("GET", "/parties")
    assert requests_mock.call_count == 2


@pytest.mark.parametrize(
    "failure",
    [
        {"status_code": 503},
        {"exc": requests.exceptions.ReadTimeout("slow")},
        {"text": "{broken", "status_code": 201},
    ],
)
def test_writes_are_never_retried_blindly(requests_mock, clock, failure):
    requests_mock.post(f"{API}/parties", [failure, {"status_code": 201, "json": {"party": {}}}])
    with pytest.raises(AmbiguousWriteError):
        session(clock).call("POST", "/parties", json_body={"party": {"name": "Acme"}})
    assert requests_mock.call_count == 1


def test_401_message_says_what_to_fix_without_the_token(requests_mock, clock):
    requests_mock.get(f"{API}/parties", status_code=401, json={"message": "bad token"})
    with pytest.raises(CapsuleAuthError) as err:
        session(clock).call("GET", "/parties")
    assert "access_token" in str(err.value)
    assert TOKEN not in str(err.value)


def test_403_names_the_missing_permission(requests_mock, clock):
    requests_mock.post(f"{API}/parties", status_code=403)
    with pytest.raises(CapsuleAuthError, match="write"):
        session(clock).call("POST", "/parties", json_body={})


def test_oauth_refresh_on_401_keeps_the_rotated_refresh_token(requests_mock, clock):
    requests_mock.get(
        f"{API}/parties",
        [
            {"status_code": 401},
            {"json": {"parties": []}},
            {"json": {"parties": []}},
        ],
    )
    token_calls = requests_mock.post(
        "https://api.example.test/oauth/token",
        [
            {
                "json": {
                    "access_token": "new-access",
                    "refresh_token": "rotated-1",
                    "expires_in": 604799,
                }
            },
        ],
    )
    s = session(clock, refresh_token="original-refresh", client_id="cid", client_secret="cs")
    s.call("GET", "/parties")
    assert token_calls.call_count == 1
    assert "refresh_token=original-refresh" in token_calls.last_request.text
    assert requests_mock.last_request.headers["Authorization"] == "Bearer new-access"
    assert s.authenticator.refresh_token == "rotated-1"
    s.call("GET", "/parties")  # the new token is kept, no second refresh
    assert token_calls.call_count == 1


def test_refresh_needs_client_credentials():
    with pytest.raises(CapsuleConfigError, match="client_id and client_secret"):
        CapsuleSession({"access_token": "x", "refresh_token": "r", "api_url": API})


@pytest.mark.parametrize(
    "url",
    ["http://api.capsulecrm.com/api/v2", "ftp://x/y", "https://user:pw@api.capsulecrm.com/api/v2"],
)
def test_unsafe_api_urls_are_refused(url):
    with pytest.raises(CapsuleConfigError):
        validate_api_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/api/v2",
        "http://localhost/api/v2",
        "http://[::1]:9/api/v2",
        "https://api.capsulecrm.com/api/v2/",
    ],
)
def test_loopback_http_and_https_are_accepted(url):
    assert validate_api_url(url) == url.rstrip("/")


def test_pacer_waits_for_reset_when_only_the_reserve_is_left(requests_mock, clock):
    requests_mock.get(
        f"{API}/parties", json={"parties": []}, headers=limits(800, 600, clock)
    )  # 800 of 4000 = the 20 % reserve
    s = session(clock)
    s.call("GET", "/parties")
    assert clock.sleeps == []
    s.call("GET", "/parties")
    assert clock.sleeps and clock.sleeps[0] == pytest.approx(601, abs=1)


def test_pacer_spreads_requests_near_the_end_of_the_budget(requests_mock, clock, caplog):
    requests_mock.get(
        f"{API}/parties", json={"parties": []}, headers=limits(900, 1000, clock)
    )  # 100 usable left, reset in 1000 s
    s = session(clock)
    s.call("GET", "/parties")
    s.call("GET", "/parties")
    s.call("GET", "/parties")
    assert clock.sleeps and 5 < clock.sleeps[-1] <= 11  # about (1000 s / 100 requests)
    notices = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Pacing:")]
    assert len(notices) == 1  # said once per window, not per request
    assert "spacing requests about" in notices[0]


def test_pacer_tracks_the_server_clock_from_date(requests_mock, clock):
    server = clock.now + 42
    requests_mock.get(
        f"{API}/parties",
        json={"parties": []},
        headers={"Date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(server))},
    )
    s = session(clock)
    s.call("GET", "/parties")
    assert s.pacer.server_now() == pytest.approx(server, abs=1)


def test_422_carries_capsules_message(requests_mock, clock):
    requests_mock.post(
        f"{API}/tasks",
        status_code=422,
        json={
            "message": "Validation Failed",
            "errors": [{"message": "dueOn is required", "resource": "task", "field": "dueOn"}],
        },
    )
    resp = session(clock).call("POST", "/tasks", json_body={"task": {}})
    with pytest.raises(CapsuleAPIError) as err:
        raise_for_capsule_status(resp)
    assert err.value.status == 422
    assert "dueOn is required (field dueOn)" in str(err.value)


def test_pages_follow_link_headers_verbatim(requests_mock, clock):
    requests_mock.get(
        f"{API}/parties?perPage=100",
        json={"parties": [{"id": 1}]},
        headers={"Link": f'<{API}/parties?perPage=100&page=2>; rel="next"'},
    )
    requests_mock.get(f"{API}/parties?perPage=100&page=2", json={"parties": [{"id": 2}]})
    assert [r["id"] for r in session(clock).paginate("/parties", "parties")] == [1, 2]


def test_rotated_tokens_reach_the_next_process_through_the_cache(requests_mock, clock, tmp_path):
    cache = tmp_path / "tokens.json"
    config = {
        "refresh_token": "original-refresh",
        "client_id": "cid",
        "client_secret": "cs",
        "oauth_token_cache": str(cache),
    }
    requests_mock.get(f"{API}/parties", [{"status_code": 401}, {"json": {"parties": []}}])
    token_calls = requests_mock.post(
        "https://api.example.test/oauth/token",
        [
            {"json": {"access_token": "access-1", "refresh_token": "rotated-1", "expires_in": 600}},
            {"json": {"access_token": "access-2", "refresh_token": "rotated-2", "expires_in": 600}},
        ],
    )
    session(clock, **config).call("GET", "/parties")
    assert cache.stat().st_mode & 0o777 == 0o600
    # The next process starts from the rotated pair, not from the settings.
    nxt = session(clock, **config)
    assert nxt.authenticator.refresh_token == "rotated-1"
    requests_mock.get(f"{API}/parties", [{"status_code": 401}, {"json": {"parties": []}}])
    nxt.call("GET", "/parties")
    assert "refresh_token=rotated-1" in token_calls.last_request.text
    assert json.loads(cache.read_text())["refresh_token"] == "rotated-2"


def test_a_new_grant_in_the_settings_replaces_the_cache(requests_mock, clock, tmp_path):
    cache = tmp_path / "tokens.json"
    requests_mock.get(f"{API}/parties", [{"status_code": 401}, {"json": {"parties": []}}])
    requests_mock.post(
        "https://api.example.test/oauth/token",
        json={"access_token": "access-1", "refresh_token": "rotated-1", "expires_in": 600},
    )
    base = {"client_id": "cid", "client_secret": "cs", "oauth_token_cache": str(cache)}
    session(clock, refresh_token="grant-a", **base).call("GET", "/parties")
    fresh = session(clock, refresh_token="grant-b", **base)
    assert fresh.authenticator.refresh_token == "grant-b"


# --- A refused connection is a setting to fix, not an outage ------------------------------------


@pytest.fixture
def closed_port():
    """A local port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_refused_connection_fails_at_once_naming_the_api_url(clock, closed_port, method):
    url = f"http://127.0.0.1:{closed_port}/api/v2"
    with pytest.raises(CapsuleUnreachableError) as exc:
        session(clock, api_url=url).call(method, "/parties", json_body={"party": {}})
    assert str(exc.value) == (
        f"could not connect to {url} (connection refused): is `api_url` right, is the sandbox "
        "running?"
    )
    assert isinstance(exc.value, CapsuleConfigError)  # both CLIs end with one line for these
    assert clock.sleeps == []  # no retries: nothing was listening, so nothing can come back


def test_a_refusal_after_the_server_answered_is_retried_like_a_dropped_connection(clock):
    """A server that answered and then refuses is restarting: the usual retries, then an outage."""

    class Once(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"parties": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Once)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    client = session(clock, api_url=f"http://127.0.0.1:{server.server_port}/api/v2", max_retries=2)
    assert response_json(client.call("GET", "/parties")) == {"parties": []}
    thread.join()
    server.server_close()  # now the port refuses
    with pytest.raises(CapsuleRetryError, match="after 2 retries"):
        client.call("GET", "/parties")
    assert clock.sleeps == [0.5, 1.0]


def test_only_a_refusal_counts_as_refused():
    refused = requests.exceptions.ConnectionError("pool")
    refused.__context__ = ConnectionRefusedError(111, "Connection refused")
    assert connection_refused(refused)
    assert not connection_refused(requests.exceptions.ConnectionError("reset by peer"))
    assert not connection_refused(requests.exceptions.ReadTimeout("slow"))


# --- The User-Agent names the release -----------------------------------------------------------


@pytest.fixture
def fresh_version():
    package_version.cache_clear()
    yield
    package_version.cache_clear()


def test_the_user_agent_carries_the_installed_version(requests_mock, clock):
    requests_mock.get(f"{API}/parties", json={"parties": []})
    session(clock).call("GET", "/parties")
    installed = metadata.version("tap-capsule")
    assert requests_mock.last_request.headers["User-Agent"] == f"tap-capsule/{installed}"
    assert user_agent("capsule-undo") == f"capsule-undo/{installed}"


def test_without_metadata_the_version_comes_from_the_source_tree(monkeypatch, fresh_version):
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = next(
        line.split('"')[1]
        for line in pyproject.read_text().splitlines()
        if line.startswith("version")
    )
    assert package_version() == declared
    package_version.cache_clear()
    monkeypatch.setattr(version_module, "_PYPROJECT", pyproject.with_name("missing.toml"))
    assert package_version() == "0+unknown"


def test_no_command_hard_codes_a_version_in_its_user_agent():
    """Every `user_agent=` argument is computed from the installed version, never a literal."""
    root = Path(__file__).resolve().parents[2]
    files = [*root.glob("tap_capsule/**/*.py"), *root.glob("target_capsule/**/*.py")]
    literal = [
        f"{path.relative_to(root)}:{node.value.lineno}"
        for path in files
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.keyword)
        and node.arg == "user_agent"
        and isinstance(node.value, ast.Constant)
    ]
    assert literal == []
