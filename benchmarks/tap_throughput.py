"""Tap CPU against a bare requests+json loop, and the cost of the child streams, in one run.

Prints figures and asserts nothing (performance is measured, not asserted in tests). The bare loop,
the tap and the sandbox each run in a process of their own, so each CPU figure is that side's own:

    .venv/bin/python benchmarks/tap_throughput.py            # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/tap_throughput.py --markdown # the table of docs/benchmarks.md

1. Throughput: the bare loop and the tap read the same stream from two sandboxes (2,000 and 10,000
   parties by default), best of `--repeat` runs each. The marginal CPU per record between the two
   sizes cancels start-up; the product aims for at most 1.5x the bare loop's. Start-up CPU is the
   tap's CPU extrapolated to zero records (aim: under 0.6 s).
2. Child streams: the tap reads opportunities alone, then with opportunity_parties and
   opportunity_tracks (one request per opportunity each). The difference in CPU, divided by the
   child requests, is the CPU per child request (aim: at most 2 ms). It also counts SCHEMA
   messages per stream (aim: one per stream, not one per parent) and the wall time per child
   request, which is mostly the sandbox's.
3. The sandbox every test and this benchmark run against: requests per second and latency of
   keep-alive answers, as it serves them (one write, TCP_NODELAY) and as it used to (headers and
   body in two writes, Nagle on). `benchmarks/sandbox_latency.py` measures the same at any size.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import typing as t
from pathlib import Path

import requests

TOKEN = "bench-token"
BIN = Path(sys.executable).parent
CHILDREN = ("opportunity_parties", "opportunity_tracks")
TIMES = "\u00d7"  # the multiplication sign of the docs' ratios

BARE_LOOP = textwrap.dedent(
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


def child_run(cmd: list[str]) -> tuple[str, float, float]:
    """Run `cmd`; its stdout, its CPU seconds (user + system) and its wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"{cmd[0]} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.stdout, cpu, wall


@contextlib.contextmanager
def sandbox(scale: int, seed: int) -> t.Iterator[str]:
    """A sandbox in its own process, without a rate limit; yields its API URL."""
    proc = subprocess.Popen(
        [
            *(str(BIN / "capsule"), "sandbox"),
            *("--port", "0", "--token", TOKEN, "--scale", str(scale), "--seed", str(seed)),
            *("--rate-limit", "100000000"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Tap:
    """tap-capsule against one sandbox, with a catalog per selection."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.config = workdir / f"config-{abs(hash(url))}.json"
        # No tombstones: the bare loop reads the list alone, and so must the tap it is measured
        # against (a first sync would otherwise also read the deleted feed).
        self.config.write_text(
            json.dumps({"access_token": TOKEN, "api_url": url, "tombstones": "off"})
        )
        self.catalog = json.loads(
            subprocess.run(
                [str(BIN / "tap-capsule"), "--config", str(self.config), "--discover"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )

    def run(self, streams: set[str]) -> tuple[collections.Counter, float, float]:
        """Sync `streams`; (messages by type and stream, CPU s, wall s)."""
        for entry in self.catalog["streams"]:
            for md in entry["metadata"]:
                if md["breadcrumb"] == []:
                    md["metadata"]["selected"] = entry["tap_stream_id"] in streams
        path = self.workdir / "catalog.json"
        path.write_text(json.dumps(self.catalog))
        out, cpu, wall = child_run(
            [str(BIN / "tap-capsule"), "--config", str(self.config), "--catalog", str(path)]
        )
        counts: collections.Counter = collections.Counter()
        for line in out.splitlines():
            message = json.loads(line)
            counts[message["type"], message.get("stream")] += 1
        return counts, cpu, wall

    def requests_made(self) -> dict:
        origin = self.url.rsplit("/api/v2", 1)[0]
        return requests.get(f"{origin}/_sandbox/requests", timeout=10).json()

    def reset_requests(self) -> None:
        origin = self.url.rsplit("/api/v2", 1)[0]
        requests.post(f"{origin}/_sandbox/requests/reset", timeout=10)


def bare_loop(url: str, stream: str) -> tuple[int, float]:
    from tap_capsule import catalogue

    obj = catalogue.get(stream)
    query = {"perPage": 100, **obj.list_query}
    out, cpu, _ = child_run(
        [sys.executable, "-c", BARE_LOOP, url + obj.path, TOKEN, obj.list_key, json.dumps(query)]
    )
    return int(out.strip()), cpu


def throughput(args: argparse.Namespace, workdir: Path) -> dict:
    rows = []
    for scale in (args.small, args.large):
        with sandbox(scale, args.seed) as url:
            tap = Tap(url, workdir)
            bare = [bare_loop(url, args.stream) for _ in range(args.repeat)]
            runs = [tap.run({args.stream}) for _ in range(args.repeat)]
            spent = 0
            if not args.markdown:  # the table leaves the request count out: spare a run
                tap.reset_requests()
                tap.run({args.stream})
                spent = tap.requests_made()["total"]
        records = runs[0][0]["RECORD", args.stream]
        assert records == bare[0][0], f"the tap read {records} records, the bare loop {bare[0][0]}"
        rows.append((scale, records, min(c for _, c in bare), min(c for _, c, _ in runs), spent))
    (_, n1, b1, t1, _), (_, n2, b2, t2, _) = rows
    bare_marginal = (b2 - b1) / (n2 - n1)
    tap_marginal = (t2 - t1) / (n2 - n1)
    return {
        "rows": rows,
        "bare_marginal": bare_marginal,
        "tap_marginal": tap_marginal,
        "bare_startup": b1 - n1 * bare_marginal,
        "tap_startup": t1 - n1 * tap_marginal,
    }


def ratio(a: float, b: float) -> float:
    """a / b, or NaN where b is not positive (tiny runs on a busy machine can measure that)."""
    return a / b if b > 0 else float("nan")


def print_throughput(args: argparse.Namespace, fig: dict) -> None:
    print(f"1. Throughput: stream {args.stream}, best of {args.repeat} runs each")
    print(
        f"   {'sandbox scale':>13} {'records':>8} {'bare CPU s':>11} {'tap CPU s':>10} "
        f"{'ratio':>6}  API requests (tap)"
    )
    for scale, records, bare_cpu, tap_cpu, spent in fig["rows"]:
        print(
            f"   {scale:>13,} {records:>8,} {bare_cpu:>11.2f} {tap_cpu:>10.2f} "
            f"{ratio(tap_cpu, bare_cpu):>5.2f}x  {spent} ({spent / records:.4f} per record)"
        )
    (_, n1, *_), (_, n2, *_) = fig["rows"]
    print(
        f"   marginal CPU per record ({n1:,} -> {n2:,} records): bare loop "
        f"{fig['bare_marginal'] * 1e6:.0f} us, tap {fig['tap_marginal'] * 1e6:.0f} us: "
        f"{ratio(fig['tap_marginal'], fig['bare_marginal']):.2f}x the bare loop (goal <= 1.5x)"
    )
    print(
        f"   start-up CPU (extrapolated to 0 records): tap {fig['tap_startup']:.2f} s "
        f"(goal < 0.6 s), bare loop {fig['bare_startup']:.2f} s"
    )


def child_streams(args: argparse.Namespace, workdir: Path) -> dict:
    with sandbox(args.small, args.seed) as url:
        tap = Tap(url, workdir)
        alone = min((tap.run({"opportunities"}) for _ in range(args.repeat)), key=lambda r: r[1])
        tap.reset_requests()
        counts, cpu, wall = tap.run({"opportunities", *CHILDREN})
        by_route = tap.requests_made()["by_route"]
    child_requests = sum(n for route, n in by_route.items() if "{opportunityId}" in route)
    return {
        "parents": counts["RECORD", "opportunities"],
        "alone_cpu": alone[1],
        "cpu": cpu,
        "wall": wall,
        "child_requests": child_requests,
        "per_request_cpu": (cpu - alone[1]) / child_requests,
        "schemas": {s: counts["SCHEMA", s] for s in ("opportunities", *CHILDREN)},
        "records": {s: counts["RECORD", s] for s in CHILDREN},
    }


def print_child_streams(fig: dict) -> None:
    print(f"2. Child streams {', '.join(CHILDREN)} of {fig['parents']:,} opportunities")
    print(
        f"   CPU: opportunities alone {fig['alone_cpu']:.2f} s, with the child streams "
        f"{fig['cpu']:.2f} s; {fig['child_requests']:,} child requests: "
        f"{fig['per_request_cpu'] * 1000:.2f} ms CPU per child request (goal <= 2 ms)"
    )
    print(
        "   SCHEMA messages: "
        + ", ".join(f"{s} {n}" for s, n in fig["schemas"].items())
        + " (goal: 1 per stream)"
    )
    print(
        "   records: "
        + ", ".join(f"{s} {n:,}" for s, n in fig["records"].items())
        + f"; wall {fig['wall']:.1f} s, "
        f"{fig['wall'] / fig['child_requests'] * 1000:.0f} ms per child request"
    )


def markdown(args: argparse.Namespace, tp: dict, ch: dict) -> str:
    """The figures as the table of docs/benchmarks.md."""
    (s1, _, b1, t1, _), (s2, _, b2, t2, _) = tp["rows"]
    bare_us, tap_us = tp["bare_marginal"] * 1e6, tp["tap_marginal"] * 1e6
    children = max(ch["schemas"][s] for s in CHILDREN)
    rows = [
        ("", "bare loop", "tap-capsule", "goal"),
        (
            f"CPU at {s1:,} / {s2:,} {args.stream}",
            f"{b1:.2f} s / {b2:.2f} s",
            f"{t1:.2f} s / {t2:.2f} s",
            "",
        ),
        (
            "marginal CPU per record",
            f"{bare_us:.0f} µs",
            f"{tap_us:.0f} µs ({ratio(tap_us, bare_us):.2f}{TIMES})",
            f"≤ 1.5{TIMES}",
        ),
        ("start-up CPU", f"{tp['bare_startup']:.2f} s", f"{tp['tap_startup']:.2f} s", "< 0.6 s"),
        (
            f"CPU per child request ({ch['child_requests']:,} requests, "
            f"{ch['parents']:,} opportunities)",
            "",
            f"{ch['per_request_cpu'] * 1000:.2f} ms",
            "≤ 2 ms",
        ),
        ("SCHEMA messages per child stream in a run", "", f"{children}", "1"),
        (
            f"wall time of those {ch['child_requests']:,} child requests",
            "",
            f"{ch['wall']:.1f} s",
            "",
        ),
    ]
    lines = ["| " + " | ".join(cells) + " |" for cells in rows]
    lines.insert(1, "|---|---|---|---|")
    return "\n".join(lines).replace("|  |", "| |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", default="parties")
    parser.add_argument("--small", type=int, default=2000, help="sandbox scale of the small run")
    parser.add_argument("--large", type=int, default=10000, help="sandbox scale of the large run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-children", action="store_true")
    parser.add_argument("--skip-sandbox", action="store_true")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print only the table of docs/benchmarks.md (throughput and child streams)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tp = throughput(args, Path(tmp))
        ch = None if args.skip_children else child_streams(args, Path(tmp))
    if args.markdown:
        if ch is None:
            parser.error("--markdown needs the child streams (drop --skip-children)")
        print(markdown(args, tp, ch))
        return
    print_throughput(args, tp)
    if ch is not None:
        print_child_streams(ch)
    if not args.skip_sandbox:
        import sandbox_latency  # the script beside this one (its folder is on sys.path)

        print("3. Sandbox answers on one keep-alive connection, as served and as before")
        latency = sandbox_latency
        latency.run("one write + TCP_NODELAY", latency.Handler, args.small, 200)
        latency.run("two writes, Nagle on", latency.TwoWritesHandler, args.small, 25)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"peak memory of any child process (sandbox included): {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
