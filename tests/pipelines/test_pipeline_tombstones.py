"""What each `tombstones` setting does in PostgreSQL (meltanolabs-target-postgres, upsert on the
key, `hard_delete: false`, as meltano.yml configures it).

One party is deleted in Capsule between two `meltano run`s:

- stream (the default, with meltano.yml's own `select`): the party's row keeps its data and
  `parties_deleted` gets `{id, deletedAt, restricted}`;
- inline: the tombstone `{id, _sdc_deleted_at}` is upserted over the party's row, so the row keeps
  its id and `_sdc_deleted_at` and every other column becomes NULL (the data is gone);
- off: the party's row keeps its data and nothing says it was deleted.
"""

from __future__ import annotations

import json

import pytest

from tap_capsule.sandbox import Sandbox

pytestmark = [pytest.mark.meltano, pytest.mark.postgres]


def run_twice_with_a_deletion(meltano, meltano_db, postgres, schema, token, mode, streams):
    """Two runs of `capsule-to-postgres`; `mode` or `streams` None: the tap's and meltano.yml's."""
    with Sandbox(token=token, scale=15, seed=41) as sb:
        env = {
            "TAP_CAPSULE_API_URL": sb.url,
            "TAP_CAPSULE_ACCESS_TOKEN": token,
            **postgres.target_env(schema),
        }
        if mode is not None:
            env["TAP_CAPSULE_TOMBSTONES"] = mode
        if streams is not None:
            env["TAP_CAPSULE__SELECT"] = json.dumps([f"{s}.*" for s in streams])
        meltano("--environment=dev", "run", "capsule-to-postgres", env=env, database=meltano_db)
        gone = next(p for p in sb.state()["parties"] if p["type"] == "person")
        sb.delete_record("parties", gone["id"])
        meltano("--environment=dev", "run", "capsule-to-postgres", env=env, database=meltano_db)
        deleted_ids = {d["id"] for d in sb.state()["_deleted"]["parties"]}
    return gone, deleted_ids


def party_row(postgres, schema: str, party_id: int) -> dict:
    rows = postgres.query(
        f'SELECT id, "lastName", "createdAt", _sdc_deleted_at FROM "{schema}".parties '
        f"WHERE id = {int(party_id)}"
    )
    assert len(rows) == 1
    return rows[0]


def tables(postgres, schema: str) -> set[str]:
    rows = postgres.query(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'"
    )
    return {r["table_name"] for r in rows}


def test_inline_tombstones_null_the_deleted_row(meltano, meltano_db, postgres, pg_schema, token):
    gone, _ = run_twice_with_a_deletion(
        meltano, meltano_db, postgres, pg_schema, token, "inline", ["parties"]
    )
    row = party_row(postgres, pg_schema, gone["id"])
    assert row["_sdc_deleted_at"] is not None
    # The upsert replaced the row with the tombstone: the party's data is gone.
    assert row["lastName"] is None and row["createdAt"] is None
    assert "parties_deleted" not in tables(postgres, pg_schema)


def test_by_default_the_row_keeps_its_values_and_parties_deleted_fills(
    meltano, meltano_db, postgres, pg_schema, token
):
    """No `tombstones` setting and meltano.yml's `select`, as the capsule-to-postgres job runs."""
    gone, deleted_ids = run_twice_with_a_deletion(
        meltano, meltano_db, postgres, pg_schema, token, None, None
    )
    assert {"parties_deleted", "opportunities_deleted", "cases_deleted"} <= tables(
        postgres, pg_schema
    )
    row = party_row(postgres, pg_schema, gone["id"])
    assert row["lastName"] == gone["lastName"] and row["createdAt"] is not None
    assert row["_sdc_deleted_at"] is None
    deleted = postgres.query(
        f'SELECT id, "deletedAt", restricted FROM "{pg_schema}".parties_deleted'
    )
    by_id = {r["id"]: r for r in deleted}
    assert gone["id"] in by_id and by_id[gone["id"]]["deletedAt"] is not None
    assert by_id[gone["id"]]["restricted"] is False
    assert deleted_ids <= set(by_id)  # the first sync's deletions too
    # The warehouse's join: parties still present in Capsule are those without a deletion.
    live = postgres.query(
        f'SELECT count(*) AS n FROM "{pg_schema}".parties p '
        f'LEFT JOIN "{pg_schema}".parties_deleted d ON d.id = p.id WHERE d.id IS NULL'
    )
    assert live[0]["n"] >= 1


def test_no_tombstones_keep_the_row_and_say_nothing(
    meltano, meltano_db, postgres, pg_schema, token
):
    gone, _ = run_twice_with_a_deletion(
        meltano, meltano_db, postgres, pg_schema, token, "off", ["parties"]
    )
    row = party_row(postgres, pg_schema, gone["id"])
    assert row["lastName"] == gone["lastName"] and row["_sdc_deleted_at"] is None
    marked = postgres.query(
        f'SELECT count(*) AS n FROM "{pg_schema}".parties WHERE _sdc_deleted_at IS NOT NULL'
    )
    assert marked[0]["n"] == 0
    assert "parties_deleted" not in tables(postgres, pg_schema)
