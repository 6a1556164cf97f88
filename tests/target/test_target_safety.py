"""Hostile or sloppy input never reaches Capsule: ids, URLs and field shapes are checked first.

A CSV or database tap sends a loose SCHEMA (every column a string, or anything), so the SCHEMA
message does not protect the target: these tests send such a schema and check that the target's
own validation rejects the record, names the field, and sends no request for it.
"""

from __future__ import annotations

import pytest
from target_helpers import messages

from tap_capsule import catalogue as cat
from target_capsule import validation


def loose(stream: str) -> dict:
    """A SCHEMA message that accepts anything, as a CSV or database tap may send."""
    props = {name: {} for name in cat.get(stream).schema}
    return {"type": "SCHEMA", "stream": stream, "schema": {"properties": props}}


def loose_messages(records: list[tuple[str, dict | list]]) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    for stream, record in records:
        if stream not in seen:
            seen.add(stream)
            out.append(loose(stream))
        out.append({"type": "RECORD", "stream": stream, "record": record})
    return out


def writes(sb) -> dict:
    return {k: v for k, v in sb.requests()["by_path"].items() if not k.startswith("GET ")}


def test_path_traversal_id_is_rejected_and_deletes_nothing(capsule, run_target):
    st = capsule.state()
    party, case = st["parties"][4]["id"], st["cases"][3]["id"]
    hostile = f"{party}/../../kases/{case}"
    capsule.reset_requests()
    run = run_target(
        capsule,
        loose_messages([("parties", {"id": hostile, "_sdc_deleted_at": "2026-01-01T00:00:00Z"})]),
    )
    [reject] = run.rejects
    assert reject["operation"] == "DELETE"
    assert "id '" in reject["reason"] and "is not a valid id" in reject["reason"]
    assert capsule.requests()["total"] == 0
    after = capsule.state()
    assert case in {c["id"] for c in after["cases"]}
    assert party in {p["id"] for p in after["parties"]}
    assert run.count("parties", "DELETE", "applied") == 0


def test_id_with_a_query_is_rejected_without_any_request(capsule, run_target):
    party = capsule.state()["parties"][5]["id"]
    capsule.reset_requests()
    run = run_target(
        capsule, loose_messages([("parties", {"id": f"{party}?x=1", "about": "Changed"})])
    )
    [reject] = run.rejects
    assert reject["operation"] == "UPDATE"
    assert f"id '{party}?x=1' is not a valid id" in reject["reason"]
    assert capsule.requests()["total"] == 0


@pytest.mark.parametrize("bad", ["-5", "0", "1e3", "12.5", "١٢", True, "", " 7 x"])
def test_ids_that_are_not_positive_whole_numbers_are_rejected(bad):
    record = {"id": bad, "about": "x"}
    if bad == "":
        validation.prepare(cat.get("parties"), cat.UPDATE, record)  # blank: no id at all
        return
    with pytest.raises(
        validation.ValidationError, match=r"parties UPDATE: id .* is not a valid id"
    ):
        validation.prepare(cat.get("parties"), cat.UPDATE, record)


def test_built_in_activity_types_keep_their_negative_ids_and_nothing_else_does():
    # Capsule's built-in activity types have negative ids (-1 is "Note"): a record read back from
    # the tap must stay writable. Zero and text are still refused, and other objects stay positive.
    record = {"id": "-3", "name": "Call", "icon": {"id": "PHONE"}}
    assert validation.prepare(cat.get("activity_types"), cat.UPDATE, record)["id"] == -3
    for bad in ("0", "-3/../1", "x"):
        with pytest.raises(validation.ValidationError, match="activity_types UPDATE: id "):
            validation.prepare(cat.get("activity_types"), cat.UPDATE, {"id": bad, "name": "x"})
    with pytest.raises(validation.ValidationError, match="parties UPDATE: id "):
        validation.prepare(cat.get("parties"), cat.UPDATE, {"id": -3, "about": "x"})


def test_integer_valued_string_id_from_a_csv_is_used(capsule, run_target):
    party = capsule.state()["parties"][6]
    run = run_target(
        capsule, loose_messages([("parties", {"id": f" {party['id']} ", "about": "From a CSV"})])
    )
    assert run.rejects == []
    assert run.count("parties", "UPDATE", "applied") == 1
    [now] = [p for p in capsule.state()["parties"] if p["id"] == party["id"]]
    assert now["about"] == "From a CSV"


def test_link_ids_are_checked_and_escaped():
    obj = cat.get("opportunity_parties")
    with pytest.raises(validation.ValidationError, match=r"partyId '3/\.\./4' is not a valid id"):
        validation.prepare(obj, cat.INSERT, {"opportunityId": 1, "partyId": "3/../4"})
    clean = validation.prepare(obj, cat.INSERT, {"opportunityId": "12", "partyId": 7})
    assert cat.fill_path(obj.post_path, clean) == "/opportunities/12/parties/7"
    # Escaping is the second line of defence: a value can only ever be one path segment.
    assert cat.fill_path("/parties/{id}", {"id": "1/../../kases/3?x=1#y"}) == (
        "/parties/1%2F..%2F..%2Fkases%2F3%3Fx%3D1%23y"
    )


def test_tags_as_a_string_is_rejected_not_split_into_letters(capsule, run_target):
    capsule.reset_requests()
    run = run_target(
        capsule,
        loose_messages(
            [("parties", {"type": "organisation", "name": "Tagged Ltd", "tags": "VIP"})]
        ),
    )
    [reject] = run.rejects
    assert reject["reason"].startswith("parties INSERT: tags must be a list of tag names")
    assert writes(capsule) == {}
    names = {t["name"] for t in capsule.state()["party_tags"]}
    assert not {"V", "I", "P"} & names
    assert "Tagged Ltd" not in {p.get("name") for p in capsule.state()["parties"]}


def test_email_addresses_as_a_string_is_rejected_not_dropped(capsule, run_target):
    run = run_target(
        capsule,
        loose_messages(
            [
                (
                    "parties",
                    {
                        "type": "person",
                        "firstName": "Ada",
                        "lastName": "Stringmail",
                        "emailAddresses": "ada@example.com",
                    },
                )
            ]
        ),
    )
    [reject] = run.rejects
    assert "emailAddresses must be a list of objects, got a string" in reject["reason"]
    assert "Stringmail" not in {p.get("lastName") for p in capsule.state()["parties"]}


def test_custom_fields_as_a_list_and_a_list_record_are_rejected_and_the_run_goes_on(
    capsule, run_target
):
    run = run_target(
        capsule,
        loose_messages(
            [
                ("parties", {"type": "organisation", "name": "Listy", "custom_fields": [1, 2]}),
                ("parties", ["not", "a", "record"]),
                ("parties", {"type": "organisation", "name": "Fine Afterwards Ltd"}),
            ]
        ),
    )
    reasons = [r["reason"] for r in run.rejects]
    assert len(reasons) == 2
    assert "custom_fields must be an object of custom field values, got a list" in reasons[0]
    assert "the record must be a JSON object, got list" in reasons[1]
    assert run.count("parties", "INSERT", "applied") == 1
    assert "Fine Afterwards Ltd" in {p.get("name") for p in capsule.state()["parties"]}


def test_note_without_type_is_inserted_as_a_note(capsule, run_target):
    party = capsule.state()["parties"][2]["id"]
    capsule.reset_requests()
    run = run_target(
        capsule,
        messages([("entries", {"party": {"id": party}, "content": "Typed by default"})]),
    )
    assert run.rejects == []
    assert run.count("entries", "INSERT", "applied") == 1
    [note] = [e for e in capsule.state()["entries"] if e.get("content") == "Typed by default"]
    assert note["type"] == "note"


def test_wrongly_shaped_scalar_and_reference_are_rejected_naming_the_field():
    parties = cat.get("parties")
    with pytest.raises(validation.ValidationError, match="about must be a string"):
        validation.prepare(parties, cat.INSERT, {"type": "organisation", "about": {"a": 1}})
    opportunities = cat.get("opportunities")
    with pytest.raises(validation.ValidationError, match=r"party\.id 'x1' is not a valid id"):
        validation.prepare(opportunities, cat.INSERT, {"name": "D", "party": {"id": "x1"}})
    with pytest.raises(validation.ValidationError, match="tags item 5 is not"):
        validation.prepare(parties, cat.INSERT, {"type": "organisation", "tags": [5]})


def test_objects_inside_custom_values_and_contact_items_are_rejected_before_any_request():
    parties = cat.get("parties")
    org = {"type": "organisation", "name": "Deep Ltd"}
    with pytest.raises(
        validation.ValidationError, match=r"custom_fields\.Employees must be a text"
    ):
        validation.prepare(parties, cat.INSERT, {**org, "custom_fields": {"Employees": {"a": 1}}})
    with pytest.raises(validation.ValidationError, match=r"fields\[\]\.value must be a text"):
        validation.prepare(
            parties, cat.INSERT, {**org, "fields": [{"definition": 1, "value": [1]}]}
        )
    with pytest.raises(validation.ValidationError, match=r"emailAddresses\[\]\.address must be"):
        validation.prepare(parties, cat.INSERT, {**org, "emailAddresses": [{"address": {"x": 1}}]})
