"""A child stream saves the parents it has done in fewer STATE messages than parents.

A STATE per parent made a backup's output grow with every parent. The parents done are sent at most
every `page_size` parents (or few seconds), and always before a parent's first record, so the
records between two STATE messages come from one parent at most: a kill at any point sends again
the children of one parent at most (tests/tap/test_resume.py kills the read and checks the union).
"""

from __future__ import annotations

import json

from tap_capsule.sandbox import Sandbox
from tests.conftest import SANDBOX_TOKEN


def test_fewer_states_than_parents_and_one_parent_of_records_between_two(run_tap):
    with Sandbox(token=SANDBOX_TOKEN, large=200, seed=4) as sb:
        config = {"access_token": SANDBOX_TOKEN, "api_url": sb.url, "page_size": 10}
        run = run_tap(config, streams={"opportunities", "opportunity_parties"})
    parents = [r["id"] for r in run.records["opportunities"] if "_sdc_deleted_at" not in r]
    links = run.records["opportunity_parties"]
    assert len(parents) == 60 and len(links) == 12
    messages = [json.loads(line) for line in run.stdout.splitlines()]
    states, owners = 0, set()
    for message in messages:
        if message["type"] == "STATE":
            states, owners = states + 1, set()
        elif message["type"] == "RECORD" and message["stream"] == "opportunity_parties":
            owners.add(message["record"]["opportunityId"])
            assert len(owners) == 1, "two parents' records without a STATE between them"
    assert states < len(parents)
    assert "checkpoint" not in json.dumps(run.state)  # the read ended: no checkpoint is left
