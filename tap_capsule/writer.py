"""The tap's Singer message writer: msgspec, one SCHEMA per stream, records written in blocks.

The SDK's `sync()` (final) sends a SCHEMA message each time a stream starts, and a child stream
starts once per parent. At 2,000 parties that was 1,503 identical SCHEMA messages, 15 % of the
output, each serialised from a deep copy of the schema. Targets need a stream's SCHEMA once, before
its first record, and again only when it changes, so a repeat of the schema last sent is dropped.

The SDK's writer also flushes stdout after every message, one system call per record. Records are
left in the stdout buffer instead; every other message (SCHEMA, STATE, ACTIVATE_VERSION, BATCH)
flushes it, so a target has every record before the STATE that covers it.
"""

from __future__ import annotations

import sys
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage, SchemaMessage
from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message


class CapsuleMessageWriter(MsgSpecWriter):
    """msgspec's C encoder (several times faster than simplejson), minus repeats and flushes."""

    def __init__(self) -> None:
        """Start with no SCHEMA sent."""
        super().__init__()
        self._schemas_sent: dict[str, dict] = {}

    @override
    def write_message(self, message: Message) -> None:
        if isinstance(message, SchemaMessage):
            last = self._schemas_sent.get(message.stream)
            if last is not None and (last is message.schema or last == message.schema):
                return
            self._schemas_sent[message.stream] = message.schema
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()
