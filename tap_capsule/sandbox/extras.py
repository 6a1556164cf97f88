"""Handlers of documented endpoints that no catalogue entry describes.

An organisation's people, a party's opportunities, cases and entries, search, the legacy
`/milestones` (only the oldest active pipeline's, each naming it), the current user, a board's
stages, the site and jobs. Each takes the views and the request.
"""

from __future__ import annotations

import typing as t

from tap_capsule.sandbox import filters
from tap_capsule.sandbox.errors import NotFoundError
from tap_capsule.sandbox.wire import Request, Response

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.sandbox.views import Views

# The per-record entries list documents perPage up to 50.
ENTRIES_MAX_PER_PAGE = 50


def people(v: Views, req: Request) -> Response:
    """`GET /parties/{id}/people`: the people of an organisation (none for a person)."""
    rows = v.store.rows["parties"]
    org = rows.get(int(req.params["partyId"]))
    if org is None:
        raise NotFoundError()
    o = v.store.objects["parties"]
    return v.render_page(req, o, v.referring(o, "organisation", org["id"]))


def of_party(v: Views, req: Request, stream: str) -> Response:
    """`GET /parties/{id}/opportunities` and `/kases`."""
    pid = int(req.params["partyId"])
    if pid not in v.store.rows["parties"]:
        raise NotFoundError()
    o = v.store.objects[stream]
    return v.render_page(req, o, v.referring(o, "party", pid))


def entries_of(v: Views, req: Request, parent_stream: str) -> Response:
    """`GET /{parties|opportunities|kases}/{id}/entries`, newest first, at most 50 a page."""
    parent = v.store.objects[parent_stream]
    pid = int(req.params["parentId"])
    if pid not in v.store.rows[parent_stream]:
        raise NotFoundError()
    o = v.store.objects["entries"]
    ids = v.referring(o, parent.item_key, pid)
    return v.render_page(req, o, ids, max_per_page=ENTRIES_MAX_PER_PAGE)


def search(v: Views, req: Request, stream: str) -> Response:
    """`GET /{parties|opportunities|kases}/search?q=`: names and email addresses, ignoring case."""
    q = req.query.get("q", "").strip().casefold()
    o = v.store.objects[stream]
    rows = v.store.rows[stream]

    def text(rec: dict) -> str:
        bits = [rec.get("name"), rec.get("firstName"), rec.get("lastName")]
        bits += [e.get("address") for e in rec.get("emailAddresses") or []]
        return " ".join(str(b) for b in bits if b).casefold()

    return v.render_page(req, o, [i for i in v.ordered(o) if q in text(rows[i])])


def legacy_milestones(v: Views, req: Request) -> Response:
    """`GET /milestones`: only the oldest active pipeline's milestones (a known trap)."""
    pipelines = [p for p in v.store.rows["pipelines"].values() if not p.get("deleted")]
    o = v.store.objects["milestones"]
    rows = v.store.rows["milestones"]
    ids: list[int] = []
    if pipelines:
        oldest = min(pipelines, key=lambda p: (p.get("createdAt") or "", p["id"]))
        ids = [i for i in v.ordered(o) if rows[i].get("pipelineId") == oldest["id"]]
    # Each item names its pipeline, as live clients record (the list spans one pipeline only).
    return v.render_page(req, o, ids, embeds=False)


def current_user(v: Views, req: Request) -> Response:
    """`GET /users/current`: the token's user."""
    user = v.store.rows["users"].get(v.store.token_user_id)
    if user is None:
        raise NotFoundError()
    return v.one(v.store.objects["users"], user, req)


def board_stages(v: Views, req: Request) -> Response:
    """`GET /boards/{id}/stages`: a board's stages, deleted board or not."""
    bid = int(req.params["boardId"])
    if bid not in v.store.rows["boards"]:
        raise NotFoundError()
    o = v.store.objects["stages"]
    rows = t.cast("dict", v.store.rows["stages"])
    ids = [i for i in v.ordered(o) if (rows[i].get("board") or {}).get("id") == bid]
    ids = filters.stages(v.store, req, rows, ids, on_board=True)
    return v.render_page(req, o, ids)  # `embed=meta` adds the total count


def site(v: Views, req: Request) -> Response:
    """`GET /site`: the account's address and name."""
    return Response.json(200, {"site": v.store.site})


def job(v: Views, req: Request) -> Response:
    """`GET /jobs/{id}`: a scheduled delete's progress."""
    found = v.store.jobs.get(int(req.params["jobId"]))
    if found is None:
        raise NotFoundError()
    return Response.json(200, {"job": found})
