"""What crosses the wire: a parsed request, a response to send, and Capsule's JSON conventions.

Kept free of any emulator logic so the routing, the handlers and the HTTP adapter all speak the same
two small types, and a handler can be called in a test without a socket.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t

from tap_capsule.sandbox.errors import BadRequestError

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject

API = "/api/v2"
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
NOT_FOUND_BODY = {"message": "Could not find resource"}
METHOD_NOT_ALLOWED_BODY = {"message": "Method not allowed"}
JSON_TYPE = "application/json; charset=utf-8"


def dumps(value: t.Any) -> bytes:  # noqa: ANN401 - any JSON value
    """Minified UTF-8 JSON, as Capsule sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclasses.dataclass
class Response:
    """An answer to send; `drop` closes the connection without one (an injected fault)."""

    status: int
    body: bytes = b""
    headers: dict = dataclasses.field(default_factory=dict)
    drop: bool = False
    delay: float = 0.0
    hold: t.Callable[[], None] | None = None  # blocks until a test releases the answer

    @classmethod
    def json(cls, status: int, value: t.Any, headers: dict | None = None) -> Response:  # noqa: ANN401 - any JSON value
        """A JSON answer with Capsule's content type."""
        return cls(status, dumps(value), {"Content-Type": JSON_TYPE, **(headers or {})})


@dataclasses.dataclass
class Request:
    """One API request: `path` is below /api/v2 and has no query; `params` come from the route."""

    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: t.Any
    body: bytes
    params: dict[str, str] = dataclasses.field(default_factory=dict)


def wrapped_body(req: Request, o: CapsuleObject) -> dict:
    """The record inside a write's single-key wrapper (`{"party": {...}}`), or a 400 saying why."""
    try:
        data = json.loads(req.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError):
        raise BadRequestError("Request body is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get(o.item_key), dict):
        raise BadRequestError(f'Request body must be a JSON object wrapped in "{o.item_key}"')
    return data[o.item_key]
