"""What a restore writes, in which order, and how it pairs each stream with the destination.

`capsule-restore` walks `ORDER`; `capsule-verify` compares the streams a restore writes. Both take
them from here, so a stream added to one is in the other.
"""

from __future__ import annotations

MATCH, SETTING, CONTENT, LINK = "match", "setting", "content", "link"

# (stream, kind, fields that name it). Matched streams are never created.
ORDER: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("users", MATCH, ("username",)),
    ("teams", MATCH, ("name",)),
    ("pipelines", MATCH, ("name",)),
    ("boards", MATCH, ("name",)),
    ("stages", MATCH, ("board.name", "name")),
    ("track_definitions", MATCH, ("description",)),
    ("party_tags", SETTING, ("name",)),
    ("opportunity_tags", SETTING, ("name",)),
    ("case_tags", SETTING, ("name",)),
    ("party_custom_fields", SETTING, ("name",)),
    ("opportunity_custom_fields", SETTING, ("name",)),
    ("case_custom_fields", SETTING, ("name",)),
    ("categories", SETTING, ("name",)),
    ("activity_types", SETTING, ("name",)),
    ("lost_reasons", SETTING, ("name",)),
    ("custom_titles", SETTING, ("title",)),
    ("milestones", SETTING, ("pipeline.id", "name")),
    ("parties", CONTENT, ()),
    ("opportunities", CONTENT, ()),
    ("cases", CONTENT, ()),
    ("opportunity_parties", LINK, ()),
    ("case_parties", LINK, ()),
    ("opportunity_tracks", CONTENT, ()),
    ("case_tracks", CONTENT, ()),
    ("entries", CONTENT, ()),
    ("tasks", CONTENT, ()),
)

# Streams a restore writes (and verify compares): every stream but those matched by name.
WRITTEN: tuple[str, ...] = tuple(stream for stream, kind, _ in ORDER if kind != MATCH)
