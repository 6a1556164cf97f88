"""A copy equals Capsule: a model-based test of the end state a loader is left with.

Random creates, updates and deletes of every object Capsule lets a user write go through the
sandbox's HTTP API; between them the real tap runs incremental syncs (in process, from the STATE
of the run before), and a small reference loader applies what it emits, with the Singer semantics
a SQL loader has: upsert on the key, `_sdc_deleted_at` marks a row deleted, a `<stream>_deleted`
record marks its object's row deleted, and ACTIVATE_VERSION marks deleted every row of an older
version (or of none). The loader is written here, from those rules, not from the tap's code.

Checked after every incremental run, against what Capsule holds:
- no row is missing, except the link and track streams (a new link does not change its parent, so
  it waits for the reconcile);
- no deleted row remains, except tasks, links and tracks (no deleted feed: the reconcile).
Checked after a full refresh over the existing copy: the copy equals a fresh full sync into an
empty destination, row for row and value for value, and Capsule's keys exactly.
"""

from __future__ import annotations

import contextlib
import io
import json
import typing as t

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tap_capsule.sandbox import Sandbox
from tap_capsule.tap import TapCapsule

TOKEN = "model-test-token-5e1d"
EXTRA: dict = {}  # settings a check of this test can add (e.g. to see it fail without a feature)
LINKS = {"opportunity_parties", "case_parties", "opportunity_tracks", "case_tracks"}
# The guarantee table (docs/tap.md): what an incremental run may leave for the reconcile.
NEW_AT_RECONCILE = LINKS
DELETIONS_AT_RECONCILE = LINKS | {"tasks"}


class Destination:
    """A reference loader: one table per stream, upserts on the key, soft deletes."""

    def __init__(self) -> None:
        self.keys: dict[str, list[str]] = {}
        # stream -> key -> {"row", "version", "deleted"}
        self.tables: dict[str, dict[tuple, dict]] = {}

    def apply(self, messages: t.Iterable[dict]) -> None:
        for message in messages:
            kind, stream = message["type"], message.get("stream", "")
            if kind == "SCHEMA":
                self.keys[stream] = message["key_properties"]
                self.tables.setdefault(stream, {})
            elif kind == "RECORD":
                record = message["record"]
                key = tuple(record[k] for k in self.keys[stream])
                self.tables[stream][key] = {
                    "row": record,
                    "version": message.get("version"),
                    "deleted": bool(record.get("_sdc_deleted_at")),
                }
                if stream.endswith("_deleted"):  # `<stream>_deleted`: joined on `id`
                    base = self.tables.get(stream.removesuffix("_deleted"), {})
                    if (record["id"],) in base:
                        base[(record["id"],)]["deleted"] = True
            elif kind == "ACTIVATE_VERSION":
                for entry in self.tables.get(stream, {}).values():
                    if entry["version"] is None or entry["version"] < message["version"]:
                        entry["deleted"] = True

    def live(self, stream: str) -> dict[tuple, dict]:
        return {k: e["row"] for k, e in self.tables.get(stream, {}).items() if not e["deleted"]}


def sync(url: str, state: dict | None) -> tuple[list[dict], dict]:
    """One run of the real tap, in process: its messages and the last STATE."""
    config = {"access_token": TOKEN, "api_url": url, "child_streams": True, **EXTRA}
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out):
        TapCapsule(config=config, state=state or {}).sync_all()
        out.flush()
    messages = [json.loads(line) for line in out.buffer.getvalue().splitlines()]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return messages, states[-1] if states else {}


class Capsule:
    """Writes through the sandbox's HTTP API, as any Capsule client would."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {TOKEN}"

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


class CopyOfCapsule(RuleBasedStateMachine):
    """Capsule (the sandbox), a copy kept by incremental syncs, and the STATE between them."""

    def __init__(self) -> None:
        super().__init__()
        self.sb = Sandbox(token=TOKEN, scale=3, seed=11).start()
        self.capsule = Capsule(self.sb)
        self.copy = Destination()
        self.state: dict = {}

    @initialize()
    def first_sync(self) -> None:
        messages, self.state = sync(self.sb.url, None)
        self.copy.apply(messages)

    # --- changes in Capsule ---------------------------------------------------------------------

    @rule(data=st.data(), streams=st.lists(st.sampled_from(CREATABLE), min_size=1, max_size=2))
    def create(self, data: st.DataObject, streams: list[str]) -> None:
        for stream in streams:  # two creates between runs: e.g. a task of a new party
            body = create_body(stream, self.capsule, data.draw, data.draw(NAMES))
            if body is not None:
                item, path = PATHS[stream]
                self.capsule.call("POST", path, {item: body})

    @rule(data=st.data(), stream=st.sampled_from(UPDATABLE), name=NAMES)
    def update(self, data: st.DataObject, stream: str, name: str) -> None:
        rows = self.capsule.rows(stream)
        if rows:
            item, path = PATHS[stream]
            rid = data.draw(st.sampled_from(rows))["id"]
            body = update_body(stream, self.capsule, data.draw, name)
            self.capsule.call("PUT", f"{path}/{rid}", {item: body})

    @rule(data=st.data(), stream=st.sampled_from(DELETABLE))
    def delete(self, data: st.DataObject, stream: str) -> None:
        rows = self.capsule.rows(stream)
        if rows:
            _, path = PATHS[stream]
            self.capsule.call("DELETE", f"{path}/{data.draw(st.sampled_from(rows))['id']}")

    @rule(data=st.data(), parent=st.sampled_from(["opportunities", "cases"]), add=st.booleans())
    def link(self, data: st.DataObject, parent: str, add: bool) -> None:
        path = "/opportunities" if parent == "opportunities" else "/kases"
        stream, key = (
            ("opportunity_parties", "opportunityId")
            if parent == "opportunities"
            else ("case_parties", "caseId")
        )
        if add:
            parents, parties = self.capsule.rows(parent), self.capsule.rows("parties")
            if parents and parties:
                pid = data.draw(st.sampled_from(parents))["id"]
                party = data.draw(st.sampled_from(parties))["id"]
                self.capsule.call("POST", f"{path}/{pid}/parties/{party}")
        elif links := self.capsule.rows(stream):
            gone = data.draw(st.sampled_from(links))
            self.capsule.call("DELETE", f"{path}/{gone[key]}/parties/{gone['partyId']}")

    # --- runs of the tap --------------------------------------------------------------------------

    def capsule_keys(self, stream: str) -> set[tuple]:
        keys = self.copy.keys[stream]
        return {tuple(r.get(k) for k in keys) for r in self.capsule.rows(stream)}

    @invariant()
    def incremental_run(self) -> None:
        """After every step (a change, a link, a reconcile): cheap in process, and each change
        is then checked on the next run."""
        messages, self.state = sync(self.sb.url, self.state)
        self.copy.apply(messages)
        for stream in self.copy.keys:
            if stream.endswith("_deleted"):
                continue
            capsule, copied = self.capsule_keys(stream), set(self.copy.live(stream))
            if stream not in NEW_AT_RECONCILE:
                assert capsule <= copied, f"{stream}: missing after an incremental run"
            if stream not in DELETIONS_AT_RECONCILE:
                assert copied <= capsule, f"{stream}: deleted rows remain after an incremental run"

    @rule()
    def full_refresh(self) -> None:
        """The reconcile: a sync without STATE over the copy, then compared with a fresh one."""
        messages, self.state = sync(self.sb.url, None)
        self.copy.apply(messages)
        fresh = Destination()
        fresh.apply(sync(self.sb.url, None)[0])
        assert set(self.copy.keys) == set(fresh.keys)
        for stream in fresh.keys:
            assert self.copy.live(stream) == fresh.live(stream), stream
            if not stream.endswith("_deleted"):
                assert set(fresh.live(stream)) == self.capsule_keys(stream), stream

    def teardown(self) -> None:
        try:
            self.full_refresh()
        finally:
            self.sb.stop()


TestCopyOfCapsule = CopyOfCapsule.TestCase
TestCopyOfCapsule.settings = settings(
    max_examples=3,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
