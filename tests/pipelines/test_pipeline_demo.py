"""The README's demo (`make demo` runs .ci/demo): a first full run into CSV files, then an incremental
second run that reads only what changed. Run on a free port with its own output and state."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.meltano

ROOT = Path(__file__).resolve().parents[2]


def summary(output: str) -> dict[str, int]:
    """{stream: records this run} from the demo's summary table."""
    rows = re.findall(r"^  (\w+)\s+(\d+)\s+\d*\s+\S+\.csv$", output, flags=re.M)
    return {stream: int(count) for stream, count in rows}


def test_demo_runs_twice_and_the_second_run_is_incremental(meltano, tmp_path):
    env = {
        "DEMO_PORT": "0",
        "DEMO_OUTPUT": str(tmp_path / "out"),
        "DEMO_STATE_DB": str(tmp_path / "demo.db"),
        "MELTANO_BIN": meltano.executable,
    }

    def demo() -> str:
        proc = subprocess.run(
            ["bash", str(ROOT / ".ci" / "demo")],
            cwd=ROOT,
            env=meltano.env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "Sandbox stopped" in proc.stdout
        return proc.stdout

    first = demo()
    assert "first run (full extract)" in first
    counts = summary(first)
    assert counts["parties"] == 200 and counts["opportunities"] > 0 and counts["tasks"] > 0
    runs = sorted((tmp_path / "out" / "csv").iterdir())
    assert len(runs) == 1 and (runs[0] / "parties.csv").exists()

    second = demo()
    assert "incremental run" in second
    again = summary(second)
    assert again["parties"] == 3  # the three parties the demo edits between runs
    assert sum(again.values()) < sum(counts.values()) / 10
