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
