"""Capsule's real write semantics, through the target-capsule CLI against the sandbox.

The sandbox follows Capsule's documentation here: a case PUT with `owner` and no `team` clears the
team, a track's `definition` is write-only, custom titles have no PUT, `value: null` on a boolean
field is a 422, nested rows go with `{"id", "_delete": true}`, and a 403 belongs to one operation.
"""

from __future__ import annotations

import json

from target_helpers import TOKEN, messages

from tap_capsule.sandbox import Sandbox


def test_a_case_owner_change_keeps_the_team(capsule, run_target):
    st = capsule.state()
    case = next(c for c in st["cases"] if c.get("team"))
    user = st["users"][1]
    run = run_target(
        capsule, messages([("cases", {"id": case["id"], "owner": {"id": user["id"]}})])
    )
    assert run.rejects == []
    assert run.count("cases", "UPDATE", "applied") == 1
    after = next(c for c in capsule.state()["cases"] if c["id"] == case["id"])
    assert after["owner"]["id"] == user["id"]
    assert after["team"]["id"] == case["team"]["id"]


def test_a_track_replay_finds_the_track_it_created(capsule, run_target):
    st = capsule.state()
    opp = st["opportunities"][0]
    definition = next(d for d in st["track_definitions"] if d.get("captureRule") == "OPPORTUNITY")
    track = {
        "opportunityId": opp["id"],
        "definition": {"id": definition["id"]},
        "trackDateOn": "2026-03-01",
        "description": "Replayed track",
    }
    first = run_target(capsule, messages([("opportunity_tracks", track)]))
    assert first.count("opportunity_tracks", "INSERT", "applied") == 1
    before = len(capsule.state()["opportunity_tracks"])
    capsule.reset_requests()
    second = run_target(capsule, messages([("opportunity_tracks", track)]))
    assert second.rejects == []
    assert second.count("opportunity_tracks", "UPDATE", "unchanged") == 1
    assert second.state["target_capsule"]["counters"]["opportunity_tracks"] == {
        "matched_on_content": 1
    }
    assert capsule.requests()["writes"] == 0
    assert len(capsule.state()["opportunity_tracks"]) == before


def test_a_custom_title_update_creates_the_new_and_deletes_the_old(capsule, run_target):
    old = capsule.state()["custom_titles"][0]
    capsule.reset_requests()
    run = run_target(capsule, messages([("custom_titles", {"id": old["id"], "title": "Capt"})]))
    assert run.rejects == []
    assert run.count("custom_titles", "UPDATE", "applied") == 1
    by_path = capsule.requests()["by_path"]
    assert by_path.get("POST /titles") == 1
    assert by_path.get(f"DELETE /titles/{old['id']}") == 1
    assert not any(k.startswith("PUT /titles") for k in by_path)
    titles = {t["title"]: t["id"] for t in capsule.state()["custom_titles"]}
    assert old["id"] not in titles.values()
    assert "Capt" in titles
    assert f"replaced by new record {titles['Capt']}" in run.stderr


def test_clearing_a_boolean_field_deletes_its_row(capsule, run_target):
    st = capsule.state()
    case = next(
        c
        for c in st["cases"]
        if any(isinstance(f.get("value"), bool) for f in c.get("fields") or ())
    )
    row = next(f for f in case["fields"] if isinstance(f.get("value"), bool))
    update = {
        "id": case["id"],
        "name": case["name"] + " (checked)",
        "fields": [{"definition": {"id": row["definition"]["id"]}, "value": None}],
    }
    run = run_target(capsule, messages([("cases", update)]))
    assert run.rejects == [], run.rejects  # Capsule answers `value: null` with a 422
    after = next(c for c in capsule.state()["cases"] if c["id"] == case["id"])
    assert after["name"] == update["name"]  # the record's other change is not lost
    assert row["definition"]["id"] not in {f["definition"]["id"] for f in after["fields"]}


def person_with_email_and_tag(st: dict) -> dict:
    return next(
        p
        for p in st["parties"]
        if p["type"] == "person" and p.get("emailAddresses") and p.get("tags")
    )


def test_replace_mirrors_the_source_and_merge_only_adds(capsule, run_target):
    st = capsule.state()
    person = person_with_email_and_tag(st)
    record = {
        "id": person["id"],
        "emailAddresses": [{"type": "Work", "address": "only.this@example.net"}],
        "tags": [],
    }
    merged = run_target(capsule, messages([("parties", record)]))
    assert merged.count("parties", "UPDATE", "applied") == 1
    after = next(p for p in capsule.state()["parties"] if p["id"] == person["id"])
    addresses = {e["address"] for e in after["emailAddresses"]}
    assert addresses == {e["address"] for e in person["emailAddresses"]} | {"only.this@example.net"}
    assert [t["id"] for t in after["tags"]] == [t["id"] for t in person["tags"]]
    assert "counters" not in merged.state["target_capsule"]

    replaced = run_target(
        capsule, messages([("parties", record)]), nested_lists={"parties": "replace"}
    )
    assert replaced.rejects == []
    assert replaced.count("parties", "UPDATE", "applied") == 1
    after = next(p for p in capsule.state()["parties"] if p["id"] == person["id"])
    assert [e["address"] for e in after["emailAddresses"]] == ["only.this@example.net"]
    assert after.get("tags") in (None, [])
    removed = len(person["emailAddresses"]) + len(person["tags"])
    assert replaced.state["target_capsule"]["counters"]["parties"]["rows_removed"] == removed
    again = run_target(
        capsule, messages([("parties", record)]), nested_lists={"parties": "replace"}
    )
    assert again.count("parties", "UPDATE", "unchanged") == 1


def test_a_403_rejects_that_operation_names_the_permission_and_the_run_goes_on(run_target):
    user_token = "user-" + TOKEN  # a normal user's token: no user_preference, no administrator
    with Sandbox(token=TOKEN, scale=5, seed=3, extra_tokens={user_token: "read write"}) as sb:
        st = sb.state()
        records = [
            ("users", {"id": st["users"][0]["id"], "timezone": "Europe/Paris"}),
            ("users", {"id": st["users"][1]["id"], "timezone": "Europe/Paris"}),
            ("custom_titles", {"title": "Dame"}),
            ("parties", {"type": "organisation", "name": "Goes On Ltd"}),
        ]
        sb.reset_requests()
        run = run_target(sb, messages(records), check=False, access_token=user_token)
        assert run.returncode == 0, run.stderr
        reasons = {(r["stream"], r["http_status"]): r["reason"] for r in run.rejects}
        assert len(run.rejects) == 3
        assert "user_preference" in reasons[("users", 403)]
        assert "administrator" in reasons[("custom_titles", 403)]
        assert run.count("parties", "INSERT", "applied") == 1
        assert sb.requests()["by_path"].get(f"PUT /users/{st['users'][1]['id']}") is None
        assert "Goes On Ltd" in {p.get("name") for p in sb.state()["parties"]}
        assert TOKEN not in run.stdout + run.stderr + json.dumps(run.rejects)


def test_a_dry_run_never_passes_the_upstream_state_on(capsule, run_target):
    upstream = {"bookmarks": {"parties": {"replication_key_value": "2026-01-01T00:00:00Z"}}}
    recs = [("parties", {"type": "organisation", "name": "Dry Ltd"})]
    dry = run_target(capsule, messages(recs, state=upstream), dry_run=True)
    assert dry.states and all("bookmarks" not in s for s in dry.states)
    assert dry.state["target_capsule"]["totals"]["planned"] == 1
    real = run_target(capsule, messages(recs, state=upstream))
    assert real.state["bookmarks"] == upstream["bookmarks"]


def test_content_matches_are_counted_logged_and_can_be_turned_off(capsule, run_target):
    st = capsule.state()
    person = next(p for p in st["parties"] if p["type"] == "person")
    twin = {"type": "person", "firstName": person["firstName"], "lastName": person["lastName"]}
    on = run_target(capsule, messages([("parties", twin)]))
    matched = [
        pid
        for pid, p in ((p["id"], p) for p in st["parties"])
        if p["type"] == "person"
        and (p["firstName"], p["lastName"]) == (person["firstName"], person["lastName"])
    ]
    if len(matched) == 1:
        assert on.count("parties", "UPDATE", "unchanged") == 1
        assert on.state["target_capsule"]["counters"]["parties"] == {"matched_on_content": 1}
        assert f"matched on content existing record {matched[0]}" in on.stderr
    off = run_target(capsule, messages([("parties", twin)]), match_on_content=False)
    assert off.count("parties", "INSERT", "applied") == 1
    assert "counters" not in off.state["target_capsule"]
    # Now two records hold that content: a rejection naming both, never a guess.
    both = run_target(capsule, messages([("parties", twin)]))
    assert both.count("parties", "INSERT", "rejected") == 1
    ids = sorted(
        p["id"]
        for p in capsule.state()["parties"]
        if p["type"] == "person"
        and (p.get("firstName"), p.get("lastName")) == (twin["firstName"], twin["lastName"])
    )
    assert len(ids) >= 2
    assert all(str(i) in both.rejects[0]["reason"] for i in ids)


def test_a_title_renamed_to_an_existing_one_only_deletes_the_old(capsule, run_target):
    first, second = capsule.state()["custom_titles"][:2]
    capsule.reset_requests()
    run = run_target(
        capsule, messages([("custom_titles", {"id": first["id"], "title": second["title"]})])
    )
    assert run.count("custom_titles", "UPDATE", "applied") == 1
    by_path = capsule.requests()["by_path"]
    assert "POST /titles" not in by_path
    assert by_path.get(f"DELETE /titles/{first['id']}") == 1
    titles = [t["title"] for t in capsule.state()["custom_titles"]]
    assert titles.count(second["title"]) == 1 and first["title"] not in titles
