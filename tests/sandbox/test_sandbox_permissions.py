"""Permissions belong to one operation: a 403 refuses that operation, the token keeps working.

`PUT /users/{id}` needs the `user_preference` scope; REST hooks need an administrator using an
OAuth app; creating lost reasons and custom titles needs an administrator. A bad token is a 401
everywhere. The default token may do everything, so each narrower grant here is opt-in.
"""

import pytest

GRANTS = {
    "user-token": "read write",  # a normal user's default OAuth scope
    "pref-token": "read write user_preference",
    "admin-token": "read write admin",  # an administrator's personal token (no OAuth app)
    "app-token": "read write admin oauth_app",
}


@pytest.fixture
def scoped(sandbox_factory):
    return sandbox_factory(scale=5, seed=4, extra_tokens=GRANTS)


def calls(sb, state):
    user = state["users"][0]["id"]
    hook = state["resthooks"][0]["id"]
    return {
        "put user": ("PUT", f"/users/{user}", {"user": {"timezone": "Europe/Paris"}}),
        "list hooks": ("GET", "/resthooks", None),
        "show hook": ("GET", f"/resthooks/{hook}", None),
        "create hook": (
            "POST",
            "/resthooks",
            {"restHook": {"event": "party/created", "targetUrl": "https://h.example.com/x"}},
        ),
        "create lost reason": ("POST", "/lostreasons", {"lostReason": {"name": "Too late"}}),
        "create title": ("POST", "/titles", {"personTitle": {"title": "Sir"}}),
    }


ALLOWED = {
    "user-token": set(),
    "pref-token": {"put user"},
    "admin-token": {"create lost reason", "create title"},
    "app-token": {"list hooks", "show hook", "create hook", "create lost reason", "create title"},
}


@pytest.mark.parametrize("token", sorted(GRANTS))
def test_each_operation_needs_its_own_permission(scoped, sandbox_http, token):
    session = sandbox_http(token=token)
    state = scoped.state()
    for name, (method, path, body) in calls(scoped, state).items():
        response = session.request(method, scoped.url + path, json=body)
        if name in ALLOWED[token]:
            assert response.status_code in (200, 201), (name, response.text)
        else:
            assert response.status_code == 403, (name, response.status_code)
            assert response.json()["message"]
    # The same token keeps its ordinary rights after any 403.
    assert session.get(scoped.url + "/parties").status_code == 200
    created = session.post(
        scoped.url + "/parties", json={"party": {"type": "organisation", "name": f"By {token}"}}
    )
    assert created.status_code == 201


def test_missing_scope_names_it_in_www_authenticate(scoped, sandbox_http):
    user = scoped.state()["users"][0]["id"]
    response = sandbox_http(token="user-token").put(
        f"{scoped.url}/users/{user}", json={"user": {"timezone": "Europe/Paris"}}
    )
    assert response.status_code == 403
    assert 'scope="user_preference"' in response.headers["WWW-Authenticate"]
    assert scoped.state()["users"][0]["timezone"] != "Europe/Paris"


def test_refused_writes_change_nothing(scoped, sandbox_http):
    before = scoped.state()
    session = sandbox_http(token="user-token")
    session.post(scoped.url + "/lostreasons", json={"lostReason": {"name": "Nope"}})
    session.delete(f"{scoped.url}/resthooks/{before['resthooks'][0]['id']}")
    after = scoped.state()
    assert after["lost_reasons"] == before["lost_reasons"]
    assert after["resthooks"] == before["resthooks"]


def test_the_default_token_may_do_everything(sandbox, sandbox_http):
    state = sandbox.state()
    session = sandbox_http()
    for name, (method, path, body) in calls(sandbox, state).items():
        response = session.request(method, sandbox.url + path, json=body)
        assert response.status_code in (200, 201), (name, response.text)


def test_a_bad_token_is_401_for_every_operation(scoped, sandbox_http):
    state = scoped.state()
    session = sandbox_http(token="not-a-token")
    for method, path, body in calls(scoped, state).values():
        assert session.request(method, scoped.url + path, json=body).status_code == 401


def test_cli_takes_token_grants(sandbox_cli_factory, sandbox_http):
    sb = sandbox_cli_factory(
        "--scale", "3", "--token-grant", "read write",
        "--extra-token", "pref=read write user_preference",
    )  # fmt: skip
    user = sb.state()["users"][0]["id"]
    body = {"user": {"timezone": "Europe/Paris"}}
    assert sandbox_http().put(f"{sb.url}/users/{user}", json=body).status_code == 403
    assert sandbox_http(token="pref").put(f"{sb.url}/users/{user}", json=body).status_code == 200
