"""tap-capsule: every Capsule CRM object as a Singer stream."""

from __future__ import annotations

import functools
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from typing_extensions import override

from tap_capsule import catalogue as cat
from tap_capsule.api_client import CapsuleSession, connection_settings
from tap_capsule.custom_fields import CustomFieldMap
from tap_capsule.streams import CapsuleStream, stream_classes
from tap_capsule.writer import CapsuleMessageWriter


class TapCapsule(Tap):
    """Reads Capsule CRM through its REST API v2."""

    name = "tap-capsule"
    # msgspec's C encoder, one SCHEMA per stream, records written in blocks (see writer.py).
    message_writer_class = CapsuleMessageWriter

    config_jsonschema = th.PropertiesList(
        *connection_settings().wrapped.values(),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="Earliest `updatedAt` to read (ISO 8601) on a first sync of incremental "
            "streams. Later runs resume from the bookmarks in the state.",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=100),
            default=100,
            title="Page size",
            description="Records per request (`perPage`, 1–100). 100 spends the fewest of "
            "Capsule's 4,000 hourly requests.",
        ),
    ).to_dict()

    @functools.cached_property
    def capsule_session(self) -> CapsuleSession:
        """The one HTTP session of the run: every stream's requests share its pacing and budget."""
        return CapsuleSession(self.config, user_agent=f"tap-capsule/{self.plugin_version}")

    @functools.cache  # noqa: B019 - one tap instance per run, so the cache can't leak instances
    def field_definitions(self, stream: str) -> tuple[dict, ...]:
        """The custom field definitions of one object, read once per run (discovery and sync)."""
        definitions = cat.get(stream)
        return tuple(self.capsule_session.paginate(definitions.path, definitions.list_key))

    def custom_field_map(self, obj: cat.CapsuleObject) -> CustomFieldMap:
        """Typed `custom_fields` columns of an object with custom fields."""
        assert obj.custom_fields
        return CustomFieldMap(self.field_definitions(obj.custom_fields))

    @override
    def discover_streams(self) -> list[CapsuleStream]:
        streams = []
        for cls in stream_classes():
            schema = cls.obj.json_schema()
            if cls.obj.custom_fields:
                schema["properties"]["custom_fields"] = self.custom_field_map(cls.obj).schema()
            if self.config.get("flattening_enabled"):
                schema = flattenable(schema)
            streams.append(cls(tap=self, schema=schema))
        return streams

    def log_sync_end(self) -> None:
        """The run's totals, called by the last stream's `log_sync_costs` (`sync_all` is final)."""
        for stream in self.streams.values():
            if "progress" in vars(stream):  # streams that ran and have not said so yet
                t.cast("CapsuleStream", stream).progress.finish()
        pacer = self.capsule_session.pacer
        self.logger.info(
            "Sync finished: %d requests to Capsule, %.0f s spent waiting on the rate limit; %s",
            pacer.requests_sent,
            pacer.waited_seconds,
            pacer.budget_line(),
        )


def flattenable(schema: dict) -> dict:
    """`schema` with its open objects of no declared field written without `properties: {}`.

    The two say the same in JSON Schema, but the SDK's flattening turns an object with
    `properties: {}` into no column at all (its values would be lost), and one without
    `properties` into a column of JSON text.
    """
    props = {
        name: {k: v for k, v in prop.items() if k != "properties"}
        if prop.get("properties") == {} and "object" in (prop.get("type") or ())
        else prop
        for name, prop in schema.get("properties", {}).items()
    }
    return {**schema, "properties": props}


if __name__ == "__main__":
    TapCapsule.cli()
