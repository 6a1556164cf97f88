"""tap-capsule | target-capsule on one account: only the changes a user made are written.

Every stream the target writes goes through the real tap, so the records are what Capsule's
answers hold (not the sandbox's stored rows, which keep keys the API never sends).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TARGET = str(Path(sys.executable).parent / "target-capsule")
WRITABLE = {
    "parties",
    "opportunities",
    "cases",
    "tasks",
    "lost_reasons",
    "party_tags",
    "entries",
    "milestones",
    "opportunity_tracks",
    "case_tracks",
    "opportunity_parties",
    "case_parties",
    "users",
    "party_custom_fields",
    "custom_titles",
    "categories",
    "activity_types",
}


def test_round_trip_writes_exactly_the_changes(sandbox, tap_config, run_tap, tmp_path):
    # Written back to the same account, records Capsule already deleted need no tombstones: with
    # the default (inline) the first sync's tombstones would cost one DELETE each.
    extract = run_tap({**tap_config, "tombstones": "off"}, streams=WRITABLE)
    lines = extract.stdout.splitlines()
    party = extract.records["parties"][0]
    gone = extract.records["tasks"][1]
    changed = []
    for line in lines:
        msg = json.loads(line)
        if (
            msg["type"] == "RECORD"
            and msg["stream"] == "parties"
            and msg["record"]["id"] == party["id"]
        ):
            msg["record"]["about"] = "Changed in the warehouse"
            msg["record"]["custom_fields"] = {
                **msg["record"]["custom_fields"],
                "industry": "Health",
            }
        elif (
            msg["type"] == "RECORD"
            and msg["stream"] == "tasks"
            and msg["record"]["id"] == gone["id"]
        ):
            msg["record"]["_sdc_deleted_at"] = "2026-01-01T00:00:00Z"
        changed.append(json.dumps(msg))
    config = tmp_path / "target.json"
    config.write_text(json.dumps({**tap_config, "rejects_path": str(tmp_path / "rejects.jsonl")}))
    sandbox.reset_requests()
    proc = subprocess.run(
        [TARGET, "--config", str(config)],
        input="\n".join(changed) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    writes = {k: v for k, v in sandbox.requests()["by_path"].items() if not k.startswith("GET ")}
    assert writes == {f"PUT /parties/{party['id']}": 1, f"DELETE /tasks/{gone['id']}": 1}
    state = sandbox.state()
    assert (
        next(p for p in state["parties"] if p["id"] == party["id"])["about"]
        == "Changed in the warehouse"
    )
    put = next(p for p in state["parties"] if p["id"] == party["id"])
    industry = next(d["id"] for d in state["party_custom_fields"] if d["name"] == "Industry")
    assert [f["value"] for f in put["fields"] if f["definition"]["id"] == industry] == ["Health"]
    assert gone["id"] not in {t["id"] for t in state["tasks"]}
    assert (tmp_path / "rejects.jsonl").read_text() == ""
