"""Run the real `tap-capsule` CLI and collect what it emits."""

from __future__ import annotations

import collections
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tap_table import table_rows

TAP = str(Path(sys.executable).parent / "tap-capsule")


@dataclasses.dataclass
class TapRun:
    returncode: int
    stdout: str
    stderr: str
    records: dict[str, list[dict]]
    schemas: dict[str, dict]
    states: list[dict]

    @property
    def state(self) -> dict:
        return self.states[-1] if self.states else {}

    def ids(self, stream: str) -> list:
        return [r.get("id") for r in self.records.get(stream, [])]

    @property
    def table(self) -> dict[str, tuple[int, int, int]]:
        """{stream: (records, tombstones, requests)} from the run's closing table."""
        return table_rows(self.stderr)


def discover(config_path: Path) -> dict:
    """The catalog `tap-capsule --discover` prints for a config file."""
    found = subprocess.run(
        [TAP, "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(found.stdout)


def select(catalog: dict, streams: set[str]) -> dict:
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] in streams
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = chosen
    return catalog


@pytest.fixture
def run_tap(tmp_path):
    counter = iter(range(1000))

    def run(
        config: dict,
        *,
        streams: set[str] | None = None,
        state: dict | None = None,
        check: bool = True,
        discover: bool = False,
        catalog: dict | None = None,
    ) -> TapRun:
        n = next(counter)
        cfg = tmp_path / f"config{n}.json"
        cfg.write_text(json.dumps(config))
        cmd = [TAP, "--config", str(cfg)]
        if discover:
            cmd.append("--discover")
        if catalog is not None:
            cat_path = tmp_path / f"catalog{n}.json"
            cat_path.write_text(json.dumps(catalog))
            cmd += ["--catalog", str(cat_path)]
        elif streams is not None:
            found = subprocess.run(
                [TAP, "--config", str(cfg), "--discover"],
                capture_output=True,
                text=True,
                check=True,
            )
            cat_path = tmp_path / f"catalog{n}.json"
            cat_path.write_text(json.dumps(select(json.loads(found.stdout), streams)))
            cmd += ["--catalog", str(cat_path)]
        if state is not None:
            state_path = tmp_path / f"state{n}.json"
            state_path.write_text(json.dumps(state))
            cmd += ["--state", str(state_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"tap-capsule failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        records: dict[str, list[dict]] = collections.defaultdict(list)
        schemas: dict[str, dict] = {}
        states: list[dict] = []
        if discover:
            records, schemas = {}, {"catalog": json.loads(proc.stdout or "{}")}
        else:
            for line in proc.stdout.splitlines():
                msg = json.loads(line)
                if msg["type"] == "RECORD":
                    records[msg["stream"]].append(msg["record"])
                elif msg["type"] == "SCHEMA":
                    schemas[msg["stream"]] = msg["schema"]
                elif msg["type"] == "STATE":
                    states.append(msg["value"])
        return TapRun(proc.returncode, proc.stdout, proc.stderr, dict(records), schemas, states)

    return run


@pytest.fixture
def tap_config(sandbox, sandbox_token):
    return {"access_token": sandbox_token, "api_url": sandbox.url}


@pytest.fixture
def select_streams():
    return select
