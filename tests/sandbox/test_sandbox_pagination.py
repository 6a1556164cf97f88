"""Paging like Capsule: page/perPage (100 at most), Link rel=next/prev keeping the query."""

import re

import pytest


def links(response) -> dict:
    return {
        rel: url
        for url, rel in re.findall(r'<([^>]+)>;\s*rel="(\w+)"', response.headers.get("Link", ""))
    }


def follow(session, url, params=None):
    pages = []
    response = session.get(url, params=params)
    while True:
        assert response.status_code == 200
        pages.append(response)
        nxt = links(response).get("next")
        if not nxt:
            return pages
        response = session.get(nxt)


def test_follow_next_links_collects_every_party_once(sandbox, sandbox_http):
    session = sandbox_http()
    pages = follow(session, sandbox.url + "/parties", {"perPage": 7, "embed": "tags"})
    ids = [p["id"] for page in pages for p in page.json()["parties"]]
    stored = {p["id"] for p in sandbox.state()["parties"]}
    assert len(ids) == len(set(ids)) == len(stored)
    assert set(ids) == stored
    assert len(pages) == -(-len(stored) // 7)


def test_link_is_absolute_keeps_query_and_changes_only_page(sandbox, sandbox_http):
    response = sandbox_http().get(sandbox.url + "/parties?perPage=5&embed=tags,fields&page=2")
    rel = links(response)
    assert rel["next"] == sandbox.url + "/parties?perPage=5&embed=tags,fields&page=3"
    assert rel["prev"] == sandbox.url + "/parties?perPage=5&embed=tags,fields&page=1"
    assert response.headers["X-Pagination-Has-More"] == "true"


def test_last_page_has_no_next_and_says_no_more(sandbox, sandbox_http):
    response = sandbox_http().get(sandbox.url + "/parties", params={"perPage": 100})
    assert "next" not in links(response)
    assert response.headers["X-Pagination-Has-More"] == "false"
    assert "Link" not in response.headers  # page 1: no prev either


def test_per_page_is_capped_at_100(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=150, seed=3)
    response = sandbox_http().get(sb.url + "/parties", params={"perPage": 500})
    assert len(response.json()["parties"]) == 100
    assert "next" in links(response)


def test_default_per_page_is_50(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=120, seed=3)
    assert len(sandbox_http().get(sb.url + "/parties").json()["parties"]) == 50


@pytest.mark.parametrize("params", [{"perPage": "x"}, {"perPage": 0}, {"page": 0}, {"page": "-1"}])
def test_invalid_paging_is_400(sandbox, sandbox_http, params):
    response = sandbox_http().get(sandbox.url + "/parties", params=params)
    assert response.status_code == 400
    assert "message" in response.json()


def test_core_lists_are_newest_created_first(sandbox, sandbox_http):
    session = sandbox_http()
    for path, key in (
        ("/parties", "parties"),
        ("/opportunities", "opportunities"),
        ("/kases", "kases"),
        ("/tasks?status=open,completed,pending", "tasks"),
    ):
        ids = [
            r["id"] for r in session.get(sandbox.url + path, params={"perPage": 100}).json()[key]
        ]
        assert ids == sorted(ids, reverse=True), path


def test_entries_are_newest_first_by_entry_at(sandbox, sandbox_http):
    entries = (
        sandbox_http().get(sandbox.url + "/entries", params={"perPage": 100}).json()["entries"]
    )
    stamps = [e["entryAt"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)
    assert len(entries) > 20


def test_responses_are_minified_json_with_content_length(sandbox, sandbox_http):
    response = sandbox_http().get(sandbox.url + "/users")
    assert b": " not in response.content and b", " not in response.content
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Date" in response.headers


def test_keep_alive_serves_many_requests_on_one_connection(sandbox, sandbox_http):
    session = sandbox_http()
    for _ in range(5):
        assert session.get(sandbox.url + "/users").status_code == 200
    assert sandbox.requests()["by_path"]["GET /users"] == 5


def test_child_pagination_of_per_record_entries_caps_at_50(sandbox_factory, sandbox_http):
    sb = sandbox_factory(scale=60, seed=2)
    state = sb.state()
    counts: dict = {}
    for entry in state["entries"]:
        if entry.get("party"):
            counts[entry["party"]["id"]] = counts.get(entry["party"]["id"], 0) + 1
    party_id = max(counts, key=counts.get)
    response = sandbox_http().get(f"{sb.url}/parties/{party_id}/entries", params={"perPage": 100})
    assert response.status_code == 200
    assert len(response.json()["entries"]) == min(50, counts[party_id])
