"""`capsule verify`: read an account back through tap-capsule and compare it with a backup.

Records are paired through the id map of a restore (or an undo): a backed-up record with id 11004
is looked for under the id it was recreated with, and every reference inside it (party,
organisation, milestone, owner, ...) is translated the same way before comparing. What Capsule
sets itself is ignored: ids (of records and of their contact rows, tags and custom values),
`createdAt`, `updatedAt`, `pictureURL` and the other read-only fields of the catalogue (an entry's
`creator`, a task's `hasTrack`, ...).

The report counts, per stream, the records expected, found, differing and missing, and the ones
that cannot be restored through Capsule's API at all (`limits`: emails and completed-task entries,
which the API cannot create). Attachments compare by file name and sha256: the account's files
are downloaded (one request each) when the backup kept files. Owners a restore reassigned and
notes whose backup kept no files are counted under `limits`, not as differences. JSON on stdout,
a short table on stderr; exit 1 when anything outside those limits differs or is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import typing as t
from pathlib import Path

from tap_capsule import catalogue as cat
from tap_capsule.api_client import CapsuleError, CapsuleNotFound, CapsuleSession
from tap_capsule.cli import tap_setting_names
from tap_capsule.setting_names import unknown_setting
from target_capsule.account import files
from target_capsule.account.backup import BackupError, read_backup, read_manifest
from target_capsule.account.cli import Parser, error, version
from target_capsule.account.progress import Progress, relay_stderr
from target_capsule.account.refs import REASSIGNED, REFERENCE_STREAMS, IdMap
from target_capsule.account.restore_plan import WRITTEN
from target_capsule.payload import CONTACT_LISTS, is_ref

DETAILS_PER_STREAM = 10
# Fields a restore cannot write, left out of the comparison (the documented limits).
LIMITED_FIELDS: dict[str, frozenset[str]] = {}


def limit_of(stream: str, record: t.Mapping[str, t.Any]) -> str | None:
    """Why a backed-up record cannot be restored through the API (None: it can)."""
    if stream == "entries" and record.get("type") not in (None, "note"):
        return f"{record.get('type')} entries cannot be created through the API (notes only)"
    if stream == "tasks" and record.get("status") == "PENDING":
        return (
            "Capsule sets PENDING itself; the API writes a task's status as OPEN or COMPLETED only"
        )
    if stream == "activity_types" and isinstance(record.get("id"), int) and record["id"] < 0:
        return "built-in activity types belong to every account"
    return None


def read_account(config: Path) -> dict[str, list[dict]]:
    """Every stream of the account, as tap-capsule reads it now (tombstones left out)."""
    tap = shutil.which("tap-capsule", path=str(Path(sys.executable).parent)) or shutil.which(
        "tap-capsule"
    )
    if tap is None:
        raise VerifyError("tap-capsule is not installed next to capsule verify")
    # Every stream, child streams included; the deleted feeds are left out below anyway.
    settings = {**json.loads(config.read_text()), "child_streams": True, "tombstones": "off"}
    progress = Progress("capsule verify", None)
    out: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as folder:
        read_config = Path(folder) / "config.json"
        read_config.write_text(json.dumps(settings))
        read_config.chmod(0o600)
        tail: list[bytes] = []
        with subprocess.Popen(
            [tap, "--config", str(read_config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as proc:
            if proc.stdout is None or proc.stderr is None:  # pragma: no cover
                raise VerifyError("could not read tap-capsule's output")
            # The tap's progress lines and closing table (requests, budget) pass through.
            relay = threading.Thread(target=relay_stderr, args=(proc.stderr, tail), daemon=True)
            relay.start()
            for raw in proc.stdout:  # read as the tap goes: a status line on a terminal
                if not raw.startswith(b"{"):
                    continue
                line = raw.decode("utf-8")
                message = json.loads(line)
                if message.get("type") != "RECORD":
                    continue
                stream = str(message.get("stream"))
                progress.start_stream(stream)  # child streams interleave with their parents
                if not message["record"].get("_sdc_deleted_at"):
                    out.setdefault(stream, []).append(message["record"])
                progress.advance()
            code = proc.wait()
            relay.join()
    if code != 0:
        text = b"".join(tail).decode("utf-8", "replace")
        last = (text.strip().splitlines() or ["no output"])[-1]
        raise VerifyError(f"tap-capsule failed reading the account: {last}")
    for stream, records in out.items():
        progress.stream_done(stream, f"{len(records)} records read")
    return out


def account_hashes(
    config: Path, found: t.Mapping[str, list[dict]], kept: t.Mapping[str, t.Any]
) -> dict[str, str]:
    """The sha256 of every attachment file in the account (one download each).

    Only when the backup kept files to compare them with.
    """
    if not any(isinstance(v, dict) and v.get("sha256") for v in kept.values()):
        return {}
    wanted = [
        str(a.get("id"))
        for entry in found.get("entries") or ()
        for a in entry.get("attachments") or ()
        if isinstance(a, dict) and str(a.get("id")).isdigit()
    ]
    if not wanted:
        return {}
    session = CapsuleSession(
        json.loads(config.read_text(encoding="utf-8")), user_agent=f"capsule-verify/{version()}"
    )
    out = {}
    for key in wanted:
        try:
            out[key] = files.sha256(files.download(session, int(key)))
        except CapsuleNotFound:  # noqa: PERF203 - one download per file, the loop is the I/O
            continue  # deleted since the read: compares as missing
    return out


class VerifyError(Exception):
    """Unusable input; one line, exit 1."""


def _plain(value: t.Any) -> t.Any:  # noqa: ANN401 - any JSON value
    """A nested value without the row ids Capsule gives list items."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items()) if k != "id"}
    if isinstance(value, list):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


class Comparer:
    """Turns records of both sides into comparable forms, the backup's through the id map."""

    def __init__(
        self,
        ids: IdMap,
        copy: bool = False,
        kept: t.Mapping[str, t.Any] | None = None,
        hashes: t.Mapping[str, str] | None = None,
    ) -> None:
        """`ids` maps the backup's ids to the destination's, per stream.

        With `copy` (another account) a record the map does not name has no counterpart.
        `kept` is the manifest's attachments (id → name, size, sha256), `hashes` the sha256 of
        the destination's attachment files (by id): attachments compare by name and hash.
        """
        self.ids = ids
        self.copy = copy
        self.kept = kept or {}
        self.hashes = hashes or {}

    def without_files(self, record: t.Mapping[str, t.Any]) -> bool:
        """A backed-up note whose attachment files the backup did not keep (a limit)."""
        return any(
            not (self.kept.get(str(a.get("id"))) or {}).get("sha256")
            for a in record.get("attachments") or ()
            if isinstance(a, dict)
        )

    def attachments(self, items: t.Any, backup: bool) -> list:  # noqa: ANN401 - a record's list
        """A note's attachments as (file name, sha256) pairs."""
        out = []
        for item in items or ():
            if not isinstance(item, dict):
                continue
            key = str(item.get("id"))
            digest = (self.kept.get(key) or {}).get("sha256") if backup else self.hashes.get(key)
            out.append([str(item.get("filename")), digest])
        return sorted(out)

    def mapped(self, stream: str, old: t.Any) -> t.Any:  # noqa: ANN401 - ids as JSON gives them
        """The destination's id of a backed-up id (the same id when it was not recreated)."""
        new = self.ids.get(stream, old)
        return new if new is not None else old

    def key(self, obj: cat.CapsuleObject, record: t.Mapping[str, t.Any], backup: bool) -> str:
        """What pairs a backed-up record with the account's: its (mapped) id or link key."""
        if obj.is_link or "id" not in obj.key_properties:
            parts = []
            for name in obj.key_properties:
                value = record.get(name)
                stream = REFERENCE_STREAMS.get(name)
                parts.append(str(self.mapped(stream, value) if backup and stream else value))
            return "/".join(parts)
        if backup and self.copy and self.ids.get(obj.stream, record.get("id")) is None:
            return f"unmapped:{record.get('id')}"
        return str(self.mapped(obj.stream, record.get("id")) if backup else record.get("id"))

    def form(self, obj: cat.CapsuleObject, record: t.Mapping[str, t.Any], backup: bool) -> dict:
        """The record's content as compared: references by (mapped) id, tags by name, ..."""
        out: dict[str, t.Any] = {}
        skip = obj.all_read_only | {"id", "custom_fields"} | LIMITED_FIELDS.get(obj.stream, set())
        if obj.link_item_key:
            skip = skip | {obj.link_item_key}
        for key, value in record.items():
            if key in skip or key.startswith("_sdc_"):
                continue
            if key == "attachments" and obj.stream == "entries":
                out[key] = self.attachments(value, backup) or None
                continue
            stream = REFERENCE_STREAMS.get(key)
            if is_ref(obj.schema.get(key)):
                rid = value.get("id") if isinstance(value, dict) else None
                if rid is None:
                    out[key] = None
                else:
                    out[key] = self.mapped(stream, rid) if backup and stream else rid
            elif stream and not isinstance(value, (dict, list)):
                out[key] = self.mapped(stream, value) if backup and value is not None else value
            elif key == "tags":
                out[key] = sorted(
                    str(tag.get("name")) for tag in value or () if isinstance(tag, dict)
                )
            elif key == "fields":
                definitions = obj.custom_fields or ""
                out[key] = sorted(
                    (
                        str(
                            self.mapped(definitions, (i.get("definition") or {}).get("id"))
                            if backup
                            else (i.get("definition") or {}).get("id")
                        ),
                        str(i.get("value")),
                    )
                    for i in value or ()
                    if isinstance(i, dict)
                )
            elif key in CONTACT_LISTS or isinstance(value, (dict, list)):
                out[key] = _plain(value) if value else None
            else:
                out[key] = value
        return out


def compare(
    expected: dict[str, list[dict]],
    found: dict[str, list[dict]],
    ids: IdMap,
    copy: bool = False,
    kept: t.Mapping[str, t.Any] | None = None,
    hashes: t.Mapping[str, str] | None = None,
) -> dict[str, t.Any]:
    """The report: per stream expected/found/differing/missing/limits, and some details."""
    comparer = Comparer(ids, copy, kept, hashes)
    without_files = 0
    streams: dict[str, dict[str, int]] = {}
    details: list[dict] = []
    # Users with no counterpart whose records a restore gave the default owner: a limit.
    reassigned = set(ids.as_dict().get(REASSIGNED, {}))
    owners_reassigned = 0
    # The streams a restore writes; the rest are matched by name, never written (restore_plan).
    for stream in WRITTEN:
        if stream not in expected:
            continue
        obj = cat.get(stream)
        have = {comparer.key(obj, r, backup=False): r for r in found.get(stream) or ()}
        counts = {
            "expected": 0,
            "found": 0,
            "differing": 0,
            "missing": 0,
            "limits": 0,
            "not_in_backup": 0,
        }
        shown = 0
        paired: set[str] = set()
        for record in expected[stream]:
            paired.add(comparer.key(obj, record, backup=True))
            if limit_of(stream, record):
                counts["limits"] += 1
                continue
            counts["expected"] += 1
            owner = record.get("owner")
            if str(owner.get("id") if isinstance(owner, dict) else owner) in reassigned:
                owners_reassigned += 1
            key = comparer.key(obj, record, backup=True)
            other = have.get(key)
            if other is None:
                counts["missing"] += 1
                if shown < DETAILS_PER_STREAM:
                    shown += 1
                    details.append(
                        {"stream": stream, "backup_id": _key_of(obj, record), "missing": True}
                    )
                continue
            counts["found"] += 1
            mine, theirs = comparer.form(obj, record, True), comparer.form(obj, other, False)
            if stream == "entries" and comparer.without_files(record):
                without_files += 1  # the backup kept no files: nothing to compare them with
                mine.pop("attachments", None)
                theirs.pop("attachments", None)
            fields = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            if fields:
                counts["differing"] += 1
                if shown < DETAILS_PER_STREAM:
                    shown += 1
                    details.append(
                        {
                            "stream": stream,
                            "backup_id": _key_of(obj, record),
                            "id": key,
                            "fields": {f: [mine.get(f), theirs.get(f)] for f in fields},
                        }
                    )
        # Records the account holds that the backup lacks: a backup that missed them (a read cut
        # short), or records created since. A copy may hold records of its own: counted, not
        # a difference, no details.
        for key in have:
            if key in paired:
                continue
            counts["not_in_backup"] += 1
            if not copy and shown < DETAILS_PER_STREAM:
                shown += 1
                details.append({"stream": stream, "id": key, "not_in_backup": True})
        streams[stream] = counts
    problems = sum(
        c["differing"] + c["missing"] + (0 if copy else c["not_in_backup"])
        for c in streams.values()
    )
    limits = {
        "owners_reassigned": owners_reassigned,
        "notes_with_attachments_kept_without_files": without_files,
    }
    return {"differences": problems, "streams": streams, "limits": limits, "details": details}


def _key_of(obj: cat.CapsuleObject, record: t.Mapping[str, t.Any]) -> str:
    return "/".join(str(record.get(k)) for k in obj.key_properties)


def table(report: t.Mapping[str, t.Any]) -> str:
    """The short table for people."""
    head = (
        f"{'stream':<26}{'expected':>9}{'found':>7}{'differing':>10}{'missing':>8}{'limits':>7}"
        f"{'not in backup':>14}"
    )
    lines = [head]
    for stream, c in report["streams"].items():
        lines.append(
            f"{stream:<26}{c['expected']:>9}{c['found']:>7}{c['differing']:>10}"
            f"{c['missing']:>8}{c['limits']:>7}{c['not_in_backup']:>14}"
        )
    for name, count in (report.get("limits") or {}).items():
        if count:
            lines.append(f"limit: {count} {name.replace('_', ' ')} (explained, not a difference)")
    lines.append(f"{report['differences']} difference(s) outside the documented limits")
    return "\n".join(lines)


DESCRIPTION = "Compare an account (read through tap-capsule) with a backup folder."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`capsule verify`'s options (`--mode` as `capsule restore` names it)."""
    parser.add_argument("--config", required=True, help="tap-capsule config of the account")
    parser.add_argument("backup", metavar="BACKUP_DIR", help="a folder target-capsule-backup wrote")
    parser.add_argument(
        "--id-map", help="old id -> new id per stream (written by capsule restore or capsule undo)"
    )
    parser.add_argument(
        "--mode",
        choices=("same", "copy"),
        default="same",
        help="copy: the account is a copy (capsule restore --mode copy), so records pair only "
        "through the id map",
    )
    # The flag's old spelling, kept for one release.
    parser.add_argument("--copy", action="store_true", help=argparse.SUPPRESS)


def main(argv: list[str] | None = None, prog: str = "capsule verify") -> int:
    """Entry point of `capsule verify`."""
    parser = Parser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = json.loads(Path(args.config).read_text(encoding="utf-8"))
        if problem := unknown_setting(prog, config, tap_setting_names(), "`tap-capsule --about`"):
            raise VerifyError(problem)
        expected = read_backup(Path(args.backup))
        kept = read_manifest(Path(args.backup)).get("attachments") or {}
        ids = IdMap(args.id_map) if args.id_map else IdMap()
        if args.id_map and not Path(args.id_map).is_file():
            raise VerifyError(f"--id-map {args.id_map} does not exist")
        found = read_account(Path(args.config))
        hashes = account_hashes(Path(args.config), found, kept)
    except (VerifyError, BackupError, CapsuleError, OSError, ValueError) as exc:
        return error(prog, str(exc))
    if args.copy:
        print(
            f"{prog}: --copy is now --mode copy; the old flag goes in the next release",
            file=sys.stderr,
        )
    report = compare(expected, found, ids, args.copy or args.mode == "copy", kept, hashes)
    print(json.dumps(report))
    print(table(report), file=sys.stderr)
    return 1 if report["differences"] else 0


if __name__ == "__main__":
    sys.exit(main())
