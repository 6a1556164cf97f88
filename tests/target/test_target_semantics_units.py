"""Small pieces of the target's write semantics, without a Capsule (requests-mock only)."""

from __future__ import annotations

import requests_mock
from hypothesis import given
from hypothesis import strategies as st

from tap_capsule import catalogue as cat
from tap_capsule.api_client import CapsuleSession
from target_capsule import natural_keys as nk
from target_capsule import payload, rules, values
from target_capsule.lookups import Lookups
from target_capsule.permissions import missing_permission
from target_capsule.summary import Summary

API = "https://capsule.test/api/v2"


def test_forget_drops_the_id_only_from_its_own_objects_lists():
    session = CapsuleSession({"access_token": "t", "api_url": API})
    lookups = Lookups(session)
    parties, tasks = cat.get("parties"), cat.get("tasks")
    with requests_mock.Mocker() as m:
        m.get(f"{API}/parties", json={"parties": [{"id": 7, "type": "person", "lastName": "A"}]})
        m.get(f"{API}/tasks", json={"tasks": [{"id": 7, "description": "call"}]})
        lookups.index(parties, "/parties", parties.natural_keys or ())
        lookups.index(tasks, "/tasks", ())
        lookups.forget(parties, 7)  # party 7 deleted; task 7 is another record
        assert lookups.current(tasks, 7, "/tasks", ()) == {"id": 7, "description": "call"}
        assert 7 not in lookups.index(parties, "/parties", parties.natural_keys or ()).by_id
        assert m.call_count == 2  # nothing re-read: task 7 came from its cached list
    session.close()


def test_every_catalogue_rule_kind_has_a_checker():
    kinds = {type(rule) for obj in cat.OBJECTS for rule in obj.rules}
    assert kinds <= set(rules.CHECKERS)


def test_rule_checkers_report_each_kind():
    entries = cat.get("entries") if "entries" in cat.BY_STREAM else None
    if entries is not None:
        reasons = rules.check(entries, "INSERT", {"type": "note", "content": "x"})
        assert any("exactly one of" in r for r in reasons)
    assert rules.check(cat.get("parties"), "INSERT", {"type": "robot"}) != []


def test_values_ref_id_never_takes_a_boolean_for_an_id():
    assert values.ref_id(True) is None
    assert values.ref_id("12") == 12 and values.ref_id({"id": 3}) == 3
    assert values.blank({"id": None, "name": " "}) and not values.blank(0)


# --- Capsule's write semantics, as pure diffs ----------------------------------------------------


def test_a_new_owner_carries_the_team_capsule_would_drop():
    current = {"owner": {"id": 1}, "team": {"id": 9, "name": "Sales"}, "name": "Case"}
    for stream in ("cases", "parties", "opportunities"):
        diff = payload.update_body(cat.get(stream), {"owner": {"id": 2}}, current)
        assert diff == {"owner": {"id": 2}, "team": {"id": 9}}, stream
    # the record's own team wins; no owner change sends no team
    obj = cat.get("cases")
    assert payload.update_body(obj, {"owner": {"id": 2}, "team": {"id": 4}}, current) == {
        "owner": {"id": 2},
        "team": {"id": 4},
    }
    assert payload.update_body(obj, {"name": "Renamed"}, current) == {"name": "Renamed"}
    assert payload.update_body(obj, {"owner": {"id": 2}}, {"owner": {"id": 1}}) == {
        "owner": {"id": 2}
    }


BOOLEAN_DEFS = [{"id": 5, "name": "Active", "type": "boolean"}, {"id": 6, "name": "Note"}]


def test_clearing_a_custom_value_deletes_its_row_never_sends_null():
    defs = payload.FieldDefinitions("parties", BOOLEAN_DEFS)
    current = {"fields": [{"id": 77, "definition": {"id": 5}, "value": True}]}
    assert defs.body({5: None}, current) == [{"id": 77, "_delete": True}]
    assert defs.body({5: False}, current) == [{"definition": {"id": 5}, "value": False}]
    assert defs.body({5: None}, {"fields": []}) == []  # nothing to clear


def test_replace_mirrors_contact_rows_tags_and_fields():
    obj = cat.get("parties")
    current = {
        "emailAddresses": [
            {"id": 1, "type": "Work", "address": "keep@x.com"},
            {"id": 2, "type": "Home", "address": "old@x.com"},
        ],
        "phoneNumbers": [{"id": 3, "number": "+44 1"}],
    }
    body = {"emailAddresses": [{"address": "KEEP@x.com"}, {"address": "new@x.com"}]}
    assert payload.update_body(obj, body, current) == {
        "emailAddresses": [{"address": "new@x.com"}]
    }  # merge: add only
    diff = payload.update_body(obj, body, current, replace=True)
    assert diff == {"emailAddresses": [{"address": "new@x.com"}, {"id": 2, "_delete": True}]}
    assert payload.removals(diff) == 1  # phones untouched: the record does not carry them
    tags = [{"id": 10, "name": "VIP"}, {"id": 11, "name": "Old"}]
    assert payload.tags_body(["vip", "New"], {"tags": tags}, replace=True) == [
        {"name": "New"},
        {"id": 11, "_delete": True},
    ]
    assert payload.tags_body(["vip"], {"tags": tags}) == []
    defs = payload.FieldDefinitions("parties", BOOLEAN_DEFS)
    current_fields = {
        "fields": [
            {"id": 70, "definition": {"id": 5}, "value": True},
            {"id": 71, "definition": {"id": 6}, "value": "x"},
        ]
    }
    assert defs.body({5: True}, current_fields, replace=True) == [{"id": 71, "_delete": True}]
    assert defs.body({5: True}, current_fields) == []


def test_a_track_is_matched_without_its_write_only_definition():
    obj = cat.get("opportunity_tracks")
    body = {
        "definition": {"id": 3},
        "opportunity": {"id": 8},
        "trackDateOn": "2026-01-02",
        "description": "Onboarding",
    }
    wanted = nk.content_of(obj, body)
    assert wanted == {"trackDateOn": "2026-01-02", "description": "Onboarding"}
    capsule_copy = {"id": 40, "trackDateOn": "2026-01-02", "description": "Onboarding"}
    index = nk.Index((), [capsule_copy])
    assert index.match_content(wanted, lambda c: nk.holds_scalars(wanted, c)) == [40]


def test_permission_names_and_summary_counters():
    assert "user_preference" in missing_permission("users")
    assert "administrator" in missing_permission("custom_titles")
    assert "administrator" in missing_permission("resthooks")
    assert "write" in missing_permission("parties")
    summary = Summary()
    summary.count("parties", "rows_removed", 2)
    summary.count("parties", "matched_on_content")
    summary.count("parties", "rows_removed", 0)
    assert summary.as_dict()["counters"] == {
        "parties": {"matched_on_content": 1, "rows_removed": 2}
    }
    assert "parties: 1 matched_on_content, 2 rows_removed" in summary.lines()


# --- replace / merge as properties: what Capsule holds after the PUT ------------------------------

ADDRESSES = st.lists(
    st.sampled_from(["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"]), unique=True
)


def capsule_applies(rows: list[dict], items: list[dict]) -> list[dict]:
    """Capsule's documented merge of a PUT's list: `_delete` removes by id, new items append."""
    gone = {i["id"] for i in items if i.get("_delete")}
    out = [r for r in rows if r["id"] not in gone]
    next_id = max((r["id"] for r in rows), default=0) + 1
    for item in items:
        if not item.get("_delete") and item.get("id") is None:
            out.append({"id": next_id, **item})
            next_id += 1
    return out


@given(have=ADDRESSES, want=ADDRESSES)
def test_replace_leaves_exactly_the_records_list_and_merge_only_adds(have, want):
    obj = cat.get("parties")
    rows = [{"id": n + 1, "address": a} for n, a in enumerate(have)]
    body = {"emailAddresses": [{"address": a.upper()} for a in want]}
    replaced = payload.update_body(obj, body, {"emailAddresses": rows}, replace=True)
    mirrored = capsule_applies(rows, replaced.get("emailAddresses", []))
    assert sorted(r["address"].lower() for r in mirrored) == sorted(want)
    assert payload.removals(replaced) == len(set(have) - set(want))
    # once Capsule mirrors the record, a replay sends nothing
    assert payload.update_body(obj, body, {"emailAddresses": mirrored}, replace=True) == {}
    merged = payload.update_body(obj, body, {"emailAddresses": rows})
    assert payload.removals(merged) == 0
    added = capsule_applies(rows, merged.get("emailAddresses", []))
    assert sorted(r["address"].lower() for r in added) == sorted(set(have) | set(want))


def test_notes_are_read_from_their_parent_50_a_page():
    session = CapsuleSession({"access_token": "t", "api_url": API})
    lookups = Lookups(session)
    entries = cat.get("entries")
    path = lookups.list_path(entries, {"type": "note", "party": {"id": 5}, "content": "x"})
    assert path == "/parties/5/entries"
    with requests_mock.Mocker() as m:
        m.get(f"{API}/parties/5/entries", json={"entries": [{"id": 1, "content": "x"}]})
        assert [r["id"] for r in lookups.read_list(entries, path)] == [1]
        assert m.last_request.qs["perpage"] == ["50"]
    session.close()
