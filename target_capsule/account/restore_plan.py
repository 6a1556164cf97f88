"""What a restore writes, in which order, and how it pairs each stream with the destination.

The catalogue says it per object (`CapsuleObject.restore`); this is the ordered view `capsule
restore` walks and `capsule verify` compares, so both follow the catalogue.
"""

from __future__ import annotations

from tap_capsule import catalogue as cat

MATCH, SETTING, CONTENT, LINK = (
    cat.RESTORE_MATCH,
    cat.RESTORE_SETTING,
    cat.RESTORE_CONTENT,
    cat.RESTORE_LINK,
)

# (stream, kind, fields that name it), in restore order. Matched streams are never created.
ORDER: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (obj.stream, obj.restore.kind, obj.restore.names)
    for obj in sorted(
        (o for o in cat.OBJECTS if o.restore is not None),
        key=lambda o: o.restore.order if o.restore else 0,
    )
    if obj.restore is not None
)

# Streams a restore writes (and verify compares): every stream but those matched by name.
WRITTEN: tuple[str, ...] = tuple(stream for stream, kind, _ in ORDER if kind != MATCH)
