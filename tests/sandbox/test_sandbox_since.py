"""`since` is strictly-after on updatedAt; the deleted feeds (with restricted stubs) honour it."""

import collections

import pytest


def same_second_pair(records):
    by_stamp = collections.defaultdict(list)
    for rec in records:
        by_stamp[rec["updatedAt"]].append(rec["id"])
    return next((stamp, ids) for stamp, ids in sorted(by_stamp.items()) if len(ids) > 1)


def all_ids(session, url, key, **params):
    params.setdefault("perPage", 100)
    out, page = [], 1
    while True:
        body = session.get(url, params={**params, "page": page}).json()[key]
        out += [r["id"] for r in body]
        if len(body) < params["perPage"]:
            return out
        page += 1


@pytest.mark.parametrize(
    "stream,path,key",
    [
        ("parties", "/parties", "parties"),
        ("opportunities", "/opportunities", "opportunities"),
        ("cases", "/kases", "kases"),
    ],
)
def test_since_is_strictly_after(sandbox, sandbox_http, stream, path, key):
    records = sandbox.state()[stream]
    stamps = sorted({r["updatedAt"] for r in records})
    cut = stamps[len(stamps) // 2]
    got = set(all_ids(sandbox_http(), sandbox.url + path, key, since=cut))
    assert got == {r["id"] for r in records if r["updatedAt"] > cut}


def test_seed_has_records_sharing_one_second_and_since_excludes_that_second(sandbox, sandbox_http):
    parties = sandbox.state()["parties"]
    stamp, ids = same_second_pair(parties)
    got = set(all_ids(sandbox_http(), sandbox.url + "/parties", "parties", since=stamp))
    assert not got & set(ids)
    # One second earlier includes all of them: a bookmark must not add a second.
    earlier = stamp[:-3] + f"{int(stamp[-3:-1]) - 1:02d}Z" if stamp[-3:-1] != "00" else None
    if earlier:
        got = set(all_ids(sandbox_http(), sandbox.url + "/parties", "parties", since=earlier))
        assert set(ids) <= got


def test_since_accepts_offsets_and_fractions(sandbox, sandbox_http):
    session = sandbox_http()
    base = all_ids(session, sandbox.url + "/parties", "parties", since="2025-06-01T00:00:00Z")
    assert (
        all_ids(session, sandbox.url + "/parties", "parties", since="2025-06-01T02:00:00+02:00")
        == base
    )
    assert (
        all_ids(session, sandbox.url + "/parties", "parties", since="2025-06-01T00:00:00.000Z")
        == base
    )


@pytest.mark.parametrize("bad", ["yesterday", "2025-13-01T00:00:00Z", ""])
def test_bad_since_is_400(sandbox, sandbox_http, bad):
    response = sandbox_http().get(sandbox.url + "/parties", params={"since": bad})
    assert response.status_code == 400


def test_written_record_appears_after_since(sandbox, sandbox_http):
    session = sandbox_http()
    sandbox.set_clock("2026-03-01T12:00:00Z")
    party = sandbox.state()["parties"][0]
    sandbox.touch("parties", party["id"], about="edited in the UI")
    ids = all_ids(session, sandbox.url + "/parties", "parties", since="2026-03-01T11:59:59Z")
    assert ids == [party["id"]]
    assert all_ids(session, sandbox.url + "/parties", "parties", since="2026-03-01T12:00:00Z") == []


@pytest.mark.parametrize(
    "path,keys",
    [
        ("/opportunities/deleted", ("opportunities", "restrictedOpportunities")),
        ("/kases/deleted", ("kases", "restrictedKases")),
    ],
)
def test_other_deleted_feeds_take_optional_since(sandbox, sandbox_http, path, keys):
    body = sandbox_http().get(sandbox.url + path).json()
    assert set(body) == set(keys)
    assert body[keys[0]] and all(set(d) == {"id", "deletedAt"} for d in body[keys[0]])
    assert all(r["name"] == "Private" and r["isRestricted"] for r in body[keys[1]])


def test_deleted_parties_feed_shape_and_restricted_stubs(sandbox, sandbox_http):
    body = (
        sandbox_http()
        .get(sandbox.url + "/parties/deleted", params={"since": "2024-01-01T00:00:00Z"})
        .json()
    )
    assert set(body) == {"parties", "restrictedParties"}
    state = sandbox.state()
    assert {d["id"] for d in body["parties"]} == {d["id"] for d in state["_deleted"]["parties"]}
    for stub in body["restrictedParties"]:
        assert stub["isRestricted"] is True
        if stub["type"] == "person":
            assert stub["firstName"] is None and stub["lastName"] == "Private"
        else:
            assert stub["name"] == "Private"
        assert "_restrictedAt" not in stub
    live = {p["id"] for p in state["parties"]}
    assert not live & {d["id"] for d in body["parties"]}


def test_deleted_feed_since_is_strict(sandbox, sandbox_http):
    deleted = sandbox.state()["_deleted"]["parties"]
    cut = sorted(d["deletedAt"] for d in deleted)[0]
    body = sandbox_http().get(sandbox.url + "/parties/deleted", params={"since": cut}).json()
    assert {d["id"] for d in body["parties"]} == {d["id"] for d in deleted if d["deletedAt"] > cut}


def test_deleted_feed_is_paginated(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=200, seed=4)
    session = sandbox_http()
    first = session.get(
        sb.url + "/parties/deleted", params={"since": "2024-01-01T00:00:00Z", "perPage": 2}
    )
    assert len(first.json()["parties"]) == 2
    assert 'rel="next"' in first.headers["Link"]


def test_delete_and_restrict_via_admin_reach_the_feeds(sandbox, sandbox_http):
    session = sandbox_http()
    sandbox.set_clock("2026-02-02T02:02:02Z")
    parties = sandbox.state()["parties"]
    sandbox.delete_record("parties", parties[0]["id"])
    sandbox.restrict_record("parties", parties[1]["id"])
    body = session.get(
        sandbox.url + "/parties/deleted", params={"since": "2026-01-01T00:00:00Z"}
    ).json()
    assert body["parties"] == [{"id": parties[0]["id"], "deletedAt": "2026-02-02T02:02:02Z"}]
    assert [r["id"] for r in body["restrictedParties"]] == [parties[1]["id"]]
    assert session.get(f"{sandbox.url}/parties/{parties[1]['id']}").status_code == 404
