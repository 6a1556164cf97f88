"""Every stream of the tap, through `meltano run` into the maintained loaders, with their record
validation on.

target-jsonl, meltanolabs-target-csv and meltanolabs-target-postgres each check every RECORD
against its stream's SCHEMA (the SDK loaders with JSON Schema Draft 7, `validate_records` on by
default; target-jsonl with its own validator) and stop on the first record that does not match. A
full sync of every stream reaching each of them whole shows the schemas describe what the tap
sends.
"""

from __future__ import annotations

import csv
import json

import pytest

from tap_capsule import catalogue
from tap_capsule.sandbox import Sandbox

pytestmark = pytest.mark.meltano

EVERY_STREAM = sorted(o.stream for o in catalogue.OBJECTS)


def tap_env(sb: Sandbox, token: str) -> dict[str, str]:
    return {
        "TAP_CAPSULE_API_URL": sb.url,
        "TAP_CAPSULE_ACCESS_TOKEN": token,
        "TAP_CAPSULE__SELECT": json.dumps([f"{s}.*" for s in EVERY_STREAM]),
    }


def expected_ids(sb: Sandbox, stream: str) -> set:
    key = catalogue.get(stream).key_properties
    return {tuple(r[k] for k in key) for r in sb.state()[stream]}


def test_every_stream_into_target_jsonl(meltano, meltano_db, tmp_path, token):
    out = tmp_path / "jsonl"
    out.mkdir()
    with Sandbox(token=token, scale=20, seed=31) as sb:
        env = {
            **tap_env(sb, token),
            "TARGET_JSONL_DESTINATION_PATH": str(out),
            "TARGET_JSONL_DO_TIMESTAMP_FILE": "false",
        }
        meltano(
            "--environment=dev", "run", "tap-capsule", "target-jsonl", env=env, database=meltano_db
        )
        for stream in EVERY_STREAM:
            lines = (out / f"{stream}.jsonl").read_text().splitlines()
            key = catalogue.get(stream).key_properties
            got = {tuple(json.loads(line).get(k) for k in key) for line in lines}
            assert expected_ids(sb, stream) <= got, stream


def test_every_stream_into_target_csv(meltano, meltano_db, tmp_path, token):
    out = tmp_path / "csv"
    with Sandbox(token=token, scale=20, seed=32) as sb:
        env = {**tap_env(sb, token), "TARGET_CSV_OUTPUT_PATH": str(out)}
        meltano(
            "--environment=dev", "run", "tap-capsule", "target-csv", env=env, database=meltano_db
        )
        for stream in EVERY_STREAM:
            with (out / f"{stream}.csv").open(newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            key = catalogue.get(stream).key_properties
            got = {tuple(r[k] for k in key) for r in rows}
            want = {tuple(str(v) for v in ids) for ids in expected_ids(sb, stream)}
            assert want <= got, stream


@pytest.mark.postgres
def test_every_stream_into_target_postgres(meltano, meltano_db, postgres, pg_schema, token):
    with Sandbox(token=token, scale=20, seed=33) as sb:
        env = {**tap_env(sb, token), **postgres.target_env(pg_schema)}
        meltano(
            "--environment=dev",
            "run",
            "tap-capsule",
            "target-postgres",
            env=env,
            database=meltano_db,
        )
        for stream in EVERY_STREAM:
            key = catalogue.get(stream).key_properties
            columns = ", ".join(f'"{k}"' for k in key)
            rows = postgres.query(f'SELECT {columns} FROM "{pg_schema}"."{stream}"')
            got = {tuple(r[k] for k in key) for r in rows}
            assert expected_ids(sb, stream) <= got, stream
