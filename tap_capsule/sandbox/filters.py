"""List filters that particular endpoints apply by default: the known traps of Capsule's lists.

`/tasks` lists only open tasks unless `status` is given; `/boards` and `/stages` hide archived rows
unless `status=all` (and stages of deleted boards unless `includeOnDeletedBoard=true`);
`/pipelines` hides archived pipelines unless `includeDeleted=true`; `/trackdefinitions` takes
`type`; `/pipelines` and `/boards` filter by name with `q`.
"""

from __future__ import annotations

import typing as t

from tap_capsule.sandbox.errors import BadRequestError

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.sandbox.tables import Tables
    from tap_capsule.sandbox.wire import Request

ListFilter = t.Callable[["Tables", "Request", dict, list], list]


def statuses(req: Request, default: set[str]) -> set[str]:
    """The upper-cased `status` values of a request, or `default` when it names none."""
    raw = req.query.get("status")
    if raw is None:
        return default
    return {s.strip().upper() for s in raw.split(",") if s.strip()}


def tasks(store: Tables, req: Request, rows: dict, ids: list) -> list:
    """Open tasks only, unless `status` asks for others."""
    wanted = statuses(req, {"OPEN"})
    return [i for i in ids if rows[i].get("status") in wanted]


def boards(store: Tables, req: Request, rows: dict, ids: list) -> list:
    """Active boards only unless `status` is `archived` or `all`."""
    wanted = statuses(req, {"ACTIVE"})
    if "ALL" in wanted:
        return ids
    return [i for i in ids if ("ARCHIVED" if rows[i].get("deleted") else "ACTIVE") in wanted]


def stages(store: Tables, req: Request, rows: dict, ids: list, on_board: bool = False) -> list:
    """Active stages of live boards only, unless `status` and `includeOnDeletedBoard` widen it."""
    wanted = statuses(req, {"ACTIVE"})
    all_boards = store.rows.get("boards", {})
    on_deleted = req.query.get("includeOnDeletedBoard", "").lower() == "true" or on_board
    out = []
    for i in ids:
        rec = rows[i]
        board = all_boards.get((rec.get("board") or {}).get("id"))
        if board is not None and board.get("deleted") and not on_deleted:
            continue
        if "ALL" in wanted or ("ARCHIVED" if rec.get("archived") else "ACTIVE") in wanted:
            out.append(i)
    return out


def track_definitions(store: Tables, req: Request, rows: dict, ids: list) -> list:
    """`type=all|kases|opportunities` selects by capture rule; anything else is a 400."""
    kind = req.query.get("type", "all").lower()
    rules = {"all": None, "kases": "CASEFILE", "opportunities": "OPPORTUNITY"}
    if kind not in rules:
        raise BadRequestError("type must be all, kases or opportunities")
    if rules[kind] is None:
        return ids
    return [i for i in ids if rows[i].get("captureRule") == rules[kind]]


def by_name(store: Tables, req: Request, rows: dict, ids: list) -> list:
    """`q` keeps the rows whose name contains it, ignoring case."""
    q = req.query.get("q", "").casefold()
    return [i for i in ids if q in str(rows[i].get("name") or "").casefold()] if q else ids


def pipelines(store: Tables, req: Request, rows: dict, ids: list) -> list:
    """Active pipelines only unless `includeDeleted=true`; `q` filters by name."""
    if req.query.get("includeDeleted", "").lower() != "true":
        ids = [i for i in ids if not rows[i].get("deleted")]
    return by_name(store, req, rows, ids)


def boards_by_name(store: Tables, req: Request, rows: dict, ids: list) -> list:
    """Boards take both a status and a name filter."""
    return by_name(store, req, rows, boards(store, req, rows, ids))


# By wrapper key: the filter a list endpoint of that object applies.
LIST_FILTERS: dict[str, ListFilter] = {
    "task": tasks,
    "board": boards_by_name,
    "stage": stages,
    "trackDefinition": track_definitions,
    "pipeline": pipelines,
}
