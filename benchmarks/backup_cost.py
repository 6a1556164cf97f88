"""Request cost of a backup (tap-capsule | target-capsule-backup) at several account sizes.

Prints, per sandbox scale: records per main stream, the requests the backup sent (counted by the
sandbox), the estimate from the formula in docs/account-tools.md, and the time the requests take
at Capsule's 4,000 requests an hour, as the Markdown table that page carries (`make docs-tables`
pastes it there). `--estimate` adds a row for an account of the given counts from the formula
alone. Asserts nothing:

    python benchmarks/backup_cost.py --scales 50 200 500
    python benchmarks/backup_cost.py --scales 200 --estimate 10000 2000 500 30000 5000
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from tap_capsule.sandbox import Sandbox

TOKEN = "bench-token"
BIN = Path(sys.executable).parent
PAGED = (
    "parties",
    "opportunities",
    "cases",
    "entries",
    "tasks",
    "pipelines",
    "lost_reasons",
    "teams",
    "track_definitions",
    "resthooks",
    "boards",
    "stages",
    "users",
    "categories",
    "activity_types",
    "custom_titles",
    "countries",
    "currencies",
    "party_tags",
    "opportunity_tags",
    "case_tags",
    "party_custom_fields",
    "opportunity_custom_fields",
    "case_custom_fields",
)


def estimate(counts: dict[str, int]) -> int:
    """One request per 100 records of each list, one list of additional parties and one of
    tracks per opportunity and per case, one milestone list per pipeline, the pipelines list and
    the three custom-field definition lists once more (the milestones' parents, the tap's
    discovery), GET /site twice (the manifest), and no deleted-record feed (a backup runs the tap
    with `tombstones: off`) but for one look at it after each list of parties, opportunities or
    cases longer than a page (deletions during the read may have shifted its pages)."""
    pages = sum(max(1, math.ceil(counts.get(s, 0) / 100)) for s in PAGED)
    children = 2 * counts.get("opportunities", 0) + 2 * counts.get("cases", 0)
    shifted = sum(counts.get(s, 0) > 100 for s in ("parties", "opportunities", "cases"))
    return pages + children + counts.get("pipelines", 0) + 1 + 3 + shifted + 2


def duration(requests: int) -> str:
    """How long `requests` take at Capsule's 4,000 an hour, in whole minutes."""
    minutes = math.floor(requests / 4000 * 60 + 0.5)
    if minutes < 60:
        return f"{minutes} minutes"
    return f"{minutes // 60} h {minutes % 60} min"


HEADER = (
    "| parties | opportunities | cases | entries | tasks | requests | formula | at 4,000/hour |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(counts: dict[str, int], requests: str, time: str) -> str:
    cells = [f"{counts[s]:,}" for s in ("parties", "opportunities", "cases", "entries", "tasks")]
    return "| " + " | ".join([*cells, requests, f"{estimate(counts):,}", time]) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs="+", default=[50, 200])
    parser.add_argument(
        "--estimate",
        type=int,
        nargs=5,
        metavar=("PARTIES", "OPPORTUNITIES", "CASES", "ENTRIES", "TASKS"),
        help="add a row estimated by the formula for an account of these counts",
    )
    args = parser.parse_args()
    print(HEADER)
    for scale in args.scales:
        with Sandbox(token=TOKEN, scale=scale, seed=3) as sb, tempfile.TemporaryDirectory() as tmp:
            # The tap's settings, and the backup target's: the same plus where to write.
            settings = {
                "access_token": TOKEN,
                "api_url": sb.url,
                "child_streams": True,
                "tombstones": "off",
            }
            tap_config, config = Path(tmp) / "tap.json", Path(tmp) / "backup.json"
            tap_config.write_text(json.dumps(settings))
            config.write_text(json.dumps({**settings, "backup_dir": f"{tmp}/backup"}))
            sb.reset_requests()
            with (Path(tmp) / "tap.log").open("w+") as tap_log:
                tap = subprocess.Popen(
                    [str(BIN / "tap-capsule"), "--config", str(tap_config)],
                    stdout=subprocess.PIPE,
                    stderr=tap_log,
                )
                subprocess.run(
                    [str(BIN / "target-capsule-backup"), "--config", str(config)],
                    stdin=tap.stdout,
                    check=True,
                    capture_output=True,
                )
                if tap.wait():  # a failed tap would leave a short backup and a low count
                    tap_log.seek(0)
                    sys.exit(f"tap-capsule failed:\n{tap_log.read()[-3000:]}")
            sent = sb.requests()["total"]
            counts = {k: len(v) for k, v in sb.state().items() if isinstance(v, list)}
        print(row(counts, f"{sent:,}", duration(sent)), flush=True)
    if args.estimate:
        names = ("parties", "opportunities", "cases", "entries", "tasks")
        counts = dict(zip(names, args.estimate, strict=True))
        print(row(counts, "–", f"about {duration(estimate(counts))} (estimate)"))


if __name__ == "__main__":
    main()
