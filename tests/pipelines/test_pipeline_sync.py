"""`meltano run capsule-sync` (the `capsule-sync` utility runs `capsule sync`) between the sandbox
and a real PostgreSQL: the first run copies Capsule into the schema, a row inserted through SQL
reaches Capsule with its id written back, and a third run writes nothing."""

from __future__ import annotations

import pytest

from tap_capsule.sandbox import Sandbox

pytestmark = [pytest.mark.meltano, pytest.mark.postgres]


def test_the_sync_job_copies_then_syncs_both_ways(
    meltano, meltano_db, postgres, pg_schema, token, tmp_path
):
    with Sandbox(token=token, scale=10, seed=23) as sb:
        env = {
            "CAPSULE_SYNC_API_URL": sb.url,
            "CAPSULE_SYNC_ACCESS_TOKEN": token,
            "CAPSULE_SYNC_SCHEMA": pg_schema,
            "CAPSULE_SYNC_OBJECTS": '["parties", "tasks"]',
            "CAPSULE_SYNC_CHANGE_LOG_PATH": str(tmp_path / "changes.jsonl"),
            "PGHOST": postgres.host,
            "PGPORT": str(postgres.port),
            "PGUSER": postgres.user,
            "PGPASSWORD": postgres.password,
            "PGDATABASE": postgres.database,
        }
        first = meltano("--environment=dev", "run", "capsule-sync", env=env, database=meltano_db)
        assert "capsule sync: done" in first.output
        parties = {p["id"]: p for p in sb.state()["parties"]}
        rows = postgres.query(f'SELECT capsule_id, last_name FROM "{pg_schema}".parties')
        assert {r["capsule_id"] for r in rows} == set(parties)
        assert postgres.query(f'SELECT count(*) AS n FROM "{pg_schema}".tasks')[0]["n"] == len(
            sb.state()["tasks"]
        )

        postgres.execute(
            f'INSERT INTO "{pg_schema}".parties (type, first_name, last_name) '
            "VALUES ('person', 'Grace', 'Hopper')"
        )
        meltano("--environment=dev", "run", "capsule-sync", env=env, database=meltano_db)
        created = postgres.query(
            f"SELECT capsule_id FROM \"{pg_schema}\".parties WHERE last_name = 'Hopper'"
        )
        hoppers = [p for p in sb.state()["parties"] if p.get("lastName") == "Hopper"]
        assert [r["capsule_id"] for r in created] == [p["id"] for p in hoppers]  # one, paired
        assert '"operation": "INSERT"' in (tmp_path / "changes.jsonl").read_text()

        sb.reset_requests()
        meltano("--environment=dev", "run", "capsule-sync", env=env, database=meltano_db)
        assert sb.requests()["writes"] == 0
