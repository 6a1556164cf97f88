"""`meltano run tap-capsule target-csv` against the sandbox: the CSV export recipe and the demo's
pipeline, plus the state backend the scheduled CI extract uses (a local-file state backend that a
fresh runner restores)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from tap_table import table_rows

from tap_capsule.sandbox import Sandbox

pytestmark = pytest.mark.meltano

TOKEN = "pt-7c1e94d2b8f3a6e05d"  # as tests/pipelines/conftest.py's `token` fixture

STREAMS = ["parties", "opportunities", "tasks", "pipelines"]


def csv_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def tap_env(sb: Sandbox, out: Path, streams: list[str] = STREAMS, **extra: str) -> dict[str, str]:
    return {
        "TAP_CAPSULE_API_URL": sb.url,
        "TAP_CAPSULE_ACCESS_TOKEN": TOKEN,
        "TAP_CAPSULE__SELECT": json.dumps([f"{s}.*" for s in streams]),
        "TARGET_CSV_OUTPUT_PATH": str(out),
        **extra,
    }


def test_sandbox_to_csv_has_every_record_of_the_selected_streams(meltano, meltano_db, tmp_path):
    out = tmp_path / "csv"
    deletions = ["parties_deleted", "opportunities_deleted"]
    with Sandbox(token=TOKEN, scale=40, seed=11) as sb:
        result = meltano(
            "--environment=dev",
            "run",
            "tap-capsule",
            "target-csv",
            env=tap_env(sb, out, [*STREAMS, *deletions]),
            database=meltano_db,
        )
        state = sb.state()

    assert sorted(p.name for p in out.glob("*.csv")) == sorted(
        f"{s}.csv" for s in [*STREAMS, *deletions]
    )
    for stream in STREAMS:
        rows = csv_rows(out / f"{stream}.csv")
        # A first sync is a full extract of the live records: with `tombstones: stream` (the
        # default) the object's file holds no tombstone rows.
        assert len(rows) == len(state[stream]), stream
        assert {int(r["id"]) for r in rows} == {r["id"] for r in state[stream]}, stream
        assert all(r["createdAt"] for r in rows), stream
        # Progress a person can follow: per-stream records and tombstones in the tap's table.
        assert result.records(stream) == len(rows), stream
    for stream in deletions:
        # What Capsule's deleted feed lists (a full refresh over older data must mark those
        # deletions), deletion time included: target-csv would drop an inline `_sdc_deleted_at`.
        rows = csv_rows(out / f"{stream}.csv")
        base = stream.removesuffix("_deleted")
        gone = {d["id"] for d in state["_deleted"].get(base, [])}
        gone |= {d["id"] for d in state["_restricted"].get(base, [])}
        assert {int(r["id"]) for r in rows} == gone, stream
        assert all(r["deletedAt"] for r in rows), stream
        assert table_rows(result.output)[stream][1] == len(gone), stream
    # No METRIC lines from the tap at the default level: the table carries the figures.
    assert not [ln for ln in result.output.splitlines() if "tap-capsule" in ln and "METRIC" in ln]


def test_state_survives_a_fresh_runner_through_the_file_state_backend(meltano, tmp_path):
    """The scheduled workflow's recipe: each run starts with an empty system database, and the state
    comes from MELTANO_STATE_BACKEND_URI=file://... (a folder the workflow caches between runs)."""
    state_dir = tmp_path / "meltano-state"
    backend = {"MELTANO_STATE_BACKEND_URI": state_dir.as_uri()}
    with Sandbox(token=TOKEN, scale=40, seed=12) as sb:
        first = meltano(
            "--environment=dev",
            "run",
            "capsule-to-csv",
            env=tap_env(sb, tmp_path / "run1", ["parties"], **backend),
            database=tmp_path / "runner1.db",
        )
        party = sb.state()["parties"][0]["id"]
        sb.touch("parties", party, about="changed between scheduled runs")
        second = meltano(
            "--environment=dev",
            "run",
            "capsule-to-csv",
            env=tap_env(sb, tmp_path / "run2", ["parties"], **backend),
            database=tmp_path / "runner2.db",
        )

    assert any(state_dir.rglob("*.json")), "the file state backend wrote no state"
    assert first.records("parties") >= 40
    rows = csv_rows(tmp_path / "run2" / "parties.csv")
    assert [int(r["id"]) for r in rows] == [party]
    assert rows[0]["about"] == "changed between scheduled runs"
    assert second.records("parties") == 1


def test_tap_piped_into_target_jsonl_without_meltano(meltano, tmp_path):
    """The recipe `tap-capsule --config c.json | target-jsonl --config t.json`: plain Singer pipes.
    tap-capsule from the project's venv, target-jsonl from the venv meltano installed it into."""
    import subprocess

    target = meltano.sys_dir / "loaders/target-jsonl/venv/bin/target-jsonl"
    tap = Path(sys.executable).parent / "tap-capsule"
    assert target.exists() and tap.exists()
    out = tmp_path / "jsonl"
    out.mkdir()
    with Sandbox(token=TOKEN, scale=20, seed=13) as sb:
        (tmp_path / "tap.json").write_text(json.dumps({"api_url": sb.url, "access_token": TOKEN}))
        (tmp_path / "target.json").write_text(json.dumps({"destination_path": str(out)}))
        # Select two streams in the discovered catalog (as `meltano select` would).
        catalog = json.loads(
            subprocess.run(
                [str(tap), "--config", str(tmp_path / "tap.json"), "--discover"],
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout
        )
        for entry in catalog["streams"]:
            for md in entry["metadata"]:
                if md["breadcrumb"] == []:
                    md["metadata"]["selected"] = entry["tap_stream_id"] in {"parties", "pipelines"}
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        pipeline = (
            f"'{tap}' --config '{tmp_path}/tap.json' --catalog '{tmp_path}/catalog.json'"
            f" | '{target}' --config '{tmp_path}/target.json' > '{tmp_path}/state.json'"
        )
        subprocess.run(
            ["bash", "-o", "pipefail", "-c", pipeline],
            check=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
        state = sb.state()

    files = {p.name.split("-")[0].removesuffix(".jsonl"): p for p in out.glob("*.jsonl")}
    assert set(files) == {"parties", "pipelines"}
    lines = [json.loads(line) for line in files["pipelines"].read_text().splitlines()]
    assert {r["id"] for r in lines} == {r["id"] for r in state["pipelines"]}
    parties = [json.loads(line) for line in files["parties"].read_text().splitlines()]
    # `parties_deleted` was not selected: parties holds the live records, and no tombstone.
    assert {r["id"] for r in parties} == {r["id"] for r in state["parties"]}
    final_state = (tmp_path / "state.json").read_text().strip().splitlines()[-1]
    assert "parties" in json.loads(final_state)["bookmarks"]
