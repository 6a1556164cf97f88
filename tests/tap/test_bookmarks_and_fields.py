"""Unit tests of bookmark windows and custom-field typing."""

from __future__ import annotations

import time

from tap_capsule.bookmarks import capsule_time, signpost, window
from tap_capsule.custom_fields import CustomFieldMap, convert


def test_resuming_from_a_bookmark_sends_it_unchanged_and_is_exclusive():
    w = window("2026-01-02T03:04:05Z", None)
    assert w.since_param == "2026-01-02T03:04:05Z"  # no +1 s: that loses same-second changes
    assert not w.admits("2026-01-02T03:04:05Z")
    assert w.admits("2026-01-02T03:04:06Z")


def test_start_date_is_inclusive():
    w = window(None, "2026-01-02T03:04:05+00:00")
    assert w.since_param == "2026-01-02T03:04:04Z"
    assert w.admits("2026-01-02T03:04:05Z")
    assert not w.admits("2026-01-02T03:04:04Z")


def test_the_later_of_bookmark_and_start_date_wins():
    assert window("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z").start == "2026-01-01T00:00:00Z"
    assert window("2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z").exclusive


def test_signpost_is_one_second_before_the_server_clock():
    server = 1_800_000_000.7
    assert signpost(server) == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_799_999_999))


def test_signpost_without_a_server_clock_keeps_a_margin():
    assert signpost(None) < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))


def test_capsule_time_normalises_offsets():
    assert capsule_time("2026-01-02T04:04:05+01:00") == "2026-01-02T03:04:05Z"


def test_number_strings_become_numbers_and_booleans_booleans():
    assert convert("1250.50", "number") == 1250.5
    assert convert("12", "number") == 12
    assert convert(3, "number") == 3
    assert convert("true", "boolean") is True
    assert convert(False, "boolean") is False
    assert convert("2026-01-31", "date") == "2026-01-31"
    assert convert("", "number") is None


def test_field_names_are_stable_slugs_and_clashes_get_the_id():
    fmap = CustomFieldMap(
        [
            {"id": 9, "name": "Contract value", "type": "number"},
            {"id": 3, "name": "Renewal date", "type": "date"},
            {"id": 12, "name": "contract-value", "type": "text"},
        ]
    )
    assert fmap.schema()["properties"] == {
        "renewal_date": {"type": ["string", "null"], "format": "date"},
        "contract_value": {"type": ["number", "null"]},
        "contract_value_12": {"type": ["string", "null"]},
    }
    fields = [
        {"definition": {"id": 9, "name": "Contract value"}, "value": "1000"},
        {"definition": {"id": 77, "name": "Created later"}, "value": "x"},
    ]
    assert fmap.typed(fields, {"contract_value", "renewal_date"}) == {"contract_value": 1000}
