"""How stored records become Capsule's answers: embeds, hidden keys, list order and paging.

Records are stored in their full shape; a view strips what Capsule would not send (embed-only keys
that were not asked for, write-only keys, the parent key a child record carries in the store) and
cuts one page with Capsule's `Link` header. Every list endpoint ends in `Views.render_page`.
"""

from __future__ import annotations

import typing as t

from tap_capsule.sandbox.clock import since_key
from tap_capsule.sandbox.documented import DISPLAY_ORDERED, HIDDEN, HIDDEN_OUTSIDE_PIPELINE
from tap_capsule.sandbox.errors import BadRequestError, NotFoundError
from tap_capsule.sandbox.lazy import GeneratedTable
from tap_capsule.sandbox.models import REF_TARGETS
from tap_capsule.sandbox.wire import API, Request, Response

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject
    from tap_capsule.sandbox.store import Store

# What `embed` may ask for, per endpoint family (by wrapper key); other objects use the catalogue's.
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
# Keys Capsule leaves out of a record unless they are embedded.
EMBED_ONLY = frozenset({"tags", "fields", "missingImportantFields", "memberships"})
NEWEST_FIRST = frozenset({"party", "opportunity", "kase", "task"})
DEFAULT_PER_PAGE, MAX_PER_PAGE = 50, 100


class Views:
    """Rendering and paging over one store; `origin` is where the server listens (for links)."""

    def __init__(self, store: Store) -> None:
        """Views of `store`; list orders are cached per store generation."""
        self.store = store
        self.origin = "http://127.0.0.1"
        self._orders: dict[str, tuple[int, list]] = {}

    # --- one record ---------------------------------------------------------------------------

    def embeds(self, o: CapsuleObject, req: Request) -> set[str]:
        """The `embed` values of `req` that `o` knows (Capsule ignores unknown values)."""
        wanted = {e.strip() for e in req.query.get("embed", "").split(",") if e.strip()}
        return wanted & (self.allowed_embeds(o) | {"meta"})

    def unknown_embeds(self, req: Request) -> list[str]:
        """The `embed` values of `req` that no endpoint documents (`meta` among them)."""
        wanted = {e.strip() for e in req.query.get("embed", "").split(",") if e.strip()}
        objects = self.store.objects.values()
        known = set().union(*EMBEDS.values(), *(self.allowed_embeds(o) for o in objects))
        return sorted(wanted - known)

    @staticmethod
    def allowed_embeds(o: CapsuleObject) -> set[str]:
        """The embed values an object's endpoints document."""
        return EMBEDS.get(o.item_key, set(o.embed))

    def render(
        self,
        o: CapsuleObject,
        rec: dict,
        embeds: t.AbstractSet[str],
        hide: t.AbstractSet[str] = frozenset(),
    ) -> dict:
        """A stored record as Capsule sends it, with the asked-for embeds expanded."""
        allowed = self.allowed_embeds(o)
        hide = HIDDEN.get(o.item_key, frozenset()) | hide
        out = {
            k: v
            for k, v in rec.items()
            if k != o.parent_key
            and k not in hide
            and not (k in EMBED_ONLY and k in allowed and k not in embeds)
        }
        if o.item_key == "track" and not embeds & {"task", "tasks"}:
            out.pop("tasks", None)  # a track's tasks are embedded data (`embed=task`)
        for key in embeds:
            ref = out.get(key)
            target = REF_TARGETS.get(key)
            if target and isinstance(ref, dict) and target in self.store.rows:
                full = self.store.rows[target].get(ref.get("id"))
                if full is not None:
                    out[key] = self.render(self.store.objects[target], full, set())
        return out

    def one(self, o: CapsuleObject, rec: dict, req: Request, status: int = 200) -> Response:
        """A single-record answer in its wrapper (`{"party": {...}}`)."""
        hide = HIDDEN_OUTSIDE_PIPELINE.get(o.item_key, frozenset())
        body = {o.item_key: self.render(o, rec, self.embeds(o, req), hide)}
        return Response.json(status, body)

    # --- lists --------------------------------------------------------------------------------

    def ordered(self, o: CapsuleObject) -> t.Sequence:
        """The list order of a table, cached per store generation (writes invalidate it)."""
        store, stream = self.store, o.stream
        table = store.rows[stream]
        if isinstance(table, GeneratedTable):
            return table.select()  # computed, never a list of every id
        cached = self._orders.get(stream)
        if cached and cached[0] == store.generation:
            return cached[1]
        rows = store.rows[stream]
        if o.item_key in NEWEST_FIRST:
            ids = store.ids_desc(stream)
        elif o.item_key == "entry":
            ids = sorted(rows, key=lambda i: (rows[i].get("entryAt") or "", i), reverse=True)
        elif o.key_properties != ("id",):
            ids = list(rows)  # natural order for lookups keyed otherwise (countries...)
        elif o.item_key in DISPLAY_ORDERED:
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
        self._orders[stream] = (store.generation, ids)
        return ids

    @staticmethod
    def page_params(req: Request, max_per_page: int = MAX_PER_PAGE) -> tuple[int, int]:
        """`page` and `perPage` (capped at the endpoint's maximum), or a 400."""
        try:
            page = int(req.query.get("page", "1"))
            per_page = int(req.query.get("perPage", str(DEFAULT_PER_PAGE)))
        except ValueError:
            raise BadRequestError("page and perPage must be positive integers") from None
        if page < 1 or per_page < 1:
            raise BadRequestError("page and perPage must be positive integers")
        return page, min(per_page, max_per_page)

    def _link(self, req: Request, page: int) -> str:
        parts = [p for p in req.raw_query.split("&") if p and not p.startswith("page=")]
        parts.append(f"page={page}")
        return f"{self.origin}{API}{req.path}?{'&'.join(parts)}"

    def paging_headers(self, req: Request, page: int, has_more: bool) -> dict:
        """`Link` (rel next/prev, keeping the query) and the undocumented has-more header."""
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
        embeds: t.AbstractSet[str] = frozenset(),
        max_per_page: int = MAX_PER_PAGE,
    ) -> Response:
        """One page of `items`, each passed through `render`, under the list wrapper `key`."""
        page, per_page = self.page_params(req, max_per_page)
        start = (page - 1) * per_page
        body: dict[str, t.Any] = {key: [render(i) for i in items[start : start + per_page]]}
        if "meta" in embeds:
            body["meta"] = {"totalCount": len(items)}
        more = start + per_page < len(items)
        return Response.json(200, body, self.paging_headers(req, page, more))

    def render_page(
        self,
        req: Request,
        o: CapsuleObject,
        ids: t.Sequence[int],
        embeds: bool = True,
        max_per_page: int = MAX_PER_PAGE,
        hide: t.AbstractSet[str] = frozenset(),
    ) -> Response:
        """One page of `o`'s records `ids`, rendered with the request's embeds (if `embeds`)."""
        rows = self.store.rows[o.stream]
        wanted = self.embeds(o, req) if embeds else set()
        return self.page(
            req,
            o.list_key,
            ids,
            lambda i: self.render(o, rows[i], wanted, hide),
            wanted,
            max_per_page,
        )

    def referring(self, o: CapsuleObject, key: str, rid: int) -> t.Sequence[int]:
        """`o`'s records whose reference `key` is record `rid`, in list order."""
        rows = self.store.rows[o.stream]
        if isinstance(rows, GeneratedTable):
            return rows.children(key, rid)
        return [i for i in self.ordered(o) if (rows[i].get(key) or {}).get("id") == rid]

    # --- query parameters ---------------------------------------------------------------------

    @staticmethod
    def since(req: Request) -> str | None:
        """The `since` parameter as a comparable timestamp string, or a 400 naming it."""
        value = req.query.get("since")
        if value is None:
            return None
        try:
            return since_key(value)
        except ValueError:
            raise BadRequestError(f"since must be an ISO 8601 date-time, got {value!r}") from None

    def parent(self, req: Request, o: CapsuleObject) -> int | None:
        """The parent id in a child list's path (404 if that parent does not exist)."""
        if not o.parent_key or o.parent_key not in req.params:
            return None
        pid = int(req.params[o.parent_key])
        if pid not in self.store.rows.get(o.parent or "", {}):
            raise NotFoundError()
        return pid
