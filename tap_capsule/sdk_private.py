"""Every private Singer SDK name the two plugins rely on, in one place.

The SDK may rename or drop a private method or attribute in any release. Each entry below is one
we use because the SDK offers no public way to do the same, with the reason.
`tests/test_sdk_private.py` fails when an entry no longer exists in the installed SDK, when the code
uses a private SDK name that is not listed here, and when an entry is no longer used.

Add an entry as `"module.Class.name": "why there is no public way"`, nothing else.
"""

from __future__ import annotations

PRIVATE_SDK_NAMES: dict[str, str] = {
    "singer_sdk.streams.core.Stream._generate_record_messages": (
        "the only place to skip `pop_deselected_record_properties`, which walks every key of "
        "every record even when every property is selected (the tap's largest own CPU cost)"
    ),
    "singer_sdk.streams.core.Stream._stream_version": (
        "the RECORD message's table version: the final `sync()` sets it only for FULL_TABLE "
        "streams and only with its ACTIVATE_VERSION sent before the records; the tap sets it for "
        "every whole-table read (incremental streams on a full refresh too) and sends "
        "ACTIVATE_VERSION after them. The override above reads it to build the SDK's message"
    ),
    "singer_sdk.streams.core.Stream._write_schema_message": (
        "a link or track stream whose parent emitted nothing this run got no SCHEMA from the "
        "final `sync()`, yet its ACTIVATE_VERSION (every link is gone) needs one before it"
    ),
    "singer_sdk.target_base.Target._process_record_message": (
        "the only place where a record's write failure can end the run with one line "
        "(auth, config, rate-limit budget) instead of a traceback"
    ),
    "singer_sdk.target_base.Target._write_state_message": (
        "the target merges its run summary into the STATE it emits; no public hook sees it"
    ),
    "singer_sdk.target_base.Target._latest_state": (
        "tells whether the input carried a STATE, so that a run without one still emits one"
    ),
    "singer_sdk.sinks.core.Sink._validate_and_parse": (
        "validate without parsing date-times into Python objects (Capsule wants its strings "
        "back) and turn a schema mismatch into a reject instead of a crash"
    ),
    "singer_sdk.sinks.core.Sink._singer_validate_message": (
        "an INSERT has no id: the SDK's key-property check would refuse every new record"
    ),
    "singer_sdk.sinks.core.Sink._validator": (
        "the SDK's record validator (it honours `validate_records`), called by the override above"
    ),
}
