"""`target-capsule-backup`: a small Singer target that writes what tap-capsule reads into a folder.

One gzip-compressed JSONL file per stream (`parties.jsonl.gz`, ...), the streams' SCHEMA messages
(`schemas.json`) and a manifest (`manifest.json`): the account (site name from `GET /site`), the
time on Capsule's clock when the backup started and finished (its `Date` header), the records per
stream and the tap's version. Records are stored exactly as the tap emitted them.

Files are written under temporary names and renamed when the input ends; the manifest comes last.
A folder without a manifest is an unfinished backup, and restore refuses it. Tombstones (records
the tap marks deleted) are not part of an account's content and are only counted. The target
emits no STATE, so every backup through Meltano reads the account in full.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import sys
import typing as t
from pathlib import Path

from tap_capsule.api_client import (
    CapsuleError,
    CapsuleSession,
    package_version,
    raise_for_capsule_status,
    response_json,
)
from tap_capsule.cli import tap_setting_names
from tap_capsule.setting_names import unknown_setting

MANIFEST = "manifest.json"
SCHEMAS = "schemas.json"
FORMAT = 1
# The backup target's own settings; tap-capsule's (token, URL, pacing, ...) come on top.
BACKUP_SETTINGS = ("backup_dir",)


class BackupError(Exception):
    """A problem the user fixes (config, input); one line, exit 1."""


def stream_file(stream: str) -> str:
    """The file name of a stream's records inside a backup folder."""
    if not stream.replace("_", "").isalnum():
        raise BackupError(f"stream name {stream!r} is not a plain name; cannot make a file of it")
    return f"{stream}.jsonl.gz"


def tap_version() -> str:
    """The installed tap-capsule version (one distribution holds both plugins)."""
    return package_version()


def read_backup(folder: Path) -> dict[str, list[dict]]:
    """Every stream of a finished backup folder."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{folder} holds no {MANIFEST}: not a finished backup")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    out: dict[str, list[dict]] = {}
    for stream, info in (manifest.get("streams") or {}).items():
        name = str(info.get("file") or "")
        if "/" in name or "\\" in name or not name.endswith(".jsonl.gz"):
            raise BackupError(f"manifest names an unexpected file {name!r} for {stream}")
        with gzip.open(folder / name, "rt", encoding="utf-8") as handle:
            out[stream] = [json.loads(line) for line in handle if line.strip()]
    return out


class Backup:
    """Writes one backup folder from a stream of Singer messages."""

    def __init__(self, folder: Path, session: CapsuleSession | None) -> None:
        """`session` reads `/site` and Capsule's clock for the manifest (None: not recorded)."""
        self.folder = folder
        self.session = session
        self.files: dict[str, t.TextIO] = {}
        self.counts: dict[str, int] = {}
        self.tombstones: dict[str, int] = {}
        self.schemas: dict[str, dict] = {}
        self.site: dict | None = None
        self.started_at: str | None = None

    def capsule_now(self) -> tuple[dict | None, str | None]:
        """Capsule's site record and the time on its clock (one request)."""
        if self.session is None:
            return None, None
        response = self.session.call("GET", "/site")
        raise_for_capsule_status(response)
        site = (response_json(response) or {}).get("site")
        moment = self.session.pacer.server_now()
        when = (
            dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if moment is not None
            else None
        )
        return (site if isinstance(site, dict) else None), when

    def start(self) -> None:
        """Check the folder and note where and when the backup begins."""
        if (self.folder / MANIFEST).exists():
            raise BackupError(
                f"{self.folder} already holds a finished backup ({MANIFEST}); "
                "choose a new backup_dir"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.site, self.started_at = self.capsule_now()

    def handle(self, message: t.Mapping[str, t.Any]) -> None:
        """One Singer message."""
        kind = message.get("type")
        if kind == "SCHEMA":
            stream = str(message.get("stream"))
            self.schemas[stream] = {
                "schema": message.get("schema"),
                "key_properties": message.get("key_properties") or [],
            }
            if stream not in self.files:
                partial = self.folder / (stream_file(stream) + ".partial")
                # Open for the whole run, closed in finish(): one handle per stream.
                handle = gzip.open(partial, "wt", encoding="utf-8", compresslevel=6)  # noqa: SIM115
                self.files[stream] = t.cast("t.TextIO", handle)
                self.counts[stream] = 0
        elif kind == "RECORD":
            stream = str(message.get("stream"))
            if stream not in self.files:
                raise BackupError(f"RECORD of stream {stream!r} before its SCHEMA message")
            record = message.get("record")
            if not isinstance(record, dict):
                raise BackupError(f"RECORD of stream {stream!r} holds no object")
            if record.get("_sdc_deleted_at"):
                self.tombstones[stream] = self.tombstones.get(stream, 0) + 1
                return
            self.files[stream].write(json.dumps(record, ensure_ascii=False) + "\n")
            self.counts[stream] += 1

    def finish(self) -> dict:
        """Close and rename the stream files, then write the manifest (last)."""
        for stream, handle in self.files.items():
            handle.close()
            name = stream_file(stream)
            os.replace(self.folder / (name + ".partial"), self.folder / name)
        (self.folder / SCHEMAS).write_text(json.dumps(self.schemas, indent=1), encoding="utf-8")
        _site, finished_at = self.capsule_now()
        manifest = {
            "format": FORMAT,
            "account": self.site,
            "started_at": self.started_at,
            "finished_at": finished_at,
            "clock": "Capsule's (its Date header)",
            "tap_version": tap_version(),
            "streams": {
                s: {
                    "file": stream_file(s),
                    "records": n,
                    "tombstones_skipped": self.tombstones.get(s, 0),
                }
                for s, n in sorted(self.counts.items())
            },
            "records": sum(self.counts.values()),
        }
        temporary = self.folder / (MANIFEST + ".partial")
        temporary.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        os.replace(temporary, self.folder / MANIFEST)
        return manifest


def main(argv: list[str] | None = None) -> int:
    """Entry point of `target-capsule-backup --config CONFIG` (Singer messages on stdin)."""
    parser = argparse.ArgumentParser(
        prog="target-capsule-backup",
        description="Write tap-capsule's streams into a backup folder (gzip JSONL + manifest).",
    )
    parser.add_argument(
        "--config",
        action="append",
        required=True,
        help="JSON config: backup_dir, plus access_token and api_url for the manifest",
    )
    parser.add_argument("--input", help="read Singer messages from this file, not stdin")
    args = parser.parse_args(argv)
    config: dict[str, t.Any] = {}
    try:
        for path in args.config:
            config.update(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        print(f"target-capsule-backup: cannot read --config: {exc}", file=sys.stderr)
        return 1
    # Its config may be tap-capsule's (as `capsule backup` passes it): the tap's settings are
    # known (and ignored), any other name is refused.
    known = tap_setting_names() | set(BACKUP_SETTINGS)
    listed = f"`tap-capsule --about` (plus {', '.join(BACKUP_SETTINGS)})"
    if problem := unknown_setting("target-capsule-backup", config, known, listed):
        print(f"target-capsule-backup: {problem}", file=sys.stderr)
        return 1
    folder = config.get("backup_dir")
    if not isinstance(folder, str) or not folder.strip():
        print("target-capsule-backup: set `backup_dir`, the folder to write", file=sys.stderr)
        return 1
    try:
        session = (
            CapsuleSession(config, user_agent=f"target-capsule-backup/{tap_version()}")
            if config.get("access_token")
            else None
        )
        backup = Backup(Path(folder).expanduser(), session)
        backup.start()
        source = (
            open(args.input, encoding="utf-8")  # noqa: SIM115 - closed in the finally below
            if args.input
            else sys.stdin
        )
        try:
            for number, line in enumerate(source, 1):
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    raise BackupError(f"input line {number} is not a JSON Singer message") from None
                backup.handle(message)
        finally:
            if source is not sys.stdin:
                source.close()
        manifest = backup.finish()
    except (BackupError, CapsuleError) as exc:
        print(f"target-capsule-backup: {exc}", file=sys.stderr)
        return 1
    account = (manifest.get("account") or {}).get("name") or "unknown account"
    print(
        f"Backup of {account} at {manifest['started_at']} (Capsule's clock): "
        f"{manifest['records']} records in {len(manifest['streams'])} streams, {backup.folder}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
