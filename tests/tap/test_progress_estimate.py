"""Progress lines give the requests a stream should take in all, from Capsule's `meta.totalCount`,
and when it should be done at the pace so far."""

from __future__ import annotations

import re


def test_progress_lines_say_how_many_requests_are_left(sandbox_factory, sandbox_token, run_tap):
    sandbox = sandbox_factory(token=sandbox_token, scale=120, seed=4)
    n = len(sandbox.state()["parties"])
    config = {
        "access_token": sandbox_token,
        "api_url": sandbox.url,
        "page_size": 1,
        "tombstones": "off",
    }
    run = run_tap(config, streams={"parties"})
    found = re.findall(
        r"parties: \d+ records and (\d+) requests so far; .*about (\d+) of (\d+) requests to go "
        r"\(([\d.]+) h of Capsule's hourly budget\), done about \d\d:\d\d:\d\d UTC at this pace",
        run.stderr,
    )
    assert found, run.stderr
    total = n + 1  # one page per party, and one look at the deleted feed (shifted pages)
    for made, left, expected, hours in found:
        assert int(expected) == total
        assert int(left) == total - int(made)
        assert float(hours) == round((total - int(made)) / 4000, 1)
    assert run.table["parties"][2] == total


def test_a_capsule_that_refuses_embed_meta_costs_one_request_and_nothing_else(
    sandbox_factory, sandbox_token, run_tap
):
    """Capsule's docs don't say whether an unknown `embed` value is ignored or refused: both."""
    sandbox = sandbox_factory(token=sandbox_token, scale=40, seed=4)
    config = {
        "access_token": sandbox_token,
        "api_url": sandbox.url,
        "page_size": 7,
        "tombstones": "off",
    }
    streams = {"parties", "opportunities", "kases"}
    clean = run_tap(config, streams=streams)
    spent = sandbox.requests()["total"]
    sandbox.reset_requests()
    sandbox.set_faults(refuse_unknown_embed=True)
    refused = run_tap(config, streams=streams)
    assert sandbox.requests()["total"] == spent + 1  # discovery included, as in the clean run
    assert refused.records == clean.records  # the same rows, in the same order
    assert refused.stderr.count("Capsule refused embed=meta") == 1, refused.stderr
    assert "requests to go" not in refused.stderr  # no totals without `meta`
    extra = {s: row[2] - clean.table[s][2] for s, row in refused.table.items()}
    # The first list read is refused once, and the table counts it; no later read asks again.
    assert extra.pop("total") == 1
    assert sorted(extra.values()) == [0] * (len(extra) - 1) + [1], extra
