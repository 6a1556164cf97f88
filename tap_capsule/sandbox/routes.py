"""The sandbox's URL map: routes built from the catalogue, plus the documented extras.

Each catalogue entry gives its list path, single-record path, create path and deleted feed; only
endpoints that no entry describes (search, per-party lists, legacy /milestones, /users/current,
/site, jobs) are listed by hand. Routes with more literal segments win (`/parties/search` before
`/parties/{id}`); a path that matches no route for its method is a 405, not a 404.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from tap_capsule.sandbox import attachments, extras, responses
from tap_capsule.sandbox.conditions import FIELDS as FILTERABLE
from tap_capsule.sandbox.models import MULTI_GET, NO_SHOW

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject
    from tap_capsule.sandbox.views import Views
    from tap_capsule.sandbox.wire import Request, Response

Handler = t.Callable[["Request"], "Response"]
ObjectHandler = t.Callable[["Views", "Request", "CapsuleObject"], "Response"]


@dataclasses.dataclass
class Route:
    """One method and path template, its compiled pattern and its handler."""

    method: str
    template: str
    regex: re.Pattern
    handler: Handler
    literals: int


def compile_template(template: str, multi_id: bool = False) -> re.Pattern:
    """`/opportunities/{opportunityId}/tracks` → regex; placeholders match (negative) integer ids.

    With `multi_id`, `{id}` also matches comma-joined ids (`/parties/1,2,3`).
    """
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos : m.start()])
        pattern = r"-?\d+(?:,-?\d+)*" if multi_id and m.group(1) == "id" else r"-?\d+"
        out += f"(?P<{m.group(1)}>{pattern})"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]) + r"/?\Z")


class Router:
    """An ordered list of routes; `match` finds the handler of a method and path."""

    def __init__(self) -> None:
        """No routes yet; `build` fills one from the catalogue."""
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, multi_id: bool = False) -> None:
        """Add a route; a second one for the same method and template is ignored.

        Both track streams share `/tracks/{id}`: the store tells them apart, so one route serves.
        """
        if any(r.method == method and r.template == template for r in self.routes):
            return
        literals = sum(1 for part in template.split("/") if part and not part.startswith("{"))
        regex = compile_template(template, multi_id)
        self.routes.append(Route(method, template, regex, handler, literals))
        self.routes.sort(key=lambda r: -r.literals)

    def match(self, method: str, path: str) -> tuple[Route | None, dict, bool]:
        """(route, params, path_known): a known path without a route for the method means 405."""
        known = False
        for route in self.routes:
            m = route.regex.match(path)
            if m:
                if route.method == method:
                    return route, m.groupdict(), True
                known = True
        return None, {}, known


def build(objects: t.Iterable[CapsuleObject], views: Views) -> Router:
    """The routes of every catalogue entry in `objects`, then the documented extras."""
    router = Router()
    objects = tuple(objects)

    def bind(fn: ObjectHandler, o: CapsuleObject) -> Handler:
        return lambda req: fn(views, req, o)

    for o in objects:
        if o.deleted_path:
            router.add("GET", o.deleted_path, bind(responses.deleted_feed, o))
        if o.is_link:
            router.add("GET", o.path, bind(responses.list_links, o))
            router.add("POST", o.post_path, bind(responses.link_write, o))
            router.add("DELETE", o.single_path, bind(responses.link_write, o))
            continue
        router.add("GET", o.path, bind(responses.list_records, o))
        router.add("POST", o.post_path, bind(responses.create, o))
        if o.item_key not in NO_SHOW:
            multi = o.item_key in MULTI_GET
            router.add("GET", o.single_path, bind(responses.show, o), multi_id=multi)
        if o.item_key in FILTERABLE and not o.parent:
            router.add("POST", f"{o.path}/filters/results", bind(responses.filter_results, o))
        router.add("PUT", o.single_path, bind(responses.update, o))
        router.add("DELETE", o.single_path, bind(responses.delete, o))
    _extras(router, {o.stream for o in objects}, views)
    return router


def _extras(router: Router, streams: set[str], views: Views) -> None:
    """Documented endpoints the catalogue has no entry for (only where their objects exist)."""

    def on(fn: t.Callable[..., Response], *args: t.Any) -> Handler:  # noqa: ANN401 - handler args
        return lambda req: fn(views, req, *args)

    parties = "parties" in streams
    if parties:
        router.add("GET", "/parties/{partyId}/people", on(extras.people))
        router.add("GET", "/parties/search", on(extras.search, "parties"))
    for stream, path in (("opportunities", "/opportunities"), ("cases", "/kases")):
        if stream in streams and parties:
            router.add("GET", f"/parties/{{partyId}}{path}", on(extras.of_party, stream))
        if stream in streams:
            router.add("GET", f"{path}/search", on(extras.search, stream))
    if "entries" in streams:
        for stream, path in (
            ("parties", "/parties"),
            ("opportunities", "/opportunities"),
            ("cases", "/kases"),
        ):
            if stream in streams:
                router.add("GET", f"{path}/{{parentId}}/entries", on(extras.entries_of, stream))
    if "milestones" in streams and "pipelines" in streams:
        router.add("GET", "/milestones", on(extras.legacy_milestones))
    if "users" in streams:
        router.add("GET", "/users/current", on(extras.current_user))
    if "stages" in streams and "boards" in streams:
        router.add("GET", "/boards/{boardId}/stages", on(extras.board_stages))
    if "entries" in streams:
        router.add("POST", "/attachments/upload", on(attachments.upload))
        router.add("GET", "/attachments/{id}", on(attachments.download))
    router.add("GET", "/site", on(extras.site))
    router.add("GET", "/jobs/{jobId}", on(extras.job))
