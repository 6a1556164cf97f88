"""Every sandbox list and show answer has the shape Capsule documents: the fixtures are the judge.

The fixtures under tests/fixtures/capsule/ were written from Capsule's developer documentation and
from responses real clients recorded (see their NOTES.md), never from our catalogue or sandbox.
For each endpoint, a sandbox record may carry only keys the documentation shows for that object,
must carry the keys every documented record carries, and each value must have a documented JSON
type (null is always allowed: Capsule sends null for unset values). Nested objects are checked the
same way, against every documented value under that key (or its alias: a `creator` is a user stub).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from tap_capsule.sandbox import Sandbox
from tests.conftest import SANDBOX_TOKEN

FIXTURES = Path(__file__).parents[1] / "fixtures" / "capsule"
ENDPOINTS = json.loads((FIXTURES / "endpoints.json").read_text())
# Nested keys that hold the same kind of stub as another key.
ALIASES = {
    "creator": "owner",
    "user": "owner",
    "organisation": "party",
    "parties": "party",
    "lastOpenMilestone": "milestone",
}


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else "array"


@dataclasses.dataclass
class Shape:
    """Every documented value seen at one place: JSON types, object keys, list items."""

    types: set = dataclasses.field(default_factory=set)
    keys: dict = dataclasses.field(default_factory=dict)
    items: Shape | None = None

    def add(self, value) -> Shape:
        self.types.add(json_type(value))
        if isinstance(value, dict):
            for k, v in value.items():
                self.keys.setdefault(k, Shape()).add(v)
        elif isinstance(value, list):
            for item in value:
                self.items = self.items or Shape()
                self.items.add(item)
        return self

    def merge(self, other: Shape) -> Shape:
        self.types |= other.types
        for k, v in other.keys.items():
            self.keys.setdefault(k, Shape()).merge(v)
        if other.items is not None:
            self.items = (self.items or Shape()).merge(other.items)
        return self


def records(fixture: str) -> tuple[list[dict], list[dict]]:
    """(records, restricted stubs) of one fixture file."""
    meta = ENDPOINTS[fixture]
    body = json.loads((FIXTURES / fixture).read_text())
    main = body[meta["wrapper"]]
    return (main if isinstance(main, list) else [main]), body.get(meta.get("restricted"), [])


def nested_registry() -> dict[str, Shape]:
    """Every documented value of every nested key, across all fixtures."""
    registry: dict[str, Shape] = {}

    def walk(value):
        if isinstance(value, dict):
            for k, v in value.items():
                for item in v if isinstance(v, list) else [v]:
                    if isinstance(item, dict):
                        registry.setdefault(ALIASES.get(k, k), Shape()).add(item)
                walk(v)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for fixture in ENDPOINTS:
        recs, restricted = records(fixture)
        walk(recs + restricted)
    return registry


NESTED = nested_registry()


def compatible(sandbox_type: str, documented: set) -> bool:
    known = documented - {"null"}
    if sandbox_type == "null" or not known:
        return True  # Capsule sends null for unset values; a null-only example fixes no type
    return sandbox_type in known or (sandbox_type == "integer" and "number" in known)


def problems(value, shape: Shape, where: str) -> list[str]:
    out = []
    kind = json_type(value)
    if not compatible(kind, shape.types):
        out.append(f"{where}: {kind}, documented {sorted(shape.types)}")
        return out
    if not shape.types - {"null"}:
        return out  # only ever documented as null: nothing to compare inside
    if isinstance(value, dict):
        for k, v in value.items():
            documented = shape.keys.get(k)
            if documented is None:
                out.append(f"{where}.{k}: not documented")
                continue
            elsewhere = NESTED.get(ALIASES.get(k, k))
            if isinstance(v, dict) and elsewhere is not None:
                documented = Shape().merge(documented).merge(elsewhere)
            elif isinstance(v, list) and elsewhere is not None:
                documented = Shape().merge(documented)
                documented.items = (documented.items or Shape()).merge(elsewhere)
            out += problems(v, documented, f"{where}.{k}")
    elif isinstance(value, list) and shape.items is not None:
        for i, item in enumerate(value[:20]):
            out += problems(item, shape.items, f"{where}[{i}]")
    return out


def documented(fixtures: tuple[str, ...]) -> tuple[Shape, set, Shape, set]:
    """(record shape, keys every record has) for records and for restricted stubs."""
    shape, restricted_shape = Shape(), Shape()
    required: set | None = None
    restricted_required: set | None = None
    for fixture in fixtures:
        recs, restricted = records(fixture)
        for rec in recs:
            shape.add(rec)
            required = set(rec) if required is None else required & set(rec)
        for rec in restricted:
            restricted_shape.add(rec)
            keys = set(rec)
            restricted_required = (
                keys if restricted_required is None else restricted_required & keys
            )
    return shape, required or set(), restricted_shape, restricted_required or set()


def check(records_, shape: Shape, required: set, label: str) -> list[str]:
    out = []
    for rec in records_:
        out += [f"{label} id={rec.get('id')}: {p}" for p in problems(rec, shape, "")]
        missing = required - set(rec)
        if missing:
            out.append(f"{label} id={rec.get('id')}: missing documented keys {sorted(missing)}")
    return out


@pytest.fixture(scope="module")
def capsule():
    with Sandbox(token=SANDBOX_TOKEN, scale=40, seed=3) as sb:
        yield sb


def requests_for(state: dict) -> list[tuple[tuple[str, ...], str]]:
    """(fixtures that document the answer, sandbox path and query) for every list and show."""
    party = state["parties"][0]["id"]
    opp, kase = state["opportunities"][0]["id"], state["cases"][0]["id"]
    linked_opp = state["opportunity_parties"][0]["opportunityId"]
    linked_case = state["case_parties"][0]["caseId"]
    opp_track = state["opportunity_tracks"][0]
    case_track = state["case_tracks"][0]
    note = next(e for e in state["entries"] if e["type"] == "note")["id"]
    pipeline = state["pipelines"][0]["id"]
    first = {s: state[s][0]["id"] for s in (
        "tasks", "milestones", "lost_reasons", "teams", "track_definitions", "resthooks",
        "boards", "stages", "users", "categories", "activity_types",
        "party_tags", "opportunity_tags", "case_tags",
        "party_custom_fields", "opportunity_custom_fields", "case_custom_fields",
    )}  # fmt: skip
    parties = ("parties.list.json", "parties.show.json")
    opps = ("opportunities.list.json", "opportunities.show.json")
    kases = ("kases.list.json", "kases.show.json")
    tracks = ("opportunities.tracks.list.json", "kases.tracks.list.json", "tracks.show.json")
    tags = ("tags.list.json", "tags.show.json")
    defs = ("fields.definitions.list.json", "fields.definitions.show.json")
    embed = "embed=tags,fields"
    out = [
        (parties, f"/parties?{embed}&perPage=100"),
        (parties, f"/parties/{party}?{embed}"),
        (("parties.deleted.json",), "/parties/deleted?since=2000-01-01T00:00:00Z"),
        (opps, f"/opportunities?{embed}&perPage=100"),
        (opps, f"/opportunities/{opp}?{embed}"),
        (("opportunities.deleted.json",), "/opportunities/deleted"),
        (
            ("opportunities.parties.list.json", *parties),
            f"/opportunities/{linked_opp}/parties?{embed}",
        ),
        (tracks, f"/opportunities/{opp_track['opportunityId']}/tracks?embed=task"),
        (kases, f"/kases?{embed}&perPage=100"),
        (kases, f"/kases/{kase}?{embed}"),
        (("kases.deleted.json",), "/kases/deleted"),
        (("kases.parties.list.json", *parties), f"/kases/{linked_case}/parties?{embed}"),
        (tracks, f"/kases/{case_track['caseId']}/tracks?embed=tasks"),
        (tracks, f"/tracks/{case_track['id']}?embed=task"),
        (("entries.list.json", "entries.show.json"), "/entries?perPage=100"),
        (("entries.list.json", "entries.show.json"), f"/entries/{note}"),
        (
            ("tasks.list.json", "tasks.show.json"),
            "/tasks?status=open,completed,pending&perPage=100",
        ),
        (("tasks.list.json", "tasks.show.json"), f"/tasks/{first['tasks']}"),
        (("pipelines.list.json", "pipelines.show.json"), "/pipelines?includeDeleted=true"),
        (("pipelines.list.json", "pipelines.show.json"), f"/pipelines/{pipeline}"),
        (("pipelines.milestones.list.json",), f"/pipelines/{pipeline}/milestones"),
        (("milestones.list.json", "milestones.show.json"), "/milestones"),
        (("milestones.list.json", "milestones.show.json"), f"/milestones/{first['milestones']}"),
    ]
    simple = [
        ("lostreasons", "lost_reasons"), ("teams", "teams"),
        ("trackdefinitions", "track_definitions"), ("resthooks", "resthooks"),
        ("boards", "boards"), ("stages", "stages"), ("users", "users"),
        ("categories", "categories"), ("activitytypes", "activity_types"),
    ]  # fmt: skip
    query = {
        "teams": "?embed=memberships",
        "boards": "?status=all",
        "stages": "?status=all&includeOnDeletedBoard=true",
    }
    for path, stream in simple:
        pair = (f"{path}.list.json", f"{path}.show.json")
        out += [(pair, f"/{path}{query.get(path, '')}"), (pair, f"/{path}/{first[stream]}")]
    out += [
        (("titles.list.json",), "/titles"),
        (("countries.list.json",), "/countries"),
        (("currencies.list.json",), "/currencies"),
    ]
    for entity, prefix in (("parties", "party"), ("opportunities", "opportunity"),
                           ("kases", "case")):  # fmt: skip
        out += [
            (tags, f"/{entity}/tags"),
            (tags, f"/{entity}/tags/{first[prefix + '_tags']}"),
            (defs, f"/{entity}/fields/definitions"),
            (defs, f"/{entity}/fields/definitions/{first[prefix + '_custom_fields']}"),
        ]
    return out


def test_every_fixture_endpoint_is_compared(capsule):
    covered = {f for fixtures, _ in requests_for(capsule.state()) for f in fixtures}
    assert covered == set(ENDPOINTS)


def test_sandbox_answers_have_the_documented_shapes(capsule, sandbox_http):
    session = sandbox_http()
    found = []
    for fixtures, path in requests_for(capsule.state()):
        response = session.get(capsule.url + path)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        meta = ENDPOINTS[fixtures[0]]
        shape, required, restricted_shape, restricted_required = documented(fixtures)
        wrapper = next(k for k in body if k != "meta")
        recs = body[wrapper] if isinstance(body[wrapper], list) else [body[wrapper]]
        assert recs, f"{path}: the sandbox returned no record to compare"
        found += check(recs, shape, required, path)
        if meta.get("restricted"):
            found += check(
                body[meta["restricted"]],
                restricted_shape,
                restricted_required,
                path + " restricted",
            )
    # One line per kind of problem: ids and list positions vary, the problem does not.
    unique = sorted({re.sub(r"\d+", "N", p) for p in found})
    assert not unique, "\n".join(unique)


def test_the_shape_check_catches_a_wrong_type_and_an_extra_key():
    shape, required, _, _ = documented(("users.list.json", "users.show.json"))
    good = records("users.list.json")[0][0]
    assert check([good], shape, required, "ok") == []
    wrong = {**good, "taskReminder": {"timeOfDay": "09:00"}}
    assert any("taskReminder: object" in p for p in check([wrong], shape, required, "x"))
    extra = {**good, "shoeSize": 9}
    assert any("shoeSize: not documented" in p for p in check([extra], shape, required, "x"))
    missing = {k: v for k, v in good.items() if k != "username"}
    assert any("missing documented keys" in p for p in check([missing], shape, required, "x"))


def test_seeded_records_follow_the_sandbox_models_not_the_catalogue(capsule):
    """The seed writes the documented models (documented.MODELS), plus a child's parent key."""
    from tap_capsule import catalogue
    from tap_capsule.sandbox.documented import MODELS

    state = capsule.state()
    for o in catalogue.OBJECTS:
        if o.is_link or o.item_key not in MODELS:
            continue
        allowed = set(MODELS[o.item_key]) | {o.parent_key}
        for rec in state[o.stream]:
            assert set(rec) <= allowed, (o.stream, sorted(set(rec) - allowed))
    # Where the documentation and the catalogue disagree, the seed follows the documentation.
    assert all(isinstance(u["taskReminder"], bool) for u in state["users"])
    assert all(isinstance(c["numericCode"], int) for c in state["countries"])
    assert all(isinstance(h["clientId"], int) for h in state["resthooks"])
    assert all(isinstance(a["icon"]["id"], str) for a in state["activity_types"])
    assert all(t["active"] is True for t in state["tasks"])
