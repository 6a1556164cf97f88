"""`capsule sync`: keep a PostgreSQL schema and Capsule equal, both ways.

    capsule sync --config sync.json [--conflict capsule|database|newest] [--objects parties,tasks]

A subcommand of `capsule` (its dispatcher calls `main(argv, prog)`).

Settings come from the JSON file, then from `CAPSULE_SYNC_<NAME>` environment variables (what
Meltano passes its utility), then from the options. The database connection is `database_url`
(a libpq connection string or URL); whatever it leaves out comes from the PG* variables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import typing as t
from pathlib import Path

import psycopg

from tap_capsule.api_client import CapsuleError, CapsuleSession, package_version
from tap_capsule.setting_names import unknown_setting, unknown_variable
from target_capsule.account.cli import Parser, error
from target_capsule.account.sync.capsule import CapsuleSide
from target_capsule.account.sync.database import Database, SchemaAccountError, SyncBusyError
from target_capsule.account.sync.engine import CONFLICT_RULES, Sync
from target_capsule.account.sync.objects import BY_TABLE, OBJECTS
from target_capsule.changelog import ChangeLog, ChangeLogError
from target_capsule.lock import Lock, LockError, account_key
from target_capsule.lookups import Lookups
from target_capsule.settle import settle_pending
from target_capsule.site import account_of, read_site

SETTINGS = {
    "access_token": "Capsule token (secret)",
    "api_url": "Capsule API base URL",
    "refresh_token": "OAuth refresh token (secret)",
    "client_id": "OAuth client id",
    "client_secret": "OAuth client secret (secret)",
    "oauth_token_cache": "OAuth token cache file",
    "rate_limit_reserve": "share of the hourly budget left for others",
    "max_rate_limit_wait": "longest rate-limit wait (s)",
    "max_retries": "retries of transient errors",
    "request_timeout": "request timeout (s)",
    "database_url": "PostgreSQL connection string (PG* variables fill the rest)",
    "schema": "the sync schema (default capsule_sync)",
    "conflict": "capsule, database or newest (default capsule)",
    "objects": "which objects (default all: parties, opportunities, cases, tasks, notes)",
    "change_log_path": "JSONL change log of the Capsule writes (capsule undo reverts them)",
}
DEFAULT_SCHEMA = "capsule_sync"
ENV_PREFIX = "CAPSULE_SYNC_"


class UsageError(ValueError):
    """A setting the user must fix."""


def load_settings(args: argparse.Namespace, environ: t.Mapping[str, str]) -> dict[str, t.Any]:
    """Merge the file, the environment and the options; refuse unknown or wrong settings."""
    config: dict[str, t.Any] = {}
    if args.config:
        try:
            config = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read --config {args.config}: {exc}") from None
        if not isinstance(config, dict):
            raise UsageError(f"--config {args.config} must hold a JSON object")
    for name in SETTINGS:
        value = environ.get(ENV_PREFIX + name.upper())
        if value not in (None, ""):
            config[name] = value
    for name in ("conflict", "objects", "schema", "change_log_path"):
        if getattr(args, name, None):
            config[name] = getattr(args, name)
    # Its own settings only: a writer's setting (`dry_run`) in a sync config must not pass unseen.
    listed = "`capsule sync --help`"
    if problem := unknown_setting("capsule sync", config, SETTINGS, listed, shared=False):
        raise UsageError(problem)
    # A misspelt variable (CAPSULE_SYNC_CONFLCIT) is refused too, as the plugins refuse theirs.
    prefix = ENV_PREFIX.rstrip("_")
    if problem := unknown_variable(
        "capsule sync", SETTINGS, environ, prefix=prefix, listed_by=listed
    ):
        raise UsageError(problem)
    if not config.get("access_token"):
        raise UsageError("access_token is required (--config, or CAPSULE_SYNC_ACCESS_TOKEN)")
    conflict = config.setdefault("conflict", "capsule")
    if conflict not in CONFLICT_RULES:
        raise UsageError(f"conflict must be one of {', '.join(CONFLICT_RULES)}, not {conflict!r}")
    objects = config.get("objects") or [o.table for o in OBJECTS]
    if isinstance(objects, str):
        objects = [o.strip() for o in objects.replace("[", "").replace("]", "").split(",")]
        objects = [o.strip("\"' ") for o in objects if o.strip("\"' ")]
    wrong = [o for o in objects if o not in BY_TABLE]
    if wrong:
        raise UsageError(f"objects: {wrong[0]!r} is not one of {', '.join(BY_TABLE)}")
    config["objects"] = [o.table for o in OBJECTS if o.table in objects]  # parties first
    return config


DESCRIPTION = "Two-way sync between Capsule and a PostgreSQL schema."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`capsule sync`'s options (each overrides the same setting of --config)."""
    parser.add_argument("--config", help="JSON settings file")
    parser.add_argument("--conflict", choices=CONFLICT_RULES, help="who wins a conflict")
    parser.add_argument("--objects", help="comma-separated objects to sync (default: all)")
    parser.add_argument("--schema", help=f"the sync schema (default {DEFAULT_SCHEMA})")
    parser.add_argument(
        "--change-log-path", dest="change_log_path", help="JSONL change log of the Capsule writes"
    )


def settings_help() -> str:
    """The settings `--config` and the `CAPSULE_SYNC_*` variables take (what `--help` lists)."""
    width = max(len(name) for name in SETTINGS)
    lines = [f"  {name:<{width}}  {what}" for name, what in SETTINGS.items()]
    return (
        "settings (in the --config file, or as CAPSULE_SYNC_<NAME> variables; an unknown one is "
        "refused):\n" + "\n".join(lines)
    )


def run(config: t.Mapping[str, t.Any]) -> Sync:
    """One sync with checked settings; the finished Sync (its counts).

    Like target-capsule, it names the account (`GET /site`) in its change log and holds the
    account's writer lock, so it never runs at the same time as another writer on this machine.
    """
    session = CapsuleSession(config, user_agent=f"capsule-sync/{package_version()}")
    schema = config.get("schema") or DEFAULT_SCHEMA
    site = read_site(session)
    here = account_of(site)
    lock = Lock(account_key(session.api_url, site), f"capsule sync of schema {schema}").acquire()
    change_log = ChangeLog(config.get("change_log_path"))
    database: Database | None = None
    try:
        change_log.account = here
        change_log.clock = session.pacer.server_now
        change_log.open()
        settle_pending(session, Lookups(session), change_log, here)  # a killed run's lines
        database = Database(config.get("database_url") or "", schema)
        database.bind(here)
        sync = Sync(database, CapsuleSide(session, change_log), config["conflict"])
        sync.run([BY_TABLE[name] for name in config["objects"]])
    finally:
        change_log.close()
        if database is not None:
            database.close()
        lock.release()
    return sync


def main(argv: list[str] | None = None, prog: str = "capsule sync") -> int:
    """Entry point of `capsule sync`: 0 when done, 1 with one line for what to fix."""
    parser = Parser(
        prog=prog,
        description=DESCRIPTION,
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        config = load_settings(args, os.environ)
        sync = run(config)
    except (
        UsageError,
        SyncBusyError,
        SchemaAccountError,
        CapsuleError,
        LockError,
        ChangeLogError,
    ) as exc:
        return error(prog, str(exc))
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return error(prog, f"cannot reach PostgreSQL: {first}")
    total = sum(c.writes for c in sync.counts.values())
    conflicts = sum(c.conflicts for c in sync.counts.values())
    print(f"{prog}: done, {total} write(s), {conflicts} conflict(s)", file=sys.stderr)
    return 0
