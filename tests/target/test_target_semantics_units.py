"""Small pieces of the target's write semantics, without a Capsule (requests-mock only)."""

from __future__ import annotations

import requests_mock

from tap_capsule import catalogue as cat
from tap_capsule.api_client import CapsuleSession
from target_capsule import rules, values
from target_capsule.lookups import Lookups

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
