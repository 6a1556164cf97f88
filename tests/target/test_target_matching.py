"""What matching and diffs cost: reads follow the input, not the size of the account.

Two ways exist to find an id-less record in a large list: one search per record, or one read of
the whole list (a request per 100 records). The target searches and reads one more list page per
search, so its reads stay within twice the cheaper of the two whatever the input. Records to update
are read up to 10 per GET. Notes are matched in their parent's entries.
"""

from __future__ import annotations

import math

import pytest
from target_helpers import TOKEN, messages

from tap_capsule.sandbox import Sandbox

LIST_PAGE = 100


def reads(sb: Sandbox) -> int:
    """Reads for matching and diffs (the one `GET /site` naming the account aside)."""
    req = sb.requests()
    return req["total"] - req["writes"] - req["by_path"].get("GET /site", 0)


def new_people(n: int, tag: str) -> list[tuple[str, dict]]:
    return [
        (
            "parties",
            {
                "type": "person",
                "firstName": f"New{i}",
                "lastName": f"Importee {tag}",
                "emailAddresses": [{"address": f"new{i}.{tag}@example.net"}],
            },
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(("accounts", "records"), [(5000, 5), (5000, 40), (30, 60)])
def test_matching_reads_stay_within_twice_the_cheaper_strategy(run_target, accounts, records):
    with Sandbox(token=TOKEN, scale=accounts, seed=11) as sb:
        pages = math.ceil(len(sb.state()["parties"]) / LIST_PAGE)
        sb.reset_requests()
        run = run_target(sb, messages(new_people(records, f"{accounts}-{records}")))
        assert run.count("parties", "INSERT", "applied") == records
        spent = reads(sb)
        by_route = sb.requests()["by_route"]
    cheaper = min(records, pages)  # one search per record, or one read of the list
    assert spent <= 2 * cheaper + 1, by_route  # + 1: the list's last, empty-answer check
    if records < pages:
        assert by_route.get("GET /parties", 0) <= records  # never the whole list


def test_a_five_record_import_into_5000_parties_does_not_read_the_list(run_target):
    with Sandbox(token=TOKEN, scale=5000, seed=11) as sb:
        st = sb.state()
        existing = next(p for p in st["parties"] if p["type"] == "person" and p["emailAddresses"])
        recs = [
            *new_people(4, "five"),
            (
                "parties",
                {
                    "type": "person",
                    "firstName": existing["firstName"],
                    "lastName": existing["lastName"],
                    "jobTitle": "Found by search",
                    "emailAddresses": [{"address": existing["emailAddresses"][0]["address"]}],
                },
            ),
        ]
        sb.reset_requests()
        run = run_target(sb, messages(recs))
        req = sb.requests()
        spent = reads(sb)
        after = next(p for p in sb.state()["parties"] if p["id"] == existing["id"])
    assert run.count("parties", "INSERT", "applied") == 4
    assert run.count("parties", "UPDATE", "applied") == 1
    assert after["jobTitle"] == "Found by search"
    assert req["by_route"].get("GET /parties/search") == 5
    assert req["by_route"].get("GET /parties", 0) <= 5  # of the 50 pages
    assert spent <= 2 * 5 + 3, req["by_route"]  # + the three settings lists (fields, tags)


def test_updates_read_ten_records_per_get(run_target):
    with Sandbox(token=TOKEN, scale=5000, seed=11) as sb:
        parties = sb.state()["parties"][:30]
        recs = [("parties", {"id": p["id"], "about": f"Checked {p['id']}"}) for p in parties]
        sb.reset_requests()
        run = run_target(sb, messages(recs))
        req = sb.requests()
        spent = reads(sb)
    assert run.count("parties", "UPDATE", "applied") == 30
    gets = req["by_route"].get("GET /parties/{id}", 0)
    assert gets == 3, req["by_route"]  # 30 records, 10 per GET
    assert spent <= 2 * 3, req["by_route"]  # the GETs and as many list pages


def test_notes_are_matched_within_their_parent(capsule, run_target):
    st = capsule.state()
    party = st["parties"][0]
    note = {"type": "note", "party": {"id": party["id"]}, "content": "Called about renewal"}
    first = run_target(capsule, messages([("entries", note)]))
    assert first.count("entries", "INSERT", "applied") == 1
    capsule.reset_requests()
    second = run_target(capsule, messages([("entries", note)]))
    req = capsule.requests()["by_route"]
    assert second.count("entries", "UPDATE", "unchanged") == 1
    assert "GET /entries" not in req  # not the account's every entry
    assert req.get("GET /parties/{parentId}/entries") == 1
