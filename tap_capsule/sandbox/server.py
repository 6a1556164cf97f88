"""The sandbox's HTTP side: routes built from the catalogue, Capsule's wrappers, paging and errors.

`App` is the whole emulator behind one `handle()` call (no sockets), so the threaded stdlib server
below stays a thin adapter. Routes come from `tap_capsule.catalogue.OBJECTS`: each entry's list
path, single path, create path and deleted feed. Only endpoints the fact sheet documents but the
catalogue does not list (legacy /milestones, /users/current, /site, per-party lists, search, jobs)
are hand-coded here.
"""

from __future__ import annotations

import email.utils

import dataclasses
import json
import re
import socket
import threading
import time
import typing as t
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tap_capsule import catalogue
from tap_capsule.catalogue import INSERT, UPDATE, CapsuleObject
from tap_capsule.sandbox.auth import READ, Auth
from tap_capsule.sandbox.clock import Clock, since_key
from tap_capsule.sandbox.errors import ApiError, BadRequest, NotFound
from tap_capsule.sandbox.faults import FaultConfig, FaultInjector
from tap_capsule.sandbox.ratelimit import RateLimiter
from tap_capsule.sandbox.seed import seed as seed_store
from tap_capsule.sandbox.store import REF_TARGETS, Store, check_write_allowed

API = "/api/v2"
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
# Embeds per endpoint family (fact sheet §2), by wrapper key; other objects use the catalogue's.
EMBEDS = {
    "party": {"tags", "fields", "organisation", "missingImportantFields"},
    "opportunity": {"tags", "fields", "party", "milestone", "missingImportantFields"},
    "kase": {"tags", "fields", "party", "opportunity", "missingImportantFields"},
    "entry": {"party", "kase", "opportunity", "creator", "activityType"},
    "task": {"party", "opportunity", "kase", "owner", "nextTask"},
    "track": {"task", "tasks"},
    "user": {"party"},
    "team": {"memberships"},
}
EMBED_ONLY = frozenset({"tags", "fields", "missingImportantFields", "memberships"})
HIDDEN = {"track": {"definition"}}  # write-only on tracks (fact sheet §4)
NEWEST_FIRST = frozenset({"party", "opportunity", "kase", "task"})
DELETED_SINCE_REQUIRED = frozenset({"parties"})
NOT_FOUND_BODY = {"message": "Could not find resource"}


def dumps(value: t.Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclasses.dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict = dataclasses.field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0

    @classmethod
    def json(cls, status: int, value: t.Any, headers: dict | None = None) -> Response:
        return cls(
            status,
            dumps(value),
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )


@dataclasses.dataclass
class Request:
    method: str
    path: str  # below /api/v2, no query
    raw_query: str
    query: dict[str, str]
    headers: t.Any
    body: bytes
    params: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern
    handler: t.Callable[[Request], Response]
    literals: int


def compile_template(template: str, multi_id: bool = False) -> re.Pattern:
    """`/opportunities/{opportunityId}/tracks` → regex; placeholders match (negative) integer ids."""
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos : m.start()])
        pattern = r"-?\d+(?:,-?\d+)*" if multi_id and m.group(1) == "id" else r"-?\d+"
        out += f"(?P<{m.group(1)}>{pattern})"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]) + r"/?\Z")


class App:
    """One emulated Capsule account: data, auth, rate limit, faults and request counts."""

    def __init__(
        self,
        token: str,
        scale: int = 50,
        seed: int = 1,
        rate_limit: int = 4000,
        rate_window: float = 3600,
        read_only_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        faults: dict | None = None,
        objects: t.Iterable[CapsuleObject] | None = None,
    ) -> None:
        if int(scale) < 0:
            raise ValueError("scale must be >= 0")
        self.objects = tuple(catalogue.OBJECTS if objects is None else objects)
        self.clock = Clock()
        self.store = Store(self.objects, self.clock)
        seed_store(self.store, int(scale), int(seed))
        self.auth = Auth(token, read_only_token, client_id, client_secret, refresh_token)
        self.rate = RateLimiter(rate_limit, rate_window)
        self.faults = FaultInjector(FaultConfig.from_dict(faults))
        self.origin = "http://127.0.0.1"
        self._count_lock = threading.Lock()
        self._orders: dict[tuple[str, str], tuple[int, list]] = {}
        self.reset_requests()
        self.routes: list[Route] = []
        self._build_routes()

    # --- request accounting -------------------------------------------------------------------

    def reset_requests(self) -> None:
        with self._count_lock:
            self.counts = {"total": 0, "writes": 0, "oauth": 0, "by_path": {}, "by_route": {}}

    def _count(self, method: str, path: str, route: str) -> None:
        with self._count_lock:
            c = self.counts
            c["total"] += 1
            if method in WRITE_METHODS:
                c["writes"] += 1
            for key, name in (("by_path", f"{method} {path}"), ("by_route", f"{method} {route}")):
                c[key][name] = c[key].get(name, 0) + 1

    def requests(self) -> dict:
        with self._count_lock:
            return json.loads(json.dumps(self.counts))

    # --- routing ------------------------------------------------------------------------------

    def _add(
        self,
        method: str,
        template: str,
        handler: t.Callable[[Request], Response],
        multi_id: bool = False,
    ) -> None:
        if any(r.method == method and r.template == template for r in self.routes):
            return  # e.g. both track streams share /tracks/{id}; the store tells them apart
        literals = sum(1 for part in template.split("/") if part and not part.startswith("{"))
        self.routes.append(
            Route(method, template, compile_template(template, multi_id), handler, literals)
        )

    def _build_routes(self) -> None:
        streams = {o.stream for o in self.objects}
        for o in self.objects:
            bind = lambda fn, o=o: lambda req: fn(req, o)  # noqa: E731
            if o.deleted_path:
                self._add("GET", o.deleted_path, bind(self.deleted_feed))
            if o.is_link:
                self._add("GET", o.path, bind(self.list_links))
                self._add("POST", o.post_path, bind(self.link_write))
                self._add("DELETE", o.single_path, bind(self.link_write))
                continue
            self._add("GET", o.path, bind(self.list_records))
            self._add("POST", o.post_path, bind(self.create))
            self._add("GET", o.single_path, bind(self.show), multi_id=o.stream == "parties")
            self._add("PUT", o.single_path, bind(self.update))
            self._add("DELETE", o.single_path, bind(self.delete))
        # Documented endpoints the catalogue has no entry for.
        if "parties" in streams:
            self._add("GET", "/parties/{partyId}/people", self.people)
            self._add("GET", "/parties/search", lambda r: self.search(r, "parties"))
        for stream, path in (("opportunities", "/opportunities"), ("cases", "/kases")):
            if stream in streams and "parties" in streams:
                self._add(
                    "GET", f"/parties/{{partyId}}{path}", lambda r, s=stream: self.of_party(r, s)
                )
            if stream in streams:
                self._add("GET", f"{path}/search", lambda r, s=stream: self.search(r, s))
        if "entries" in streams:
            for stream, path in (
                ("parties", "/parties"),
                ("opportunities", "/opportunities"),
                ("cases", "/kases"),
            ):
                if stream in streams:
                    self._add(
                        "GET",
                        f"{path}/{{parentId}}/entries",
                        lambda r, s=stream: self.entries_of(r, s),
                    )
        if "milestones" in streams and "pipelines" in streams:
            self._add("GET", "/milestones", self.legacy_milestones)
        if "users" in streams:
            self._add("GET", "/users/current", self.current_user)
        if "stages" in streams and "boards" in streams:
            self._add("GET", "/boards/{boardId}/stages", self.board_stages)
        self._add("GET", "/site", lambda r: Response.json(200, {"site": self.store.site}))
        self._add("GET", "/jobs/{jobId}", self.job)
        self.routes.sort(key=lambda r: -r.literals)

    def match(self, method: str, path: str) -> tuple[Route | None, dict, bool]:
        """(route, params, path_known): path_known without a route means 405."""
        known = False
        for route in self.routes:
            m = route.regex.match(path)
            if m:
                if route.method == method:
                    return route, m.groupdict(), True
                known = True
        return None, {}, known

    # --- entry points -------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: t.Any, body: bytes) -> Response:
        parts = urlsplit(target)
        path = parts.path
        if path.startswith("/_sandbox/"):
            return self.admin(method, path[len("/_sandbox") :], body)
        if path == "/oauth/token":
            return self.oauth(method, body)
        if path == API or path.startswith(API + "/"):
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            req = Request(method, path[len(API) :] or "/", parts.query, query, headers, body)
            return self.api(req)
        return Response.json(404, NOT_FOUND_BODY)

    def api(self, req: Request) -> Response:
        route, params, known = self.match(req.method, req.path)
        self._count(req.method, req.path, route.template if route else req.path)
        scope = self.auth.scope(req.headers.get("Authorization"))
        if scope is None:
            return Response.json(
                401,
                {
                    "error": "invalid_token",
                    "message": "The access token is missing, invalid or expired",
                },
                {
                    **self.rate.peek(),
                    "WWW-Authenticate": 'Bearer realm="Capsule", error="invalid_token"',
                },
            )
        allowed, rate_headers = self.rate.consume()
        if not allowed:
            return Response.json(429, {"error": "rate limit reached"}, rate_headers)
        decision = self.faults.decide()
        config = self.faults.config
        if decision.throttle:
            return Response.json(
                429,
                {"error": "rate limit reached"},
                self.rate.throttled_headers(config.throttle_reset_seconds),
            )
        is_write = req.method in WRITE_METHODS
        after_write = is_write and config.fault_after_write
        if decision.drop and not after_write:
            return Response(0, drop=True)
        if decision.error and not after_write:
            return self._fault_error(config.error_status, rate_headers)
        if route is None:
            response = Response.json(
                405 if known else 404,
                {"message": "Method not allowed"} if known else NOT_FOUND_BODY,
            )
        elif is_write and scope == READ:
            response = Response.json(
                403,
                {"error": "insufficient_scope", "message": "This token can only read"},
                {"WWW-Authenticate": 'Bearer realm="Capsule", error="insufficient_scope"'},
            )
        else:
            req.params = params
            try:
                with self.store.lock:
                    response = route.handler(req)
            except ApiError as exc:
                response = Response.json(exc.status, exc.body, exc.headers)
        if after_write and decision.drop:
            return Response(0, drop=True)
        if after_write and decision.error:
            return self._fault_error(config.error_status, rate_headers)
        response.headers.update(rate_headers)
        if decision.malformed:
            text = response.body or b'{"message":'
            response = Response(
                200,
                text[: max(1, len(text) // 2)],
                {**response.headers, "Content-Type": "application/json; charset=utf-8"},
            )
            response.headers.pop("Location", None)
        response.delay = decision.slow
        return response

    def _fault_error(self, status: int, rate_headers: dict) -> Response:
        return Response.json(
            status, {"message": "Service temporarily unavailable (injected fault)"}, rate_headers
        )

    # --- reading helpers ----------------------------------------------------------------------

    def embeds(self, o: CapsuleObject, req: Request) -> set[str]:
        wanted = {e.strip() for e in req.query.get("embed", "").split(",") if e.strip()}
        return wanted & (self.allowed_embeds(o) | {"meta"})  # unknown values are ignored

    @staticmethod
    def allowed_embeds(o: CapsuleObject) -> set[str]:
        return EMBEDS.get(o.item_key, set(o.embed))

    def render(self, o: CapsuleObject, rec: dict, embeds: set[str]) -> dict:
        allowed = self.allowed_embeds(o)
        hide = HIDDEN.get(o.item_key, set())
        out = {
            k: v
            for k, v in rec.items()
            if k != o.parent_key
            and k not in hide
            and not (k in EMBED_ONLY and k in allowed and k not in embeds)
        }
        for key in embeds:
            ref = out.get(key)
            target = REF_TARGETS.get(key)
            if target and isinstance(ref, dict) and target in self.store.rows:
                full = self.store.rows[target].get(ref.get("id"))
                if full is not None:
                    out[key] = self.render(self.store.objects[target], full, set())
        return out

    def ordered(self, o: CapsuleObject) -> list:
        """The list order of a table, cached per store generation (writes invalidate it)."""
        store, stream = self.store, o.stream
        cached = self._orders.get((stream, "list"))
        if cached and cached[0] == store.generation:
            return cached[1]
        rows = store.rows[stream]
        if o.item_key in NEWEST_FIRST:
            ids = store.ids_desc(stream)
        elif o.item_key == "entry":
            ids = sorted(rows, key=lambda i: (rows[i].get("entryAt") or "", i), reverse=True)
        elif o.key_properties != ("id",):
            ids = list(rows)  # natural order for lookups keyed otherwise (countries...)
        elif "displayOrder" in o.schema:
            ids = sorted(
                rows,
                key=lambda i: (
                    rows[i].get(o.parent_key or "") or 0,
                    rows[i].get("displayOrder") or 0,
                    i,
                ),
            )
        else:
            ids = sorted(rows)
        self._orders[(stream, "list")] = (store.generation, ids)
        return ids

    @staticmethod
    def _page_params(req: Request, max_per_page: int = 100) -> tuple[int, int]:
        try:
            page = int(req.query.get("page", "1"))
            per_page = int(req.query.get("perPage", "50"))
        except ValueError:
            raise BadRequest("page and perPage must be positive integers") from None
        if page < 1 or per_page < 1:
            raise BadRequest("page and perPage must be positive integers")
        return page, min(per_page, max_per_page)

    def _link(self, req: Request, page: int) -> str:
        parts = [p for p in req.raw_query.split("&") if p and not p.startswith("page=")]
        parts.append(f"page={page}")
        return f"{self.origin}{API}{req.path}?{'&'.join(parts)}"

    def _paging_headers(self, req: Request, page: int, has_more: bool) -> dict:
        links = []
        if has_more:
            links.append(f'<{self._link(req, page + 1)}>; rel="next"')
        if page > 1:
            links.append(f'<{self._link(req, page - 1)}>; rel="prev"')
        headers = {"X-Pagination-Has-More": "true" if has_more else "false"}
        if links:
            headers["Link"] = ", ".join(links)
        return headers

    def page(
        self,
        req: Request,
        key: str,
        items: t.Sequence,
        render: t.Callable[[t.Any], dict],
        embeds: set[str] = frozenset(),
        max_per_page: int = 100,
    ) -> Response:
        page, per_page = self._page_params(req, max_per_page)
        start = (page - 1) * per_page
        body: dict[str, t.Any] = {key: [render(i) for i in items[start : start + per_page]]}
        if "meta" in embeds:
            body["meta"] = {"totalCount": len(items)}
        return Response.json(
            200, body, self._paging_headers(req, page, start + per_page < len(items))
        )

    def _since(self, req: Request) -> str | None:
        value = req.query.get("since")
        if value is None:
            return None
        try:
            return since_key(value)
        except ValueError:
            raise BadRequest(f"since must be an ISO 8601 date-time, got {value!r}") from None

    def _parent(self, req: Request, o: CapsuleObject) -> int | None:
        if not o.parent_key or o.parent_key not in req.params:
            return None
        pid = int(req.params[o.parent_key])
        if pid not in self.store.rows.get(o.parent or "", {}):
            raise NotFound()
        return pid

    # --- catalogue-driven handlers ------------------------------------------------------------

    def list_records(self, req: Request, o: CapsuleObject) -> Response:
        rows = self.store.rows[o.stream]
        pid = self._parent(req, o)
        ids = self.ordered(o)
        if pid is not None:
            ids = [i for i in ids if rows[i].get(o.parent_key) == pid]
        since = self._since(req) if o.since else None
        if since is not None:
            ids = [i for i in ids if (rows[i].get("updatedAt") or "") > since]
        list_filter = LIST_FILTERS.get(o.item_key)
        if list_filter is not None:
            ids = list_filter(self, req, rows, ids)
        embeds = self.embeds(o, req)
        return self.page(req, o.list_key, ids, lambda i: self.render(o, rows[i], embeds), embeds)

    def show(self, req: Request, o: CapsuleObject) -> Response:
        embeds = self.embeds(o, req)
        raw = req.params["id"]
        if "," in raw:  # GET /parties/1,2,3: up to 10, 404 if any is missing
            ids = [int(x) for x in raw.split(",")]
            if len(ids) > 10:
                raise BadRequest("at most 10 ids")
            recs = [self.store.find(o.stream, i) for i in ids]
            return Response.json(
                200, {o.list_key: [self.render(self.store.objects[s], r, embeds) for s, r in recs]}
            )
        stream, rec = self.store.find(o.stream, int(raw))
        return Response.json(
            200, {o.item_key: self.render(self.store.objects[stream], rec, embeds)}
        )

    def _body(self, req: Request, o: CapsuleObject) -> dict:
        try:
            data = json.loads(req.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("Request body is not valid JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get(o.item_key), dict):
            raise BadRequest(f'Request body must be a JSON object wrapped in "{o.item_key}"')
        return data[o.item_key]

    def create(self, req: Request, o: CapsuleObject) -> Response:
        check_write_allowed(o, INSERT)
        body = self._body(req, o)
        stream, rec = self.store.create(o.stream, body)
        obj = self.store.objects[stream]
        location = f"{self.origin}{API}{catalogue.fill_path(obj.single_path, rec)}"
        return Response.json(
            201,
            {obj.item_key: self.render(obj, rec, self.embeds(obj, req))},
            {"Location": location},
        )

    def update(self, req: Request, o: CapsuleObject) -> Response:
        check_write_allowed(o, UPDATE)
        body = self._body(req, o)
        stream, rec = self.store.update(o.stream, int(req.params["id"]), body)
        obj = self.store.objects[stream]
        return Response.json(200, {obj.item_key: self.render(obj, rec, self.embeds(obj, req))})

    def delete(self, req: Request, o: CapsuleObject) -> Response:
        job = self.store.delete(o.stream, int(req.params["id"]))
        if job is not None:
            return Response(202, b"", {"Location": f"{self.origin}{API}/jobs/{job}"})
        return Response(204)

    def list_links(self, req: Request, o: CapsuleObject) -> Response:
        pid = self._parent(req, o)
        parties = self.store.rows["parties"]
        ids = [i for i in self.store.links[o.stream].get(pid, []) if i in parties]
        party_obj = self.store.objects["parties"]
        embeds = self.embeds(party_obj, req)
        return self.page(
            req, o.list_key, ids, lambda i: self.render(party_obj, parties[i], embeds), embeds
        )

    def link_write(self, req: Request, o: CapsuleObject) -> Response:
        add = req.method == "POST"
        self.store.link(o.stream, int(req.params[o.parent_key]), int(req.params[o.child_key]), add)
        return Response(201 if add else 204)

    def deleted_feed(self, req: Request, o: CapsuleObject) -> Response:
        if "since" not in req.query and o.stream in DELETED_SINCE_REQUIRED:
            raise BadRequest("since is required")
        since = self._since(req)
        deleted = [
            d for d in self.store.deleted[o.stream] if since is None or d["deletedAt"] > since
        ]
        deleted.sort(key=lambda d: (d["deletedAt"], d["id"]), reverse=True)
        restricted = [
            {k: v for k, v in r.items() if k != "_restrictedAt"}
            for r in sorted(
                self.store.restricted[o.stream],
                key=lambda r: (r["_restrictedAt"], r["id"]),
                reverse=True,
            )
            if since is None or r["_restrictedAt"] > since
        ]
        page, per_page = self._page_params(req)
        start = (page - 1) * per_page
        keys = o.deleted_keys or (
            o.list_key,
            "restricted" + o.list_key[:1].upper() + o.list_key[1:],
        )
        body = {
            keys[0]: deleted[start : start + per_page],
            keys[1]: restricted[start : start + per_page],
        }
        more = start + per_page < max(len(deleted), len(restricted))
        return Response.json(200, body, self._paging_headers(req, page, more))

    # --- hand-coded endpoints -----------------------------------------------------------------

    def _party_list(self, req: Request, ids: list[int]) -> Response:
        o = self.store.objects["parties"]
        rows = self.store.rows["parties"]
        embeds = self.embeds(o, req)
        return self.page(req, o.list_key, ids, lambda i: self.render(o, rows[i], embeds), embeds)

    def people(self, req: Request) -> Response:
        rows = self.store.rows["parties"]
        org = rows.get(int(req.params["partyId"]))
        if org is None or org.get("type") != "organisation":
            raise NotFound()
        ids = [
            i
            for i in self.ordered(self.store.objects["parties"])
            if (rows[i].get("organisation") or {}).get("id") == org["id"]
        ]
        return self._party_list(req, ids)

    def of_party(self, req: Request, stream: str) -> Response:
        pid = int(req.params["partyId"])
        if pid not in self.store.rows["parties"]:
            raise NotFound()
        o = self.store.objects[stream]
        rows = self.store.rows[stream]
        ids = [i for i in self.ordered(o) if (rows[i].get("party") or {}).get("id") == pid]
        embeds = self.embeds(o, req)
        return self.page(req, o.list_key, ids, lambda i: self.render(o, rows[i], embeds), embeds)

    def entries_of(self, req: Request, parent_stream: str) -> Response:
        parent = self.store.objects[parent_stream]
        pid = int(req.params["parentId"])
        if pid not in self.store.rows[parent_stream]:
            raise NotFound()
        o = self.store.objects["entries"]
        rows = self.store.rows["entries"]
        key = parent.item_key
        ids = [i for i in self.ordered(o) if (rows[i].get(key) or {}).get("id") == pid]
        embeds = self.embeds(o, req)
        # The per-record entries list documents perPage up to 50 (fact sheet §2).
        return self.page(
            req, o.list_key, ids, lambda i: self.render(o, rows[i], embeds), embeds, max_per_page=50
        )

    def search(self, req: Request, stream: str) -> Response:
        q = req.query.get("q", "").strip().casefold()
        o = self.store.objects[stream]
        rows = self.store.rows[stream]

        def text(rec: dict) -> str:
            bits = [rec.get("name"), rec.get("firstName"), rec.get("lastName")]
            bits += [e.get("address") for e in rec.get("emailAddresses") or []]
            return " ".join(str(b) for b in bits if b).casefold()

        ids = [i for i in self.ordered(o) if q in text(rows[i])]
        embeds = self.embeds(o, req)
        return self.page(req, o.list_key, ids, lambda i: self.render(o, rows[i], embeds), embeds)

    def legacy_milestones(self, req: Request) -> Response:
        """GET /milestones: only the oldest active pipeline's milestones (a known trap)."""
        pipelines = [p for p in self.store.rows["pipelines"].values() if not p.get("deleted")]
        o = self.store.objects["milestones"]
        rows = self.store.rows["milestones"]
        ids: list[int] = []
        if pipelines:
            oldest = min(pipelines, key=lambda p: (p.get("createdAt") or "", p["id"]))
            ids = [i for i in self.ordered(o) if rows[i].get("pipelineId") == oldest["id"]]
        return self.page(req, o.list_key, ids, lambda i: self.render(o, rows[i], set()))

    def current_user(self, req: Request) -> Response:
        o = self.store.objects["users"]
        user = self.store.rows["users"].get(self.store.token_user_id)
        if user is None:
            raise NotFound()
        return Response.json(200, {o.item_key: self.render(o, user, self.embeds(o, req))})

    def board_stages(self, req: Request) -> Response:
        bid = int(req.params["boardId"])
        if bid not in self.store.rows["boards"]:
            raise NotFound()
        o = self.store.objects["stages"]
        rows = self.store.rows["stages"]
        ids = [i for i in self.ordered(o) if (rows[i].get("board") or {}).get("id") == bid]
        ids = _filter_stages(self, req, rows, ids, on_board=True)
        return self.page(req, o.list_key, ids, lambda i: self.render(o, rows[i], set()))

    def job(self, req: Request) -> Response:
        job = self.store.jobs.get(int(req.params["jobId"]))
        if job is None:
            raise NotFound()
        return Response.json(200, {"job": job})

    # --- OAuth and admin ----------------------------------------------------------------------

    def oauth(self, method: str, body: bytes) -> Response:
        if method != "POST":
            return Response.json(405, {"message": "Method not allowed"})
        with self._count_lock:
            self.counts["oauth"] += 1
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        status, payload = self.auth.refresh(form)
        return Response.json(status, payload, {"Cache-Control": "no-store"})

    def admin(self, method: str, path: str, body: bytes) -> Response:
        try:
            data = json.loads(body.decode("utf-8") or "{}") if body else {}
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            if method == "GET" and path == "/requests":
                return Response.json(200, self.requests())
            if method == "POST" and path == "/requests/reset":
                self.reset_requests()
                return Response.json(200, {"ok": True})
            if method == "GET" and path == "/state":
                return Response.json(200, self.store.state())
            if method == "POST" and path == "/faults":
                self.faults.replace(FaultConfig.from_dict(data))
                return Response.json(200, dataclasses.asdict(self.faults.config))
            if method == "POST" and path == "/ratelimit":
                self.rate.configure(data.get("limit", 4000), data.get("window", 3600))
                return Response.json(200, self.rate.peek())
            if method == "POST" and path == "/clock":
                self.clock.set(data.get("now"))
                return Response.json(200, {"now": self.clock.stamp()})
            if method == "POST" and path in ("/touch", "/delete", "/restrict"):
                stream, rid = data.get("stream"), data.get("id")
                if stream not in self.store.rows or not isinstance(rid, int):
                    raise ValueError(f"unknown stream {stream!r} or bad id {rid!r}")
                if path == "/touch":
                    rec = self.store.touch(stream, rid, data.get("changes") or {})
                    return Response.json(200, {"record": rec})
                with self.store.lock:
                    stream, _ = self.store.find(stream, rid)
                    self.store.remove(stream, rid, restricted=path == "/restrict")
                return Response.json(200, {"ok": True})
        except ApiError as exc:
            return Response.json(exc.status, exc.body)
        except (ValueError, TypeError) as exc:
            return Response.json(400, {"message": str(exc)})
        return Response.json(404, NOT_FOUND_BODY)


# --- list filters of particular endpoints (fact sheet §3.2) -----------------------------------


def _statuses(req: Request, default: set[str]) -> set[str]:
    raw = req.query.get("status")
    if raw is None:
        return default
    return {s.strip().upper() for s in raw.split(",") if s.strip()}


def _filter_tasks(app: App, req: Request, rows: dict, ids: list) -> list:
    wanted = _statuses(req, {"OPEN"})  # /tasks lists only open tasks unless `status` is given
    return [i for i in ids if rows[i].get("status") in wanted]


def _filter_boards(app: App, req: Request, rows: dict, ids: list) -> list:
    wanted = _statuses(req, {"ACTIVE"})
    if "ALL" in wanted:
        return ids
    return [i for i in ids if ("ARCHIVED" if rows[i].get("deleted") else "ACTIVE") in wanted]


def _filter_stages(app: App, req: Request, rows: dict, ids: list, on_board: bool = False) -> list:
    wanted = _statuses(req, {"ACTIVE"})
    boards = app.store.rows.get("boards", {})
    on_deleted = req.query.get("includeOnDeletedBoard", "").lower() == "true" or on_board
    out = []
    for i in ids:
        rec = rows[i]
        board = boards.get((rec.get("board") or {}).get("id"))
        if board is not None and board.get("deleted") and not on_deleted:
            continue
        if "ALL" in wanted or ("ARCHIVED" if rec.get("archived") else "ACTIVE") in wanted:
            out.append(i)
    return out


def _filter_track_definitions(app: App, req: Request, rows: dict, ids: list) -> list:
    kind = req.query.get("type", "all").lower()
    rules = {"all": None, "kases": "CASEFILE", "opportunities": "OPPORTUNITY"}
    if kind not in rules:
        raise BadRequest("type must be all, kases or opportunities")
    return (
        ids
        if rules[kind] is None
        else [i for i in ids if rows[i].get("captureRule") == rules[kind]]
    )


def _filter_by_name(app: App, req: Request, rows: dict, ids: list) -> list:
    q = req.query.get("q", "").casefold()
    return [i for i in ids if q in str(rows[i].get("name") or "").casefold()] if q else ids


def _filter_boards_q(app: App, req: Request, rows: dict, ids: list) -> list:
    return _filter_by_name(app, req, rows, _filter_boards(app, req, rows, ids))


LIST_FILTERS: dict[str, t.Callable[..., list]] = {
    "task": _filter_tasks,
    "board": _filter_boards_q,
    "stage": _filter_stages,
    "trackDefinition": _filter_track_definitions,
    "pipeline": _filter_by_name,
}


# --- the stdlib HTTP adapter --------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: every answer has an exact Content-Length."""

    protocol_version = "HTTP/1.1"
    server_version = "CapsuleSandbox/1.0"

    def version_string(self) -> str:
        return self.server_version

    timeout = 30  # an idle keep-alive connection is closed after this

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        """`Date` from the sandbox clock: Capsule stamps `updatedAt` and `Date` from one clock."""
        if timestamp is None:
            timestamp = self.server.app.clock.now().timestamp()  # type: ignore[attr-defined]
        return email.utils.formatdate(timestamp, usegmt=True)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        response = self.server.app.handle(self.command, self.path, self.headers, body)  # type: ignore[attr-defined]
        if response.delay:
            time.sleep(response.delay)
        if response.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, Handler)
        host, port = self.server_address[:2]
        app.origin = f"http://{host}:{port}"

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_connections(self) -> None:
        """Wake handler threads parked on idle keep-alive sockets so they exit and close them."""
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
