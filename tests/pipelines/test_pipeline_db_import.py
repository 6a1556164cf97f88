"""The database import recipe (docs/recipes.md, "Database → Capsule").

People in a PostgreSQL table, shaped by a view, read by tap-postgres from PyPI and loaded into
Capsule by target-capsule (`meltano run tap-postgres target-capsule`, job `postgres-to-capsule`).

The recipe runs as the docs give it: the page's SQL block creates the table and the view,
its YAML block must be the `tap-postgres` entry of meltano.yml, and meltano reads the connection
from the PG* variables. The test has a database of its own (`pg_database`), so the stream is
`public-capsule_contacts` exactly as configured.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from tap_capsule.sandbox import Sandbox

pytestmark = [pytest.mark.meltano, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
JOB_TITLE = "Imported from PostgreSQL"

# first_name, last_name, email, job_title
PEOPLE = [
    ("Ada", "Lovelace", "ada.lovelace@example.org", "Analyst"),
    ("Grace", "Hopper", None, "Rear Admiral"),  # no email: matched on content when run again
    ("Alan", "Turing", "  Alan.Turing@Example.org ", "Mathematician"),  # the view trims it
    ("Linus", None, "linus@example.org", "Maintainer"),  # breaks a rule: a person needs lastName
]


def recipe_section() -> str:
    text = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    start = text.index("## Database → Capsule")
    return text[start : text.index("\n## ", start + 1)]


def code_block(section: str, lang: str) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", section, re.S)
    assert len(blocks) == 1, f"the recipe has {len(blocks)} {lang} blocks"
    return blocks[0]


def sql(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def load_summary(output: str) -> str:
    """target-capsule's closing line, e.g. `4 unchanged, 1 rejected`."""
    found = re.findall(r"Load finished: ([a-z0-9_, ]+)", output)
    assert len(found) == 1, output[-3000:]
    return found[0].strip()


def test_readme_recipe_is_the_meltano_yml_entry():
    section = recipe_section()
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    entry = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-postgres")
    assert yaml.safe_load(code_block(section, "yaml")) == [entry]
    assert entry["pip_url"].startswith("meltanolabs-tap-postgres")
    jobs = {j["name"]: j["tasks"] for j in project["jobs"]}
    assert jobs["postgres-to-capsule"] == ["tap-postgres target-capsule"]
    commands = code_block(section, "bash")
    assert (
        "run postgres-to-capsule" in commands
        and "meltano run tap-postgres target-capsule" in commands
    )


def test_postgres_rows_into_capsule_with_rejects_and_an_idempotent_rerun(
    meltano, meltano_db, pg_database, tmp_path, token
):
    db = pg_database
    db.execute(code_block(recipe_section(), "sql"))  # the recipe's table and view

    rejects = tmp_path / "rejects.jsonl"
    with Sandbox(token=token, scale=10, seed=41) as sb:
        before = sb.state()["parties"]
        before_ids = {p["id"] for p in before}
        # A person Capsule already has, given with their email in other case: updated, not created.
        owners: dict[str, list[int]] = {}
        for party in before:
            for item in party.get("emailAddresses") or ():
                owners.setdefault(item["address"].strip().casefold(), []).append(party["id"])
        known = next(
            p
            for p in before
            if p["type"] == "person"
            and p.get("lastName")
            and len(p.get("emailAddresses") or ()) == 1
            and len(owners[p["emailAddresses"][0]["address"].strip().casefold()]) == 1
        )
        rows = [
            *PEOPLE,
            (
                known["firstName"],
                known["lastName"],
                known["emailAddresses"][0]["address"].upper(),
                JOB_TITLE,
            ),
        ]
        db.execute(
            "INSERT INTO contacts (first_name, last_name, email, job_title) VALUES "
            + ", ".join(f"({', '.join(map(sql, row))})" for row in rows)
        )

        env = {
            # The recipe's connection settings are $PGHOST ... $PGDATABASE: point them at this
            # test's database.
            "PGHOST": db.host,
            "PGPORT": str(db.port),
            "PGUSER": db.user,
            "PGPASSWORD": db.password,
            "PGDATABASE": db.database,
            "TARGET_CAPSULE_API_URL": sb.url,
            "TARGET_CAPSULE_ACCESS_TOKEN": token,
            "TARGET_CAPSULE_REJECTS_PATH": str(rejects),
        }
        started = time.monotonic()
        first = meltano(
            "--environment=dev",
            "run",
            "tap-postgres",
            "target-capsule",
            env=env,
            database=meltano_db,
        )
        first_seconds = time.monotonic() - started
        after = sb.state()["parties"]
        first_requests = sb.requests()
        first_rejects = rejects.read_text().splitlines()

        sb.reset_requests()
        started = time.monotonic()
        second = meltano(
            "--environment=dev", "run", "postgres-to-capsule", env=env, database=meltano_db
        )
        second_seconds = time.monotonic() - started
        again = sb.state()["parties"]
        second_requests = sb.requests()
        second_rejects = rejects.read_text().splitlines()
    print(f"meltano runs: {first_seconds:.1f}s, {second_seconds:.1f}s")

    # Every row was read, through the view and the stream map.
    read = [
        p
        for p in first.metrics("tap-postgres")
        if p.get("metric") == "record_count"
        and p.get("tags", {}).get("stream") == "public-capsule_contacts"
    ]
    assert sum(p["value"] for p in read) == len(rows)

    # The new people are in Capsule, with their emails; the known person was updated by email.
    valid = [r for r in PEOPLE if r[0] and r[1]]
    new = [p for p in after if p["id"] not in before_ids]
    assert sorted(
        (
            p["type"],
            p["firstName"],
            p["lastName"],
            p.get("jobTitle"),
            [e["address"] for e in p.get("emailAddresses") or ()],
        )
        for p in new
    ) == sorted(
        ("person", first_name, last_name, job, [email.strip()] if email else [])
        for first_name, last_name, email, job in valid
    )
    updated = next(p for p in after if p["id"] == known["id"])
    assert updated["jobTitle"] == JOB_TITLE
    assert [e["address"] for e in updated["emailAddresses"]] == [
        known["emailAddresses"][0]["address"]
    ]  # no second copy of the email in other case
    assert first_requests["by_route"].get("POST /parties") == len(valid)
    assert first_requests["by_route"].get("PUT /parties/{id}") == 1
    assert first_requests["writes"] == len(valid) + 1  # the rejected row never reached the API
    assert load_summary(first.output) == f"{len(valid) + 1} applied, 1 rejected"

    # The row without a last name is in the rejects file, with a reason that names lastName.
    for lines in (first_rejects, second_rejects):  # emptied and written again by each run
        assert len(lines) == 1
        reject = json.loads(lines[0])
        assert reject["stream"] == "parties"
        assert reject["operation"] == "INSERT"
        assert reject["record"]["firstName"] == "Linus"
        assert reject["record"]["lastName"] is None
        assert "lastName" in reject["reason"]

    # Running it again creates nobody and writes nothing: every valid row is `unchanged`.
    assert sorted(p["id"] for p in again) == sorted(p["id"] for p in after)
    assert len(again) == len(before) + len(valid)
    assert second_requests["by_route"].get("POST /parties", 0) == 0
    assert second_requests["writes"] == 0
    assert load_summary(second.output) == f"{len(valid) + 1} unchanged, 1 rejected"
