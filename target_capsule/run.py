"""What one run of the target shares across its sinks: session, read caches, summary, rejects.

It lives apart from the target class so that sinks (and whatever else writes) depend on the run's
state, not on the Singer plugin that creates it.
"""

from __future__ import annotations

import functools
import typing as t

from tap_capsule.api_client import CapsuleSession, package_version
from target_capsule.changelog import ChangeLog
from target_capsule.lookups import Lookups
from target_capsule.rejects import Rejects, secrets_of
from target_capsule.summary import Summary

if t.TYPE_CHECKING:
    import logging


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
        self.rejects = Rejects(config.get("rejects_path"), secrets_of(config))
        self.changes = ChangeLog(config.get("change_log_path"), dry_run=self.dry_run)

    @functools.cached_property
    def session(self) -> CapsuleSession:
        """The one HTTP session of the run (auth, pacing, retries), opened on first use."""
        return CapsuleSession(self.config, user_agent=f"target-capsule/{package_version()}")

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
    ) -> None:
        """Write the record to the rejects file and count it."""
        self.rejects.write(stream, operation, reason, record, http_status)
        self.summary.add(stream, operation, "rejected")

    def log_summary(self) -> None:
        """Log the outcome counts and the requests the run spent of Capsule's hourly budget."""
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
