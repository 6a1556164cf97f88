"""Handlers of the routes every catalogue entry gets.

List, show (one or several ids), create, update, delete, structured filters, additional-party
links and the deleted feed. Each takes the views, the request and the catalogue entry it serves.
"""

from __future__ import annotations

import typing as t

from tap_capsule import catalogue
from tap_capsule.catalogue import INSERT, UPDATE
from tap_capsule.sandbox import conditions, filters
from tap_capsule.sandbox.errors import BadRequestError, ValidationFailedError, error
from tap_capsule.sandbox.filters import LIST_FILTERS
from tap_capsule.sandbox.lazy import GeneratedTable
from tap_capsule.sandbox.models import SINCE_LISTS
from tap_capsule.sandbox.store import check_write_allowed
from tap_capsule.sandbox.wire import API, Request, Response, wrapped_body

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject
    from tap_capsule.sandbox.views import Views

# Deleted feeds whose `since` is required (the others list everything without it).
DELETED_SINCE_REQUIRED = frozenset({"parties"})
MAX_MULTI_GET = 10


def list_records(v: Views, req: Request, o: CapsuleObject) -> Response:
    """`GET /parties` and the like: order, parent, `since`, the endpoint's filter, one page."""
    rows = v.store.rows[o.stream]
    pid = v.parent(req, o)
    if isinstance(rows, GeneratedTable):  # computed from the index range and the overlay
        since = v.since(req) if o.since or o.item_key in SINCE_LISTS else None
        wanted = filters.statuses(req, {"OPEN"}) if o.item_key == "task" else None
        return v.render_page(req, o, rows.select(since, "status" if wanted else None, wanted))
    ids = t.cast("list", v.ordered(o))  # an in-memory table's order is a list
    if pid is not None:
        ids = [i for i in ids if rows[i].get(o.parent_key) == pid]
    since = v.since(req) if o.since or o.item_key in SINCE_LISTS else None
    if since is not None:
        ids = [i for i in ids if (rows[i].get("updatedAt") or "") > since]
    list_filter = LIST_FILTERS.get(o.item_key)
    if list_filter is not None:
        ids = list_filter(v.store, req, t.cast("dict", rows), ids)
    return v.render_page(req, o, ids)


def show(v: Views, req: Request, o: CapsuleObject) -> Response:
    """One record, or several by comma-joined ids (up to 10; 404 if any is missing)."""
    embeds = v.embeds(o, req)
    raw = req.params["id"]
    if "," in raw:
        ids = [int(x) for x in raw.split(",")]
        if len(ids) > MAX_MULTI_GET:
            raise BadRequestError(f"at most {MAX_MULTI_GET} ids")
        recs = [v.store.find(o.stream, i) for i in ids]
        return Response.json(
            200, {o.list_key: [v.render(v.store.objects[s], r, embeds) for s, r in recs]}
        )
    stream, rec = v.store.find(o.stream, int(raw))
    return v.one(v.store.objects[stream], rec, req)


def create(v: Views, req: Request, o: CapsuleObject) -> Response:
    """201 with the full record and its `Location`."""
    check_write_allowed(o, INSERT)
    stream, rec = v.store.create(o.stream, wrapped_body(req, o))
    obj = v.store.objects[stream]
    response = v.one(obj, rec, req, status=201)
    response.headers["Location"] = f"{v.origin}{API}{catalogue.fill_path(obj.single_path, rec)}"
    return response


def update(v: Views, req: Request, o: CapsuleObject) -> Response:
    """200 with the merged record."""
    check_write_allowed(o, UPDATE)
    stream, rec = v.store.update(o.stream, int(req.params["id"]), wrapped_body(req, o))
    return v.one(v.store.objects[stream], rec, req)


def delete(v: Views, req: Request, o: CapsuleObject) -> Response:
    """204, or 202 with the job's `Location` when Capsule schedules the delete."""
    job = v.store.delete(o.stream, int(req.params["id"]))
    if job is not None:
        return Response(202, b"", {"Location": f"{v.origin}{API}/jobs/{job}"})
    return Response(204)


def filter_results(v: Views, req: Request, o: CapsuleObject) -> Response:
    """`POST /{entity}/filters/results`: records meeting every condition, paged like the list."""
    query = conditions.parse(req.body)
    rows = v.store.rows[o.stream]
    today = v.store.clock.now().date()
    ids = conditions.select(o.item_key, query, v.ordered(o), rows, today)
    return v.render_page(req, o, ids)


def list_links(v: Views, req: Request, o: CapsuleObject) -> Response:
    """The additional parties of an opportunity or case, as party records."""
    pid = v.parent(req, o)
    parties = v.store.rows["parties"]
    ids = [i for i in v.store.links[o.stream].get(pid, []) if i in parties]  # type: ignore[arg-type]  # a link list always has its parent in the path
    return v.render_page(req, v.store.objects["parties"], ids)


def link_write(v: Views, req: Request, o: CapsuleObject) -> Response:
    """Link (POST) or unlink (DELETE) an additional party."""
    add = req.method == "POST"
    parent_key, child_key = o.parent_key or "", o.child_key or ""
    v.store.link(o.stream, int(req.params[parent_key]), int(req.params[child_key]), add)
    return Response(204)  # both answer 204 with an empty body


def deleted_feed(v: Views, req: Request, o: CapsuleObject) -> Response:
    """`{id, deletedAt}` rows and restricted stubs changed after `since`, newest first."""
    if "since" not in req.query and o.stream in DELETED_SINCE_REQUIRED:
        raise ValidationFailedError([error(o.item_key, "since", "since is required")])
    since = v.since(req)
    deleted = [d for d in v.store.deleted[o.stream] if since is None or d["deletedAt"] > since]
    deleted.sort(key=lambda d: (d["deletedAt"], d["id"]), reverse=True)
    restricted = [
        {k: val for k, val in r.items() if k != "_restrictedAt"}
        for r in sorted(
            v.store.restricted[o.stream],
            key=lambda r: (r["_restrictedAt"], r["id"]),
            reverse=True,
        )
        if since is None or r["_restrictedAt"] > since
    ]
    page, per_page = v.page_params(req)
    start = (page - 1) * per_page
    keys = o.deleted_keys or (o.list_key, "restricted" + o.list_key[:1].upper() + o.list_key[1:])
    body = {
        keys[0]: deleted[start : start + per_page],
        keys[1]: restricted[start : start + per_page],
    }
    more = start + per_page < max(len(deleted), len(restricted))
    return Response.json(200, body, v.paging_headers(req, page, more))
