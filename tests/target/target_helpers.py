"""Helpers and fixtures: run the real `target-capsule` CLI against an in-process Capsule sandbox."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tap_capsule import catalogue as cat
from tap_capsule.sandbox import Sandbox

TARGET = str(Path(sys.executable).parent / "target-capsule")
TOKEN = "tok-target-5ecret-93f1c"


@dataclasses.dataclass
class TargetRun:
    returncode: int
    stdout: str
    stderr: str
    rejects: list[dict]
    states: list[dict]

    @property
    def state(self) -> dict:
        return self.states[-1] if self.states else {}

    @property
    def summary(self) -> dict:
        return self.state.get("target_capsule", {}).get("summary", {})

    def count(self, stream: str, operation: str, outcome: str) -> int:
        return self.summary.get(stream, {}).get(operation, {}).get(outcome, 0)


def schema_message(stream: str) -> dict:
    obj = cat.get(stream)
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": obj.json_schema(),
        "key_properties": list(obj.key_properties),
    }


def messages(records: list[tuple[str, dict]], state: dict | None = None) -> list[dict]:
    """SCHEMA once per stream (in order of first use), then the RECORDs, then STATE."""
    out: list[dict] = []
    seen: set[str] = set()
    for stream, record in records:
        if stream not in seen:
            seen.add(stream)
            out.append(schema_message(stream))
        out.append({"type": "RECORD", "stream": stream, "record": record})
    if state is not None:
        out.append({"type": "STATE", "value": state})
    return out


@pytest.fixture
def capsule():
    with Sandbox(token=TOKEN, scale=30, seed=7) as sb:
        yield sb


@pytest.fixture
def run_target(tmp_path):
    counter = iter(range(1000))

    def run(sb: Sandbox, lines: list[dict] | str, *, check: bool = True, **settings) -> TargetRun:
        n = next(counter)
        rejects = tmp_path / f"rejects{n}.jsonl"
        config = {
            "access_token": TOKEN,
            "api_url": sb.url,
            "rejects_path": str(rejects),
            "max_retries": 3,
            **settings,
        }
        cfg = tmp_path / f"config{n}.json"
        cfg.write_text(json.dumps(config))
        text = lines if isinstance(lines, str) else "".join(json.dumps(m) + "\n" for m in lines)
        proc = subprocess.run(
            [TARGET, "--config", str(cfg)], input=text, capture_output=True, text=True, timeout=120
        )
        states = [
            json.loads(line)["target_capsule"] and json.loads(line)
            for line in proc.stdout.splitlines()
            if line.strip().startswith("{")
        ]
        found = (
            [json.loads(line) for line in rejects.read_text().splitlines()]
            if rejects.exists()
            else []
        )
        result = TargetRun(proc.returncode, proc.stdout, proc.stderr, found, states)
        if check and proc.returncode != 0:
            raise AssertionError(f"target-capsule exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        return result

    return run
