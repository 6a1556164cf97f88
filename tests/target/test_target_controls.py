"""The writer's controls: content matching as Capsule's search, guardrails, fill_empty, the retry
of last run's rejects and the readable dry run, each through the real CLI against the sandbox."""

from __future__ import annotations

from target_helpers import messages


def people(sb, first: str, last: str) -> list[dict]:
    return [
        p
        for p in sb.state()["parties"]
        if p["type"] == "person" and (p.get("firstName"), p.get("lastName")) == (first, last)
    ]


def test_content_matching_ignores_case_and_spaces_but_not_ambiguity(capsule, run_target):
    assert people(capsule, "John", "Twin") == []
    john = {"type": "person", "firstName": "John", "lastName": "Twin"}
    run_target(capsule, messages([("parties", john)]))
    (first,) = people(capsule, "John", "Twin")

    sloppy = {"type": "person", "firstName": "john ", "lastName": "  TWIN"}
    run = run_target(capsule, messages([("parties", sloppy)]))
    assert run.count("parties", "UPDATE", "unchanged") == 1, run.stderr
    assert f"matched on content existing record {first['id']}" in run.stderr
    assert [p["id"] for p in people(capsule, "John", "Twin")] == [first["id"]]  # no third one
    assert not [p for p in capsule.state()["parties"] if p.get("firstName") == "john "]

    run_target(capsule, messages([("parties", john)]), match_on_content=False)  # a second John Twin
    twins = sorted(p["id"] for p in people(capsule, "John", "Twin"))
    assert len(twins) == 2
    both = run_target(capsule, messages([("parties", {**sloppy, "firstName": "JOHN"})]))
    assert both.count("parties", "INSERT", "rejected") == 1
    assert all(str(i) in both.rejects[0]["reason"] for i in twins)
    assert len(people(capsule, "John", "Twin")) == 2


def test_email_keys_match_regardless_of_case_and_spaces(capsule, run_target):
    person = {
        "type": "person",
        "firstName": "Mail",
        "lastName": "Case",
        "emailAddresses": [{"address": "mail.case@example.com"}],
    }
    run_target(capsule, messages([("parties", person)]))
    again = {**person, "emailAddresses": [{"address": "  MAIL.Case@Example.COM "}], "jobTitle": "X"}
    run = run_target(capsule, messages([("parties", again)]))
    assert run.count("parties", "UPDATE", "applied") == 1, run.stderr
    (found,) = people(capsule, "Mail", "Case")
    assert found["jobTitle"] == "X"


# --- guardrails ------------------------------------------------------------------------------


def tombstones(ids: list[int]) -> list[tuple[str, dict]]:
    return [("parties", {"id": i, "_sdc_deleted_at": "2026-01-01T00:00:00Z"}) for i in ids]


def test_ten_deletes_against_max_deletes_five_write_nothing(capsule, run_target, tmp_path):
    ids = sorted(p["id"] for p in capsule.state()["parties"])[:10]
    plan = tmp_path / "plan.md"
    capsule.reset_requests()
    run = run_target(
        capsule, messages(tombstones(ids)), check=False, max_deletes=5, plan_path=str(plan)
    )
    assert run.returncode == 1
    assert capsule.requests()["writes"] == 0
    assert set(ids) <= {p["id"] for p in capsule.state()["parties"]}
    (line,) = [x for x in run.stderr.splitlines() if "Guardrail:" in x]
    assert "delete 10 record(s), more than max_deletes 5" in line
    assert "Nothing was written" in line and "--force" in line
    assert "10 planned" in run.stderr  # the plan's summary is printed
    assert run.states == []  # no STATE: the source's bookmarks must not move on
    assert plan.read_text().count("(deleted)") == 10
    assert oct(plan.stat().st_mode & 0o777) == "0o600"

    # Forced (the setting; `--force` does the same): all ten go.
    forced = run_target(capsule, messages(tombstones(ids)), max_deletes=5, force=True)
    assert forced.count("parties", "DELETE", "applied") == 10
    assert not set(ids) & {p["id"] for p in capsule.state()["parties"]}


def test_force_on_the_command_line_and_a_run_within_the_limits(capsule, tmp_path):
    import json
    import subprocess

    from target_helpers import TARGET, TOKEN

    ids = sorted(p["id"] for p in capsule.state()["parties"])[:3]
    config = tmp_path / "config.json"
    base = {"access_token": TOKEN, "api_url": capsule.url}
    config.write_text(json.dumps({**base, "max_deletes": 2}))
    text = "".join(json.dumps(m) + "\n" for m in messages(tombstones(ids[:2])))
    within = subprocess.run(
        [TARGET, "--config", str(config)], input=text, capture_output=True, text=True, check=False
    )
    assert within.returncode == 0, within.stderr
    assert not set(ids[:2]) & {p["id"] for p in capsule.state()["parties"]}
    text = "".join(json.dumps(m) + "\n" for m in messages(tombstones(ids)))
    config.write_text(json.dumps({**base, "max_deletes": 0}))
    forced = subprocess.run(
        [TARGET, "--config", str(config), "--force"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert forced.returncode == 0, forced.stderr
    assert ids[2] not in {p["id"] for p in capsule.state()["parties"]}


def test_max_changed_share_counts_the_records_read_for_matching(capsule, run_target):
    parties = capsule.state()["parties"]
    few = [("parties", {"id": p["id"], "about": "Changed by an import"}) for p in parties[:3]]
    # Updating by id reads the party list a page at a time, so 3 changes among the ~30 parties
    # read is a small share and passes.
    run = run_target(capsule, messages(few), max_changed_share=0.5)
    assert run.count("parties", "UPDATE", "applied") == 3
    everyone = [("parties", {"id": p["id"], "about": "A column left empty"}) for p in parties]
    capsule.reset_requests()
    run = run_target(capsule, messages(everyone), check=False, max_changed_share=0.5)
    assert run.returncode == 1
    (line,) = [x for x in run.stderr.splitlines() if "Guardrail:" in x]
    assert f"change {len(parties)} of the {len(parties)} existing records it read (100%)" in line
    assert "more than max_changed_share 0.5" in line
    assert capsule.requests()["writes"] == 0
    assert {p.get("about") for p in capsule.state()["parties"]} != {"A column left empty"}


# --- fill_empty ------------------------------------------------------------------------------


def test_fill_empty_leaves_a_reps_edit_alone(capsule, run_target, tmp_path):
    st = capsule.state()
    edited, blank_one = [p for p in st["parties"] if p["type"] == "person"][:2]
    capsule.touch("parties", edited["id"], jobTitle="Head of Buying (typed by a rep)")
    capsule.touch("parties", blank_one["id"], jobTitle=None)
    notes = next(d for d in st["party_custom_fields"] if d["name"] == "Notes")
    held = {f["definition"]["id"]: f["value"] for f in edited.get("fields") or ()}
    assert held.get(notes["id"])  # the rep's custom value, kept below
    stale = {
        "jobTitle": "Buyer (from the spreadsheet)",
        "about": "Imported",
        "custom_fields": {"Notes": "stale note"},
    }
    records = [
        ("parties", {"id": edited["id"], **stale}),
        ("parties", {"id": blank_one["id"], **stale}),
    ]
    settings = {"fill_empty": ["jobTitle", "Notes"], "change_log_path": str(tmp_path / "c.jsonl")}

    plan = tmp_path / "plan.md"
    dry = run_target(capsule, messages(records), dry_run=True, plan_path=str(plan), **settings)
    assert dry.state["target_capsule"]["counters"]["parties"]["kept_by_fill_empty"] >= 2
    table = plan.read_text()
    assert "| jobTitle | Head of Buying (typed by a rep) | (kept: fill_empty) |" in table
    assert "| jobTitle | (empty) | Buyer (from the spreadsheet) |" in table

    run = run_target(capsule, messages(records), **settings)
    assert run.count("parties", "UPDATE", "applied") == 2
    now = {p["id"]: p for p in capsule.state()["parties"]}
    assert now[edited["id"]]["jobTitle"] == "Head of Buying (typed by a rep)"
    assert now[edited["id"]]["about"] == "Imported"  # fields not listed are written as always
    values = {f["definition"]["id"]: f["value"] for f in now[edited["id"]]["fields"]}
    assert values[notes["id"]] == held[notes["id"]]
    assert now[blank_one["id"]]["jobTitle"] == "Buyer (from the spreadsheet)"  # empty: filled
    import json

    lines = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    # The line written ahead of the update says what it writes and what fill_empty kept.
    ahead = [x for x in lines if x["status"] == "pending" and x["id"] == edited["id"]]
    assert ahead[0]["kept"]["jobTitle"] == "Head of Buying (typed by a rep)"
    assert "jobTitle" not in ahead[0]["written"]
    assert any(x["status"] == "applied" and x["id"] == edited["id"] for x in lines)


# --- retry_rejected --------------------------------------------------------------------------


def test_a_record_rejected_for_a_missing_custom_field_goes_in_once_the_field_exists(
    capsule, run_target, tmp_path
):
    import json

    person = next(p for p in capsule.state()["parties"] if p["type"] == "person")
    record = {"id": person["id"], "custom_fields": {"Contract value": "12k"}}
    pending = tmp_path / "pending.json"
    settings = {"retry_rejected": True, "pending_path": str(pending)}
    first = run_target(capsule, messages([("parties", record)]), **settings)
    assert first.count("parties", "UPDATE", "rejected") == 1
    assert "unknown custom field 'Contract value'" in first.rejects[0]["reason"]
    assert oct(pending.stat().st_mode & 0o777) == "0o600"
    assert [r["record"] for r in json.loads(pending.read_text())["records"]] == [record]

    # An administrator adds the field (here: renames an unused one), and the next run, whose
    # input has nothing for that person, sends the record again first.
    notes = next(d for d in capsule.state()["party_custom_fields"] if d["name"] == "Notes")
    capsule.touch("party_custom_fields", notes["id"], name="Contract value")
    second = run_target(capsule, messages([]), **settings)
    assert second.count("parties", "UPDATE", "applied") == 1, second.stderr
    assert second.state["target_capsule"]["counters"]["parties"]["from_pending"] == 1
    assert "1 record(s) sent again first" in second.stderr
    now = next(p for p in capsule.state()["parties"] if p["id"] == person["id"])
    assert {f["definition"]["id"]: f["value"] for f in now["fields"]}[notes["id"]] == "12k"
    assert json.loads(pending.read_text())["records"] == []  # nothing left to retry


def test_newer_input_supersedes_a_pending_record_and_retries_are_bounded(
    capsule, run_target, tmp_path
):
    import json

    person = next(p for p in capsule.state()["parties"] if p["type"] == "person")
    stale = {"id": person["id"], "custom_fields": {"No such field": "x"}}
    settings = {"retry_rejected": True, "pending_path": str(tmp_path / "pending.json")}
    run_target(capsule, messages([("parties", stale)]), **settings)
    newer = {"id": person["id"], "jobTitle": "Newer input wins"}
    run = run_target(capsule, messages([("parties", newer)]), **settings)
    assert "0 record(s) sent again first, 1 superseded by newer input" in run.stderr
    assert run.count("parties", "UPDATE", "applied") == 1
    assert run.count("parties", "UPDATE", "rejected") == 0

    # A rule a retry cannot fix: rejected, retried twice, then left in the rejects file.
    nameless = {"type": "person", "firstName": "No", "jobTitle": "last name missing"}
    runs = [run_target(capsule, messages([("parties", nameless)]), **settings)]
    runs += [run_target(capsule, messages([]), **settings) for _ in range(3)]
    assert [r.count("parties", "INSERT", "rejected") for r in runs] == [1, 1, 1, 0]
    assert [r.rejects[0].get("attempts") for r in runs[:3]] == [None, 2, 3]
    assert runs[2].rejects[0]["retried"] is False
    assert json.loads((tmp_path / "pending.json").read_text())["records"] == []


def test_fill_empty_covers_an_insert_that_matched_by_email(capsule, run_target):
    person = {
        "type": "person",
        "firstName": "Fill",
        "lastName": "Matched",
        "emailAddresses": [{"address": "fill.matched@example.com"}],
    }
    run_target(capsule, messages([("parties", person)]))
    (created,) = people(capsule, "Fill", "Matched")
    capsule.touch("parties", created["id"], jobTitle="Typed in Capsule")
    again = {**person, "jobTitle": "From the CSV", "about": "From the CSV"}
    run = run_target(capsule, messages([("parties", again)]), fill_empty=["parties.jobTitle"])
    assert run.count("parties", "UPDATE", "applied") == 1, run.stderr
    (now,) = people(capsule, "Fill", "Matched")
    assert (now["jobTitle"], now["about"]) == ("Typed in Capsule", "From the CSV")
    assert run.state["target_capsule"]["counters"]["parties"]["kept_by_fill_empty"] == 1


def test_plan_table_rows_for_every_kind_of_change(tmp_path):
    from target_capsule.plan import PlannedChangeLog

    plan = PlannedChangeLog(None, dry_run=True, keep=True)
    plan.ahead("parties", "INSERT", None, {"firstName": "Ann", "lastName": "Lee"})
    plan.ahead("parties", "UPDATE", 5, {"about": "a | b\nc"}, {"about": None}, kept={"x": 1})
    plan.ahead("parties", "DELETE", 6, None, record={"name": "Acme"})
    plan.ahead("opportunity_parties", "INSERT", None, None, keys={"opportunityId": 1, "id": 2})
    plan.ahead("opportunity_parties", "DELETE", None, None, keys={"opportunityId": 1, "id": 3})
    plan.note_kept("parties", 7, {"jobTitle": "Boss"})
    rows = list(plan.rows())
    assert ("parties new (Ann Lee)", "firstName", "(new record)", "Ann") in rows
    assert ("parties 5", "about", "(empty)", "a \\| b c") in rows
    assert ("parties 5", "x", "1", "(kept: fill_empty)") in rows
    assert ("parties 6 (Acme)", "(whole record)", "exists", "(deleted)") in rows
    assert ("opportunity_parties link", "opportunityId 1, id 2", "(not linked)", "linked") in rows
    assert ("opportunity_parties link", "opportunityId 1, id 3", "linked", "(removed)") in rows
    assert ("parties 7", "jobTitle", "Boss", "(kept: fill_empty)") in rows
    assert plan.deletes() == 2
    assert plan.changed() == {("parties", "5"), ("parties", "6")}
    text = plan.save_markdown(tmp_path / "p.md", "T", ["parties INSERT: 1 planned"]).read_text()
    assert text.startswith("# T\n\n2 insert(s), 1 update(s), 2 delete(s), 1 record(s) left")
    assert "| Record | Field | Current value | New value |" in text


def test_guardrail_edges_dry_run_warns_malformed_input_writes_nothing(capsule, run_target):
    import json

    ids = sorted(p["id"] for p in capsule.state()["parties"])[:3]
    dry = run_target(capsule, messages(tombstones(ids)), dry_run=True, max_deletes=1)
    assert dry.returncode == 0
    assert "Guardrail: the run would delete 3 record(s), more than max_deletes 1" in dry.stderr
    text = "".join(json.dumps(m) + "\n" for m in messages(tombstones(ids))) + "{not json\n"
    capsule.reset_requests()
    bad = run_target(capsule, text, check=False, max_deletes=10)
    assert bad.returncode == 1
    assert capsule.requests()["writes"] == 0  # the plan stopped at line 5: nothing was sent
    assert "Stopped at input line 5" in bad.stderr and "Nothing was written" in bad.stderr
    assert set(ids) <= {p["id"] for p in capsule.state()["parties"]}


def test_retry_rejected_needs_a_file(capsule, run_target):
    run = run_target(capsule, messages([]), check=False, retry_rejected=True, rejects_path=None)
    assert run.returncode == 1
    assert "retry_rejected needs a file" in run.stderr


def test_folded_text_matches_whatever_its_case_and_spacing():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from target_capsule.natural_keys import fold, matches

    words = st.lists(st.text("abcdeéßXYZ", min_size=1, max_size=6), min_size=1, max_size=3)
    spaces = st.text(" \t", min_size=1, max_size=3)

    @settings(max_examples=50, deadline=None)
    @given(words, spaces, st.booleans())
    def check(parts, gap, upper):
        name = " ".join(parts)
        sloppy = gap + gap.join(p.upper() if upper else p for p in parts) + gap
        assert fold(sloppy) == fold(name)
        assert matches({"name": sloppy}, {"name": name})
        assert matches(sloppy, name) and not matches(name + "x", name)
        assert matches({"id": 5}, {"id": 5}) and not matches({"id": 5}, {"id": 50})

    check()


def test_line_numbers_stay_the_users_when_pending_records_come_first(capsule, run_target, tmp_path):
    import json

    person = next(p for p in capsule.state()["parties"] if p["type"] == "person")
    settings = {"retry_rejected": True, "pending_path": str(tmp_path / "pending.json")}
    bad = {"id": person["id"], "custom_fields": {"No such field": "x"}}
    run_target(capsule, messages([("parties", bad)]), **settings)
    text = json.dumps({"type": "STATE", "value": {}}) + "\n{broken\n"  # line 2 is broken
    run = run_target(capsule, text, check=False, **settings)
    assert run.returncode == 1
    assert "Stopped at input line 2" in run.stderr, run.stderr[-2000:]
