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

import capsule_changes as changes
from capsule_changes import DELETIONS_AT_RECONCILE, NEW_AT_RECONCILE, Capsule, comparable
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tap_capsule.sandbox import Sandbox
from tap_capsule.tap import TapCapsule

TOKEN = "model-test-token-5e1d"
EXTRA: dict = {}  # settings a check of this test can add (e.g. to see it fail without a feature)


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
        return {
            k: comparable(stream, e["row"])
            for k, e in self.tables.get(stream, {}).items()
            if not e["deleted"]
        }


def sync(url: str, state: dict | None, extra: dict | None = None) -> tuple[list[dict], dict]:
    """One run of the real tap, in process: its messages and the last STATE."""
    config = {"access_token": TOKEN, "api_url": url, "child_streams": True, **(extra or {})}
    config.update(EXTRA)
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out):
        TapCapsule(config=config, state=state or {}).sync_all()
        out.flush()
    messages = [json.loads(line) for line in out.buffer.getvalue().splitlines()]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return messages, states[-1] if states else {}


class CopyOfCapsule(RuleBasedStateMachine):
    """Capsule (the sandbox), a copy kept by incremental syncs, and the STATE between them.

    The tap runs with its default settings (deletions in `<stream>_deleted` streams).
    """

    tap_settings: t.ClassVar[dict] = {}

    def __init__(self) -> None:
        super().__init__()
        self.sb = Sandbox(token=TOKEN, scale=3, seed=11).start()
        self.capsule = Capsule(self.sb, TOKEN)
        self.copy = Destination()
        self.state: dict = {}

    @initialize()
    def first_sync(self) -> None:
        messages, self.state = sync(self.sb.url, None, self.tap_settings)
        self.copy.apply(messages)

    # --- changes in Capsule ---------------------------------------------------------------------

    @rule(data=st.data(), streams=changes.CREATE)
    def create(self, data: st.DataObject, streams: list[str]) -> None:
        changes.create(self.capsule, data.draw, streams)

    @rule(data=st.data(), stream=changes.UPDATE, name=changes.NAMES)
    def update(self, data: st.DataObject, stream: str, name: str) -> None:
        changes.update(self.capsule, data.draw, stream, name)

    @rule(data=st.data(), stream=changes.DELETE)
    def delete(self, data: st.DataObject, stream: str) -> None:
        changes.delete(self.capsule, data.draw, stream)

    @rule(data=st.data(), parent=changes.LINK_PARENT, add=st.booleans())
    def link(self, data: st.DataObject, parent: str, add: bool) -> None:
        changes.link(self.capsule, data.draw, parent, add)

    # --- runs of the tap --------------------------------------------------------------------------

    def capsule_keys(self, stream: str) -> set[tuple]:
        keys = self.copy.keys[stream]
        return {tuple(r.get(k) for k in keys) for r in self.capsule.rows(stream)}

    @invariant()
    def incremental_run(self) -> None:
        """After every step (a change, a link, a reconcile): cheap in process, and each change
        is then checked on the next run."""
        messages, self.state = sync(self.sb.url, self.state, self.tap_settings)
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
        messages, self.state = sync(self.sb.url, None, self.tap_settings)
        self.copy.apply(messages)
        fresh = Destination()
        fresh.apply(sync(self.sb.url, None, self.tap_settings)[0])
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


class CopyWithInlineTombstones(CopyOfCapsule):
    """The same end state with `tombstones: inline` (deletions as rows of the object's stream)."""

    tap_settings: t.ClassVar[dict] = {"tombstones": "inline"}


TestCopyWithInlineTombstones = CopyWithInlineTombstones.TestCase
TestCopyWithInlineTombstones.settings = settings(
    TestCopyOfCapsule.settings, max_examples=1, stateful_step_count=6
)
