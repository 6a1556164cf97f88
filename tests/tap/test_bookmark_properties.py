"""Property-based tests of what a bookmark and `start_date` may be (hypothesis).

Every date-time the tap itself writes is accepted again as a bookmark; one later than Capsule's
clock never is; and an inclusive `start_date` window sends the `since` that reads exactly from it.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from tap_capsule.bookmarks import (
    bookmark_problem,
    capsule_time,
    parse_iso,
    start_date_problem,
    window,
)

# hypothesis takes naive bounds and draws the zone from `timezones`.
instants = st.datetimes(
    min_value=dt.datetime(2001, 1, 1),  # noqa: DTZ001 - naive bound, zone from `timezones`
    max_value=dt.datetime(2099, 12, 31),  # noqa: DTZ001 - naive bound, zone from `timezones`
    timezones=st.just(dt.UTC),
)


@given(instants, instants)
def test_a_bookmark_is_refused_exactly_when_later_than_capsules_clock(bookmark, now):
    value = capsule_time(bookmark)
    problem = bookmark_problem("parties", value, now.timestamp())
    later = parse_iso(value).timestamp() > now.timestamp()
    assert (problem is not None) == later
    if problem:
        assert "'parties'" in problem and "remove the bookmark" in problem


@given(instants)
def test_what_the_tap_writes_it_reads_back(instant):
    value = capsule_time(instant)
    assert parse_iso(value) is not None
    assert start_date_problem(value) is None
    assert capsule_time(value) == value


@given(instants)
def test_an_inclusive_start_sends_one_second_before_it(instant):
    start = capsule_time(instant)
    bounds = window(None, start)
    assert not bounds.exclusive and bounds.admits(start)
    since = parse_iso(bounds.since_param)
    assert since is not None and parse_iso(start).timestamp() - since.timestamp() == 1


@given(st.text(max_size=30))
def test_text_that_is_not_a_date_is_never_a_bookmark(text):
    if parse_iso(text) is None:
        assert bookmark_problem("tasks", text, 4_000_000_000) is not None
        assert text in ("", None) or start_date_problem(text) is not None
