"""`capsule backup`: `tap-capsule | target-capsule-backup` for users without Meltano.

A shell pipe hides the tap's failure: without `pipefail` the pipe's status is the target's, and the
target sees only an end of input. Here the tap's output is passed on by this process, so when the
tap fails the backup target is stopped before it can finish, the folder stays unfinished (no
`manifest.json`), and the command exits 1 with the tap's last line.

The tap reads every stream, the link and track streams included (`child_streams`), and keeps
tombstones out (`tombstones: off`): a backup holds what exists.

An unfinished backup (killed, or its tap failed) resumes: run the same command on the same folder.
The target's `checkpoint.json` there is the tap's last STATE, so the tap continues each read from
its checkpoint and the target continues its files.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import typing as t
from pathlib import Path

from tap_capsule.cli import tap_setting_names
from tap_capsule.setting_names import unknown_setting
from target_capsule.account.backup import BACKUP_SETTINGS, CHECKPOINT, MANIFEST
from target_capsule.account.cli import Parser, error
from target_capsule.account.progress import relay_stderr

if t.TYPE_CHECKING:
    import argparse

DESCRIPTION = (
    "Read every stream of an account into a backup folder: tap-capsule piped into "
    "target-capsule-backup, without Meltano."
)
CHUNK = 1 << 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`capsule backup`'s options."""
    parser.add_argument(
        "--config", required=True, help="tap-capsule's config JSON file (token, api_url)"
    )
    parser.add_argument(
        "--backup-dir",
        required=True,
        help="the folder to write (a new or unfinished one; a finished backup is refused)",
    )


def executable(name: str) -> str | None:
    """The named console script of this installation, else the one on PATH."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def main(argv: list[str] | None = None, prog: str = "capsule backup") -> int:
    """Entry point of `capsule backup`."""
    parser = Parser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = Path(args.config)
    if not config.is_file():
        return error(prog, f"--config {config} does not exist")
    try:  # one line for a misspelt setting, before either command starts
        settings = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return error(prog, f"cannot read --config {config}: {exc}")
    known = tap_setting_names() | set(BACKUP_SETTINGS)
    if isinstance(settings, dict) and (problem := unknown_setting(prog, settings, known)):
        return error(prog, problem)
    tap, target = executable("tap-capsule"), executable("target-capsule-backup")
    if tap is None or target is None:
        return error(prog, "tap-capsule and target-capsule-backup must be installed beside it")
    with tempfile.TemporaryDirectory() as folder:
        # Settings on top of the user's config, one file per command (each knows its own);
        # no secret goes into these files.
        overlays = {
            "tap": {"child_streams": True, "tombstones": "off"},
            "target": {"backup_dir": args.backup_dir},
        }
        commands = {"tap": [tap], "target": [target]}
        for name, settings in overlays.items():
            overlay = Path(folder) / f"{name}.json"
            overlay.write_text(json.dumps(settings), encoding="utf-8")
            overlay.chmod(0o600)
            commands[name] += ["--config", str(config), "--config", str(overlay)]
        resume = Path(args.backup_dir) / CHECKPOINT
        if resume.is_file() and not (Path(args.backup_dir) / MANIFEST).exists():
            print(f"{prog}: resuming the unfinished backup in {args.backup_dir}", file=sys.stderr)
            commands["tap"] += ["--state", str(resume)]
        return _pipe(prog, commands["tap"], commands["target"], args.backup_dir)


def _pipe(prog: str, tap_command: list[str], target_command: list[str], folder: str) -> int:
    """Run the tap into the target; stop the target unfinished when the tap fails."""
    tap = subprocess.Popen(tap_command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    target = subprocess.Popen(target_command, stdin=subprocess.PIPE)
    if tap.stdout is None or tap.stderr is None or target.stdin is None:  # pragma: no cover
        raise RuntimeError("subprocess pipes were not created")
    tap_log: list[bytes] = []
    relay = threading.Thread(target=relay_stderr, args=(tap.stderr, tap_log), daemon=True)
    relay.start()
    try:
        while chunk := os.read(tap.stdout.fileno(), CHUNK):
            target.stdin.write(chunk)
    except BrokenPipeError:  # the target stopped first; its own message says why
        tap.kill()
    tap_code = tap.wait()
    relay.join()
    if tap_code != 0:
        target.kill()
        target.wait()
        last = next((ln for ln in reversed(tap_log) if ln.strip()), b"")
        reason = last.decode("utf-8", "replace").strip() or "no output"
        return error(
            prog,
            f"tap-capsule failed (exit {tap_code}): {reason}. The backup in {folder} is "
            "unfinished (no manifest.json)",
        )
    with contextlib.suppress(BrokenPipeError):
        target.stdin.close()
    if target.wait() != 0:
        return error(prog, f"target-capsule-backup failed; the backup in {folder} is unfinished")
    return 0
