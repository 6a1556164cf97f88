"""Files that hold personal data or secrets: readable by their owner only, whatever the umask.

Change logs, rejects files, id maps, backups, pending files and the OAuth token cache all hold
names, email addresses or tokens. Each is created with mode 0600, and every folder created for one
gets 0700. The mode is set with `chmod` after creation because the umask only ever takes bits away:
a umask of 0 would otherwise leave `open()`'s 0666 in place. A file that already exists is made
private again when it is opened for writing (an older version may have left it 0644). Folders the
user made beforehand (`/tmp`, a home directory) are left as they are: only the ones created here
are tightened.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import typing as t
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(folder: str | os.PathLike) -> Path:
    """`folder` and every missing parent, the created ones with mode 0700."""
    path = Path(folder).expanduser()
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for created in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            created.mkdir(mode=FOLDER_MODE)
            created.chmod(FOLDER_MODE)
    return path


def make_private(path: str | os.PathLike) -> None:
    """Tighten an existing file (or folder) to 0600 (0700) if it is ours."""
    target = Path(path)
    with contextlib.suppress(OSError):
        target.chmod(FOLDER_MODE if target.is_dir() else FILE_MODE)


def open_private(
    path: str | os.PathLike, mode: str = "a", *, encoding: str | None = "utf-8"
) -> t.IO[t.Any]:
    """`open(path, mode)` for writing, the file created (or made) 0600 and its folders 0700.

    Modes: "a"/"w" (text) and "ab"/"wb" (binary); "w" truncates.
    """
    if mode not in ("a", "w", "ab", "wb"):
        raise ValueError(f"open_private writes only; mode {mode!r}")
    target = Path(path).expanduser()
    private_folder(target.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(target, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    if "b" in mode:
        return os.fdopen(fd, mode)
    return os.fdopen(fd, mode, encoding=encoding)


def write_private(path: str | os.PathLike, data: str | bytes) -> None:
    """Replace `path` atomically (a temporary file renamed) with a private file holding `data`.

    A kill leaves the old file or the new one, never a part of either.
    """
    target = Path(path).expanduser()
    private_folder(target.parent)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
