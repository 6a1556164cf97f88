"""Requests per run: incremental runs with each `tasks_mode`, and the reconcile (a full refresh).

Per sandbox scale, runs the real tap (every stream, the link and track streams included) as a
first sync, then one task is changed and one deleted, then an incremental run with `tasks_mode:
incremental` and one with `tasks_mode: full` from the same STATE, then a full refresh. Prints
the records per main stream and the requests each run sent, counted by the sandbox (the tasks
list alone, and in all). Asserts nothing:

    python benchmarks/run_costs.py --scales 100 1000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tap_capsule.sandbox import Sandbox

TOKEN = "bench-token-run-costs"
TAP = str(Path(sys.executable).parent / "tap-capsule")


def run(config: dict, state: dict | None, folder: Path) -> dict:
    """One tap run; its last STATE."""
    (folder / "config.json").write_text(json.dumps(config))
    cmd = [TAP, "--config", str(folder / "config.json")]
    if state is not None:
        (folder / "state.json").write_text(json.dumps(state))
        cmd += ["--state", str(folder / "state.json")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    states = [json.loads(line)["value"] for line in out.splitlines() if '"STATE"' in line[:20]]
    return states[-1]


def counted(sb: Sandbox) -> tuple[int, int]:
    """(requests to /tasks, all requests) since the last reset."""
    seen = sb.requests()
    tasks = sum(n for route, n in seen["by_path"].items() if route == "GET /tasks")
    sb.reset_requests()
    return tasks, seen["total"]


def measure(scale: int) -> None:
    limit = 1_000_000  # no pacing: this counts requests, it does not time them
    with (
        Sandbox(token=TOKEN, scale=scale, seed=3, rate_limit=limit) as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        folder = Path(tmp)
        config = {"access_token": TOKEN, "api_url": sb.url, "child_streams": True}
        state = sb.state()
        sizes = {
            s: len(state[s]) for s in ("parties", "opportunities", "cases", "entries", "tasks")
        }
        first = run(config, None, folder)
        first_cost = counted(sb)
        task = state["tasks"][0]["id"]
        sb.touch("tasks", task, detail="changed")
        sb.delete_record("tasks", state["tasks"][1]["id"])
        run(config, first, folder)
        incremental = counted(sb)
        run({**config, "tasks_mode": "full"}, first, folder)
        full = counted(sb)
        run(config, None, folder)
        reconcile = counted(sb)
    print(f"scale {scale}: " + ", ".join(f"{n} {s}" for s, n in sizes.items()))
    print(
        f"  first sync:                     {first_cost[1]:5d} requests ({first_cost[0]} to /tasks)"
    )
    print(
        f"  incremental, tasks_mode incremental: {incremental[1]:5d} ({incremental[0]} to /tasks)"
    )
    print(f"  incremental, tasks_mode full:        {full[1]:5d} ({full[0]} to /tasks)")
    print(f"  reconcile (full refresh):       {reconcile[1]:5d} ({reconcile[0]} to /tasks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[100, 1000])
    for scale in parser.parse_args().scales:
        measure(scale)


if __name__ == "__main__":
    main()
