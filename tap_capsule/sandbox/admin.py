"""The sandbox's own endpoints under `/_sandbox/`, and Capsule's OAuth token endpoint.

Admin calls are how tests steer a sandbox (faults, rate limit, clock, edits "as if in Capsule's
UI", request counts, a dump of the state); they are neither counted nor rate-limited.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t
from urllib.parse import parse_qsl

from tap_capsule.sandbox.errors import ApiError
from tap_capsule.sandbox.faults import FaultConfig
from tap_capsule.sandbox.wire import METHOD_NOT_ALLOWED_BODY, NOT_FOUND_BODY, Response

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.sandbox.app import App


def oauth(app: App, method: str, body: bytes) -> Response:
    """`POST /oauth/token`: the refresh grant, with refresh-token rotation."""
    if method != "POST":
        return Response.json(405, METHOD_NOT_ALLOWED_BODY)
    app.count_oauth()
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    status, payload = app.auth.refresh(form)
    return Response.json(status, payload, {"Cache-Control": "no-store"})


def admin(app: App, method: str, path: str, body: bytes) -> Response:
    """One admin call; a bad body is a 400 with the reason, an unknown path a 404."""
    try:
        data = json.loads(body.decode("utf-8") or "{}") if body else {}
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return _dispatch(app, method, path, data)
    except ApiError as exc:
        return Response.json(exc.status, exc.body)
    except (ValueError, TypeError) as exc:
        return Response.json(400, {"message": str(exc)})


def _dispatch(app: App, method: str, path: str, data: dict) -> Response:
    if method == "GET" and path == "/requests":
        return Response.json(200, app.requests())
    if method == "POST" and path == "/requests/reset":
        app.reset_requests()
        return Response.json(200, {"ok": True})
    if method == "GET" and path == "/state":
        return Response.json(200, app.store.state())
    if method == "POST" and path == "/faults":
        app.faults.replace(FaultConfig.from_dict(data))
        return Response.json(200, dataclasses.asdict(app.faults.config))
    if method == "POST" and path == "/ratelimit":
        app.rate.configure(data.get("limit", 4000), data.get("window", 3600))
        return Response.json(200, app.rate.peek())
    if method == "GET" and path == "/held":
        return Response.json(200, {"held": app.faults.held})
    if method == "POST" and path == "/release":
        return Response.json(200, {"released": app.faults.release()})
    if method == "POST" and path == "/site":
        site = {k: data[k] for k in ("url", "subdomain", "name") if isinstance(data.get(k), str)}
        if not site:
            raise ValueError("give the site's url, subdomain or name as strings")
        app.store.site.update(site)
        return Response.json(200, {"site": app.store.site})
    if method == "POST" and path == "/clock":
        app.clock.set(data.get("now"))
        return Response.json(200, {"now": app.clock.stamp()})
    if method == "POST" and path in ("/touch", "/delete", "/restrict"):
        return _edit(app, path, data)
    return Response.json(404, NOT_FOUND_BODY)


def _edit(app: App, path: str, data: dict) -> Response:
    """A change made in Capsule's UI: touch (edit), delete, or restrict (hide from this user)."""
    store = app.store
    stream, rid = data.get("stream"), data.get("id")
    if stream not in store.rows or not isinstance(rid, int):
        raise ValueError(f"unknown stream {stream!r} or bad id {rid!r}")
    if path == "/touch":
        rec = store.touch(stream, rid, data.get("changes") or {})
        return Response.json(200, {"record": rec})
    with store.lock:
        stream, _ = store.find(stream, rid)
        store.remove(stream, rid, restricted=path == "/restrict")
    return Response.json(200, {"ok": True})
