"""The real tap against the sandbox's large account (records generated on demand, small here)."""

from __future__ import annotations

from tap_capsule.sandbox import Sandbox
from tap_capsule.sandbox.lazy import GeneratedTable
from tests.conftest import SANDBOX_TOKEN

PARTIES = 60  # 18 opportunities, 180 entries, 12 tasks


def test_a_tap_run_and_an_incremental_run_against_a_large_account(run_tap):
    with Sandbox(token=SANDBOX_TOKEN, large=PARTIES, seed=2) as sb:
        parties = sb.app.store.rows["parties"]
        assert isinstance(parties, GeneratedTable)
        config = {"access_token": SANDBOX_TOKEN, "api_url": sb.url, "page_size": 25}
        streams = {"parties", "opportunities", "entries", "tasks", "opportunity_tracks"}
        first = run_tap(config, streams=streams)
        live = [r["id"] for r in first.records["parties"] if not r.get("_sdc_deleted_at")]
        assert sorted(live) == sorted(parties)
        assert len(set(first.ids("entries"))) == 3 * PARTIES
        assert len(set(first.ids("tasks"))) == 12
        assert len(first.ids("opportunity_tracks")) == len(range(0, 18, 7))
        person = next(parties[i] for i in parties if parties[i]["type"] == "person")
        sb.touch("parties", person["id"], about="changed")
        sb.reset_requests()
        again = run_tap(config, streams={"parties"}, state=first.state)
        live = [r for r in again.records["parties"] if not r.get("_sdc_deleted_at")]
        assert [r["id"] for r in live] == [person["id"]] and live[0]["about"] == "changed"
        assert sb.requests()["by_route"].get("GET /parties") == 1
