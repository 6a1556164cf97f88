"""What a large Capsule account costs in requests and hours of budget, and what a kill costs.

Starts `capsule sandbox --large PARTIES` (a large account generated on demand: PARTIES parties,
0.3x opportunities, 0.1x cases, 3x entries, 0.2x tasks; only writes are held in memory), runs the
real `tap-capsule` and `capsule backup` against it, counting requests, and prints one table:
requests, hours of Capsule's 4,000-an-hour budget and wall-clock time for

- a first sync (the default streams) and a backup (every stream, links and tracks);
- an incremental run with nothing changed and one after some changes, with `entries_mode` full
  and recent;
- a first sync (`entries_mode: recent`) killed (SIGKILL) `--kills` times and resumed each time from
  the last STATE it delivered, and what each resume spent over a clean run.

Every figure is measured at the size the table names, never scaled by a formula; `--backup-parties`
measures the backup on a smaller account when the full one would take too long (the row says so).
The sandbox's rate-limit window runs `--speed` times faster than Capsule's hour, so pacing and
waits happen as they would, only sooner. Also prints the sandbox's peak memory. Asserts nothing:

    python benchmarks/large_account.py --parties 100000
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import requests

from tap_capsule.sandbox import SandboxClient
from tap_capsule.sandbox.seed.large import FIRST_IDS, sizes

TOKEN = "bench-token"
BIN = Path(sys.executable).parent
BUDGET = 4000  # Capsule's requests an hour
BIG = ("parties", "opportunities", "cases", "entries", "tasks")


class Run(t.NamedTuple):
    requests: int
    by_path: dict[str, int]
    state: dict
    records: int
    seconds: float


class LargeSandbox(SandboxClient):
    """`capsule sandbox --large N` in a process of its own (its memory is measured apart)."""

    def __init__(self, parties: int, speed: float) -> None:
        command = [str(BIN / "capsule"), "sandbox", "--port", "0", "--token", TOKEN]
        command += ["--large", str(parties), "--rate-window", str(3600 / speed)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        super().__init__(self.process.stdout.readline().strip())

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory (VmHWM), in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def tap(
    sandbox: SandboxClient, folder: Path, config: dict, state: dict | None, kill_after: int = 0
) -> Run:
    """One tap run; killed after `kill_after` records (0: to the end)."""
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    command = [str(BIN / "tap-capsule"), "--config", str(path)]
    if state:
        (folder / "state.json").write_text(json.dumps(state))
        command += ["--state", str(folder / "state.json")]
    sandbox.reset_requests()
    started = time.monotonic()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    last, records = state or {}, 0
    for line in process.stdout:
        head = line[:40]  # the message type comes first; parse only STATE messages
        if '"STATE"' in head:
            last = json.loads(line)["value"]
        elif '"RECORD"' in head:
            records += 1
            if kill_after and records >= kill_after:
                process.send_signal(signal.SIGKILL)
                break
    process.stdout.close()
    process.wait()
    counts = sandbox.requests()
    return Run(counts["total"], counts["by_path"], last, records, time.monotonic() - started)


def backup(sandbox: SandboxClient, folder: Path, config: dict) -> Run:
    path = folder / "backup-config.json"
    path.write_text(json.dumps(config))
    sandbox.reset_requests()
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "capsule"), "backup", "--config", str(path), "--backup-dir", str(folder / "b")],
        check=True,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    counts = sandbox.requests()
    return Run(counts["total"], counts["by_path"], {}, 0, time.monotonic() - started)


def change(sandbox: SandboxClient, parties: int, notes: int) -> None:
    """Edit `parties` people and add `notes` notes, as users would."""
    people = [FIRST_IDS["parties"] + i for i in range(parties * 5) if i % 5 >= 2][:parties]
    for rid in people:
        sandbox.touch("parties", rid, about="changed")
    for i in range(notes):
        requests.post(
            sandbox.url + "/entries",
            json={"entry": {"type": "note", "content": f"n{i}", "party": {"id": people[0]}}},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ).raise_for_status()


def row(name: str, run: Run) -> str:
    return f"| {name} | {run.requests:,} | {run.requests / BUDGET:.2f} h | {run.seconds:,.0f} s |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parties", type=int, default=100_000, help="default 100000")
    parser.add_argument(
        "--backup-parties", type=int, default=0, help="measure the backup at this size instead"
    )
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--speed", type=float, default=3600, help="rate-limit clock speed-up")
    args = parser.parse_args()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sandbox = LargeSandbox(args.parties, args.speed)
        try:
            n = sizes(args.parties)
            config = {"access_token": TOKEN, "api_url": sandbox.url}
            recent = {**config, "entries_mode": "recent"}
            at = f"{args.parties:,} parties"
            print(f"Sandbox: {', '.join(f'{n[s]:,} {s}' for s in BIG)}; hour run {args.speed:g}x")
            first = tap(sandbox, folder, config, None)
            rows.append(row(f"first sync (default streams), {at}", first))
            if not args.backup_parties or args.backup_parties == args.parties:
                rows.append(row(f"backup (every stream, links and tracks), {at}", backup(
                    sandbox, folder, config
                )))  # fmt: skip
            quiet = tap(sandbox, folder, config, first.state)
            rows.append(row("incremental, nothing changed, `entries_mode: full`", quiet))
            rows.append(
                row(
                    "incremental, nothing changed, `entries_mode: recent`",
                    tap(sandbox, folder, recent, first.state),
                )
            )
            change(sandbox, parties=50, notes=20)
            for name, cfg in (("full", config), ("recent", recent)):
                rows.append(
                    row(
                        f"incremental, 50 parties and 20 notes changed, `{name}`",
                        tap(sandbox, folder, cfg, first.state),
                    )
                )
            # Kills: with `recent`, so that a resume after entries finished doesn't read every
            # entry again (with full, each later run reads them all, as any run does).
            clean = tap(sandbox, folder, recent, None)
            rows.append(row(f"first sync (`entries_mode: recent`), {at}", clean))
            state: dict = {}
            spent = []
            step = max(1, clean.records // (args.kills + 1))
            for _ in range(args.kills):
                run = tap(sandbox, folder, recent, state, kill_after=step)
                spent.append(run)
                state = run.state
            spent.append(tap(sandbox, folder, recent, state))
            total = Run(sum(r.requests for r in spent), {}, {}, 0, sum(r.seconds for r in spent))
            rows.append(row(f"the same killed {args.kills} times: all {len(spent)} runs", total))
            extra = Run(
                round((total.requests - clean.requests) / args.kills),
                {},
                {},
                0,
                (total.seconds - clean.seconds) / args.kills,
            )
            rows.append(row("each resume, over the clean run", extra))
            overlay = sandbox.state()["_generated"]
            again = collections.Counter()
            for run in spent:
                again.update(run.by_path)
            again.subtract(clean.by_path)
            resent = sum(r.records for r in spent) - clean.records
            memory = sandbox.peak_rss_mb()
        finally:
            sandbox.stop()
        if args.backup_parties and args.backup_parties != args.parties:
            small = LargeSandbox(args.backup_parties, args.speed)
            try:
                config = {"access_token": TOKEN, "api_url": small.url}
                label = f"backup (every stream, links and tracks), {args.backup_parties:,} parties"
                rows.insert(1, row(label, backup(small, folder, config)))
            finally:
                small.stop()
    print()
    print("| run | requests | hours of budget | wall-clock |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))
    print()
    each = resent // max(1, args.kills)
    print(f"Records sent again over {args.kills} resumes: {resent:,} ({each:,} each).")
    print(f"Requests over a clean run, by path: {dict(sorted((+again).items()))}")
    print(f"Sandbox peak memory (VmHWM): {memory:.0f} MB; overlay after the runs: {overlay}")


if __name__ == "__main__":
    main()
