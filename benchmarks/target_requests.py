"""Requests target-capsule spends per applied record, for small and large inputs and accounts.

Prints figures as the Markdown table of docs/target.md (`make docs-tables` pastes it there);
asserts nothing. Each case starts a fresh sandbox of the given size, pipes id-less
persons (half new, half already in Capsule by email) and records to update by id through the
`target-capsule` CLI, and counts what the sandbox was asked:

    python benchmarks/target_requests.py
    python benchmarks/target_requests.py --accounts 30 5000 --imports 5 500

Columns: account size (parties), records in, reads (GETs and searches), writes, reads per applied
record, requests per applied record, and the cheaper of "one search per record" and "read the whole
list" for that input (the target aims at reads within twice that).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from tap_capsule import catalogue as cat
from tap_capsule.sandbox import Sandbox

TOKEN = "bench-token"
TARGET = str(Path(sys.executable).parent / "target-capsule")


def schema(stream: str) -> dict:
    obj = cat.get(stream)
    return {"type": "SCHEMA", "stream": stream, "schema": obj.json_schema(), "key_properties": []}


def workload(state: dict, n: int, kind: str) -> list[dict]:
    """`import`: id-less persons, half of them already in Capsule (matched by email).
    `update`: records that name their id, each with one changed field."""
    people = [p for p in state["parties"] if p["type"] == "person" and p.get("emailAddresses")]
    out = [schema("parties")]
    for i in range(n):
        if kind == "update":
            party = state["parties"][i % len(state["parties"])]
            record = {"id": party["id"], "about": f"Benchmarked {i}"}
        elif i % 2 and i // 2 < len(people):
            known = people[i // 2]
            record = {
                "type": "person",
                "firstName": known["firstName"],
                "lastName": known["lastName"],
                "jobTitle": "Benchmarked",
                "emailAddresses": [{"address": known["emailAddresses"][0]["address"]}],
            }
        else:
            record = {
                "type": "person",
                "firstName": f"Bench{i}",
                "lastName": "Import",
                "emailAddresses": [{"address": f"bench{i}@example.net"}],
            }
        out.append({"type": "RECORD", "stream": "parties", "record": record})
    return out


def run_case(accounts: int, n: int, kind: str) -> dict:
    with Sandbox(token=TOKEN, scale=accounts, seed=5) as sb, tempfile.TemporaryDirectory() as tmp:
        state = sb.state()
        lines = workload(state, n, kind)
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"access_token": TOKEN, "api_url": sb.url}))
        sb.reset_requests()
        proc = subprocess.run(
            [TARGET, "--config", str(config)],
            input="".join(json.dumps(m) + "\n" for m in lines),
            capture_output=True,
            text=True,
            check=True,
        )
        req = sb.requests()
        parties = len(state["parties"])
    summary = json.loads(proc.stdout.strip().splitlines()[-1])["target_capsule"]
    applied = summary["totals"].get("applied", 0)
    reads = req["total"] - req["writes"]
    pages = math.ceil(parties / 100)
    cheaper = min(n if kind == "import" else math.ceil(n / 10), pages)
    return {
        "parties": parties,
        "kind": kind,
        "records": n,
        "applied": applied,
        "reads": reads,
        "writes": req["writes"],
        "reads/applied": reads / applied if applied else float("nan"),
        "requests/applied": req["total"] / applied if applied else float("nan"),
        "cheaper": cheaper,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[30, 5000])
    parser.add_argument("--imports", type=int, nargs="+", default=[5, 500])
    args = parser.parse_args()
    print(
        "| parties | input | records | applied | reads | writes | reads / applied "
        "| requests / applied | cheaper strategy (reads) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for accounts in args.accounts:
        for n in args.imports:
            for kind in ("import", "update"):
                r = run_case(accounts, n, kind)
                print(
                    f"| {r['parties']:,} | {kind} | {n} | {r['applied']} | {r['reads']} "
                    f"| {r['writes']} | {r['reads/applied']:.2f} | {r['requests/applied']:.2f} "
                    f"| {r['cheaper']} |"
                )


if __name__ == "__main__":
    main()
