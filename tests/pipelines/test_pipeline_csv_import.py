"""The import recipe: a people CSV file read by a CSV tap from PyPI (tap-spreadsheets), loaded into
Capsule by target-capsule (`meltano run tap-spreadsheets target-capsule`, job `csv-to-capsule`).

As the README tells a user: a dry run first, then the real run, then the file edited and run
again. Rows key on their email, so the edited run updates people and creates no copies."""

from __future__ import annotations

import csv
import json
import shutil
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
    assert valid and invalid and any(not p["email"] for p in valid)

    source = tmp_path / "people.csv"
    shutil.copy(PEOPLE, source)
    rejects = tmp_path / "rejects.jsonl"
    with Sandbox(token=token, scale=10, seed=31) as sb:
        before = {p["id"] for p in sb.state()["parties"]}
        env = {
            "TAP_SPREADSHEETS_FILES": json.dumps(
                [{"path": str(source), "format": "csv", "table_name": "parties"}]
            ),
            "TARGET_CAPSULE_API_URL": sb.url,
            "TARGET_CAPSULE_ACCESS_TOKEN": token,
            "TARGET_CAPSULE_REJECTS_PATH": str(rejects),
        }

        def run(**extra: str) -> None:
            meltano(
                "--environment=dev",
                "run",
                "csv-to-capsule",
                database=meltano_db,
                env={**env, **extra},
            )

        run(TARGET_CAPSULE_DRY_RUN="true")  # the recipe's first step
        assert sb.requests()["writes"] == 0
        run()  # the real run still reads the whole file: the dry run kept no bookmark
        after = sb.state()["parties"]
        writes = sb.requests()["writes"]

        # The file edited: every job title changes. The rerun updates the same people.
        rows = [dict(p, jobTitle=p["jobTitle"] + " (edited)") for p in people]
        with source.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(people[0]))
            writer.writeheader()
            writer.writerows(rows)
        run()
        edited = sb.state()["parties"]

    new = [p for p in after if p["id"] not in before]
    assert sorted(
        (p["type"], p["firstName"], p["lastName"], p.get("jobTitle")) for p in new
    ) == sorted(("person", p["firstName"], p["lastName"], p["jobTitle"]) for p in valid)
    emails = {p["lastName"]: [e["address"] for e in p.get("emailAddresses") or []] for p in new}
    assert all(emails[p["lastName"]] == ([p["email"]] if p["email"] else []) for p in valid)
    assert writes == len(valid)  # rejected rows never reach the API

    # Rows with an email: updated in place. The keyless row (no email) matches nothing once
    # edited, so it becomes a second person, as the README says.
    new_after_edit = [p for p in edited if p["id"] not in before]
    keyed = [p for p in valid if p["email"]]
    keyless = [p for p in valid if not p["email"]]
    by_name = {}
    for p in new_after_edit:
        by_name.setdefault((p["firstName"], p["lastName"]), []).append(p)
    for p in keyed:
        [person] = by_name[(p["firstName"], p["lastName"])]
        assert person["jobTitle"] == p["jobTitle"] + " (edited)"
    for p in keyless:
        assert len(by_name[(p["firstName"], p["lastName"])]) == 2
    assert len(new_after_edit) == len(valid) + len(keyless)

    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(lines) == len(invalid)  # the rejects file holds the last run's
    for line, person in zip(
        sorted(lines, key=lambda r: r["record"]["lastName"]),
        sorted(invalid, key=lambda r: r["lastName"]),
        strict=True,
    ):
        assert line["stream"] == "parties"
        assert line["operation"] == "INSERT"
        assert line["record"]["lastName"] == person["lastName"]
        missing = "lastName" if not person["lastName"] else "firstName"
        assert missing in line["reason"]
