"""Random changes to a Capsule account, through its HTTP API, for the end-state tests.

One set of generators for the model-based test (tests/tap/test_copy_model.py, a hypothesis state
machine whose rules are the four kinds of change below) and the PostgreSQL round trip
(tests/pipelines/test_pipeline_copy_model.py, a generated sequence of the same changes between
`meltano run`s). Bodies follow Capsule's API documentation, never the tap's catalogue.

Also the guarantee table of docs/tap.md as the tests read it: what an incremental run may leave
for the reconcile.
"""

from __future__ import annotations

import typing as t

import requests
from hypothesis import strategies as st

if t.TYPE_CHECKING:
    from tap_capsule.sandbox import Sandbox

LINKS = {"opportunity_parties", "case_parties", "opportunity_tracks", "case_tracks"}
# The guarantee table (docs/tap.md): what an incremental run may leave for the reconcile.
NEW_AT_RECONCILE = LINKS
DELETIONS_AT_RECONCILE = LINKS | {"tasks"}


def comparable(stream: str, row: dict) -> dict:
    """A row as two syncs of the same account agree on it.

    A restricted record (no longer visible to the user) has no deletion time in Capsule: its
    `<stream>_deleted` row carries the sync's own time, which differs from run to run.
    """
    if stream.endswith("_deleted") and row.get("restricted"):
        return {**row, "deletedAt": "(the sync's time)"}
    return row


class Capsule:
    """Writes through the sandbox's HTTP API, as any Capsule client would."""

    def __init__(self, sb: Sandbox, token: str) -> None:
        self.sb = sb
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict | None = None) -> None:
        # A write Capsule refuses (422: a milestone still in use...) changes nothing, which the
        # oracle sees like any other state.
        self.http.request(method, self.sb.url + path, json=body, timeout=30)

    def rows(self, stream: str) -> list[dict]:
        return self.sb.state()[stream]


# Item wrapper and paths of each writable object, from Capsule's API documentation.
PATHS = {
    "parties": ("party", "/parties"),
    "opportunities": ("opportunity", "/opportunities"),
    "cases": ("kase", "/kases"),
    "tasks": ("task", "/tasks"),
    "entries": ("entry", "/entries"),
    "milestones": ("milestone", "/milestones"),
    "lost_reasons": ("lostReason", "/lostreasons"),
    "categories": ("category", "/categories"),
    "activity_types": ("activityType", "/activitytypes"),
    "custom_titles": ("personTitle", "/titles"),
    "resthooks": ("restHook", "/resthooks"),
    "party_tags": ("tag", "/parties/tags"),
    "opportunity_tags": ("tag", "/opportunities/tags"),
    "case_tags": ("tag", "/kases/tags"),
    "party_custom_fields": ("definition", "/parties/fields/definitions"),
    "opportunity_custom_fields": ("definition", "/opportunities/fields/definitions"),
    "case_custom_fields": ("definition", "/kases/fields/definitions"),
    "opportunity_tracks": ("track", "/tracks"),
    "case_tracks": ("track", "/tracks"),
    "users": ("user", "/users"),
}
# Every stream the changes below touch: the objects above and the links of the `link` change.
TOUCHED = (*PATHS, "opportunity_parties", "case_parties")
# The records users change most often come up three times as often as the settings.
CORE = ["parties", "opportunities", "cases", "tasks", "entries"] * 2
CREATABLE = CORE + sorted(set(PATHS) - {"users"})
UPDATABLE = CORE + sorted(set(PATHS) - {"resthooks", "custom_titles"})  # no PUT for these
DELETABLE = CORE + sorted(set(PATHS) - {"users"})
NAMES = st.builds("{} {}".format, st.sampled_from(["Alpha", "Beta", "Gamma"]), st.integers(0, 99))


def ref(rows: list[dict], draw: t.Callable) -> dict | None:
    return {"id": draw(st.sampled_from(rows))["id"]} if rows else None


def create_body(stream: str, capsule: Capsule, draw: t.Callable, name: str) -> dict | None:
    rows = capsule.sb.state()
    if stream == "parties":
        if draw(st.booleans()):
            return {"type": "person", "firstName": name, "lastName": "Model"}
        return {"type": "organisation", "name": name}
    if stream == "opportunities":
        return {
            "name": name,
            "party": ref(rows["parties"], draw),
            "milestone": ref(rows["milestones"], draw),
        }
    if stream == "cases":
        return {"name": name, "party": ref(rows["parties"], draw), "owner": {"id": 1}}
    if stream == "tasks":
        return {"description": name, "dueOn": "2026-01-01", "party": ref(rows["parties"], draw)}
    if stream == "entries":
        return {"type": "note", "content": name, "party": ref(rows["parties"], draw)}
    if stream == "milestones":
        return {"name": name, "pipeline": ref(rows["pipelines"], draw), "probability": 50}
    if stream == "custom_titles":
        return {"title": name}
    if stream == "resthooks":
        return {"event": "party/created", "targetUrl": "https://hooks.example.com/model"}
    if stream == "categories":
        return {"name": name, "colour": "#123456"}
    if stream.endswith("_custom_fields"):
        return {"name": name, "type": "text"}
    if stream in ("opportunity_tracks", "case_tracks"):
        parent, rule_ = ("opportunity", "OPPORTUNITY") if stream[0] == "o" else ("kase", "KASE")
        defs = [d for d in rows["track_definitions"] if d.get("captureRule") == rule_]
        parents = rows["opportunities" if parent == "opportunity" else "cases"]
        return {"definition": ref(defs, draw), parent: ref(parents, draw)}
    if stream == "users":
        return None
    return {"name": name}


def update_body(stream: str, capsule: Capsule, draw: t.Callable, name: str) -> dict:
    rows = capsule.sb.state()
    if stream == "parties":
        change = draw(st.sampled_from(["about", "name", "tag", "field"]))
        if change == "name":  # an organisation's name is embedded in other records
            return {"name": name, "firstName": name}
        if change == "tag":
            return {"tags": [{"name": draw(st.sampled_from(["VIP", "Model tag"]))}]}
        if change == "field":
            text = [d for d in rows["party_custom_fields"] if d.get("type") == "text"]
            return {"fields": [{"definition": ref(text, draw), "value": name}]} if text else {}
        return {"about": name}
    if stream in ("opportunities", "cases"):
        return {"description": name}
    if stream == "tasks":
        return {"detail": name, "status": draw(st.sampled_from(["OPEN", "COMPLETED"]))}
    if stream == "entries":
        return {"content": name}
    if stream in ("opportunity_tracks", "case_tracks"):
        return {"description": name}
    if stream == "users":
        return {"timezone": draw(st.sampled_from(["Europe/Paris", "Europe/London"]))}
    return {"name": name}


# --- the four kinds of change, as rules of a state machine or steps of a sequence -----------------

CREATE = st.lists(st.sampled_from(CREATABLE), min_size=1, max_size=2)
UPDATE = st.sampled_from(UPDATABLE)
DELETE = st.sampled_from(DELETABLE)
LINK_PARENT = st.sampled_from(["opportunities", "cases"])


def create(capsule: Capsule, draw: t.Callable, streams: list[str]) -> None:
    """One or two creates between runs: e.g. a task of a new party."""
    for stream in streams:
        body = create_body(stream, capsule, draw, draw(NAMES))
        if body is not None:
            item, path = PATHS[stream]
            capsule.call("POST", path, {item: body})


def update(capsule: Capsule, draw: t.Callable, stream: str, name: str) -> None:
    rows = capsule.rows(stream)
    if rows:
        item, path = PATHS[stream]
        rid = draw(st.sampled_from(rows))["id"]
        body = update_body(stream, capsule, draw, name)
        capsule.call("PUT", f"{path}/{rid}", {item: body})


def delete(capsule: Capsule, draw: t.Callable, stream: str) -> None:
    rows = capsule.rows(stream)
    if rows:
        _, path = PATHS[stream]
        capsule.call("DELETE", f"{path}/{draw(st.sampled_from(rows))['id']}")


def link(capsule: Capsule, draw: t.Callable, parent: str, add: bool) -> None:
    """Add a party to an opportunity or case, or remove one (links have no `updatedAt`)."""
    path = "/opportunities" if parent == "opportunities" else "/kases"
    stream, key = (
        ("opportunity_parties", "opportunityId")
        if parent == "opportunities"
        else ("case_parties", "caseId")
    )
    if add:
        parents, parties = capsule.rows(parent), capsule.rows("parties")
        if parents and parties:
            pid = draw(st.sampled_from(parents))["id"]
            party = draw(st.sampled_from(parties))["id"]
            capsule.call("POST", f"{path}/{pid}/parties/{party}")
    elif links := capsule.rows(stream):
        gone = draw(st.sampled_from(links))
        capsule.call("DELETE", f"{path}/{gone[key]}/parties/{gone['partyId']}")


def any_change(capsule: Capsule, draw: t.Callable) -> str:
    """One change of any kind, drawn as the state machine's rules draw theirs; what it was."""
    # A delete first: the simplest sequence hypothesis draws is then one deletion (of a party,
    # the first of DELETABLE), which exercises more than one create would.
    kind = draw(st.sampled_from(["delete", "update", "create", "link"]))
    if kind == "create":
        streams = draw(CREATE)
        create(capsule, draw, streams)
        return f"create {', '.join(streams)}"
    if kind == "update":
        stream = draw(UPDATE)
        update(capsule, draw, stream, draw(NAMES))
        return f"update {stream}"
    if kind == "delete":
        stream = draw(DELETE)
        delete(capsule, draw, stream)
        return f"delete {stream}"
    parent, add = draw(LINK_PARENT), draw(st.booleans())
    link(capsule, draw, parent, add)
    return f"{'add' if add else 'remove'} a party of one of the {parent}"
