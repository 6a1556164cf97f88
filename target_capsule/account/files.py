"""Attachment files in a backup folder: stored once each, named by their content's sha256.

The backup downloads each attachment (`GET /attachments/{id}`, one request per file) into
`attachments/<sha256>`; identical files share one copy. The manifest's `attachments` section maps
each attachment id to `{filename, contentType, size, sha256}`. A restore uploads the file again
(`POST /attachments/upload`, the raw bytes, one request per file) and gives the token to the
recreated note; verify downloads the destination's files and compares their hashes.
"""

from __future__ import annotations

import hashlib
import typing as t
from urllib.parse import quote

from tap_capsule.api_client import (
    AmbiguousWriteError,
    raise_for_capsule_status,
    response_json,
)
from tap_capsule.private_files import write_private

if t.TYPE_CHECKING:
    from pathlib import Path

    from tap_capsule.api_client import CapsuleSession

FOLDER = "attachments"
UPLOAD_ATTEMPTS = 3  # an upload whose answer was lost leaves only an unused token: send again


class FileError(Exception):
    """An attachment file that cannot be read, written or moved."""


def sha256(content: bytes) -> str:
    """The hex sha256 of a file's bytes (its name in the backup)."""
    return hashlib.sha256(content).hexdigest()


def download(session: CapsuleSession, attachment_id: int) -> bytes:
    """The bytes of one attachment ("Show an Attachment's Contents")."""
    response = session.request(
        "GET", f"{session.api_url}/attachments/{int(attachment_id)}", timeout=session.timeout
    )
    raise_for_capsule_status(response)
    return response.content


def store(folder: Path, content: bytes) -> str:
    """Keep `content` under its hash (once: an existing copy is kept); the hash."""
    digest = sha256(content)
    target = folder / FOLDER / digest
    if not target.is_file():
        write_private(target, content)  # 0600 in a 0700 folder, renamed into place
    return digest


def load(folder: Path, digest: str) -> bytes | None:
    """A stored file's bytes, checked against its hash (None when absent or damaged)."""
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise FileError(f"attachment hash {digest!r} is not a sha256")
    path = folder / FOLDER / digest
    if not path.is_file():
        return None
    content = path.read_bytes()
    return content if sha256(content) == digest else None


def upload(session: CapsuleSession, content: bytes, filename: str, content_type: str) -> str:
    """Upload a file for a note; the token Capsule gives it."""
    last: Exception | None = None
    for _ in range(UPLOAD_ATTEMPTS):
        try:
            response = session.request(
                "POST",
                f"{session.api_url}/attachments/upload",
                data=content,
                headers={
                    "Content-Type": content_type or "application/octet-stream",
                    "X-Attachment-Filename": quote(filename or "attachment"),
                },
                timeout=session.timeout,
            )
            raise_for_capsule_status(response)
        except AmbiguousWriteError as exc:
            last = exc
            continue
        token = ((response_json(response) or {}).get("upload") or {}).get("token")
        if not token:
            raise FileError("Capsule's answer to an upload carries no token")
        return str(token)
    raise FileError(f"uploading {filename!r} failed {UPLOAD_ATTEMPTS} times: {last}")
