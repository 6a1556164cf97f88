"""Request cost of a backup (tap-capsule | target-capsule-backup) at several account sizes.

Prints, per sandbox scale: records per main stream, the requests the backup sent (counted by the
sandbox), the estimate from the formula in the README, and the time the requests take at
Capsule's 4,000 requests an hour. Asserts nothing:

    python benchmarks/backup_cost.py --scales 50 200 500
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
    discovery) and GET /site twice (the manifest)."""
    pages = sum(max(1, math.ceil(counts.get(s, 0) / 100)) for s in PAGED)
    children = 2 * counts.get("opportunities", 0) + 2 * counts.get("cases", 0)
    return pages + children + counts.get("pipelines", 0) + 1 + 3 + 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args()
    print(
        f"{'scale':>6} {'parties':>8} {'opps':>6} {'cases':>6} {'entries':>8} {'tasks':>6} "
        f"{'requests':>9} {'estimate':>9} {'hours@4000/h':>13}"
    )
    for scale in args.scales:
        with Sandbox(token=TOKEN, scale=scale, seed=3) as sb, tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.json"
            config.write_text(
                json.dumps(
                    {
                        "access_token": TOKEN,
                        "api_url": sb.url,
                        "backup_dir": f"{tmp}/backup",
                        "child_streams": True,
                    }
                )
            )
            sb.reset_requests()
            tap = subprocess.Popen(
                [str(BIN / "tap-capsule"), "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            subprocess.run(
                [str(BIN / "target-capsule-backup"), "--config", str(config)],
                stdin=tap.stdout,
                check=True,
                capture_output=True,
            )
            tap.wait()
            sent = sb.requests()["total"]
            counts = {k: len(v) for k, v in sb.state().items() if isinstance(v, list)}
        print(
            f"{scale:>6} {counts['parties']:>8} {counts['opportunities']:>6} "
            f"{counts['cases']:>6} {counts['entries']:>8} {counts['tasks']:>6} {sent:>9} "
            f"{estimate(counts):>9} {sent / 4000:>13.2f}"
        )


if __name__ == "__main__":
    main()
