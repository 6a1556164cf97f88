"""One writer per Capsule account (and per output folder) on a machine.

Capsule has no transactions and no idempotency key, so two runs writing to one account at once race:
both look up the same email, neither finds it, and both create the person. A run that writes (the
target, `capsule undo`, `capsule restore`) therefore takes an exclusive lock on its account first,
and a backup on its folder. The lock is an `flock` on a small file, held until the process exits:
the operating system releases it when the process ends, however it ends (a `kill -9` included), so
no stale lock ever needs cleaning up. The file names the holder (command, process id, host, start
time) for the message the next run shows.

An `flock` only sees processes of the same machine. Runs on different machines (two CI runners, a
laptop and a server) cannot see each other's locks, so they must never overlap on one account:
schedule them apart.

Lock files live in `$CAPSULE_LOCK_DIR`, else in a private folder of the temporary directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import socket
import sys
import tempfile
import typing as t
from pathlib import Path

from tap_capsule.private_files import open_private, private_folder


class LockError(Exception):
    """Another run holds the lock; the message names it."""


def lock_folder() -> Path:
    """Where lock files live: `$CAPSULE_LOCK_DIR`, or `<tmp>/capsule-locks-<uid>` (0700)."""
    configured = os.environ.get("CAPSULE_LOCK_DIR")
    if configured:
        return private_folder(configured)
    return private_folder(Path(tempfile.gettempdir()) / f"capsule-locks-{os.getuid()}")


def account_key(api_url: str, site: t.Mapping[str, t.Any] | None) -> str:
    """What names an account for its lock: the API's address and the site's address."""
    where = str((site or {}).get("url") or (site or {}).get("subdomain") or "")
    return f"account {where or 'unknown'} at {api_url.rstrip('/')}"


class Lock:
    """An exclusive, non-blocking lock on one name, released on `release()` or process exit."""

    def __init__(self, name: str, purpose: str) -> None:
        """`name` says what is locked (an account, a folder); `purpose` what the holder does."""
        self.name = name
        self.purpose = purpose
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]
        self.path = lock_folder() / f"{digest}.lock"
        self._file: t.IO[str] | None = None

    def acquire(self) -> Lock:
        """Take the lock now, or raise LockError naming the run that holds it."""
        if self._file is not None:
            return self
        handle = t.cast("t.IO[str]", open_private(self.path, "a"))
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise LockError(
                f"another run is writing to the {self.name}: {self.holder()}. Wait for it to "
                f"finish (its lock is released when it exits; lock file {self.path})"
            ) from None
        handle.truncate(0)
        handle.write(
            json.dumps(
                {
                    "holder": self.purpose,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "command": " ".join(Path(sys.argv[0]).name.split()[:1] + sys.argv[1:2]),
                    "since": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "locks": self.name,
                }
            )
        )
        handle.flush()
        self._file = handle
        return self

    def holder(self) -> str:
        """Who holds the lock, as its file says."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        if not isinstance(info, dict) or not info:
            return "a process that has not said who it is yet"
        return (
            f"{info.get('holder', 'a run')} (process {info.get('pid')} on {info.get('host')}, "
            f"since {info.get('since')})"
        )

    def release(self) -> None:
        """Give the lock up (exiting does it too)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> Lock:
        """Acquire."""
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        """Release."""
        self.release()
