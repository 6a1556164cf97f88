"""`<stream>_deleted` streams into target-capsule: DELETEs of `<stream>`'s records.

tap-capsule sends deletions as `parties_deleted`, `opportunities_deleted` and `cases_deleted`
(`tombstones: stream`, its default). A plain `tap-capsule | target-capsule` pipe applies them as
DELETEs, checked like any record: the id is validated, and an object that allows no DELETE is
rejected with the rule's reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from target_helpers import TOKEN

from tap_capsule import catalogue as cat
from tap_capsule.sandbox import Sandbox

BIN = Path(sys.executable).parent
DELETED_AT = "2026-01-02T03:04:05Z"


def deleted_schema(stream: str) -> dict:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": cat.DELETED_RECORD_SCHEMA,
        "key_properties": ["id"],
    }


def deletions(stream: str, ids: list) -> list[dict]:
    return [deleted_schema(stream)] + [
        {
            "type": "RECORD",
            "stream": stream,
            "record": {"id": i, "deletedAt": DELETED_AT, "restricted": False},
        }
        for i in ids
    ]


def test_a_plain_pipe_deletes_what_the_source_deleted(tmp_path):
    """tap-capsule (no tombstones setting) | target-capsule, between two equal accounts."""
    with (
        Sandbox(token=TOKEN, scale=8, seed=3) as source,
        Sandbox(token=TOKEN, scale=8, seed=3) as copy,
    ):
        state = source.state()
        opportunity = state["opportunities"][0]
        party = next(p["id"] for p in state["parties"] if p["id"] != opportunity["party"]["id"])
        opportunity = opportunity["id"]
        source.delete_record("parties", party)
        source.delete_record("opportunities", opportunity)
        before = copy.state()
        seeded_gone = [d["id"] for d in before["_deleted"]["parties"]]
        hidden = [d["id"] for d in before["_restricted"]["parties"]]
        tap_config, target_config = tmp_path / "tap.json", tmp_path / "target.json"
        tap_config.write_text(json.dumps({"access_token": TOKEN, "api_url": source.url}))
        target_config.write_text(
            json.dumps(
                {
                    "access_token": TOKEN,
                    "api_url": copy.url,
                    "change_log_path": str(tmp_path / "changes.jsonl"),
                }
            )
        )
        catalog = json.loads(
            subprocess.run(
                [BIN / "tap-capsule", "--config", tap_config, "--discover"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        wanted = {"parties_deleted", "opportunities_deleted", "cases_deleted"}
        # The default discovery lists the deletions as streams of their own.
        assert wanted <= {s["tap_stream_id"] for s in catalog["streams"]}
        for entry in catalog["streams"]:
            for md in entry["metadata"]:
                if md["breadcrumb"] == []:
                    md["metadata"]["selected"] = entry["tap_stream_id"] in wanted
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        tap = f'"{BIN / "tap-capsule"}" --config "{tap_config}"'
        target = f'"{BIN / "target-capsule"}" --config "{target_config}"'
        pipe = subprocess.run(
            [
                "bash",
                "-o",
                "pipefail",
                "-c",
                f'{tap} --catalog "{tmp_path / "catalog.json"}" | {target}',
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert pipe.returncode == 0, pipe.stderr[-3000:]
        after = copy.state()
        assert party not in {p["id"] for p in after["parties"]}
        assert opportunity not in {o["id"] for o in after["opportunities"]}
    summary = json.loads(pipe.stdout.splitlines()[-1])["target_capsule"]["summary"]
    assert summary["parties_deleted"]["DELETE"]["applied"] == 1
    assert summary["opportunities_deleted"]["DELETE"]["applied"] == 1
    # The account's earlier deletions are in the feed too: already gone (404) in the copy.
    assert summary["parties_deleted"]["DELETE"].get("already_gone", 0) == len(seeded_gone)
    # Records hidden from the source's user still exist: rejected, never deleted.
    assert hidden, "the seed should hold a restricted party"
    assert summary["parties_deleted"]["DELETE"].get("rejected", 0) == len(hidden)
    # The change log names the object, as for any DELETE (an undo recreates a party).
    logged = [json.loads(line) for line in (tmp_path / "changes.jsonl").read_text().splitlines()]
    deletes = {(e["stream"], e["id"]) for e in logged if e.get("operation") == "DELETE"}
    assert ("parties", party) in deletes and ("opportunities", opportunity) in deletes


def test_deleted_records_are_checked_like_any_record(capsule, run_target):
    state = capsule.state()
    party = state["parties"][0]["id"]
    user = state["users"][0]["id"]
    lines = [
        *deletions("parties_deleted", [party, "abc", -4, True, None]),
        *deletions("users_deleted", [user]),  # users allow UPDATE only
        *deletions("countries_deleted", [1]),  # read-only
    ]
    run = run_target(capsule, lines)
    assert party not in {p["id"] for p in capsule.state()["parties"]}
    assert user in {u["id"] for u in capsule.state()["users"]}
    assert run.count("parties_deleted", "DELETE", "applied") == 1
    reasons = [(r["stream"], r["operation"], r["reason"]) for r in run.rejects]
    assert len(reasons) == 6
    assert all(op == "DELETE" for _, op, _ in reasons)
    assert len([stream for stream, _, _ in reasons if stream == "parties_deleted"]) == 4
    by_record = {json.dumps(r["record"]["id"]): r["reason"] for r in run.rejects}
    # The stream's SCHEMA says what an id is; then the id rule of every DELETE.
    assert "'abc' is not of type 'integer'" in by_record['"abc"']
    assert "True is not of type 'integer'" in by_record["true"]
    assert by_record["-4"] == (
        "parties DELETE: id -4 is not a valid id (rule: an id is a positive whole number)"
    )
    assert by_record["null"] == (
        "parties_deleted DELETE: id is required (rule: a delete names the record by id)"
    )
    (users,) = [reason for stream, _, reason in reasons if stream == "users_deleted"]
    assert users == "users DELETE: DELETE is not allowed (rule: users allows UPDATE only)"
    (countries,) = [reason for stream, _, reason in reasons if stream == "countries_deleted"]
    assert "countries cannot be written" in countries
    # The rejects keep the record as it came, for a retry.
    assert {"id": party, "deletedAt": DELETED_AT, "restricted": False} not in [
        r["record"] for r in run.rejects
    ]
    assert {"id": -4, "deletedAt": DELETED_AT, "restricted": False} in [
        r["record"] for r in run.rejects
    ]


def test_a_record_hidden_from_the_source_is_not_a_deletion(capsule, run_target):
    party = capsule.state()["parties"][0]["id"]
    lines = deletions("parties_deleted", [party])
    lines[1]["record"]["restricted"] = True
    run = run_target(capsule, lines)
    assert party in {p["id"] for p in capsule.state()["parties"]}  # still there
    (reject,) = run.rejects
    assert reject["reason"].startswith("parties_deleted DELETE: restricted is true")
    assert reject["record"]["restricted"] is True


def test_a_stream_that_names_no_object_still_ends_the_run(capsule, run_target):
    run = run_target(capsule, deletions("widgets_deleted", [1]), check=False)
    assert run.returncode == 1
    assert "cannot write stream 'widgets_deleted'" in run.stderr or "widgets_deleted" in run.stderr
