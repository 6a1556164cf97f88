"""What one run of the target shares across its sinks: session, read caches, summary, rejects.

It lives apart from the target class so that sinks (and whatever else writes) depend on the run's
state, not on the Singer plugin that creates it.
"""

from __future__ import annotations

import functools
import typing as t
from pathlib import Path

from tap_capsule.api_client import CapsuleSession, package_version
from target_capsule.changelog import ChangeLog
from target_capsule.lock import Lock, account_key
from target_capsule.lookups import Lookups
from target_capsule.rejects import Rejects, secrets_of
from target_capsule.settle import settle_pending
from target_capsule.site import account_of, read_site
from target_capsule.summary import Summary

# Settings that name a file the run writes: no two may be the same file (a rejects file truncated
# at the start of a run must never be the change log).
OUTPUT_SETTINGS = ("change_log_path", "rejects_path", "oauth_token_cache")


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
        self.changes = ChangeLog(config.get("change_log_path"), dry_run=self.dry_run)
        self.changes.open()  # an unwritable change log ends the run before any request
        self.rejects = Rejects(config.get("rejects_path"), secrets_of(config))
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
