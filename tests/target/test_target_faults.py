"""Faults converge: under injected 5xx the end state equals a clean run's, each insert exactly once.

The sandbox answers every k-th API request with a 503, either before applying a write (the write
did not happen) or after it (the answer is lost, the write happened). The target must tell the two
apart with one cheap check per failure, never a second copy of a record, never a whole-list
re-read. The matrix runs the target in-process with the backoff waits set to zero (the schedule
itself is the shared HTTP layer's, tested in the tap's HTTP tests), so it takes seconds; one test
runs the real CLI.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import itertools
import json
import time
import typing as t

import pytest
import requests
from target_helpers import TOKEN, messages, run_target  # noqa: F401 - fixture

from tap_capsule import api_client
from tap_capsule import catalogue as cat
from tap_capsule.sandbox import Sandbox
from target_capsule import writes
from target_capsule.target import TargetCapsule

SMALL, LARGE = 5, 1000  # parties in the account (a large one has 10 list pages)


def inputs(st: dict) -> list[tuple[str, dict]]:
    """Inserts with and without a natural key, an update, an opportunity, a link and a note."""
    parties = st["parties"]
    milestone = st["milestones"][0]["id"]
    records: list[tuple[str, dict]] = [
        ("parties", {"type": "organisation", "name": f"Fault Org {i}"}) for i in range(3)
    ]
    records += [
        (
            "parties",
            {
                "type": "person",
                "firstName": "Fay",
                "lastName": f"Fault{i}",
                "emailAddresses": [{"address": f"fay{i}@fault.example"}],
            },
        )
        for i in range(2)
    ]
    records.append(("parties", {"type": "person", "firstName": "No", "lastName": "Email"}))
    records += [("parties", {"id": p["id"], "about": f"Updated {p['id']}"}) for p in parties[:1]]
    records.append(
        (
            "opportunities",
            {
                "name": "Fault Deal",
                "party": {"id": parties[0]["id"]},
                "milestone": {"id": milestone},
            },
        )
    )
    deal = st["opportunities"][-1]["id"]
    linked = {
        link["partyId"] for link in st["opportunity_parties"] if link["opportunityId"] == deal
    }
    # Capsule refuses the deal's main party as an additional one ("already related": a 422)
    linked.add(st["opportunities"][-1]["party"]["id"])
    free = next(p["id"] for p in parties if p["id"] not in linked)
    records.append(("opportunity_parties", {"opportunityId": deal, "partyId": free}))
    records.append(("entries", {"party": {"id": parties[1]["id"]}, "content": "Fault note"}))
    return records


def picture(sb: Sandbox) -> dict[str, list]:
    """What a person would compare: parties, deals, links and notes by content, new ids aside."""
    st = sb.state()
    parties = sorted(
        (
            p.get("name") or f"{p.get('firstName')} {p.get('lastName')}",
            tuple(sorted(e["address"] for e in p.get("emailAddresses") or [])),
            p.get("about") or "",
        )
        for p in st["parties"]
    )
    deals = sorted((o["name"], (o.get("party") or {}).get("id")) for o in st["opportunities"])
    links = sorted((link["opportunityId"], link["partyId"]) for link in st["opportunity_parties"])
    notes = sorted(
        ((e.get("party") or {}).get("id") or 0, e.get("content") or "", e.get("type") or "")
        for e in st["entries"]
    )
    return {"parties": parties, "opportunities": deals, "links": links, "notes": notes}


def run_in_process(
    sb: Sandbox, records: list[tuple[str, dict]], tmp_path: t.Any, **settings: t.Any
) -> tuple[int, list[dict], list[dict]]:
    """(exit code, STATE lines, rejects) of one in-process run."""
    rejects = tmp_path / "rejects.jsonl"
    config = {
        "access_token": TOKEN,
        "api_url": sb.url,
        "rejects_path": str(rejects),
        "max_retries": 3,
        **settings,
    }
    text = "".join(json.dumps(m) + "\n" for m in messages(records))
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            TargetCapsule(config=config, validate_config=True).listen(io.StringIO(text))
        except SystemExit as exc:
            code = int(exc.code or 0)
    states = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    found = [json.loads(line) for line in rejects.read_text().splitlines()]
    return code, states, found


@pytest.fixture
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff waits of zero: the same retries and checks, without the seconds in between."""
    monkeypatch.setattr(api_client.session, "retry_delays", lambda: itertools.repeat(0.0))
    monkeypatch.setattr(writes, "retry_delays", lambda: itertools.repeat(0.0))


_CLEAN: dict[int, tuple[dict, dict]] = {}


def clean_picture(scale: int, tmp_path: t.Any) -> tuple[dict, dict]:
    """The end state and request counts of a run without faults (once per account size)."""
    if scale not in _CLEAN:
        with Sandbox(token=TOKEN, scale=scale, seed=11) as sb:
            code, _, rejects = run_in_process(sb, inputs(sb.state()), tmp_path)
            assert code == 0
            assert rejects == []
            _CLEAN[scale] = (picture(sb), sb.requests())
    return _CLEAN[scale]


MATRIX = [(k, after, SMALL) for k in range(2, 8) for after in (False, True)] + [
    (3, after, LARGE) for after in (False, True)
]


@pytest.mark.parametrize(("every", "after_write", "scale"), MATRIX)
def test_fault_matrix_ends_like_a_clean_run(every, after_write, scale, tmp_path, no_waits):
    clean, clean_requests = clean_picture(scale, tmp_path)
    with Sandbox(token=TOKEN, scale=scale, seed=11) as sb:
        records = inputs(sb.state())
        sb.set_faults(error_every=every, fault_after_write=after_write)
        code, states, rejects = run_in_process(sb, records, tmp_path)
        requests = sb.requests()
        sb.set_faults()
        if every == 2 and not after_write:
            # Every write lands on a failing request (each check in between is the one request
            # that succeeds), so no safe client can apply it: nothing may be guessed, nothing
            # written twice, and the run must say so and fail.
            assert code == 1
            totals = states[-1]["target_capsule"]["totals"]
            assert totals["unresolved"] == len(rejects) > 0
            assert all("not applied" in r["reason"] for r in rejects)
            code, _, rejects = run_in_process(sb, records, tmp_path)  # the rerun it advises
        assert code == 0, rejects
        assert rejects == []
        assert picture(sb) == clean
    # One cheap check per failure, never a re-read of the whole list.
    list_pages = clean_requests["by_path"].get("GET /parties", 0)
    assert requests["by_path"].get("GET /parties", 0) <= list_pages + requests["total"] // every


def test_unresolved_writes_fail_the_cli_run_and_say_rerunning_is_safe(run_target):  # noqa: F811
    with Sandbox(token=TOKEN, scale=SMALL, seed=11) as sb:
        sb.set_faults(error_every=2)
        run = run_target(
            sb,
            messages([("parties", {"type": "organisation", "name": "Never Lands Ltd"})]),
            check=False,
        )
        assert run.returncode == 1
        assert "Traceback" not in run.stderr
        last = run.stderr.strip().splitlines()[-1]
        assert "1 record(s) unresolved" in last
        assert "Rerunning the same input is safe" in last
        assert run.count("parties", "INSERT", "unresolved") == 1
        [reject] = run.rejects
        assert "failed it 4 times" in reject["reason"]
        # Every try was sent and followed by one check, a single short read (the one list page
        # read for matching aside, sent twice when it lands on a failing request); the waits
        # between tries are unit-tested below.
        by_path = sb.requests()["by_path"]
        assert by_path["POST /parties"] == writes.WRITE_ATTEMPTS
        assert writes.WRITE_ATTEMPTS <= by_path["GET /parties"] <= writes.WRITE_ATTEMPTS + 2
        sb.set_faults()
        assert "Never Lands Ltd" not in {p.get("name") for p in sb.state()["parties"]}
        again = run_target(
            sb, messages([("parties", {"type": "organisation", "name": "Never Lands Ltd"})])
        )
        assert again.count("parties", "INSERT", "applied") == 1
        assert [p.get("name") for p in sb.state()["parties"]].count("Never Lands Ltd") == 1


def test_write_retries_wait_with_the_shared_backoff_and_check_each_failure(requests_mock):
    url = "https://capsule.test/api/v2"
    sleeps: list[float] = []
    session = api_client.CapsuleSession(
        {"access_token": "t", "api_url": url, "max_retries": 0}, sleep=sleeps.append
    )
    requests_mock.post(f"{url}/parties", status_code=503, json={"message": "busy"})
    checks: list[int] = []

    def check() -> writes.Check:
        checks.append(1)
        return writes.Check(applied=False)

    with pytest.raises(writes.Unresolved, match="failed it 4 times") as exc:
        writes.write(session, "POST", "/parties", {"party": {}}, check=check, what="parties INSERT")
    assert exc.value.status == 503 and exc.value.checked
    assert len(checks) == writes.WRITE_ATTEMPTS  # one check after every failure, no blind retry
    assert sleeps == list(itertools.islice(api_client.retry_delays(), writes.WRITE_ATTEMPTS - 1))
    assert sleeps == [0.5, 1.0, 2.0]

    # A check that finds the write applied ends it: no second POST.
    requests_mock.reset_mock()
    found = writes.write(
        session,
        "POST",
        "/parties",
        {"party": {}},
        check=lambda: writes.Check(applied=True, found={"id": 5}),
        what="parties INSERT",
    )
    assert found.found == {"id": 5} and requests_mock.call_count == 1


@pytest.mark.parametrize(
    "faults",
    [
        {"drop_every": 3},
        {"drop_every": 3, "fault_after_write": True},
        {"malformed_every": 3},
    ],
    ids=["dropped before the write", "dropped after the write", "malformed answers"],
)
def test_dropped_and_malformed_answers_end_like_a_clean_run(faults, tmp_path, no_waits):
    clean, _ = clean_picture(SMALL, tmp_path)
    with Sandbox(token=TOKEN, scale=SMALL, seed=11) as sb:
        records = inputs(sb.state())
        sb.set_faults(**faults)
        code, _, rejects = run_in_process(sb, records, tmp_path)
        sb.set_faults()
        assert code == 0, rejects
        assert rejects == []
        assert picture(sb) == clean


def epoch(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_since_check_starts_before_the_write_on_capsules_clock(requests_mock):
    url = "https://capsule.test/api/v2"
    session = api_client.CapsuleSession({"access_token": "t", "api_url": url})
    session.pacer.clock_offset = -3600.0  # Capsule's clock, seen on an answer, is an hour behind
    before = writes.capsule_time(session)
    assert time.time() - 3600 - 2 <= before <= time.time() - 3600 + 1
    requests_mock.get(f"{url}/parties", json={"parties": []})
    found = writes.find_created(session, cat.get("parties"), "/parties", before, lambda r: True)
    assert found == []
    since = epoch(requests_mock.last_request.qs["since"][0].upper())
    assert since == pytest.approx(before - writes.CLOCK_MARGIN, abs=1)


@pytest.mark.parametrize(
    ("first", "verdict"),
    [
        ({"status_code": 429, "headers": {"X-RateLimit-Reset": "0"}}, writes.GONE),
        ({"status_code": 503, "json": {"message": "busy"}}, writes.GONE_AFTER_LOST_ANSWER),
        ({"status_code": 200, "text": '{"par'}, writes.GONE_AFTER_LOST_ANSWER),
        ({"exc": requests.exceptions.ConnectionError}, writes.GONE_AFTER_LOST_ANSWER),
    ],
    ids=["429 then 404", "503 then 404", "malformed then 404", "dropped then 404"],
)
def test_a_delete_counts_as_this_runs_only_when_an_answer_was_lost(requests_mock, first, verdict):
    """What decides "gone after a lost answer" is what happened, not how many requests went out:
    a 429 (Capsule refused it, changed nothing) followed by a 404 means someone else deleted it."""
    url = "https://capsule.test/api/v2"
    session = api_client.CapsuleSession(
        {"access_token": "t", "api_url": url, "max_retries": 2}, sleep=lambda _s: None
    )
    requests_mock.delete(f"{url}/parties/9", [first, {"status_code": 404, "json": {}}])
    assert writes.delete(session, "/parties/9") == verdict
    assert requests_mock.call_count == 2
