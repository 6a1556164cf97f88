"""`target-capsule-backup`: a small Singer target that writes what tap-capsule reads into a folder.

One gzip-compressed JSONL file per stream (`parties.jsonl.gz`, ...), the streams' SCHEMA messages
(`schemas.json`) and a manifest (`manifest.json`): the account (site name from `GET /site`), the
time on Capsule's clock when the backup started and finished (its `Date` header), the records per
stream and the tap's version. Records are stored exactly as the tap emitted them.

Files are written under temporary names and renamed when the input ends; the manifest comes last,
and only after the tap's final STATE (the one that marks the end of its sync) followed by a clean
end of input. A tap killed midway, a line cut short, or anything after that STATE leaves the folder
without a manifest: an unfinished backup, which the run reports with a non-zero exit, and which
restore and verify refuse. Every file is private (0600, in a 0700 folder).

Each note's attachment files are downloaded once (one request per file) into
`attachments/<sha256>`, and the manifest's `attachments` maps each attachment id to its name,
type, size and hash; `attachments: false` in the config keeps names and sizes only.

A record line longer than `MAX_RECORD_CHARS` is never held in memory whole: it is skipped while
it is read, named (stream and id) in the manifest's `refused_records` and in the log. Tombstones
(records the tap marks deleted) are not part of an account's content and are only counted. The
target emits no STATE, so every backup through Meltano reads the account in full.

A backup of a large account takes hours, so an unfinished one can be resumed. At each STATE
message the files written so far are closed (each run of records is a complete gzip member) and
`checkpoint.json` records the tap's state with the length of every file. A run on the same
folder (`capsule backup` passes that state to the tap) cuts each file back to that length (what
came after the STATE is read again) and appends. A resumed backup can hold a record twice (it
changed between the runs, or its stream was read again in full), so its files are compacted at
the end: the last line of each key is kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gzip
import json
import os
import re
import sys
import typing as t
import zlib
from pathlib import Path

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    CapsuleError,
    CapsuleNotFound,
    CapsuleSession,
    package_version,
    raise_for_capsule_status,
    response_json,
)
from tap_capsule.cli import tap_setting_names
from tap_capsule.private_files import make_private, open_private, private_folder, write_private
from tap_capsule.setting_names import unknown_setting
from target_capsule.account import files
from target_capsule.account.progress import Progress
from target_capsule.lock import Lock, LockError
from target_capsule.site import account_of

MANIFEST = "manifest.json"
CHECKPOINT = "checkpoint.json"
SCHEMAS = "schemas.json"
FORMAT = 1
# The backup target's own settings; tap-capsule's (token, URL, pacing, ...) come on top.
BACKUP_SETTINGS = ("backup_dir", "attachments")
# The longest record line a backup writes or a restore reads (characters of its JSON): Capsule's
# own records are far smaller; a longer one is refused, read past without holding it.
MAX_RECORD_CHARS = 5 * 1024 * 1024
SYNC_MARK = "tap_capsule_sync"  # the tap's final STATE carries {"complete": true} under this key
_HEAD = 65536  # characters kept of an oversized line, to name its stream and id


@dataclasses.dataclass
class Line:
    """One line of a JSONL input, read with a length limit."""

    number: int
    text: str | None  # None: longer than the limit (only `head` was kept)
    head: str
    ended: bool  # it ended with a newline (a line cut short by a kill does not)


def read_lines(handle: t.IO[str], limit: int = MAX_RECORD_CHARS) -> t.Iterator[Line]:
    """The lines of `handle`, none longer than `limit` held in memory."""
    number = 0
    while True:
        text = handle.readline(limit + 1)
        if not text:
            return
        number += 1
        if len(text) <= limit or text.endswith("\n"):
            yield Line(number, text, text[:_HEAD], text.endswith("\n"))
            continue
        head, ended = text[:_HEAD], False
        while True:  # read past the rest of the line without keeping it
            more = handle.readline(1 << 20)
            if not more or more.endswith("\n"):
                ended = more.endswith("\n")
                break
        yield Line(number, None, head, ended)


def named_in(head: str, field: str) -> str:
    """A top-level-looking `"field": value` in the start of a line (for messages only)."""
    found = re.search(rf'"{field}"\s*:\s*("([^"]*)"|-?\d+)', head)
    if not found:
        return "unknown"
    return found.group(2) if found.group(2) is not None else found.group(1)


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


def read_manifest(folder: Path) -> dict:
    """The manifest of a finished backup; a folder without one is refused (unfinished)."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        partial = sorted(p.name for p in folder.glob("*.partial")) if folder.is_dir() else []
        raise BackupError(
            f"{folder} holds no {MANIFEST}: an unfinished backup (its tap did not end cleanly"
            + (f"; partial files: {', '.join(partial[:3])}" if partial else "")
            + "), or not a backup folder"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{manifest_path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict):
        raise BackupError(f"{manifest_path} is not a backup manifest")
    return manifest


def read_stream(path: Path, stream: str, refused: list[dict] | None = None) -> t.Iterator[dict]:
    """The records of one backup file, read as a stream.

    A record longer than the backup's limit is never loaded: it is appended to `refused` (stream
    and id) and skipped. A corrupt or truncated file is one `BackupError` naming it.
    """
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in read_lines(handle):
                if line.text is None:
                    if refused is None:
                        raise BackupError(
                            f"{path}: line {line.number} (a {stream} record, id "
                            f"{named_in(line.head, 'id')}) is longer than {MAX_RECORD_CHARS} "
                            "characters"
                        )
                    refused.append({"stream": stream, "id": named_in(line.head, "id")})
                    continue
                if not line.text.strip():
                    continue
                record = json.loads(line.text)
                if not isinstance(record, dict):
                    raise ValueError(f"line {line.number} is not a JSON object")
                yield record
    except FileNotFoundError:
        raise BackupError(f"{path} is missing from the backup") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise BackupError(
            f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); restore it from a "
            "copy of the backup or take a new one"
        ) from None


def read_backup(folder: Path, refused: list[dict] | None = None) -> dict[str, list[dict]]:
    """Every stream of a finished backup folder (oversized records go to `refused`)."""
    manifest = read_manifest(folder)
    out: dict[str, list[dict]] = {}
    for stream, info in (manifest.get("streams") or {}).items():
        name = str((info or {}).get("file") or "")
        if "/" in name or "\\" in name or not name.endswith(".jsonl.gz"):
            raise BackupError(f"manifest names an unexpected file {name!r} for {stream}")
        out[stream] = list(read_stream(folder / name, stream, refused))
    return out


class Backup:
    """Writes one backup folder from a stream of Singer messages."""

    def __init__(
        self, folder: Path, session: CapsuleSession | None, attachments: bool = True
    ) -> None:
        """`session` reads `/site` and Capsule's clock for the manifest (None: not recorded).

        With `attachments` (and a session) each note's files are downloaded once into
        `attachments/<sha256>`; without, the manifest lists their names and sizes only.
        """
        self.folder = folder
        self.session = session
        self.keep_files = attachments and session is not None
        self.attachments: dict[str, dict] = {}
        self.progress = Progress("target-capsule-backup", session)
        self.files: dict[str, t.TextIO] = {}
        self.raw: dict[str, t.IO[bytes]] = {}  # the private files under the gzip streams
        self.counts: dict[str, int] = {}
        self.tombstones: dict[str, int] = {}
        self.schemas: dict[str, dict] = {}
        self.site: dict | None = None
        self.started_at: str | None = None
        self.complete = False  # the tap's final STATE arrived, and nothing after it
        self.refused: list[dict] = []  # oversized records: stream and id
        self.resumed = False

    def partial(self, stream: str) -> Path:
        """The file a stream's records go to until the backup is finished."""
        return self.folder / (stream_file(stream) + ".partial")

    def resume(self) -> None:
        """Continue an unfinished backup from its checkpoint: cut each file back to it."""
        path = self.folder / CHECKPOINT
        if not path.is_file():
            for leftover in self.folder.glob("*.jsonl.gz.partial"):
                leftover.unlink()  # a run killed before its first checkpoint, or while finishing
            return
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))["backup"]
            sizes = {str(s): int(n) for s, n in saved["files"].items()}
            counts = {str(s): int(n) for s, n in saved["counts"].items()}
            schemas, tombstones = dict(saved["schemas"]), dict(saved["tombstones"])
            for stream in sizes:
                stream_file(stream)  # a plain name, or a BackupError
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BackupError(
                f"{path} is not a checkpoint of this tool; remove it to start the backup over"
            ) from None
        for leftover in self.folder.glob("*.jsonl.gz.partial"):
            if leftover.name.removesuffix(".jsonl.gz.partial") not in sizes:
                leftover.unlink()  # begun after the checkpoint: read again
        for stream, size in sizes.items():
            with self.partial(stream).open("r+b") as handle:
                handle.truncate(size)  # what came after the checkpoint is read again
        self.counts, self.schemas, self.tombstones = counts, schemas, tombstones
        self.started_at = saved.get("started_at")
        self.resumed = True

    def close_files(self) -> None:
        """Close every open stream file (each ends with a complete gzip member)."""
        for stream, handle in self.files.items():
            handle.close()
            self.raw[stream].close()
        self.files.clear()
        self.raw.clear()

    def checkpoint(self, state: object) -> None:
        """Close the files written since the last STATE and save that state with their lengths."""
        self.close_files()
        if not isinstance(state, dict):
            return
        saved = {
            **state,
            "backup": {
                "files": {s: self.partial(s).stat().st_size for s in self.counts},
                "counts": self.counts,
                "schemas": self.schemas,
                "tombstones": self.tombstones,
                "started_at": self.started_at,
            },
        }
        write_private(self.folder / CHECKPOINT, json.dumps(saved))

    def writer(self, stream: str) -> t.TextIO:
        """The open file of a stream (appending after a checkpoint or a resume)."""
        handle = self.files.get(stream)
        if handle is None:
            raw = open_private(self.partial(stream), "ab" if stream in self.counts else "wb")
            self.raw[stream] = raw
            # Open until the next checkpoint or finish(): one handle per stream.
            handle = t.cast(
                "t.TextIO",
                gzip.open(raw, "wt", encoding="utf-8", compresslevel=6),  # noqa: SIM115
            )
            self.files[stream] = handle
            self.counts.setdefault(stream, 0)
        return handle

    def compact(self, stream: str) -> None:
        """Keep the last line of each key (a resumed backup may hold a record twice)."""
        keys = self.schemas.get(stream, {}).get("key_properties") or []
        if not keys:
            return
        path = self.partial(stream)
        last: dict[str, int] = {}
        with gzip.open(path, "rt", encoding="utf-8") as source:
            for number, line in enumerate(source):
                record = json.loads(line)
                last[json.dumps([record.get(k) for k in keys])] = number
        kept = set(last.values())
        temporary = path.with_suffix(".compact")
        with (
            gzip.open(path, "rt", encoding="utf-8") as source,
            open_private(temporary, "wb") as raw,
            gzip.open(raw, "wt", encoding="utf-8", compresslevel=6) as out,
        ):
            for number, line in enumerate(source):
                if number in kept:
                    out.write(line)
        os.replace(temporary, path)
        self.counts[stream] = len(kept)

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
        private_folder(self.folder)
        make_private(self.folder)  # the backup's own folder: private even if it existed
        self.resume()
        started_at = self.started_at
        self.site, self.started_at = self.capsule_now()
        if self.resumed:
            self.started_at = started_at  # the first run's start

    def handle(self, message: t.Mapping[str, t.Any]) -> None:
        """One Singer message."""
        kind = message.get("type")
        deletions = cat.deletions_of(str(message.get("stream")))
        if deletions is not None and kind in ("SCHEMA", "RECORD"):
            # `<stream>_deleted` (tap-capsule's default deletions): a backup holds what exists,
            # so these count as the object's tombstones left out, as inline ones do.
            if kind == "RECORD":
                self.tombstones[deletions.stream] = self.tombstones.get(deletions.stream, 0) + 1
            return
        if kind == "SCHEMA":
            stream = str(message.get("stream"))
            self.schemas[stream] = {
                "schema": message.get("schema"),
                "key_properties": message.get("key_properties") or [],
            }
            self.writer(stream)
        elif kind == "STATE":
            value = message.get("value")
            mark = value.get(SYNC_MARK) if isinstance(value, dict) else None
            self.complete = isinstance(mark, dict) and mark.get("complete") is True
            if not self.complete:  # the final STATE is no place to resume from
                self.checkpoint(value)
            return
        elif kind == "RECORD":
            stream = str(message.get("stream"))
            if stream not in self.schemas:
                raise BackupError(f"RECORD of stream {stream!r} before its SCHEMA message")
            record = message.get("record")
            if not isinstance(record, dict):
                raise BackupError(f"RECORD of stream {stream!r} holds no object")
            if record.get("_sdc_deleted_at"):
                self.tombstones[stream] = self.tombstones.get(stream, 0) + 1
                return
            self.writer(stream).write(json.dumps(record, ensure_ascii=False) + "\n")
            self.counts[stream] += 1
            self.progress.start_stream(stream)
            self.progress.advance()
            if stream == "entries" and record.get("attachments"):
                self.keep_attachments(record["attachments"])
        self.complete = False  # only the tap's final STATE may come last

    def keep_attachments(self, items: t.Any) -> None:  # noqa: ANN401 - a record's attachments
        """Download each attachment not kept yet (one request per file) and note its hash."""
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict) or item.get("id") is None:
                continue
            key = str(item["id"])
            if key in self.attachments:
                continue
            entry = {
                "filename": item.get("filename"),
                "contentType": item.get("contentType"),
                "size": item.get("size"),
            }
            if self.keep_files and self.session is not None and key.isdigit():
                try:
                    content = files.download(self.session, int(key))
                except CapsuleNotFound:
                    entry["missing"] = True  # deleted while the backup ran
                else:
                    entry["sha256"] = files.store(self.folder, content)
                    entry["size"] = len(content)
            self.attachments[key] = entry

    def oversized(self, line: Line) -> None:
        """A message line too long to hold: its record is refused, named by stream and id."""
        stream, rid = named_in(line.head, "stream"), named_in(line.head, "id")
        self.refused.append({"stream": stream, "id": rid, "line": line.number})
        self.complete = False
        print(
            f"target-capsule-backup: input line {line.number}: a {stream} record (id {rid}) is "
            f"longer than {MAX_RECORD_CHARS} characters; refused, not backed up",
            file=sys.stderr,
        )

    def unfinished(self, why: str) -> str:
        """Close the files (they keep their `.partial` names): the folder is no backup."""
        self.close_files()
        resume = (
            "Run `capsule backup` on the same folder to resume it, or the backup again into a "
            "new folder"
            if (self.folder / CHECKPOINT).is_file()
            else "Run the backup again into a new folder"
        )
        return (
            f"the backup in {self.folder} is unfinished ({why}): it has no {MANIFEST}, and "
            f"restore and verify refuse it. {resume}"
        )

    def finish(self) -> dict:
        """Close and rename the stream files, then write the manifest (last)."""
        for stream, count in sorted(self.counts.items()):
            kept = (
                f", {len(self.attachments)} attachments"
                if stream == "entries" and self.attachments
                else ""
            )
            self.progress.stream_done(stream, f"{count} records{kept}")
        self.close_files()
        # The input is whole: a kill from here on leaves a folder to read again from the start
        # (compacted files no longer match the checkpoint's lengths).
        (self.folder / CHECKPOINT).unlink(missing_ok=True)
        for stream in self.counts:
            if self.resumed:
                self.compact(stream)
            os.replace(self.partial(stream), self.folder / stream_file(stream))
        write_private(self.folder / SCHEMAS, json.dumps(self.schemas, indent=1))
        _site, finished_at = self.capsule_now()
        manifest = {
            "format": FORMAT,
            "account": self.site,
            "account_id": account_of(self.site) if self.site else None,
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
            "refused_records": self.refused,
            "attachment_files": self.keep_files,
            "attachments": self.attachments,
        }
        write_private(self.folder / MANIFEST, json.dumps(manifest, indent=1))
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
    lock: Lock | None = None
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
        keep = config.get("attachments", True)
        if not isinstance(keep, bool):
            raise BackupError("`attachments` must be true or false")
        backup = Backup(Path(folder).expanduser(), session, keep)
        lock = Lock(f"backup folder {backup.folder.resolve()}", "target-capsule-backup")
        lock.acquire()  # one writer per folder
        backup.start()
        source = (
            open(args.input, encoding="utf-8")  # noqa: SIM115 - closed in the finally below
            if args.input
            else sys.stdin
        )
        cut = False
        try:
            for line in read_lines(source):
                if line.text is None:
                    backup.oversized(line)
                    continue
                if not line.text.strip():
                    continue
                try:
                    message = json.loads(line.text)
                except ValueError:
                    if not line.ended:  # the last line, cut short: the tap was killed
                        cut = True
                        break
                    raise BackupError(
                        f"input line {line.number} is not a JSON Singer message"
                    ) from None
                backup.handle(message)
        finally:
            if source is not sys.stdin:
                source.close()
        if cut or not backup.complete:
            why = (
                "its input ends in a line cut short"
                if cut
                else "its input ended before the tap's final STATE: the tap did not finish"
            )
            raise BackupError(backup.unfinished(why))
        manifest = backup.finish()
    except (BackupError, CapsuleError, LockError) as exc:
        print(f"target-capsule-backup: {exc}", file=sys.stderr)
        return 1
    finally:
        if lock is not None:
            lock.release()
    account = (manifest.get("account") or {}).get("name") or "unknown account"
    print(
        f"Backup of {account} at {manifest['started_at']} (Capsule's clock): "
        f"{manifest['records']} records in {len(manifest['streams'])} streams, {backup.folder}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
