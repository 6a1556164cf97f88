"""Bearer auth (401 + WWW-Authenticate), read-only tokens (403 on writes), OAuth rotation."""


def test_missing_token_is_401_with_www_authenticate(sandbox, sandbox_http):
    response = sandbox_http(token=None).get(sandbox.url + "/parties")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()
    assert "X-RateLimit-Limit" in response.headers


def test_wrong_token_is_401(sandbox, sandbox_http):
    assert sandbox_http(token="nope").get(sandbox.url + "/users").status_code == 401


def test_error_bodies_never_echo_the_token(sandbox, sandbox_http, sandbox_token):
    response = sandbox_http(token=sandbox_token + "x").get(sandbox.url + "/users")
    assert sandbox_token not in response.text


def test_read_only_token_reads_but_gets_403_on_writes(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=5, seed=1, read_only_token="ro-token")
    session = sandbox_http(token="ro-token")
    assert session.get(sb.url + "/parties").status_code == 200
    response = session.post(
        sb.url + "/parties", json={"party": {"type": "organisation", "name": "X"}}
    )
    assert response.status_code == 403
    assert "WWW-Authenticate" in response.headers
    assert "X" not in {p.get("name") for p in sb.state()["parties"]}


def oauth_sandbox(sandbox_factory):
    return sandbox_factory(
        scale=3, seed=1, client_id="cid", client_secret="secret", refresh_token="rt-0"
    )


def refresh(session, sb, token, **extra):
    form = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": "cid",
        "client_secret": "secret",
        **extra,
    }
    return session.post(sb.origin + "/oauth/token", data=form)


def test_oauth_refresh_returns_tokens_and_rotates(sandbox_factory, sandbox_http, sandbox_token):
    sb = oauth_sandbox(sandbox_factory)
    session = sandbox_http(token=None)
    response = refresh(session, sb, "rt-0")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 604799
    assert body["scope"] == "read write" and body["refresh_token"] != "rt-0"
    # The new access token works, and so does the original one.
    assert sandbox_http(token=body["access_token"]).get(sb.url + "/users").status_code == 200
    assert sandbox_http(token=sandbox_token).get(sb.url + "/users").status_code == 200
    # The old refresh token stopped working; the rotated one works.
    assert refresh(session, sb, "rt-0").status_code == 400
    assert refresh(session, sb, body["refresh_token"]).status_code == 200


def test_oauth_bad_client_and_grant(sandbox_factory, sandbox_http):
    sb = oauth_sandbox(sandbox_factory)
    session = sandbox_http(token=None)
    assert refresh(session, sb, "rt-0", client_secret="wrong").status_code == 401
    assert refresh(session, sb, "rt-0", grant_type="password").status_code == 400
    assert refresh(session, sb, "unknown").json()["error"] == "invalid_grant"
    assert sb.requests()["total"] == 0  # OAuth calls are not API requests
