"""The import recipe: a people CSV file read by a CSV tap from PyPI (tap-spreadsheets), loaded into
Capsule by target-capsule (`meltano run tap-spreadsheets target-capsule`, job `csv-to-capsule`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tap_capsule.sandbox import Sandbox

pytestmark = pytest.mark.meltano

PEOPLE = Path(__file__).parent / "data" / "people.csv"


def test_people_csv_into_capsule_with_rejects(meltano, meltano_db, tmp_path, token):
    with PEOPLE.open(newline="", encoding="utf-8") as fh:
        people = list(csv.DictReader(fh))
    valid = [p for p in people if p["firstName"] and p["lastName"]]
    invalid = [p for p in people if not (p["firstName"] and p["lastName"])]
    assert valid and invalid

    rejects = tmp_path / "rejects.jsonl"
    with Sandbox(token=token, scale=10, seed=31) as sb:
        before = {p["id"] for p in sb.state()["parties"]}
        meltano(
            "--environment=dev",
            "run",
            "csv-to-capsule",
            database=meltano_db,
            env={
                "TARGET_CAPSULE_API_URL": sb.url,
                "TARGET_CAPSULE_ACCESS_TOKEN": token,
                "TARGET_CAPSULE_REJECTS_PATH": str(rejects),
            },
        )
        after = sb.state()["parties"]
        writes = sb.requests()["writes"]

    new = [p for p in after if p["id"] not in before]
    assert sorted(
        (p["type"], p["firstName"], p["lastName"], p.get("jobTitle")) for p in new
    ) == sorted(("person", p["firstName"], p["lastName"], p["jobTitle"]) for p in valid)
    assert writes == len(valid)  # rejected rows never reach the API

    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(lines) == len(invalid)
    for line, person in zip(
        sorted(lines, key=lambda r: r["record"]["lastName"]),
        sorted(invalid, key=lambda r: r["lastName"]),
    ):
        assert line["stream"] == "parties"
        assert line["operation"] == "INSERT"
        assert line["record"]["lastName"] == person["lastName"]
        missing = "lastName" if not person["lastName"] else "firstName"
        assert missing in line["reason"]
