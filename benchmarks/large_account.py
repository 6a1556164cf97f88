"""What a large Capsule account costs in requests and hours of budget, and what a kill costs.

Runs the real `tap-capsule` and `capsule backup` against a sandbox (counting requests by path),
then prints per run: requests and hours of Capsule's 4,000-an-hour budget, for

- a first sync (the default streams), a backup (every stream, links and tracks included);
- an incremental run with nothing changed and one after some changes, with `entries_mode` full
  and recent;
- a first sync killed (SIGKILL) `--kills` times and resumed each time from the last STATE it
  delivered: the requests each resume spent again.

The sandbox's rate-limit window runs `--speed` times faster than Capsule's hour, so pacing and
waits happen as they would, only sooner. The measured requests per record are then carried to the
large account of `--large` (parties, opportunities, cases, entries, tasks) with the tap's cost
formula: one request per 100 records of a list, one per opportunity or case for each link or track
stream. Asserts nothing:

    python benchmarks/large_account.py --scale 2000
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import signal
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

import requests

from tap_capsule.sandbox import Sandbox

TOKEN = "bench-token"
BIN = Path(sys.executable).parent
BUDGET = 4000  # Capsule's requests an hour
BIG = ("parties", "opportunities", "cases", "entries", "tasks")


class Run(t.NamedTuple):
    requests: int
    by_path: dict[str, int]
    state: dict
    records: int


def tap(
    sandbox: Sandbox, folder: Path, config: dict, state: dict | None, kill_after: int = 0
) -> Run:
    """One tap run; killed after `kill_after` records (0: to the end)."""
    path = folder / f"config{id(config)}_{kill_after}.json"
    path.write_text(json.dumps(config))
    command = [str(BIN / "tap-capsule"), "--config", str(path)]
    if state:
        (folder / "state.json").write_text(json.dumps(state))
        command += ["--state", str(folder / "state.json")]
    sandbox.reset_requests()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    last, records = state or {}, 0
    for line in process.stdout:
        message = json.loads(line)
        if message["type"] == "STATE":
            last = message["value"]
        elif message["type"] == "RECORD":
            records += 1
            if kill_after and records >= kill_after:
                process.send_signal(signal.SIGKILL)
                break
    process.stdout.close()
    process.wait()
    counts = sandbox.requests()
    return Run(counts["total"], counts["by_path"], last, records)


def backup(sandbox: Sandbox, folder: Path, config: dict) -> int:
    path = folder / "backup-config.json"
    path.write_text(json.dumps(config))
    sandbox.reset_requests()
    subprocess.run(
        [str(BIN / "capsule"), "backup", "--config", str(path), "--backup-dir", str(folder / "b")],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return sandbox.requests()["total"]


def change(sandbox: Sandbox, parties: int, notes: int) -> None:
    """Edit `parties` parties and add `notes` notes, as users would."""
    rows = sandbox.state()["parties"]
    for row in rows[:parties]:
        sandbox.touch("parties", row["id"], about="changed")
    for i in range(notes):
        requests.post(
            sandbox.url + "/entries",
            json={"entry": {"type": "note", "content": f"n{i}", "party": {"id": rows[0]["id"]}}},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ).raise_for_status()


def hours(n: float) -> str:
    return f"{n / BUDGET:.2f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=2000, help="sandbox parties (default 2000)")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--speed", type=float, default=600, help="rate-limit clock speed-up")
    parser.add_argument(
        "--large",
        type=int,
        nargs=5,
        default=[100_000, 30_000, 10_000, 300_000, 30_000],
        metavar=("PARTIES", "OPPORTUNITIES", "CASES", "ENTRIES", "TASKS"),
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Sandbox(token=TOKEN, scale=args.scale, seed=1, rate_window=3600 / args.speed) as sandbox,
    ):
        folder = Path(tmp)
        counts = {s: len(v) for s, v in sandbox.state().items() if isinstance(v, list)}
        config = {"access_token": TOKEN, "api_url": sandbox.url}
        print(f"Sandbox: {', '.join(f'{counts[s]} {s}' for s in BIG)}; hour run {args.speed:g}x")
        rows: list[tuple[str, int]] = []
        first = tap(sandbox, folder, config, None)
        rows.append(("first sync (default streams)", first.requests))
        rows.append(("backup (every stream, links and tracks)", backup(sandbox, folder, config)))
        quiet = tap(sandbox, folder, config, first.state)
        rows.append(("incremental, nothing changed, entries full", quiet.requests))
        recent = {**config, "entries_mode": "recent"}
        rows.append(
            (
                "incremental, nothing changed, entries recent",
                tap(sandbox, folder, recent, first.state).requests,
            )
        )
        change(sandbox, parties=50, notes=20)
        rows.append(
            (
                "incremental, 50 parties + 20 notes changed, entries full",
                tap(sandbox, folder, config, first.state).requests,
            )
        )
        rows.append(
            (
                "incremental, 50 parties + 20 notes changed, entries recent",
                tap(sandbox, folder, recent, first.state).requests,
            )
        )
        # Kills: with entries_mode recent, so that a resume after entries finished doesn't read
        # every entry again (with full, each later run reads ⌈entries/100⌉ pages, as any run does).
        clean = tap(sandbox, folder, recent, None)
        state: dict = {}
        spent = []
        step = max(1, clean.records // (args.kills + 1))
        for _ in range(args.kills):
            run = tap(sandbox, folder, recent, state, kill_after=step)
            spent.append(run)
            state = run.state
        final = tap(sandbox, folder, recent, state)
        spent.append(final)
        print()
        print(f"| run at {args.scale} parties | requests | hours of budget |")
        print("|---|---:|---:|")
        for name, n in rows:
            print(f"| {name} | {n} | {hours(n)} |")
        print()
        delivered = sum(r.records for r in spent)
        print(
            f"First sync (entries_mode recent) killed {args.kills} times and resumed: "
            f"{sum(r.requests for r in spent)} "
            f"requests in {len(spent)} runs against {clean.requests} for one clean run; "
            f"{delivered - clean.records} records sent again over {args.kills} resumes "
            f"({(delivered - clean.records) / args.kills:.0f} a resume)."
        )
        extra = collections.Counter()
        for run in spent:
            extra.update(run.by_path)
        again = {
            p: extra[p] - clean.by_path.get(p, 0)
            for p in extra
            if extra[p] > clean.by_path.get(p, 0)
        }
        print(f"Requests over a clean run, by path: {dict(sorted(again.items()))}")

        # Carry the measured costs to the large account.
        large = dict(zip(BIG, args.large, strict=True))
        pages = {s: math.ceil(large[s] / 100) for s in BIG}
        small_pages = {s: math.ceil(counts[s] / 100) for s in BIG}
        rest = first.requests - sum(small_pages.values())  # settings, lookups, deleted feeds
        first_large = sum(pages.values()) + rest
        children = 2 * (large["opportunities"] + large["cases"])
        small_children = 2 * (counts["opportunities"] + counts["cases"])
        backup_rest = rows[1][1] - sum(small_pages.values()) - small_children
        backup_large = sum(pages.values()) + children + backup_rest
        incremental_full = quiet.requests - small_pages["entries"] + pages["entries"]
        print()
        sizes = ", ".join(f"{large[s]:,} {s}" for s in BIG)
        print(f"| large account ({sizes}) | requests | hours of budget |")
        print("|---|---:|---:|")
        for name, n in (
            ("first sync (default streams)", first_large),
            ("backup (every stream, links and tracks)", backup_large),
            ("incremental, entries full", incremental_full),
            (
                "incremental, entries recent (nothing new)",
                quiet.requests - small_pages["entries"] + 1,
            ),
        ):
            print(f"| {name} | {n:,} | {hours(n)} |")


if __name__ == "__main__":
    main()
