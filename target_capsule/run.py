"""What one run of the target shares across its sinks: session, read caches, summary, rejects.

It lives apart from the target class so that sinks (and whatever else writes) depend on the run's
state, not on the Singer plugin that creates it.
"""

from __future__ import annotations

import functools
import typing as t
from pathlib import Path

from tap_capsule import catalogue as cat
from tap_capsule.api_client import CapsuleSession, package_version
from target_capsule.fill_empty import FillEmpty
from target_capsule.lock import Lock, account_key
from target_capsule.lookups import Lookups
from target_capsule.pending import MAX_ATTEMPTS, RetryingRejects, pending_path
from target_capsule.plan import PlannedChangeLog
from target_capsule.rejects import Rejects, secrets_of
from target_capsule.settle import settle_pending
from target_capsule.site import account_of, read_site
from target_capsule.summary import Summary

# Settings that name a file the run writes: no two may be the same file (a rejects file truncated
# at the start of a run must never be the change log).
OUTPUT_SETTINGS = (
    "change_log_path",
    "rejects_path",
    "oauth_token_cache",
    "pending_path",
    "plan_path",
)


class OutputPathError(ValueError):
    """Two output settings name one file."""


def check_output_paths(config: t.Mapping[str, t.Any], names: t.Sequence[str]) -> None:
    """Refuse settings in `names` that point at the same file (one line naming both)."""
    seen: dict[Path, str] = {}
    for name in names:
        value = config.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        path = Path(value).expanduser().resolve()
        if path in seen:
            raise OutputPathError(
                f"{seen[path]} and {name} both name {path}; each must be its own file "
                "(the run would overwrite one with the other)"
            )
        seen[path] = name


if t.TYPE_CHECKING:
    import logging


# Settings that need the whole plan of a dry run in memory (one small entry per change).
PLAN_SETTINGS = ("plan_path", "max_deletes", "max_changed_share")


class WriteRun:
    """One load: the settings in force, the shared session and lookups, the outcome counts."""

    def __init__(self, config: t.Mapping[str, t.Any], logger: logging.Logger) -> None:
        """Read the run's settings; no request is made until a sink needs one."""
        self.config = config
        self.logger = logger
        self.dry_run = bool(config.get("dry_run", False))
        self.upsert_keys = dict(config.get("upsert_keys") or {})
        self.match_on_content = bool(config.get("match_on_content", True))
        self.nested_lists = dict(config.get("nested_lists") or {})
        self.summary = Summary(dry_run=self.dry_run)
        check_output_paths(config, OUTPUT_SETTINGS)
        self.retry = bool(config.get("retry_rejected"))
        self.pending_path = pending_path(config) if self.retry else None
        retrying = self.retry and not self.dry_run  # a dry run plans them, keeps the file as is
        self.rejects = (RetryingRejects if retrying else Rejects)(
            config.get("rejects_path"), secrets_of(config)
        )
        self.plan_path = config.get("plan_path")
        self.changes = PlannedChangeLog(
            config.get("change_log_path"),
            dry_run=self.dry_run,
            # A dry run's plan, kept for the Markdown table and the guardrails' counts.
            keep=self.dry_run and any(config.get(k) is not None for k in PLAN_SETTINGS),
        )
        self.changes.open()  # an unwritable change log ends the run before any request
        self.fill_empty = FillEmpty(config.get("fill_empty") or (), cat.BY_STREAM)
        self.label = "Dry run (no writes sent)" if self.dry_run else "Load"
        self.account: str | None = None
        self.lock: Lock | None = None

    def begin(self) -> None:
        """Before the first other request: the account (`GET /site`), its lock, leftovers.

        The account names every change-log line; the lock keeps a second writer off the account
        (a dry run writes nothing and takes none); pending lines a killed run left in the change
        log are settled first, so the log holds every write that reached Capsule.
        """
        if self.account is not None:
            return
        site = read_site(self.session)
        self.account = account_of(site)
        self.changes.account = self.account
        self.changes.clock = self.session.pacer.server_now
        if not self.dry_run:
            self.lock = Lock(
                account_key(self.session.api_url, site),
                f"target-capsule run {self.changes.run_id}",
            ).acquire()
            settle_pending(self.session, self.lookups, self.changes, self.account, self.upsert_keys)

    def begin_now(self) -> CapsuleSession:
        """Open the session now (the account, its lock, leftovers settled), before any record."""
        return self.session

    def close(self) -> None:
        """The end of the run: close the change log, release the account's lock."""
        self.changes.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @functools.cached_property
    def session(self) -> CapsuleSession:
        """The one HTTP session of the run (auth, pacing, retries), opened on first use.

        Its first request reads the account and takes its lock (`begin`): a run that needs no
        request (every record refused by a rule) makes none.
        """
        session = CapsuleSession(self.config, user_agent=f"target-capsule/{package_version()}")
        self.__dict__["session"] = session  # begin() uses it
        try:
            self.begin()
        except BaseException:
            del self.__dict__["session"]
            raise
        return session

    @functools.cached_property
    def lookups(self) -> Lookups:
        """Reads from Capsule, cached for the run so no list is read twice."""
        return Lookups(self.session, self.upsert_keys)

    def replaces(self, stream: str) -> bool:
        """Does this stream mirror the source's nested lists (`replace`) or add to them?"""
        return self.nested_lists.get(stream) == "replace"

    def reject(
        self,
        stream: str,
        operation: str,
        reason: str,
        record: t.Mapping[str, t.Any],
        http_status: int | None = None,
        retry: bool = True,
    ) -> None:
        """Write the record to the rejects file and count it (`retry`: worth sending again)."""
        extra = None if retry else {"retried": False}
        self.rejects.write(stream, operation, reason, record, http_status, extra)
        self.summary.add(stream, operation, "rejected")

    def save_pending(self, schema_of: t.Callable[[str], dict | None]) -> None:
        """Keep this run's rejected records for the next one (`retry_rejected`)."""
        if isinstance(self.rejects, RetryingRejects) and self.pending_path is not None:
            self.rejects.save(self.pending_path, schema_of)
            kept, given_up = len(self.rejects.kept), self.rejects.given_up
            self.logger.info(
                "Pending file %s: %d record(s) to send again next run%s",
                self.pending_path,
                kept,
                f"; {given_up} failed {MAX_ATTEMPTS} times for the same reason and stay "
                "in the rejects file only"
                if given_up
                else "",
            )

    def records_seen(self) -> set[tuple[str, str]]:
        """(stream, id) of the existing records the run read (none when it read nothing)."""
        return self.lookups.records_seen() if "lookups" in self.__dict__ else set()

    def log_summary(self) -> None:
        """Log the outcome counts and the requests the run spent of Capsule's hourly budget."""
        mode = self.label
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
        if self.dry_run and self.plan_path:
            file = self.changes.save_markdown(
                self.plan_path,
                f"Planned changes of run {self.changes.run_id}",
                self.summary.lines(),
            )
            self.logger.info("Plan (record, field, current -> new value): %s", file)
        if "session" in self.__dict__:
            self.logger.info(
                "%d requests to Capsule; %s",
                self.session.pacer.requests_sent,
                self.session.pacer.budget_line(),
            )
