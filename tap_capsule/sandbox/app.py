"""One emulated Capsule account behind a single `handle()` call, with no sockets.

The request pipeline runs in Capsule's order: count the request, authenticate (401), take one unit
of the rate limit (429), apply any injected fault, check the token's scope for the operation (403),
then dispatch to the route's handler under the store's lock. The HTTP adapter in `server.py` only
moves bytes in and out of `handle()`.
"""

from __future__ import annotations

import json
import threading
import typing as t
from urllib.parse import parse_qsl, urlsplit

from tap_capsule import catalogue
from tap_capsule.sandbox import admin, permissions, routes
from tap_capsule.sandbox.auth import FULL_GRANT, Auth
from tap_capsule.sandbox.clock import Clock
from tap_capsule.sandbox.errors import ApiError
from tap_capsule.sandbox.faults import FaultConfig, FaultInjector
from tap_capsule.sandbox.models import OWNER_CLEARS_TEAM
from tap_capsule.sandbox.ratelimit import RateLimiter
from tap_capsule.sandbox.seed import seed_store
from tap_capsule.sandbox.seed.large import install as install_large
from tap_capsule.sandbox.store import Store
from tap_capsule.sandbox.views import Views
from tap_capsule.sandbox.wire import (
    API,
    METHOD_NOT_ALLOWED_BODY,
    NOT_FOUND_BODY,
    WRITE_METHODS,
    Request,
    Response,
)

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject


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
        grant: str = FULL_GRANT,
        extra_tokens: dict[str, str] | None = None,
        owner_clears_team: t.Iterable[str] = OWNER_CLEARS_TEAM,
        large: int = 0,
    ) -> None:
        """A seeded account of about `scale` parties, reproducible from `seed`.

        `large` (parties, 0 for none) makes it a large account instead, whose parties,
        opportunities, cases, entries and tasks are generated on demand (`seed.large`).

        `grant` is what `token` may do (scopes `read write user_preference`, `admin`, `oauth_app`);
        `extra_tokens` maps more tokens to their grants; `owner_clears_team` names the records
        (wrapper keys: kase, party, opportunity) whose team a PUT of `owner` alone clears.
        """
        if int(scale) < 0:
            raise ValueError("scale must be >= 0")
        self.objects = tuple(catalogue.OBJECTS if objects is None else objects)
        self.clock = Clock()
        self.store = Store(self.objects, self.clock)
        self.store.owner_clears_team = frozenset(owner_clears_team)
        if int(large) < 0:
            raise ValueError("large must be >= 0")
        seed_store(self.store, 0 if large else int(scale), int(seed))
        if large:
            install_large(self.store, int(large), int(seed))
        self.auth = Auth(
            token,
            read_only_token,
            client_id,
            client_secret,
            refresh_token,
            grant=grant,
            extra_tokens=extra_tokens,
        )
        self.rate = RateLimiter(rate_limit, rate_window)
        self.faults = FaultInjector(FaultConfig.from_dict(faults))
        self.views = Views(self.store)
        self._count_lock = threading.Lock()
        self.reset_requests()
        self.router = routes.build(self.objects, self.views)

    @property
    def origin(self) -> str:
        """Where the server listens (`http://host:port`); links and `Location` start with it."""
        return self.views.origin

    @origin.setter
    def origin(self, value: str) -> None:
        self.views.origin = value

    # --- request accounting -------------------------------------------------------------------

    def reset_requests(self) -> None:
        """Forget every counted request."""
        with self._count_lock:
            self.counts: dict[str, t.Any] = {
                "total": 0,
                "writes": 0,
                "oauth": 0,
                "by_path": {},
                "by_route": {},
            }

    def _count(self, method: str, path: str, route: str) -> None:
        with self._count_lock:
            c = self.counts
            c["total"] += 1
            if method in WRITE_METHODS:
                c["writes"] += 1
            for key, name in (("by_path", f"{method} {path}"), ("by_route", f"{method} {route}")):
                c[key][name] = c[key].get(name, 0) + 1

    def count_oauth(self) -> None:
        """Count one call of the OAuth token endpoint."""
        with self._count_lock:
            self.counts["oauth"] += 1

    def requests(self) -> dict:
        """A copy of the request counts."""
        with self._count_lock:
            return json.loads(json.dumps(self.counts))

    # --- entry points -------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: t.Any, body: bytes) -> Response:  # noqa: ANN401 - any mapping of headers
        """Answer one HTTP request (`target` is the path with its query)."""
        parts = urlsplit(target)
        path = parts.path
        if path.startswith("/_sandbox/"):
            return admin.admin(self, method, path[len("/_sandbox") :], body)
        if path == "/oauth/token":
            return admin.oauth(self, method, body)
        if path == API or path.startswith(API + "/"):
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            req = Request(method, path[len(API) :] or "/", parts.query, query, headers, body)
            return self.api(req)
        return Response.json(404, NOT_FOUND_BODY)

    def api(self, req: Request) -> Response:
        """The request pipeline of one /api/v2 call."""
        route, params, known = self.router.match(req.method, req.path)
        self._count(req.method, req.path, route.template if route else req.path)
        grant = self.auth.grant(req.headers.get("Authorization"))
        if grant is None:
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
        is_write = req.method in WRITE_METHODS
        decision = self.faults.decide(is_write)
        config = self.faults.config
        if decision.throttle:
            return Response.json(
                429,
                {"error": "rate limit reached"},
                self.rate.throttled_headers(config.throttle_reset_seconds),
            )
        after_write = is_write and config.fault_after_write
        if decision.drop and not after_write:
            return Response(0, drop=True)
        if decision.error and not after_write:
            return self._fault_error(config.error_status, rate_headers)
        if config.refuse_unknown_embed and (unknown := self.views.unknown_embeds(req)):
            return Response.json(
                400, {"message": f"Unknown embed value(s): {', '.join(unknown)}"}, rate_headers
            )
        if decision.hold_before:  # the client is killed meanwhile; its write never arrives
            self.faults.hold()
            return Response(0, drop=True)
        if route is None:
            response = Response.json(
                405 if known else 404, METHOD_NOT_ALLOWED_BODY if known else NOT_FOUND_BODY
            )
        elif denied := permissions.check(grant, req.method, route.template):
            response = denied
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
        if decision.lost and 200 <= response.status < 300:  # applied; its answer is lost
            return Response.json(
                502, {"message": "Bad gateway (injected fault: the answer was lost)"}, rate_headers
            )
        response.headers.update(rate_headers)
        if decision.malformed:
            response = self._malformed(response)
        response.delay = decision.slow
        if decision.hold:
            response.hold = self.faults.hold
        return response

    @staticmethod
    def _malformed(response: Response) -> Response:
        """A 200 whose JSON body is cut in half (an injected fault)."""
        text = response.body or b'{"message":'
        headers = {**response.headers, "Content-Type": "application/json; charset=utf-8"}
        headers.pop("Location", None)
        return Response(200, text[: max(1, len(text) // 2)], headers)

    @staticmethod
    def _fault_error(status: int, rate_headers: dict) -> Response:
        return Response.json(
            status, {"message": "Service temporarily unavailable (injected fault)"}, rate_headers
        )
