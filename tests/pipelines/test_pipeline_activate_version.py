"""ACTIVATE_VERSION through real loaders, with `meltano run`.

Into PostgreSQL (meltanolabs-target-postgres, upsert on the key):
- an incremental run removes the entries, lost reasons and tag definitions deleted in Capsule
  (streams read whole on every run), and leaves a deleted task and a removed link for the
  reconcile;
- a full refresh over that copy (the reconcile) leaves exactly Capsule's records, links and tasks
  included;
- `hard_delete: false` keeps a removed row with its last values and `_sdc_deleted_at` set;
  `hard_delete: true` deletes it.

target-jsonl and target-csv take the messages without breaking.
"""

from __future__ import annotations

import json

import pytest
import requests

from tap_capsule.sandbox import Sandbox

pytestmark = [pytest.mark.meltano]

STREAMS = [
    "parties",
    "opportunities",
    "opportunity_parties",
    "tasks",
    "entries",
    "lost_reasons",
    "party_tags",
]
KEYS = {"opportunity_parties": ("opportunityId", "partyId")}


def capsule_keys(sb: Sandbox, stream: str) -> set[tuple]:
    """What Capsule holds now, as key tuples (links from the sandbox's link table)."""
    keys = KEYS.get(stream, ("id",))
    return {tuple(r[k] for k in keys) for r in sb.state()[stream]}


def live_keys(postgres, schema: str, stream: str) -> set[tuple]:
    keys = KEYS.get(stream, ("id",))
    cols = ", ".join(f'"{k}"' for k in keys)
    rows = postgres.query(f'SELECT {cols} FROM "{schema}"."{stream}" WHERE _sdc_deleted_at IS NULL')
    return {tuple(r[k] for k in keys) for r in rows}


def api_delete(sb: Sandbox, token: str, path: str) -> None:
    answer = requests.delete(
        sb.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert answer.status_code in (200, 202, 204), answer.text


@pytest.mark.postgres
@pytest.mark.parametrize("hard_delete", [False, True], ids=["soft", "hard"])
def test_deletions_reach_postgres_and_the_reconcile_makes_it_exact(
    meltano, meltano_db, postgres, pg_schema, token, hard_delete
):
    with Sandbox(token=token, scale=12, seed=5) as sb:
        env = {
            "TAP_CAPSULE_API_URL": sb.url,
            "TAP_CAPSULE_ACCESS_TOKEN": token,
            "TAP_CAPSULE__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
            "TARGET_POSTGRES_HARD_DELETE": "true" if hard_delete else "false",
            **postgres.target_env(pg_schema),
        }
        run = ("--environment=dev", "run")
        meltano(*run, "capsule-to-postgres", env=env, database=meltano_db)
        state = sb.state()
        entry = state["entries"][0]
        reason = state["lost_reasons"][0]
        tag = state["party_tags"][0]
        task = state["tasks"][0]
        link = state["opportunity_parties"][0]
        api_delete(sb, token, f"/entries/{entry['id']}")
        api_delete(sb, token, f"/lostreasons/{reason['id']}")
        api_delete(sb, token, f"/parties/tags/{tag['id']}")
        api_delete(sb, token, f"/tasks/{task['id']}")
        api_delete(sb, token, f"/opportunities/{link['opportunityId']}/parties/{link['partyId']}")

        meltano(*run, "capsule-to-postgres", env=env, database=meltano_db)
        for stream in ("entries", "lost_reasons", "party_tags"):  # at every run
            assert live_keys(postgres, pg_schema, stream) == capsule_keys(sb, stream), stream
        # No deleted feed and an unchanged parent: these wait for the reconcile.
        assert (task["id"],) in live_keys(postgres, pg_schema, "tasks")
        pair = (link["opportunityId"], link["partyId"])
        assert pair in live_keys(postgres, pg_schema, "opportunity_parties")

        meltano(*run, "--full-refresh", "capsule-to-postgres", env=env, database=meltano_db)
        for stream in STREAMS:
            assert live_keys(postgres, pg_schema, stream) == capsule_keys(sb, stream), stream

    rows = postgres.query(
        f'SELECT id, content, _sdc_deleted_at FROM "{pg_schema}".entries WHERE id = {entry["id"]}'
    )
    task_rows = postgres.query(
        f'SELECT id, description, _sdc_deleted_at FROM "{pg_schema}".tasks WHERE id = {task["id"]}'
    )
    if hard_delete:
        assert rows == [] and task_rows == []
    else:  # the row keeps its last values, marked deleted
        assert rows[0]["content"] == entry["content"] and rows[0]["_sdc_deleted_at"]
        assert task_rows[0]["description"] == task["description"]
        assert task_rows[0]["_sdc_deleted_at"]


def test_jsonl_and_csv_loaders_take_activate_version(meltano, meltano_db, token, tmp_path):
    with Sandbox(token=token, scale=5, seed=5) as sb:
        env = {
            "TAP_CAPSULE_API_URL": sb.url,
            "TAP_CAPSULE_ACCESS_TOKEN": token,
            "TAP_CAPSULE__SELECT": json.dumps(["entries.*", "lost_reasons.*"]),
            "TAP_CAPSULE_CSV__SELECT": json.dumps(["entries.*", "lost_reasons.*"]),
            "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "jsonl"),
            "TARGET_CSV_OUTPUT_PATH": str(tmp_path / "csv"),
        }
        for _ in range(2):  # a first sync, then an incremental run (both send the message)
            jsonl = meltano(
                "--environment=dev",
                "run",
                "tap-capsule",
                "target-jsonl",
                env=env,
                database=meltano_db,
            )
            csv = meltano(
                "--environment=dev", "run", "capsule-to-csv", env=env, database=meltano_db
            )
        entries = len(sb.state()["entries"])
    assert jsonl.returncode == 0
    # Files are named per run (`entries-<time>.jsonl`); each run sent every entry.
    files = list((tmp_path / "jsonl").glob("entries*.jsonl"))
    assert sum(len(f.read_text().splitlines()) for f in files) == 2 * entries
    assert csv.returncode == 0
    assert list((tmp_path / "csv").glob("entries*.csv"))
