"""Latency and throughput of the Capsule sandbox over keep-alive connections.

Starts an in-process sandbox and sends small and large GETs over one keep-alive connection
(stdlib http.client, so the client adds little of its own), then prints requests per second and
latency percentiles. `--compare` also runs a server that answers the way the stdlib handler does
by default (status line and headers in one write, the body in a second, Nagle's algorithm on), to
show what one write per response and TCP_NODELAY buy: with two small writes, the client's delayed
ACK holds the second for up to ~40 ms.

    .venv/bin/python benchmarks/sandbox_latency.py --requests 300 --compare
    .venv/bin/python benchmarks/sandbox_latency.py --compare --markdown  # docs/sandbox.md's table
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import threading
import time
from urllib.parse import urlsplit

from tap_capsule.sandbox.app import App
from tap_capsule.sandbox.server import Handler, SandboxHTTPServer

TOKEN = "bench-token"
PATHS = {
    "small": "/api/v2/users/current",
    "page of 100": "/api/v2/parties?perPage=100&embed=tags,fields,organisation",
}
# The columns of the Markdown table, one per path.
COLUMNS = {
    "small": "small answer (`/users/current`)",
    "page of 100": "page of 100 parties with embeds",
}


class TwoWritesHandler(Handler):
    """The stdlib's way: headers and body in separate writes, Nagle's algorithm left on."""

    disable_nagle_algorithm = False

    def send_answer(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def measure(origin: str, path: str, count: int) -> tuple[float, list[float]]:
    parts = urlsplit(origin)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies = []
    start = time.perf_counter()
    for _ in range(count):
        began = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        latencies.append(time.perf_counter() - began)
    elapsed = time.perf_counter() - start
    conn.close()
    return count / elapsed, latencies


def run(
    label: str, handler: type[Handler], scale: int, count: int, *, quiet: bool = False
) -> dict[str, tuple[float, list[float]]]:
    """Measure each path on a fresh server; print a line per path unless `quiet`."""
    app = App(token=TOKEN, scale=scale, seed=1, rate_limit=10**9)
    server = SandboxHTTPServer(("127.0.0.1", 0), app, handler=handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    results = {}
    try:
        for name, path in PATHS.items():
            measure(app.origin, path, 5)  # warm up
            rate, latencies = measure(app.origin, path, count)
            results[name] = rate, latencies
            if quiet:
                continue
            ms = sorted(x * 1000 for x in latencies)
            p95 = ms[int(len(ms) * 0.95) - 1]
            print(
                f"{label:<26} {name:<12} {rate:8.1f} req/s   "
                f"p50 {statistics.median(ms):6.2f} ms   p95 {p95:6.2f} ms   max {ms[-1]:6.2f} ms"
            )
    finally:
        server.shutdown()
        server.close_connections()
        server.server_close()
    return results


def markdown(rows: dict[str, dict[str, tuple[float, list[float]]]]) -> str:
    """One row per server, one column per path: requests a second and median latency."""
    lines = [
        "| server | " + " | ".join(COLUMNS.values()) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for label, results in rows.items():
        cells = []
        for name in COLUMNS:
            rate, latencies = results[name]
            p50 = statistics.median(latencies) * 1000
            cells.append(f"{rate:,.0f} req/s, p50 {p50:.2f} ms")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--scale", type=int, default=1000, help="sandbox size (parties)")
    parser.add_argument(
        "--compare", action="store_true", help="also run the two-writes, Nagle-on server"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print only the table of docs/sandbox.md"
    )
    args = parser.parse_args()
    servers: dict[str, type[Handler]] = {"one write + `TCP_NODELAY`": Handler}
    if args.compare:
        servers["two writes, Nagle on"] = TwoWritesHandler
    rows = {
        label: run(label.replace("`", ""), handler, args.scale, args.requests, quiet=args.markdown)
        for label, handler in servers.items()
    }
    if args.markdown:
        print(markdown(rows))


if __name__ == "__main__":
    main()
