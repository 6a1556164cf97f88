"""`meltano run tap-capsule target-postgres` from the sandbox into a real PostgreSQL server: rows
land, a second run reads only what changed, an edit lands as an update and a deletion as a
soft delete (`_sdc_deleted_at`, from an inline tombstone: `tombstones: inline`; the default,
`<stream>_deleted` streams, is in test_pipeline_tombstones.py)."""

from __future__ import annotations

import json

import pytest

from tap_capsule.sandbox import Sandbox

pytestmark = [pytest.mark.meltano, pytest.mark.postgres]

STREAMS = ["parties", "opportunities", "pipelines"]


def test_sandbox_to_postgres_incremental_with_soft_deletes(
    meltano, meltano_db, postgres, pg_schema, token
):
    with Sandbox(token=token, scale=30, seed=21) as sb:
        env = {
            "TAP_CAPSULE_API_URL": sb.url,
            "TAP_CAPSULE_ACCESS_TOKEN": token,
            "TAP_CAPSULE_PAGE_SIZE": "10",
            "TAP_CAPSULE_TOMBSTONES": "inline",
            "TAP_CAPSULE__SELECT": json.dumps([f"{s}.*" for s in STREAMS]),
            **postgres.target_env(pg_schema),
        }
        first = meltano(
            "--environment=dev", "run", "capsule-to-postgres", env=env, database=meltano_db
        )
        first_requests = sb.requests()["by_route"]
        state = sb.state()

        def rows(stream: str, columns: str = "*") -> list[dict]:
            return postgres.query(f'SELECT {columns} FROM "{pg_schema}"."{stream}" ORDER BY id')

        # A first sync also reads the deleted feeds: their tombstones land as soft-deleted rows.
        gone = {
            s: {d["id"] for d in state["_deleted"].get(s, []) + state["_restricted"].get(s, [])}
            for s in STREAMS
        }
        for stream in STREAMS:
            want = {r["id"] for r in state[stream]} | gone[stream]
            assert {r["id"] for r in rows(stream, "id")} == want, stream
        assert first.records("parties") == len(state["parties"]) + len(gone["parties"])
        batched = postgres.query(f'SELECT max(_sdc_batched_at) AS at FROM "{pg_schema}".parties')[
            0
        ]["at"]

        live = [r["id"] for r in state["parties"]]
        changed, deleted = live[0], live[1]
        sb.touch("parties", changed, about="changed")
        sb.delete_record("parties", deleted)
        sb.reset_requests()

        second = meltano(
            "--environment=dev", "run", "capsule-to-postgres", env=env, database=meltano_db
        )
        second_requests = sb.requests()["by_route"]
        # Records the sandbox changed since the first run: the edit, plus any the deletion touched
        # (e.g. people of a deleted organisation lose their organisation).
        stamps = {r["id"]: r["updatedAt"] for r in state["parties"]}
        edited = {r["id"] for r in sb.state()["parties"] if r["updatedAt"] != stamps.get(r["id"])}

    by_id = {r["id"]: r for r in rows("parties", "id, about, _sdc_deleted_at, _sdc_batched_at")}
    assert len(by_id) == len(live) + len(gone["parties"])  # upserted on the key: no duplicates
    assert by_id[changed]["about"] == "changed"
    assert by_id[changed]["_sdc_deleted_at"] is None
    assert by_id[deleted]["_sdc_deleted_at"] is not None  # soft delete: the row stays, marked
    marked = {i for i, r in by_id.items() if r["_sdc_deleted_at"]}
    assert marked == gone["parties"] | {deleted}
    rewritten = {i for i, r in by_id.items() if r["_sdc_batched_at"] > batched}
    assert changed in edited
    # Restricted records have no deletion time: their tombstones come again while Capsule lists
    # them after the bookmark; a re-sent tombstone changes nothing.
    assert edited | {deleted} <= rewritten <= edited | {deleted} | gone["parties"]

    # The second run read only the changes: one page of parties instead of every page.
    assert first_requests["GET /parties"] >= 3  # 30 parties, 10 a page
    assert second_requests["GET /parties"] == 1
    assert second.records("parties") == len(rewritten)  # the edits and the tombstones
    assert second.records("opportunities") <= 1 + len(gone["opportunities"])
