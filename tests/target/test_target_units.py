"""Small pieces of the target without a Capsule: diffs, keys, rules text, redaction."""

from __future__ import annotations

import json

import requests_mock

from tap_capsule import catalogue as cat
from tap_capsule.api_client import CapsuleSession
from target_capsule import natural_keys as nk
from target_capsule import payload, rules
from target_capsule.lookups import Lookups
from target_capsule.rejects import Rejects


def test_same_is_loose_where_capsule_differs():
    assert (
        payload.same(5, "5.0")
        and payload.same("", None)
        and payload.same({"id": 3}, {"id": 3, "name": "x"})
    )
    assert payload.same("2025-01-01T10:00:00Z", "2025-01-01T10:00:00+00:00")
    assert not payload.same("a", "b") and not payload.same({"id": 3}, {"id": 4})
    assert payload.same(["b", "a"], ["a", "b"])


def test_contact_items_are_sent_only_when_missing():
    obj = cat.get("parties")
    current = {
        "emailAddresses": [{"id": 1, "type": None, "address": "A@x.com"}],
        "phoneNumbers": [{"id": 2, "type": "Work", "number": "+44 20 1234"}],
    }
    body = {
        "emailAddresses": [{"type": "Work", "address": "a@X.com "}, {"address": "new@x.com"}],
        "phoneNumbers": [{"number": "+44201234"}],
    }
    assert payload.update_body(obj, body, current) == {"emailAddresses": [{"address": "new@x.com"}]}


def test_normalize_reduces_refs_and_drops_read_only():
    obj = cat.get("opportunity_tracks")
    body = payload.normalize(
        obj,
        {
            "id": 1,
            "opportunityId": 5,
            "definition": {"id": 2, "name": "d"},
            "tasks": [],
            "createdAt": "x",
            "_sdc_deleted_at": None,
        },
    )
    assert body == {"definition": {"id": 2}, "opportunity": {"id": 5}}
    assert payload.update_body(obj, {**body, "description": "n"}, {"description": "o"}) == {
        "description": "n"
    }


def test_custom_fields_resolve_by_slug_name_or_id():
    defs = payload.FieldDefinitions(
        "parties",
        [
            {"id": 1, "name": "Industry", "type": "list"},
            {"id": 3, "name": "Employees", "type": "number"},
        ],
    )
    wanted = defs.desired(
        {
            "fields": [{"definition": {"id": 3}, "value": "60.5"}],
            "custom_fields": {"industry": "Tech"},
        }
    )
    assert wanted == {1: "Tech", 3: "60.5"}
    current = {"fields": [{"definition": {"id": 3, "name": "Employees"}, "value": "60.50"}]}
    assert defs.body({3: 60.5, 1: "Tech"}, current) == [{"definition": {"id": 1}, "value": "Tech"}]
    assert defs.resolve("Employees") == 3
    try:
        defs.resolve("Revenue")
    except payload.PayloadError as exc:
        assert "unknown custom field 'Revenue'" in str(exc)
    else:
        raise AssertionError


def test_natural_key_paths_and_index():
    keys = cat.get("parties").natural_keys
    index = nk.Index(
        keys,
        [
            {"id": 1, "type": "person", "emailAddresses": [{"address": "A@x.com"}]},
            {"id": 2, "type": "organisation", "name": "Acme"},
        ],
    )
    assert index.match_key({"type": "person", "emailAddresses": [{"address": " a@X.com"}]}) == [1]
    assert index.match_key({"type": "organisation", "name": "ACME"}) == [2]
    assert index.match_key({"type": "person", "firstName": "x"}) is None
    assert nk.keys_for(cat.get("parties"), {"parties": []}) is None
    assert nk.keys_for(cat.get("tasks"), {"tasks": ["description"]})[0].fields == ("description",)


def test_rule_text_names_field_and_rule():
    assert rules.check(cat.get("parties"), "INSERT", {"type": "organisation"}) == [
        "parties INSERT: an organisation needs name (rule: organisation requires name)"
    ]
    assert rules.operation_allowed(cat.get("users"), "DELETE") == (
        "users DELETE: DELETE is not allowed (rule: users allows UPDATE only)"
    )


def test_rejects_never_hold_a_secret(tmp_path):
    path = tmp_path / "r.jsonl"
    rejects = Rejects(str(path), ["s3cret"])
    rejects.write("parties", "INSERT", "bad s3cret", {"about": "s3cret!", "_sdc_batched_at": "x"})
    line = json.loads(path.read_text())
    assert line == {
        "stream": "parties",
        "operation": "INSERT",
        "reason": "bad ***",
        "http_status": None,
        "record": {"about": "***!"},
    }


def test_single_record_reads_switch_to_one_list_pass():
    session = CapsuleSession({"access_token": "t", "api_url": "https://capsule.test/api/v2"})
    lookups = Lookups(session)
    obj = cat.get("users")  # a settings list: read whole at once
    with requests_mock.Mocker() as m:
        m.get("https://capsule.test/api/v2/users", json={"users": [{"id": 1}, {"id": 2}]})
        assert lookups.current(obj, 2, "/users", ()) == {"id": 2}
        assert lookups.current(obj, 1, "/users", ()) == {"id": 1}
        assert m.call_count == 1
    session.close()


def test_a_short_secret_never_corrupts_the_rejects_line(tmp_path):
    import json

    from target_capsule.rejects import Rejects

    path = tmp_path / "rejects.jsonl"
    Rejects(str(path), ["t"]).write(
        "parties", "INSERT", "a person needs lastName", {"type": "person", "about": "t"}
    )
    line = json.loads(path.read_text())
    assert line["stream"] == "parties" and line["operation"] == "INSERT"
    assert set(line["record"]) == {"type", "about"}
    assert line["record"]["about"] == "***"
