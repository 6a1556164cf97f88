"""tap-capsule: every Capsule CRM object as a Singer stream."""

from __future__ import annotations

import functools
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter

from tap_capsule import catalogue as cat
from tap_capsule import secrets
from tap_capsule.api_client import (
    CapsuleConfigError,
    CapsuleSession,
    check_connection_settings,
    connection_settings,
)
from tap_capsule.custom_fields import CustomFieldMap
from tap_capsule.streams import CapsuleStream, stream_classes


class TapCapsule(Tap):
    """Reads Capsule CRM through its REST API v2."""

    name = "tap-capsule"
    # msgspec's C encoder writes Singer messages several times faster than simplejson.
    message_writer_class = MsgSpecWriter

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

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Mask the secret settings in every log line before the SDK logs anything."""
        secrets.install_early(kwargs.get("config"), "TAP_CAPSULE")
        super().__init__(*args, **kwargs)
        secrets.install(self.config)
        try:  # settings that cannot work end the run before any request
            check_connection_settings(self.config)
        except CapsuleConfigError as exc:
            self.logger.error("%s", exc)
            raise SystemExit(1) from None

    @functools.cached_property
    def capsule_session(self) -> CapsuleSession:
        return CapsuleSession(self.config, user_agent=f"tap-capsule/{self.plugin_version}")

    @functools.lru_cache(maxsize=None)  # noqa: B019 - one tap instance per run
    def field_definitions(self, stream: str) -> tuple[dict, ...]:
        definitions = cat.get(stream)
        return tuple(self.capsule_session.paginate(definitions.path, definitions.list_key))

    def custom_field_map(self, obj: cat.CapsuleObject) -> CustomFieldMap:
        assert obj.custom_fields
        return CustomFieldMap(self.field_definitions(obj.custom_fields))

    def discover_streams(self) -> list[CapsuleStream]:
        streams = []
        for cls in stream_classes():
            schema = cls.obj.json_schema()
            if cls.obj.custom_fields:
                schema["properties"]["custom_fields"] = self.custom_field_map(cls.obj).schema()
            streams.append(cls(tap=self, schema=schema))
        return streams

    def sync_all(self) -> None:
        super().sync_all()
        pacer = self.capsule_session.pacer
        self.logger.info(
            "Sync finished: %d requests to Capsule, %.0f s spent waiting on the rate limit; %s",
            pacer.requests_sent,
            pacer.waited_seconds,
            pacer.budget_line(),
        )


if __name__ == "__main__":
    TapCapsule.cli()
