"""Attachments as Capsule documents them: upload the raw file, attach it to a note, download it.

`POST /attachments/upload` takes the file as the raw request body (not multipart), its name in
the URL-encoded `X-Attachment-Filename` header and its type in `Content-Type`, and answers
`{"upload": {"token": ...}}`. A note takes the token on `POST /entries` or `PUT /entries/{id}` as
`attachments: [{"token": ...}]`; the entry then lists `{id, filename, contentType, size}`.
`GET /attachments/{id}` answers the file's bytes ("Show an Attachment's Contents").
"""

from __future__ import annotations

import typing as t
import uuid
from urllib.parse import quote, unquote

from tap_capsule.sandbox.errors import NotFoundError, ValidationFailedError, error
from tap_capsule.sandbox.models import ref_id
from tap_capsule.sandbox.wire import Request, Response

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.sandbox.tables import Tables
    from tap_capsule.sandbox.views import Views

# The size limit one client quotes as Capsule's documented one (25 MB).
MAX_BYTES = 25 * 1024 * 1024
ATTACHMENT_ID_BASE = 71000


class Files:
    """Uploaded files waiting for a note (by token) and attached files (by attachment id)."""

    def __init__(self) -> None:
        """Nothing uploaded yet."""
        self.uploads: dict[str, dict] = {}
        self.attached: dict[int, bytes] = {}
        self._next = ATTACHMENT_ID_BASE

    def upload(self, content: bytes, filename: str, content_type: str) -> str:
        """Keep an upload until a note takes it; its token."""
        token = f"u1/{uuid.uuid4()}/{filename}"
        self.uploads[token] = {
            "content": content,
            "filename": filename,
            "contentType": content_type,
        }
        return token

    def attach(self, rows: list[dict], items: t.Any) -> list[dict]:  # noqa: ANN401 - whatever a client sent
        """An entry's attachments after a write: tokens become attachments, `_delete` removes."""
        if items is None:
            return rows
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValidationFailedError(
                [error("entry", "attachments", "attachments must be a list of objects")]
            )
        out = [dict(r) for r in rows]
        for item in items:
            token = item.get("token")
            if token is not None:
                upload = self.uploads.pop(str(token), None)
                if upload is None:
                    raise ValidationFailedError(
                        [error("entry", "attachments", "attachment token is invalid")]
                    )
                self._next += 1
                self.attached[self._next] = upload["content"]
                out.append(
                    {
                        "id": self._next,
                        "filename": upload["filename"],
                        "contentType": upload["contentType"],
                        "size": len(upload["content"]),
                    }
                )
            elif item.get("_delete"):
                rid = ref_id(item.get("id"))
                if all(r.get("id") != rid for r in out):
                    raise NotFoundError()
                out = [r for r in out if r.get("id") != rid]
        return out


def upload(v: Views, req: Request) -> Response:
    """`POST /attachments/upload`: the raw body is the file."""
    store: Tables = v.store
    name = unquote(str(req.headers.get("X-Attachment-Filename") or "")).strip()
    if not name:
        raise ValidationFailedError(
            [error("upload", "X-Attachment-Filename", "X-Attachment-Filename is required")]
        )
    if len(req.body) > MAX_BYTES:
        raise ValidationFailedError([error("upload", "file", "file is too large")])
    content_type = str(req.headers.get("Content-Type") or "application/octet-stream")
    token = store.files.upload(req.body, name, content_type)
    return Response.json(200, {"upload": {"token": token}})


def download(v: Views, req: Request) -> Response:
    """`GET /attachments/{id}`: the file's bytes, with its type and name."""
    store: Tables = v.store
    aid = int(req.params["id"])
    content = store.files.attached.get(aid)
    if content is None:
        raise NotFoundError()
    meta: dict = next(
        (
            a
            for e in store.rows.get("entries", {}).values()
            for a in e.get("attachments") or ()
            if a.get("id") == aid
        ),
        {},
    )
    name = quote(str(meta.get("filename") or aid))
    headers = {
        "Content-Type": str(meta.get("contentType") or "application/octet-stream"),
        "Content-Disposition": f"attachment; filename*=UTF-8''{name}",
    }
    return Response(200, content, headers)
