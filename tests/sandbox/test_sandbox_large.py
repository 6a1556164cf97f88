"""The large account (`--large N`): records generated on demand serve what the seeded ones do.

Pages, `since`, deleted feeds, `/entries` newest first, child lists and documented shapes are
checked against an oracle that builds every record of a small generated account (the slow full
scan a `GeneratedTable` offers), after writes into its overlay. Memory is checked by counting the
records built, not by the clock.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tap_capsule.sandbox import Sandbox
from tap_capsule.sandbox.lazy import GeneratedTable
from tests.conftest import SANDBOX_TOKEN
from tests.sandbox import test_sandbox_documented_shapes as shapes

SMALL = 60  # parties; 18 opportunities, 6 cases, 180 entries, 12 tasks
AUTH = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}


@pytest.fixture
def large(sandbox_http):
    with Sandbox(token=SANDBOX_TOKEN, large=SMALL, seed=5) as sb:
        yield sb, sandbox_http()


def table(sb: Sandbox, stream: str) -> GeneratedTable:
    rows = sb.app.store.rows[stream]
    assert isinstance(rows, GeneratedTable)
    return rows


def read_all(session, url: str, key: str) -> list[dict]:
    """Every page by following `Link: rel=next`, as Capsule's clients do."""
    out = []
    while url:
        response = session.get(url)
        assert response.status_code == 200, response.text
        out += response.json()[key]
        match = re.search(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
        url = match.group(1) if match else ""
    return out


def oracle(sb: Sandbox, stream: str) -> list[dict]:
    """Every record, built one by one (the full scan), in Capsule's list order."""
    rows = table(sb, stream)
    recs = [rows[i] for i in rows]
    if stream == "entries":
        return sorted(recs, key=lambda r: (r["entryAt"], r["id"]), reverse=True)
    return sorted(recs, key=lambda r: r["id"], reverse=True)


def write_some(sb: Sandbox, session) -> dict:
    """Edits, deletes and creates through the API and the admin calls, as users would."""
    parties, entries = oracle(sb, "parties"), oracle(sb, "entries")
    person = next(p for p in parties if p["type"] == "person")
    sb.touch("parties", person["id"], about="edited")
    sb.delete_record("parties", parties[5]["id"])
    sb.delete_record("entries", entries[3]["id"])
    made = session.post(
        sb.url + "/parties", json={"party": {"type": "person", "firstName": "A", "lastName": "B"}}
    )
    assert made.status_code == 201, made.text
    note = session.post(
        sb.url + "/entries",
        json={
            "entry": {
                "type": "note",
                "content": "back-dated",
                "entryAt": entries[40]["entryAt"],  # lands in the middle of the list
                "party": {"id": parties[10]["id"]},
            }
        },
    )
    assert note.status_code == 201, note.text
    return {"edited": person["id"], "deleted": parties[5]["id"], "note": note.json()["entry"]}


@pytest.mark.parametrize("per_page", [7, 100])
def test_pages_equal_a_full_scan_before_and_after_writes(large, per_page):
    sb, session = large
    for stream, path in (("parties", "parties"), ("entries", "entries"), ("cases", "kases")):
        got = read_all(session, f"{sb.url}/{path}?perPage={per_page}", path)
        assert [r["id"] for r in got] == [r["id"] for r in oracle(sb, stream)], stream
    write_some(sb, session)
    for stream, path in (("parties", "parties"), ("entries", "entries")):
        got = read_all(session, f"{sb.url}/{path}?perPage={per_page}", path)
        assert [r["id"] for r in got] == [r["id"] for r in oracle(sb, stream)], stream
    entries = read_all(session, f"{sb.url}/entries?perPage={per_page}", "entries")
    stamps = [e["entryAt"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)  # newest first, as the docs say
    meta = session.get(f"{sb.url}/parties?embed=meta&perPage=3").json()["meta"]
    assert meta["totalCount"] == SMALL  # one deleted, one created


def test_since_costs_what_changed_and_the_deleted_feed_lists_deletions(large):
    sb, session = large
    newest = max(r["updatedAt"] for r in oracle(sb, "parties"))
    assert newest < "2025-01-01"  # generated records changed before the seed's epoch
    assert session.get(f"{sb.url}/parties?since={newest}").json()["parties"] == []
    # every 4th updatedAt repeats its predecessor's: `since` is exclusive, by the second
    middle = oracle(sb, "parties")[30]["updatedAt"]
    after = session.get(f"{sb.url}/parties?since={middle}&perPage=100").json()["parties"]
    assert [r["id"] for r in after] == [
        r["id"] for r in oracle(sb, "parties") if r["updatedAt"] > middle
    ]
    changes = write_some(sb, session)
    changed = session.get(f"{sb.url}/parties?since={newest}").json()["parties"]
    assert changes["edited"] in {r["id"] for r in changed}
    assert len(changed) == 2  # the edit and the new party, nothing generated
    deleted = session.get(f"{sb.url}/parties/deleted?since=2025-01-01").json()["parties"]
    assert [d["id"] for d in deleted] == [changes["deleted"]]
    shown = session.get(f"{sb.url}/parties/{changes['edited']}").json()["party"]
    assert shown["about"] == "edited"
    assert session.get(f"{sb.url}/parties/{changes['deleted']}").status_code == 404


def test_child_lists_equal_a_full_scan(large):
    sb, session = large
    changes = write_some(sb, session)
    entries, parties = oracle(sb, "entries"), oracle(sb, "parties")
    for parent, key, path in (
        (parties[10], "party", "parties"),
        (oracle(sb, "opportunities")[2], "opportunity", "opportunities"),
        (oracle(sb, "cases")[1], "kase", "kases"),
    ):
        got = read_all(session, f"{sb.url}/{path}/{parent['id']}/entries?perPage=2", "entries")
        want = [e["id"] for e in entries if (e.get(key) or {}).get("id") == parent["id"]]
        assert [e["id"] for e in got] == want and want, path
    assert changes["note"]["id"] in [
        e["id"]
        for e in session.get(f"{sb.url}/parties/{parties[10]['id']}/entries").json()["entries"]
    ]
    for party in parties[:15]:
        opps = session.get(f"{sb.url}/parties/{party['id']}/opportunities").json()
        want = [o["id"] for o in oracle(sb, "opportunities") if o["party"]["id"] == party["id"]]
        assert [o["id"] for o in opps["opportunities"]] == want
        people = session.get(f"{sb.url}/parties/{party['id']}/people").json()["parties"]
        want = [p["id"] for p in parties if (p.get("organisation") or {}).get("id") == party["id"]]
        assert [p["id"] for p in people] == want
    assert any(session.get(f"{sb.url}/parties/{p['id']}/people").json()["parties"] for p in parties)
    opp = oracle(sb, "opportunities")[-1]  # index 0: a track and an additional party
    assert len(session.get(f"{sb.url}/opportunities/{opp['id']}/tracks").json()["tracks"]) == 1
    assert len(session.get(f"{sb.url}/opportunities/{opp['id']}/parties").json()["parties"]) == 1


def test_deleting_a_party_cascades_to_its_generated_records(large):
    sb, session = large
    party = next(p for p in oracle(sb, "parties") if p["type"] == "organisation")
    before = session.get(f"{sb.url}/parties/{party['id']}/entries").json()["entries"]
    people = session.get(f"{sb.url}/parties/{party['id']}/people").json()["parties"]
    assert session.delete(f"{sb.url}/parties/{party['id']}").status_code == 204
    for entry in before:
        assert session.get(f"{sb.url}/entries/{entry['id']}").status_code == 404
    for person in people:
        shown = session.get(f"{sb.url}/parties/{person['id']}").json()["party"]
        assert shown["organisation"] is None


def test_tasks_list_open_only_unless_status_asks(large):
    sb, session = large
    every = read_all(session, f"{sb.url}/tasks?status=open,completed,pending&perPage=5", "tasks")
    assert [t["id"] for t in every] == [t["id"] for t in oracle(sb, "tasks")]
    open_only = read_all(session, f"{sb.url}/tasks?perPage=5", "tasks")
    assert [t["id"] for t in open_only] == [t["id"] for t in every if t["status"] == "OPEN"]
    assert {t["status"] for t in every} == {"OPEN", "COMPLETED", "PENDING"}


def test_generated_answers_have_the_documented_shapes(large):
    sb, session = large
    state = sb.state()
    first = {s: table(sb, s).first_id for s in ("parties", "opportunities", "cases", "tasks")}
    note = next(e for e in oracle(sb, "entries") if e["type"] == "note")
    state.update(
        parties=[{"id": first["parties"]}],
        opportunities=[{"id": first["opportunities"]}],
        cases=[{"id": first["cases"]}],
        tasks=[{"id": first["tasks"]}],
        entries=[note],
    )
    found = []
    for fixtures, path in shapes.requests_for(state):
        body = session.get(sb.url + path)
        assert body.status_code == 200, (path, body.text)
        data = body.json()
        shape, required, r_shape, r_required = shapes.documented(fixtures)
        wrapper = next(k for k in data if k != "meta")
        recs = data[wrapper] if isinstance(data[wrapper], list) else [data[wrapper]]
        assert recs, path
        found += shapes.check(recs, shape, required, path)
        meta = shapes.ENDPOINTS[fixtures[0]]
        if meta.get("restricted"):
            found += shapes.check(data[meta["restricted"]], r_shape, r_required, path)
    unique = sorted({re.sub(r"\d+", "N", p) for p in found})
    assert not unique, "\n".join(unique)


def test_a_deep_page_of_a_large_account_builds_one_page_of_records():
    with Sandbox(token=SANDBOX_TOKEN, large=100_000) as sb:
        app = sb.app
        parties, entries = table(sb, "parties"), table(sb, "entries")
        assert parties.count == 100_000 and entries.count == 300_000
        response = app.handle(
            "GET", "/api/v2/parties?perPage=100&page=900&embed=tags,fields,meta", AUTH, b""
        )
        assert response.status == 200
        assert b'"totalCount":100000' in response.body
        assert '; rel="next"' in response.headers["Link"]
        # The page's 100 parties and the organisations their people name: not the account.
        assert parties.built <= 200
        response = app.handle("GET", "/api/v2/entries?perPage=100&page=2999", AUTH, b"")
        assert response.status == 200 and entries.built == 100
        assert parties.overlay == {} and entries.overlay == {}


def test_capsule_sandbox_large_serves_a_plan_ceiling_account_in_little_memory(
    sandbox_cli_factory, sandbox_http
):
    sb = sandbox_cli_factory("--large", "100000", "--seed", "2")
    session = sandbox_http()
    body = session.get(f"{sb.url}/parties?perPage=100&page=900&embed=meta").json()
    assert len(body["parties"]) == 100 and body["meta"]["totalCount"] == 100_000
    entries = session.get(f"{sb.url}/entries?perPage=100&page=3000").json()["entries"]
    assert len(entries) == 100
    assert session.get(f"{sb.url}/entries?perPage=100&page=3001").json()["entries"] == []
    status = Path(f"/proc/{sb.process.pid}/status")
    if status.exists():  # Linux: the whole process, 460,000 records served from the index
        rss = next(int(x.split()[1]) for x in status.read_text().splitlines() if "VmHWM" in x)
        assert rss < 300 * 1024, f"{rss} kB"
