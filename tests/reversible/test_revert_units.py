"""Unit tests of the pure pieces: what a revert sends, and the journalled id map.

Record shapes follow Capsule's documented party model (contact rows with ids, tags `{id, name}`,
custom values `{id, definition: {id, name}, value}`).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_capsule import catalogue as cat
from target_capsule.account.refs import IdMap
from target_capsule.account.revert import creation_body, differences, restore_body
from target_capsule.payload import PayloadError

PARTIES = cat.get("parties")

CURRENT = {
    "id": 11,
    "type": "person",
    "firstName": "Ann",
    "lastName": "Lee",
    "about": "Written by the run",
    "owner": {"id": 2, "username": "ben", "name": "Ben"},
    "phoneNumbers": [
        {"id": 5, "type": "Work", "number": "+44 20 1111 1111"},
        {"id": 9, "type": "Mobile", "number": "+44 7700 900123"},
    ],
    "tags": [{"id": 3, "name": "VIP"}, {"id": 8, "name": "Imported"}],
    "fields": [{"id": 40, "definition": {"id": 1, "name": "Industry"}, "value": "Tech"}],
}


def test_the_record_still_holds_what_was_written():
    written = {
        "about": "Written by the run",
        "phoneNumbers": [{"type": "Mobile", "number": "+44 7700 900123"}],
        "tags": [{"name": "Imported"}],
        "fields": [{"definition": {"id": 1}, "value": "Tech"}],
        "owner": {"id": 2},
    }
    assert differences(PARTIES, written, CURRENT) == []
    assert differences(PARTIES, {**written, "about": "Other"}, CURRENT) == ["about"]
    assert differences(PARTIES, {"fields": [{"definition": {"id": 1}, "value": "Retail"}]}, CURRENT)
    # a row the run removed that is back again counts as a change since the run
    assert differences(PARTIES, {"phoneNumbers": [{"id": 5, "_delete": True}]}, CURRENT) == [
        "phoneNumbers"
    ]
    assert differences(PARTIES, {"phoneNumbers": [{"id": 77, "_delete": True}]}, CURRENT) == []
    # a field Capsule never echoes cannot have been changed through the record
    assert differences(cat.get("opportunity_tracks"), {"definition": {"id": 4}}, {"id": 1}) == []


def test_restore_body_takes_back_what_the_run_added_and_puts_back_what_it_removed():
    written = {
        "about": "Written by the run",
        "owner": {"id": 2},
        "phoneNumbers": [
            {"type": "Mobile", "number": "+44 7700 900123"},
            {"id": 6, "_delete": True},
        ],
        "tags": [{"name": "Imported"}, {"id": 4, "_delete": True}],
        "fields": [{"definition": {"id": 1}, "value": "Tech"}, {"id": 41, "_delete": True}],
    }
    before = {
        "about": "Before",
        "owner": {"id": 7, "username": "cat"},
        "phoneNumbers": [
            {"id": 5, "type": "Work", "number": "+44 20 1111 1111"},
            {"id": 6, "type": "Home", "number": "+44 20 2222 2222"},
        ],
        "tags": [{"id": 3, "name": "VIP"}, {"id": 4, "name": "Old"}],
        "fields": [
            {"id": 40, "definition": {"id": 1}, "value": "Retail"},
            {"id": 41, "definition": {"id": 2}, "value": "12"},
        ],
    }
    body = restore_body(PARTIES, written, before, CURRENT)
    assert body["about"] == "Before"
    assert body["owner"] == {"id": 7}
    assert body["phoneNumbers"] == [
        {"id": 9, "_delete": True},
        {"type": "Home", "number": "+44 20 2222 2222"},
    ]
    assert body["tags"] == [{"id": 8, "_delete": True}, {"name": "Old"}]
    assert body["fields"] == [
        {"definition": {"id": 1}, "value": "Retail"},
        {"definition": {"id": 2}, "value": "12"},
    ]


def test_a_custom_value_the_record_did_not_have_is_removed_by_row():
    body = restore_body(
        PARTIES, {"fields": [{"definition": {"id": 1}, "value": "Tech"}]}, {"fields": []}, CURRENT
    )
    assert body == {"fields": [{"id": 40, "_delete": True}]}


def test_creation_body_leaves_out_what_capsule_sets_and_refuses_what_it_cannot_create():
    body = creation_body(PARTIES, {**CURRENT, "createdAt": "2025-01-01T00:00:00Z"})
    assert "id" not in body and "createdAt" not in body
    assert body["tags"] == [{"name": "Imported"}, {"name": "VIP"}]
    assert body["fields"] == [{"definition": {"id": 1}, "value": "Tech"}]
    assert all("id" not in row for row in body["phoneNumbers"])
    entries = cat.get("entries")
    note = {"id": 3, "type": "note", "content": "Hi", "party": {"id": 11}, "attachments": [{}]}
    assert creation_body(entries, note) == {"type": "note", "content": "Hi", "party": {"id": 11}}
    with pytest.raises(PayloadError, match="email entry cannot be recreated"):
        creation_body(entries, {**note, "type": "email"})


def test_id_map_survives_a_kill_through_its_journal(tmp_path):
    path = tmp_path / "ids.json"
    ids = IdMap(path)
    ids.put("parties", 11, 901)
    ids.mark_pending("parties", 12, {"name": "Acme"})
    ids.close()  # killed here (the kill closes the file): no save()
    # a last journal line cut short by the kill is ignored
    with (tmp_path / "ids.json.journal").open("a") as handle:
        handle.write('{"stream": "parties", "old": "13", "ne')
    again = IdMap(path)
    assert again.get("parties", "11") == 901
    assert again.pending == {("parties", "12"): {"name": "Acme"}}
    again.put("parties", 12, 902)
    assert again.pending == {}
    again.save()
    assert json.loads(path.read_text()) == {"parties": {"11": 901, "12": 902}}
    assert IdMap(path).remap({"party": {"id": 12, "name": "x"}, "partyId": "11"}) == {
        "party": {"id": 902, "name": "x"},
        "partyId": 901,
    }


@given(
    st.lists(
        st.tuples(st.sampled_from(["parties", "cases"]), st.integers(1, 50), st.integers(1, 10**9)),
        max_size=30,
    )
)
def test_id_map_reloads_what_was_journalled(tmp_path_factory, pairs):
    path = tmp_path_factory.mktemp("ids") / "ids.json"
    ids = IdMap(path)
    expected: dict[str, dict[str, int]] = {}
    for stream, old, new in pairs:
        ids.put(stream, old, new)
        expected.setdefault(stream, {})[str(old)] = new
    ids.close()
    assert IdMap(path).as_dict() == expected
    ids.save()
    assert IdMap(path).as_dict() == expected


def test_write_bodies_take_the_shapes_capsule_documents():
    """A case's stage goes out bare (the docs' create example: "stage": 149), a definition
    without displayOrder (not a Field Definition field), a completed task with its completedAt
    (writable in the Task model)."""
    from target_capsule.payload import wrapped

    kase = creation_body(
        cat.get("cases"),
        {"id": 1, "name": "Case", "party": {"id": 5}, "stage": {"id": 149, "name": "Kickoff"}},
    )
    assert wrapped(cat.get("cases"), kase)["kase"]["stage"] == 149
    assert wrapped(cat.get("cases"), kase)["kase"]["party"] == {"id": 5}  # others stay objects
    assert wrapped(cat.get("opportunities"), {"milestone": {"id": 3}}) == {
        "opportunity": {"milestone": {"id": 3}}
    }
    definition = creation_body(
        cat.get("party_custom_fields"),
        {"id": 7, "name": "Size", "type": "number", "displayOrder": 3, "important": False},
    )
    assert "displayOrder" not in definition and definition["name"] == "Size"
    task = creation_body(
        cat.get("tasks"),
        {
            "id": 9,
            "description": "Done",
            "dueOn": "2026-01-02",
            "status": "COMPLETED",
            "completedAt": "2026-01-03T10:00:00Z",
        },
    )
    assert task["completedAt"] == "2026-01-03T10:00:00Z"
