"""Settings the Singer SDK gives every target that mean nothing for Capsule, and their refusal.

The target writes one record at a time to Capsule's API, each record saying its own operation, so
the SDK's load, batching and flattening settings would be accepted and silently ignored (or, for
flattening, turn nested Capsule fields into keys Capsule does not know), and so would
`faker_config` without the Faker library. `--about` leaves them out
and a configuration that sets one is refused with one line saying why.
"""

from __future__ import annotations

import typing as t

from singer_sdk.helpers.capabilities import PluginCapabilities

if t.TYPE_CHECKING:
    from singer_sdk.helpers.capabilities import CapabilitiesEnum

_FLATTENING = "Capsule's objects are nested, and flattened keys match none of their fields"

UNSUPPORTED: dict[str, str] = {
    "load_method": "each record carries its own operation (INSERT, UPDATE or DELETE)",
    "add_record_metadata": "`_sdc_*` fields are never sent to Capsule",
    "batch_size_rows": "records are written one at a time, in input order",
    "faker_config": "stream maps' `fake` needs the Faker library, which is not installed with it",
    "flattening_enabled": _FLATTENING,
    "flattening_max_depth": _FLATTENING,
    "flattening_max_key_length": _FLATTENING,
    "flattening_separator": _FLATTENING,
}


def supported_capabilities(sdk_defaults: t.Iterable[CapabilitiesEnum]) -> list[CapabilitiesEnum]:
    """The SDK's target capabilities without schema flattening."""
    return [c for c in sdk_defaults if c is not PluginCapabilities.FLATTENING]


def drop_unsupported(config_jsonschema: dict) -> None:
    """Remove the unsupported settings from a settings schema (what `--about` shows)."""
    for name in UNSUPPORTED:
        config_jsonschema.get("properties", {}).pop(name, None)


def refusal(config: t.Mapping[str, t.Any]) -> str | None:
    """One line naming the first unsupported setting the configuration sets, or None."""
    for name, why in UNSUPPORTED.items():
        if name in config:
            return (
                f"target-capsule does not support the setting `{name}`: {why}. "
                "Remove it from the configuration."
            )
    return None
