"""target-capsule: Singer records into Capsule CRM as INSERT, UPDATE or DELETE.

Each record is applied, skipped as unchanged, or rejected with a reason (SPEC §4). The summary of
outcomes per stream and operation is logged at the end and merged into the STATE the target emits,
under `target_capsule`, next to the tap's own state.
"""

from __future__ import annotations

import functools
import logging
import typing as t

from singer_sdk import Target
from singer_sdk import typing as th

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    CapsuleAuthError,
    CapsuleConfigError,
    CapsuleRateLimitError,
    CapsuleRetryError,
    CapsuleSession,
    connection_settings,
)
from target_capsule.changelog import ChangeLog
from target_capsule.lookups import Lookups
from target_capsule.rejects import Rejects, secrets_of
from target_capsule.sinks import CapsuleSink
from target_capsule.summary import Summary

STATE_KEY = "target_capsule"
FATAL = (CapsuleAuthError, CapsuleConfigError, CapsuleRateLimitError, CapsuleRetryError)


def writable_streams() -> list[str]:
    return sorted(o.stream for o in cat.OBJECTS if o.operations)


class WriteRun:
    """What one run shares across sinks: session, read caches, summary and rejects."""

    def __init__(self, config: t.Mapping[str, t.Any], logger: logging.Logger) -> None:
        self.config = config
        self.logger = logger
        self.dry_run = bool(config.get("dry_run", False))
        self.upsert_keys = dict(config.get("upsert_keys") or {})
        self.summary = Summary(dry_run=self.dry_run)
        self.rejects = Rejects(config.get("rejects_path"), secrets_of(config))
        self.changes = ChangeLog(config.get("change_log_path"), dry_run=self.dry_run)

    @functools.cached_property
    def session(self) -> CapsuleSession:
        return CapsuleSession(self.config, user_agent="target-capsule/0.1")

    @functools.cached_property
    def lookups(self) -> Lookups:
        return Lookups(self.session, self.upsert_keys)

    def reject(
        self,
        stream: str,
        operation: str,
        reason: str,
        record: t.Mapping[str, t.Any],
        http_status: int | None = None,
    ) -> None:
        self.rejects.write(stream, operation, reason, record, http_status)
        self.summary.add(stream, operation, "rejected")

    def log_summary(self) -> None:
        mode = "Dry run (no writes sent)" if self.dry_run else "Load"
        totals = self.summary.as_dict()["totals"]
        self.logger.info(
            "%s finished: %s",
            mode,
            ", ".join(f"{n} {o}" for o, n in totals.items()) or "no records",
        )
        for line in self.summary.lines():
            self.logger.info("  %s", line)
        if self.changes.enabled:
            self.logger.info("%s", self.changes.describe())
        if "session" in self.__dict__:
            self.logger.info(
                "%d requests to Capsule; %s",
                self.session.pacer.requests_sent,
                self.session.pacer.budget_line(),
            )


class TargetCapsule(Target):
    """Writes Singer records to Capsule CRM through its REST API v2."""

    name = "target-capsule"
    default_sink_class = CapsuleSink

    config_jsonschema = th.PropertiesList(
        *connection_settings().wrapped.values(),
        th.Property(
            "dry_run",
            th.BooleanType,
            default=False,
            title="Dry run",
            description="Validate every record and plan the load (counts per stream and "
            "operation, would-be rejects in `rejects_path`) without sending any write request. "
            "Reads for upsert matching and diffs still happen.",
        ),
        th.Property(
            "rejects_path",
            th.StringType,
            title="Rejects file",
            description="JSONL file, one rejected record a line: stream, operation, reason, "
            "http_status (null for rule violations) and the record. Truncated at the start "
            "of each run. Without it, rejections are only logged.",
        ),
        th.Property(
            "change_log_path",
            th.StringType,
            title="Change log file",
            description="JSONL file, one line per write applied (planned, in a dry run): run "
            "id, stream, operation, Capsule id, the fields written and their values before the "
            "write; a DELETE keeps the whole record. Appended to; `capsule-undo` reverts the "
            "run it names. Deletes then cost one read each where the record is not cached.",
        ),
        th.Property(
            "fail_on_rejects",
            th.BooleanType,
            default=False,
            title="Fail on rejects",
            description="End the run with a non-zero exit when any record was rejected (after "
            "processing all of them and emitting the STATE).",
        ),
        th.Property(
            "upsert_keys",
            th.ObjectType(additional_properties=th.ArrayType(th.StringType)),
            default={},
            title="Upsert keys",
            description="Natural keys per stream for records without an `id`, e.g. "
            '`{"parties": ["emailAddresses[].address"], "opportunities": ["name", "party.id"]}`. '
            "Replaces the built-in key of that stream; an empty list turns upsert (and content "
            "matching) off for it.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_parallelism = 1  # records are written in input order
        self.run = WriteRun(self.config, self.logger)

    def get_sink_class(self, stream_name: str) -> type[CapsuleSink]:
        if stream_name not in cat.BY_STREAM:
            self.abort(
                f"target-capsule cannot write stream {stream_name!r}: it is not a Capsule stream. "
                f"Streams it writes: {', '.join(writable_streams())}. Rename the stream with a "
                "stream map (`__alias__`) if it holds one of these."
            )
        return CapsuleSink

    def _process_record_message(self, message_dict: dict) -> None:
        try:
            super()._process_record_message(message_dict)
        except FATAL as exc:
            self.abort(str(exc))

    def _write_state_message(self, state: dict) -> None:
        merged = dict(state)
        merged[STATE_KEY] = self.run.summary.as_dict()
        if self.run.changes.enabled:
            merged[STATE_KEY]["change_log"] = {
                "path": str(self.run.changes.path),
                "run_id": self.run.changes.run_id,
            }
        super()._write_state_message(merged)

    def process_endofpipe(self) -> None:
        had_state = bool(self._latest_state)
        super().process_endofpipe()
        if not had_state:
            self._write_state_message({})
        self.run.log_summary()
        rejected = self.run.summary.total("rejected")
        if rejected and self.config.get("fail_on_rejects"):
            where = self.config.get("rejects_path") or "the log"
            self.abort(
                f"{rejected} record(s) rejected (see {where}); failing because "
                "fail_on_rejects is set",
                summary=False,
            )

    def abort(self, message: str, summary: bool = True) -> t.NoReturn:
        self.logger.error("%s", message)
        if summary:
            self.run.log_summary()
        raise SystemExit(1)


if __name__ == "__main__":
    TargetCapsule.cli()
