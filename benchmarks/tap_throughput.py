"""Tap throughput against a bare requests+json loop over the same pages.

Prints figures; asserts nothing (performance is measured, not asserted in tests). Both sides run as
child processes against a sandbox in a third process, so each CPU figure is that side's own:

    python benchmarks/tap_throughput.py --scale 20000 --stream parties

Figures: records, CPU seconds, records per CPU second, the tap/baseline CPU ratio (the product aims
for at most 1.5x), API requests per record, and peak memory (max RSS) of each side.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import requests

TOKEN = "bench-token"
BIN = Path(sys.executable).parent

BASELINE = textwrap.dedent(
    """
    import json, sys, requests
    url, token, list_key, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    session = requests.Session()
    session.headers.update({"Authorization": "Bearer " + token, "Accept": "application/json"})
    out = open("/dev/null", "w")
    n = 0
    while url:
        resp = session.get(url, params=params)
        resp.raise_for_status()
        for record in json.loads(resp.content)[list_key]:
            out.write(json.dumps({"type": "RECORD", "stream": list_key, "record": record}) + "\\n")
            n += 1
        url, params = resp.links.get("next", {}).get("url"), None
    print(n)
    """
)


def child_run(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, cpu, after.ru_maxrss  # ru_maxrss of children is the max over all so far (KiB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20000)
    parser.add_argument("--stream", default="parties")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from tap_capsule import catalogue

    obj = catalogue.get(args.stream)
    sandbox = subprocess.Popen(
        [
            str(BIN / "capsule-sandbox"),
            "--port",
            "0",
            "--token",
            TOKEN,
            "--scale",
            str(args.scale),
            "--seed",
            str(args.seed),
            "--rate-limit",
            "1000000",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = sandbox.stdout.readline().strip()
        origin = url.rsplit("/api/v2", 1)[0]
        params = {"perPage": 100, **obj.params}
        if obj.embed:
            params["embed"] = ",".join(obj.embed)

        base_proc, base_cpu, base_rss = child_run(
            [
                sys.executable,
                "-c",
                BASELINE,
                url + obj.path,
                TOKEN,
                obj.list_key,
                json.dumps(params),
            ]
        )
        base_records = int(base_proc.stdout.strip())

        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp, "config.json")
            config.write_text(json.dumps({"access_token": TOKEN, "api_url": url}))
            discovered = subprocess.run(
                [str(BIN / "tap-capsule"), "--config", str(config), "--discover"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            catalog = json.loads(discovered)
            for entry in catalog["streams"]:
                selected = entry["tap_stream_id"] == args.stream
                for md in entry["metadata"]:
                    if md["breadcrumb"] == []:
                        md["metadata"]["selected"] = selected
            catalog_path = Path(tmp, "catalog.json")
            catalog_path.write_text(json.dumps(catalog))
            requests.post(f"{origin}/_sandbox/requests/reset", timeout=10)
            started = time.perf_counter()
            tap_proc, tap_cpu, _ = child_run(
                [str(BIN / "tap-capsule"), "--config", str(config), "--catalog", str(catalog_path)]
            )
            tap_wall = time.perf_counter() - started
            tap_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            tap_records = sum(
                1
                for line in tap_proc.stdout.splitlines()
                if line.startswith('{"type":"RECORD"') or ('"type": "RECORD"' in line)
            )
            counts = requests.get(f"{origin}/_sandbox/requests", timeout=10).json()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)

    print(f"stream {args.stream}, sandbox scale {args.scale}")
    print(
        f"  baseline requests+json : {base_records:>7} records  {base_cpu:6.2f} s CPU  "
        f"{base_records / base_cpu:9.0f} records/CPU-s"
    )
    print(
        f"  tap-capsule            : {tap_records:>7} records  {tap_cpu:6.2f} s CPU  "
        f"{tap_records / tap_cpu:9.0f} records/CPU-s  ({tap_wall:.2f} s wall)"
    )
    print(f"  CPU ratio tap/baseline : {tap_cpu / base_cpu:.2f}x (target <= 1.5x)")
    print(
        f"  API requests (tap run) : {counts['total']}  = "
        f"{counts['total'] / max(tap_records, 1):.4f} per record"
    )
    print(
        f"  peak RSS               : baseline {base_rss / 1024:.0f} MiB, "
        f"children max {tap_rss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
