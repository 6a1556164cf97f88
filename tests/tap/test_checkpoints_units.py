"""Units of the checkpoint and shifted-page bookkeeping: what a STATE may hold, what it means."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tap_capsule.bookmarks import Window
from tap_capsule.checkpoints import ParentsDone, ReadPosition
from tap_capsule.shifts import ShiftWatch

STAMP = st.one_of(st.none(), st.just("2026-01-02T03:04:05Z"))


@given(
    start=STAMP,
    exclusive=st.booleans(),
    per_page=st.integers(1, 100),
    page=st.integers(1, 10**6),
    phase=st.sampled_from(["list", "deleted"]),
    seen=STAMP,
    version=st.one_of(st.none(), st.integers(1, 2**53)),
)
def test_a_position_survives_the_state(start, exclusive, per_page, page, phase, seen, version):
    position = ReadPosition(start, exclusive, per_page, "2026-12-06T21:00:00Z", phase, page, seen)
    position.version = version
    assert ReadPosition.from_state({"checkpoint": position.to_state()}) == position
    assert position.same_read(Window(start, exclusive), per_page)
    assert not position.same_read(Window(start, exclusive), per_page + 1)


def test_a_malformed_checkpoint_is_no_checkpoint():
    good = ReadPosition(None, False, 100, None, "list", 3).to_state()
    for broken in (
        {**good, "page": 0},
        {**good, "page": "3"},
        {**good, "page": True},
        {**good, "phase": "elsewhere"},
        {**good, "perPage": None},
        {**good, "exclusive": "yes"},
        {**good, "from": 5},
        {**good, "version": -1},
        "page 3",
    ):
        assert ReadPosition.from_state({"checkpoint": broken}) is None
    assert ReadPosition.from_state({}) is None
    assert ReadPosition.from_state(None) is None


def test_parents_done_hold_one_page_of_ids():
    done = ParentsDone()
    done.finished(1, 10)
    done.finished(1, 11)
    assert done.skips(1, 10) and not done.skips(2, 10)
    done.finished(2, 12)  # the parent moved to its next page: the list starts again
    assert done.to_state() == {"page": 2, "done": [12]}
    assert ParentsDone.from_state({"checkpoint": {"page": 2, "done": [12, "x"]}}) == ParentsDone()
    assert ParentsDone.from_state({"checkpoint": done.to_state()}) == done


def test_only_a_deletion_of_a_record_the_read_saw_shifts_its_pages():
    watch = ShiftWatch(run_started=None)
    for page, when in ((1, 1000.0), (2, 1010.0), (3, 1020.0)):
        watch.page(page, when)
    watch.seen |= {1, 2, 3}
    signpost = "1970-01-01T00:16:29Z"  # 989: one second before the read began
    unseen = [{"id": 99, "deletedAt": "1970-01-01T00:16:55Z"}]
    assert watch.verdict(unseen, signpost).deleted == 0
    before = [{"id": 1, "deletedAt": "1970-01-01T00:16:00Z"}]  # before the read: no shift
    assert watch.verdict(before, signpost).deleted == 0
    during = [{"id": 2, "deletedAt": "1970-01-01T00:16:55Z"}]  # 1015: after page 2 arrived
    verdict = watch.verdict(during, signpost)
    assert (verdict.deleted, verdict.reread_from, verdict.earlier_run) == (1, 2, False)


def test_a_deletion_before_a_resumed_run_is_left_to_the_reconcile():
    watch = ShiftWatch(run_started=1005.0, first_page=7)
    watch.page(7, 1006.0)
    watch.page(8, 1007.0)
    verdict = watch.verdict(
        [{"id": 5, "deletedAt": "1970-01-01T00:16:40Z"}], "1970-01-01T00:16:29Z"
    )
    assert verdict.earlier_run and verdict.reread_from is None
