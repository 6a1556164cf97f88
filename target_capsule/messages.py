"""Reading the Singer message stream: one bad line stops the run cleanly, never with a traceback.

The SDK's reader ends the run with a traceback (and the whole offending line, which may hold
personal data) on the first blank line, non-JSON line or message it cannot use, before the target
could write its summary or the STATE of what it already applied. This reader, plugged in through the
SDK's public `message_reader_class` hook, skips blank lines, checks each message's envelope before
the SDK sees it, and hands a malformed one to `on_malformed` with its line number and what is wrong,
so the target can finish what it applied and exit with one line.
"""

from __future__ import annotations

import json
import typing as t
from collections import Counter

from singer_sdk.exceptions import InvalidJSONSchema, RecordsWithoutSchemaException
from singer_sdk.io_base import SingerMessageType, SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json
from typing_extensions import override

KNOWN_TYPES = frozenset(m.value for m in SingerMessageType)


class UnusableMessage(Exception):  # noqa: N818 - names what the input is, as the user sees it
    """Raised by the target for a well-formed message it cannot use (a stream it cannot write)."""


# Errors raised for input that cannot be used (not for faults of this code).
INPUT_ERRORS = (
    UnusableMessage,
    InvalidInputLine,
    InvalidJSONSchema,
    RecordsWithoutSchemaException,
)


class MalformedInput(Exception):  # noqa: N818 - names what the input is, as the user sees it
    """A line the target cannot use: stops the run after what came before it is finished."""

    def __init__(self, line_number: int, what: str) -> None:
        """Keep the 1-based line number and a short description (never the line itself)."""
        super().__init__(f"input line {line_number}: {what}")
        self.line_number = line_number
        self.what = what


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def envelope_problem(message: object) -> str | None:
    """What makes `message` unusable as a Singer message, checked before the SDK reads it."""
    if not isinstance(message, dict):
        return f"a message must be a JSON object, got {_kind(message)}"
    kind = message.get("type")
    if kind not in KNOWN_TYPES:
        shown = repr(kind)[:40] if isinstance(kind, str) else _kind(kind)
        return f"unknown message type {shown} (expected one of {', '.join(sorted(KNOWN_TYPES))})"
    if kind == SingerMessageType.BATCH:
        return "BATCH messages are not supported by target-capsule (send RECORD messages)"
    if kind != SingerMessageType.STATE:
        stream = message.get("stream")
        if not isinstance(stream, str) or not stream.strip():
            return f"{kind} message without a stream name"
    if kind == SingerMessageType.SCHEMA:
        return _schema_problem(message)
    if kind == SingerMessageType.RECORD and "record" not in message:
        return f"RECORD message for stream {message['stream']!r} has no record"
    if kind == SingerMessageType.STATE and not isinstance(message.get("value"), dict):
        return f"STATE message value must be an object, got {_kind(message.get('value'))}"
    if kind == SingerMessageType.ACTIVATE_VERSION and (
        not isinstance(message.get("version"), int) or isinstance(message.get("version"), bool)
    ):
        return "ACTIVATE_VERSION message needs a whole-number version"
    return None


def _schema_problem(message: dict) -> str | None:
    head = f"SCHEMA message for stream {message['stream']!r}"
    schema = message.get("schema")
    if not isinstance(schema, dict):
        return f"{head}: schema must be an object, got {_kind(schema)}"
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return f"{head}: schema.properties must be an object, got {_kind(properties)}"
    bad = [name for name, prop in properties.items() if not isinstance(prop, (dict, bool))]
    if bad:
        return f"{head}: property {bad[0]!r} must be a JSON Schema object"
    keys = message.get("key_properties")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        return f"{head}: key_properties must be a list of names"
    return None  # the SDK checks the rest of the JSON Schema (`InvalidJSONSchema`)


class CapsuleMessageReader(SingerReader):
    """The SDK's line reader, with line numbers, blank lines skipped and envelopes checked."""

    def __init__(self) -> None:
        """Start before the first line; the target sets `on_malformed`."""
        super().__init__()
        self.line_number = 0
        self.first_line = 1  # below 1 when lines the user did not send come first (pending)
        # Turns the input into what is processed (spooled, planned, pending records first).
        self.prepare: t.Callable[[t.IO[str]], t.ContextManager[t.IO[str]]] | None = None
        self.on_malformed: t.Callable[[MalformedInput], t.NoReturn] | None = None
        # Errors that end the run whatever the line (auth, settings), and who ends it.
        self.fatal_errors: tuple[type[Exception], ...] = ()
        self.on_fatal: t.Callable[[Exception], t.NoReturn] | None = None

    @override
    def deserialize_json(self, line: str) -> dict:
        # The SDK's version logs the whole line with a traceback; the line may hold personal data
        # or a secret, so only its number is reported (by `process_lines`).
        try:
            return deserialize_json(line)
        except (json.JSONDecodeError, ValueError, RecursionError):
            raise MalformedInput(self.line_number, "not valid JSON") from None

    @override
    def process_lines(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, t.Callable[[dict], None]],
    ) -> t.Counter[str]:
        source = file_input or self.default_input
        if self.prepare is None:
            return self.process(source, callbacks)
        with self.prepare(source) as prepared:
            return self.process(prepared, callbacks)

    def process(
        self, source: t.IO[str], callbacks: dict[str, t.Callable[[dict], None]]
    ) -> t.Counter[str]:
        """Hand each message to its callback; malformed lines and fatal errors end the run."""
        stats: Counter[str] = Counter()
        for number, line in enumerate(source, start=self.first_line):
            self.line_number = number
            if not line.strip():
                continue
            try:
                message = self.deserialize_json(line)
                problem = envelope_problem(message)
                if problem:
                    raise MalformedInput(self.line_number, problem)
                kind = message["type"]
                try:
                    callbacks[kind](message)
                except INPUT_ERRORS as exc:
                    # The SDK's texts may quote the message; keep the part before any quote.
                    text = (str(exc).splitlines() or [type(exc).__name__])[0]
                    if isinstance(exc, InvalidInputLine):
                        text = text.split(":")[0]
                    elif isinstance(exc, InvalidJSONSchema):
                        text = (
                            f"SCHEMA message for stream {message['stream']!r}: not a valid JSON "
                            "Schema (check its types and keywords)"
                        )
                    if not isinstance(exc, UnusableMessage):
                        text = text[:300]
                    raise MalformedInput(self.line_number, text) from None
                stats[kind] += 1
            except MalformedInput as exc:
                if self.on_malformed is None:
                    raise
                self.on_malformed(exc)
            except self.fatal_errors as exc:  # e.g. a 401 while a STATE drains the sinks
                if self.on_fatal is None:
                    raise
                self.on_fatal(exc)
        return stats
