"""The restore plan comes from the one catalogue: every object is restored or says why not."""

from __future__ import annotations

from tap_capsule import catalogue as cat
from target_capsule.account.refs import REFERENCE_STREAMS
from target_capsule.account.restore_plan import MATCH, ORDER, WRITTEN


def test_every_object_is_restored_or_names_its_reason():
    for obj in cat.OBJECTS:
        assert (obj.restore is None) == bool(obj.not_restored.strip()), obj.stream


def test_objects_left_out_of_a_restore():
    assert {o.stream for o in cat.OBJECTS if o.restore is None} == {
        "countries",
        "currencies",
        "resthooks",
    }


def test_every_writable_object_a_backup_holds_is_written_by_a_restore():
    """An object the target can create is recreated by a restore, unless it says why not."""
    creatable = {o.stream for o in cat.OBJECTS if cat.INSERT in o.operations and not o.not_restored}
    assert creatable <= set(WRITTEN)


def test_a_record_is_restored_after_what_it_refers_to():
    rank = {o.stream: o.restore.order for o in cat.OBJECTS if o.restore}
    for obj in cat.OBJECTS:
        if obj.restore is None or obj.restore.kind == MATCH:
            continue
        for field, stream in obj.references.items():
            if stream == obj.stream:  # a person's organisation: same stream, paired in one pass
                continue
            assert stream in rank, (obj.stream, field)
            assert rank[stream] < obj.restore.order, (obj.stream, field, stream)
        if obj.parent:
            assert rank[obj.parent] < obj.restore.order, obj.stream


def test_ranks_are_unique_so_the_order_is_not_left_to_chance():
    ranks = [o.restore.order for o in cat.OBJECTS if o.restore]
    assert len(ranks) == len(set(ranks))
    assert [stream for stream, _, _ in ORDER] == [
        o.stream
        for o in sorted((o for o in cat.OBJECTS if o.restore), key=lambda o: o.restore.order)
    ]


def test_reference_fields_point_at_streams_of_the_catalogue():
    assert set(REFERENCE_STREAMS.values()) <= set(cat.BY_STREAM)
    # Every nested reference a written record carries is in the map, so an id map can carry it.
    for stream in WRITTEN:
        obj = cat.get(stream)
        for field, schema in obj.schema.items():
            props = schema.get("properties") or {}
            if field in obj.all_read_only or field in {"definition", "tag", "icon"}:
                continue
            if set(props) >= {"id", "name"}:
                assert field in obj.references, (stream, field)
