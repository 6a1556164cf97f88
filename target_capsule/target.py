"""target-capsule: Singer records into Capsule CRM as INSERT, UPDATE or DELETE.

Each record is applied, skipped as unchanged, or rejected with a reason (never dropped in silence:
the rejects file and the summary account for every record). The summary of
outcomes per stream and operation is logged at the end and merged into the STATE the target emits,
under `target_capsule`, next to the tap's own state.
"""

from __future__ import annotations

import contextlib
import tempfile
import typing as t
from pathlib import Path

from singer_sdk import Target
from singer_sdk import typing as th
from typing_extensions import override

from tap_capsule import catalogue as cat
from tap_capsule import secrets
from tap_capsule.api_client import (
    DISTRIBUTION,
    CapsuleAuthError,
    CapsuleConfigError,
    CapsuleRateLimitError,
    CapsuleRetryError,
    check_connection_settings,
    connection_settings,
)
from target_capsule import guardrails, pending
from target_capsule.changelog import ChangeLogError
from target_capsule.deletions import DeletionsSink
from target_capsule.lock import LockError
from target_capsule.messages import CapsuleMessageReader, MalformedInput, UnusableMessage
from target_capsule.run import OutputPathError, WriteRun
from target_capsule.sinks import CapsuleSink
from target_capsule.unsupported_settings import (
    UNSUPPORTED,
    drop_unsupported,
    refusal,
    supported_capabilities,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.capabilities import CapabilitiesEnum
from target_capsule.validation import show

STATE_KEY = "target_capsule"
FATAL = (
    CapsuleAuthError,
    CapsuleConfigError,
    CapsuleRateLimitError,
    CapsuleRetryError,
    LockError,  # another run writes to the account
)


def writable_streams() -> list[str]:
    """The streams the catalogue lets the target write, for messages that list them."""
    return sorted(o.stream for o in cat.OBJECTS if o.operations)


class TargetCapsule(Target):
    """Writes Singer records to Capsule CRM through its REST API v2."""

    name = "target-capsule"
    package_name = DISTRIBUTION  # both plugins ship in one distribution: its version is ours
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = supported_capabilities(Target.capabilities)
    default_sink_class = CapsuleSink
    message_reader_class = CapsuleMessageReader  # blank lines skipped, bad lines end cleanly
    # SDK settings refused with their own reason (not as unknown names): see unsupported_settings.
    names_beyond_schema: t.ClassVar[tuple[str, ...]] = tuple(UNSUPPORTED)
    force_flag: t.ClassVar[bool] = False  # `--force` on the command line: past the guardrails

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
            description="JSONL file, written ahead: a `pending` line before each write (run "
            "id, account, stream, operation, Capsule id, the fields written and their values "
            "before; a DELETE keeps the whole record), then `applied`, `failed` or `unresolved` "
            "after the answer (a dry run writes `planned` lines). Created 0600 and opened before "
            "the first request; appended to; `capsule undo` reverts the run it names. Deletes "
            "then cost one read each where the record is not cached. `capsule restore` with "
            "this config logs its writes here too.",
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
        th.Property(
            "match_on_content",
            th.BooleanType,
            default=True,
            title="Match on content",
            description="An id-less record without a natural key value (a person without email, "
            "a task, a note) counts as an existing record that already holds every field it "
            "sets, so a replay creates nothing twice. Each such match is logged with the id it "
            "matched and counted as `matched_on_content`. Off: such records are always inserted.",
        ),
        th.Property(
            "nested_lists",
            th.ObjectType(additional_properties=th.StringType(allowed_values=["merge", "replace"])),
            default={},
            title="Nested lists",
            description="Per stream, how an UPDATE treats email addresses, phone numbers, "
            "addresses, websites, tags and custom field values: `merge` (the default) adds what "
            "Capsule lacks and removes nothing; `replace` makes Capsule mirror the record, "
            'removing the rows the record lacks, e.g. `{"parties": "replace"}`. Only lists the '
            "record carries are touched. Removals are counted as `rows_removed`.",
        ),
        th.Property(
            "max_deletes",
            th.IntegerType(minimum=0),
            title="Most deletes",
            description="Guardrail: a run that would delete more records than this writes "
            "nothing, prints its plan and the limit crossed, and exits 1. The input is planned "
            "first (as a dry run), then written. `--force` (or `force`) overrides.",
        ),
        th.Property(
            "max_changed_share",
            th.NumberType(minimum=0, maximum=1),
            title="Largest share changed",
            description="Guardrail: a run that would update or delete more than this share "
            "(0-1) of the existing records it read for matching and diffs (records deleted "
            "unread included) writes nothing, prints its plan and the limit crossed, and "
            "exits 1. `--force` (or `force`) overrides.",
        ),
        th.Property(
            "force",
            th.BooleanType,
            default=False,
            title="Force past the guardrails",
            description="Write even when the plan crosses `max_deletes` or `max_changed_share` "
            "(the same as `--force`); for one run, e.g. `TARGET_CAPSULE_FORCE=true`.",
        ),
        th.Property(
            "fill_empty",
            th.ArrayType(th.StringType),
            default=[],
            title="Fill empty fields only",
            description="Fields an UPDATE (and an INSERT that matched an existing record) writes "
            "only where Capsule's value is empty, so an import never overwrites what someone "
            'typed in Capsule, e.g. `["jobTitle", "about", "Contract value"]`. Custom fields by '
            "name or column name; `parties.jobTitle` limits an entry to one stream. Fields "
            "kept are counted as `kept_by_fill_empty` and listed in the change log and the plan.",
        ),
        th.Property(
            "retry_rejected",
            th.BooleanType,
            default=False,
            title="Retry rejected records",
            description="Keep the rejected and unresolved records of a run in `pending_path` "
            "and send them again first in the next run, unless newer input for the same record "
            "supersedes them. A record rejected 3 times for the same reason stays in the "
            "rejects file with its count (`attempts`) and is not retried again.",
        ),
        th.Property(
            "pending_path",
            th.StringType,
            title="Pending file",
            description="The file `retry_rejected` keeps records in (private, 0600). Default: "
            "next to `rejects_path`, named `<rejects file>.pending.json`.",
        ),
        th.Property(
            "plan_path",
            th.StringType,
            title="Plan file (Markdown)",
            description="Markdown table of the changes a dry run (or the guardrails' plan) "
            "would make, one row per record and field: current value -> new value, deletes, "
            "and fields kept by `fill_empty`; for people who approve an import.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:  # noqa: ANN401 - the SDK signature
        """Mask secrets before the SDK logs, refuse unusable settings, then set up the run."""
        secrets.install_early(kwargs.get("config"), "TARGET_CAPSULE")  # before the SDK logs
        super().__init__(*args, **kwargs)
        secrets.install(self.config)
        try:  # settings that cannot work end the run before any input is read
            check_connection_settings(self.config)
        except CapsuleConfigError as exc:
            self.logger.error("%s", exc)
            raise SystemExit(1) from None
        self.max_parallelism = 1  # records are written in input order
        try:
            self.run = WriteRun(self.config, self.logger)
        except (ChangeLogError, OutputPathError) as exc:
            self.logger.error("%s", exc)
            raise SystemExit(1) from None
        self._state_written = False
        self._last_stream: str | None = None
        self.planner = False  # only plans the input for another instance (the guardrails)
        if isinstance(self.message_reader, CapsuleMessageReader):
            self.message_reader.on_malformed = self.stop_on_malformed
            self.message_reader.fatal_errors = FATAL
            self.message_reader.on_fatal = self.stop_on_fatal
            self.message_reader.prepare = self.prepared_input

    @contextlib.contextmanager
    def prepared_input(self, source: t.IO[str]) -> t.Iterator[t.IO[str]]:
        """The input to process: with a guardrail or `retry_rejected`, spooled, then planned.

        See `guardrails` and `pending` for what that costs.
        """
        forced = self.force_flag or bool(self.config.get("force"))
        guard = guardrails.wanted(self.config) and not forced and not self.run.dry_run
        if not (guard or self.run.retry) or self.planner:
            yield source
            return
        if guard:
            # The account's lock before the plan, held through the writes: no other writer on
            # this machine changes the account between the plan checked and the writes made.
            try:
                self.run.begin_now()
            except FATAL as exc:
                self.abort(str(exc), summary=False)
        with tempfile.TemporaryDirectory(prefix="target-capsule-") as folder:  # 0700
            spooled = self.with_pending(guardrails.spool(source, Path(folder)))
            if guard and (crossed := self.plan_first(spooled)):
                plan = self.config.get("plan_path")
                self.abort(
                    f"Guardrail: {crossed}. Nothing was written. Check the plan above"
                    f"{f' and in {plan}' if plan else ''}; to write it anyway, run again with "
                    "--force (or the setting force: true)",
                    summary=False,
                )
            with spooled.open(encoding="utf-8") as handle:
                yield handle

    def with_pending(self, spooled: Path) -> Path:
        """The input with last run's pending records first (those newer input leaves)."""
        if not self.run.retry:
            return spooled
        try:
            kept = pending.load(self.run.pending_path)
        except ValueError as exc:
            self.abort(str(exc), summary=False)
        keys = self.run.upsert_keys
        lines, sent, superseded = pending.prelude(
            kept, pending.input_identities(spooled, keys), keys
        )
        self.logger.info(
            "Pending file %s: %d record(s) sent again first, %d superseded by newer input",
            self.run.pending_path,
            sum(sent.values()),
            superseded,
        )
        if not lines:
            return spooled
        for stream, count in sent.items():
            self.run.summary.count(stream, "from_pending", count)
        combined = spooled.with_name("with-pending.jsonl")
        text = "".join(line + "\n" for line in lines)
        with spooled.open(encoding="utf-8") as rest:
            pending.write_private(combined, text + rest.read())
        self.message_reader_offset(len(lines))
        return combined

    def message_reader_offset(self, lines: int) -> None:
        """Number input lines as the user sent them, after `lines` the target added first."""
        if isinstance(self.message_reader, CapsuleMessageReader):
            self.message_reader.first_line = 1 - lines

    def plan_first(self, source: Path) -> str | None:
        """Plan the whole input as a dry run (nothing written, no STATE); the limit it crosses."""
        own = ("rejects_path", "change_log_path", "retry_rejected", "pending_path")
        config = {k: v for k, v in self.config.items() if k not in own and k != "fail_on_rejects"}
        planner = type(self)(config={**config, "dry_run": True}, validate_config=False)
        planner.planner = True
        planner.run.label = "Plan, checked against the guardrails (nothing written yet)"
        if isinstance(self.message_reader, CapsuleMessageReader):
            planner.message_reader_offset(1 - self.message_reader.first_line)
        with source.open(encoding="utf-8") as handle:
            planner.listen(handle)
        return guardrails.crossed(planner.run, self.config)

    @classmethod
    @override
    def append_builtin_config(cls, config_jsonschema: dict) -> None:
        super().append_builtin_config(config_jsonschema)
        drop_unsupported(config_jsonschema)

    @override
    def setup_mapper(self) -> None:
        # The first hook after the configuration is read, before the SDK acts on any setting.
        if (refused := refusal(self.config)) is not None:
            self.abort(refused, summary=False)
        if self.config.get("retry_rejected") and pending.pending_path(self.config) is None:
            self.abort(
                "retry_rejected needs a file to keep the records in: set pending_path, or "
                "rejects_path (the pending file is then kept next to it)",
                summary=False,
            )
        super().setup_mapper()

    @override
    def get_sink_class(self, stream_name: str) -> type[CapsuleSink]:
        """One sink class for every Capsule stream and its `<stream>_deleted` stream (DELETEs).

        Any other stream ends the run in one line.
        """
        if cat.deletions_of(stream_name) is not None:
            return DeletionsSink
        if stream_name not in cat.BY_STREAM:
            raise UnusableMessage(
                f"target-capsule cannot write stream {show(stream_name)}: it is not a Capsule "
                "stream. "
                f"Streams it writes: {', '.join(writable_streams())}. Rename the stream with a "
                "stream map (`__alias__`) if it holds one of these"
            )
        return CapsuleSink

    @contextlib.contextmanager
    def fatal_ends_run(self) -> t.Iterator[None]:
        """Errors nobody downstream can fix (401, a setting, Capsule down) end the run in one line.

        Sinks write when they drain, which the SDK does on a RECORD, a STATE or the end of input
        (the message reader covers the STATE case).
        """
        try:
            yield
        except FATAL as exc:
            self.abort(str(exc))

    @override
    def _process_record_message(self, message_dict: dict) -> None:
        with self.fatal_ends_run():
            self._record_message(message_dict)

    def _record_message(self, message_dict: dict) -> None:
        record = message_dict.get("record")
        stream = message_dict.get("stream")
        if not isinstance(record, dict) and isinstance(stream, str) and self.sink_exists(stream):
            # Not a record at all: rejected like any record in a shape the target cannot use.
            kind = type(record).__name__ if record is not None else "null"
            self.drain_one(self.get_sink(stream))  # the records before it come first
            self.run.reject(
                stream,
                cat.INSERT,
                f"{stream} INSERT: the record must be a JSON object, got {kind}",
                {"record": record},
                retry=False,
            )
            return
        # Sinks apply records in batches; finishing the previous stream's batch first keeps
        # the writes in input order across streams.
        if isinstance(stream, str) and stream != self._last_stream:
            if self._last_stream is not None and self.sink_exists(self._last_stream):
                self.drain_one(self.get_sink(self._last_stream))
            self._last_stream = stream
        try:
            super()._process_record_message(message_dict)
        except FATAL as exc:
            self.abort(str(exc))

    @override
    def _write_state_message(self, state: dict) -> None:
        self._state_written = True
        if self.planner:
            return  # a plan for the guardrails: the STATE comes from the run that writes
        # A dry run writes nothing, so the source's bookmarks must not move on: passing them
        # through would make the real run that follows read (and load) nothing.
        merged = {} if self.run.dry_run else dict(state)
        merged[STATE_KEY] = self.run.summary.as_dict()
        if self.run.changes.enabled:
            merged[STATE_KEY]["change_log"] = {
                "path": str(self.run.changes.path),
                "run_id": self.run.changes.run_id,
            }
        super()._write_state_message(merged)

    @override
    def process_endofpipe(self) -> None:
        """Drain, emit the STATE and the summary; exit 1 on unresolved writes (or rejects)."""
        had_state = bool(self._latest_state)
        with self.fatal_ends_run():
            super().process_endofpipe()
        if not had_state:
            self._write_state_message({})
        if not self.run.dry_run:  # before the account's lock is released
            self.run.save_pending(
                lambda s: self.get_sink(s).schema if self.sink_exists(s) else None
            )
        self.run.close()
        self.run.log_summary()
        if (
            self.run.dry_run
            and not self.planner
            and (crossed := guardrails.crossed(self.run, self.config))
        ):
            self.logger.warning("Guardrail: %s; a real run would write nothing", crossed)
        unresolved = self.run.summary.total("unresolved")
        if unresolved:
            self.abort(
                f"{unresolved} record(s) unresolved: Capsule kept failing their writes, and the "
                "target could not yet tell whether they were applied (see "
                f"{self.config.get('rejects_path') or 'the log'}). Rerunning the same input is "
                "safe: each is looked up before it is written again.",
                summary=False,
            )
        rejected = self.run.summary.total("rejected")
        if rejected and self.config.get("fail_on_rejects"):
            where = self.config.get("rejects_path") or "the log"
            self.abort(
                f"{rejected} record(s) rejected (see {where}); failing because "
                "fail_on_rejects is set",
                summary=False,
            )

    def stop_on_fatal(self, error: Exception) -> t.NoReturn:
        """End the run on an error no record can get past (a 401, a setting) in one line."""
        self.abort(str(error))

    def stop_on_malformed(self, error: MalformedInput) -> t.NoReturn:
        """Finish what the lines before `error` started (STATE and summary), then exit 1."""
        if self.planner:  # the guardrails' plan: nothing was written, nothing is to be finished
            self.abort(
                f"Stopped at {error}. Nothing was written: with a guardrail set the whole input "
                "is planned before any write. Fix or remove that line and run again."
            )
        with self.fatal_ends_run():
            self.drain_all(is_endofpipe=True)  # writes the latest STATE received, if any
        if not self._state_written:
            self._write_state_message({})
        self.abort(
            f"Stopped at {error}. Every line before it was processed (see the summary and the "
            "STATE written); fix or remove that line and run again: what was already applied "
            "is not written twice."
        )

    def abort(self, message: str, summary: bool = True) -> t.NoReturn:
        """End the run with exit code 1 and `message` as its last log line (no traceback)."""
        run = getattr(self, "run", None)
        if run is not None:
            run.close()
        if summary and run is not None:
            run.log_summary()
        self.logger.error("%s", message)  # last, so it is the line a user sees
        raise SystemExit(1)


if __name__ == "__main__":
    TargetCapsule.cli()
