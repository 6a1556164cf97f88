"""The lost-answer matrix of undo and restore: every writable object, every kind of write.

The sandbox applies every write and answers 502 (`lost_answer_every=1`): the client cannot tell
it from a write that failed, so it must look before sending anything again. Each case runs the
same command twice on identical accounts (same seed, same setup), once clean and once with every
answer lost, and compares the end states: no duplicate and nothing missing.

The cases come from the catalogue, not from a list kept here: every object with an INSERT is
created (and undone), every object with an UPDATE is changed (and put back), every object with a
DELETE is deleted (and recreated), and a restore covers every object whose `restore` says it is
created; an object left out says why in its `not_restored`. A new catalogue object joins the
matrix on its own (and `creates` fails until it has an example record).
"""

from __future__ import annotations

import json
import re
import typing as t

import pytest
from reversible_helpers import (
    TOKEN,
    WRITABLE,
    backup,
    config_file,
    creates,
    diff_snapshots,
    everything,
    restore,
    target,
    undo,
    writes_of,
)

from tap_capsule import catalogue as cat
from tap_capsule.sandbox import Sandbox

if t.TYPE_CHECKING:
    from pathlib import Path

SCALE, SEED = 6, 7
GONE_AT = "2026-01-01T00:00:00Z"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UPDATABLE = tuple(o.stream for o in cat.OBJECTS if cat.UPDATE in o.operations)
DELETABLE = tuple(o.stream for o in cat.OBJECTS if cat.DELETE in o.operations)
# What an undo cannot recreate, and the catalogue attribute that says why: Capsule never returns
# a track's definition, which a create needs (`capture_rule` objects).
NOT_RECREATED = {o.stream: "track definition" for o in cat.OBJECTS if o.capture_rule}
CREATED_BY_RESTORE = tuple(
    o.stream
    for o in cat.OBJECTS
    if o.restore is not None and o.restore.kind in (cat.RESTORE_CONTENT, cat.RESTORE_LINK)
)


@pytest.fixture(autouse=True)
def private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPSULE_LOCK_DIR", str(tmp_path / "locks"))


def account(scale: int = SCALE) -> Sandbox:
    return Sandbox(token=TOKEN, scale=scale, seed=SEED)


def test_the_matrix_covers_every_object_of_the_catalogue():
    """Each writable object is in the matrix, or the catalogue says why a restore leaves it out."""
    assert set(UPDATABLE) - set(WRITABLE) == {"users"}  # changed in place, never created
    assert set(DELETABLE) <= set(WRITABLE)
    for obj in cat.OBJECTS:
        if obj.operations and obj.restore is None:
            assert obj.not_restored, f"{obj.stream}: neither restored nor saying why"


# --- undo ---------------------------------------------------------------------------------------


def created(log: Path) -> dict[str, list[dict]]:
    """Per stream, in input order: what the creating run's change log says it made."""
    out: dict[str, list[dict]] = {}
    for w in writes_of(log):
        assert w["status"] == "applied", w
        out.setdefault(w["stream"], []).append(w)
    return out


def changed_field(obj: cat.CapsuleObject, record: dict) -> tuple[str, str] | None:
    """A text field of `record` an UPDATE may write, and a new value for it (dates move a day)."""
    fields = [
        k
        for k, v in record.items()
        if isinstance(v, str)
        and v
        and k in obj.schema
        and k not in obj.all_read_only
        and k not in ("type", "status", "id")
        and (obj.updatable is None or k in obj.updatable)
    ]
    fields.sort(key=lambda k: (bool(DATE.match(record[k])), k))
    if not fields:
        return None
    key, value = fields[0], record[fields[0]]
    if DATE.match(value):
        return key, value[:8] + ("28" if value[8:] != "28" else "27")
    return key, value + " (changed)"


def updates(state: dict, made: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    """One UPDATE of every updatable object: of a record the setup made, else an existing one."""
    out = []
    for stream in UPDATABLE:
        obj = cat.get(stream)
        rows = [w["record_now"] for w in made.get(stream, ())] or state[stream][:1]
        assert rows, f"no {stream} record to update"
        change = changed_field(obj, rows[0])
        assert change is not None, f"{stream}: no text field an UPDATE may write"
        out.append((stream, {"id": rows[0]["id"], change[0]: change[1]}))
    return out


def deletes(made: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    """One DELETE of every deletable object: the records the setup made (newest first)."""
    out = []
    for stream in reversed(DELETABLE):
        obj = cat.get(stream)
        w = made[stream][0]
        keys = w["keys"] if obj.is_link else {"id": w["id"]}
        out.append((stream, {**keys, "_sdc_deleted_at": GONE_AT}))
    return out


def setup_and_undo(operation: str, tmp_path: Path, lost: bool) -> tuple[dict, list[tuple]]:
    """A run of `operation` over every object, then `capsule undo` of it (answers lost or not)."""
    folder = tmp_path / ("lost" if lost else "clean")
    folder.mkdir()
    with account() as sb:
        first = folder / "creates.jsonl"
        config = config_file(folder, sb.url, change_log_path=str(first))
        target(config, creates(sb.state()))
        log = first
        if operation != cat.INSERT:
            made = created(first)
            state = sb.state()
            for stream, ws in made.items():
                rows = {str(r.get("id")): r for r in state.get(stream) or ()}
                for w in ws:
                    w["record_now"] = rows.get(str(w["id"]), {})
            log = folder / "changes.jsonl"
            config = config_file(folder, sb.url, change_log_path=str(log))
            records = updates(sb.state(), made) if operation == cat.UPDATE else deletes(made)
            target(config, records)
            kinds = {(w["stream"], w["operation"], w["status"]) for w in writes_of(log)}
            assert {s for s, _o, st in kinds if st == "applied"} >= {s for s, _ in records}, kinds
        if lost:
            sb.set_faults(lost_answer_every=1)  # every write applied, every answer lost
        run_, report = undo(config, log, check=False)
        sb.set_faults()
        assert run_.returncode in (0, 1), run_.stderr[-3000:]
        if lost:
            assert "HTTP 502" in run_.stderr  # the fault did hit its writes
        outcomes = sorted(
            (
                c["stream"],
                c["operation"],
                c["outcome"],
                c["reason"] if c["outcome"] != "reverted" else "",
            )
            for c in report["changes"]
        )
        return everything(sb.state()), outcomes


@pytest.mark.parametrize("operation", [cat.INSERT, cat.UPDATE, cat.DELETE])
def test_undo_with_every_answer_lost_ends_like_a_clean_undo(operation, tmp_path):
    clean, clean_outcomes = setup_and_undo(operation, tmp_path, lost=False)
    got, outcomes = setup_and_undo(operation, tmp_path, lost=True)
    assert got == clean, diff_snapshots(clean, got)
    assert outcomes == clean_outcomes
    # The clean undo reverted every object's write, except what the catalogue says it cannot.
    streams = {cat.INSERT: WRITABLE, cat.UPDATE: UPDATABLE, cat.DELETE: DELETABLE}[operation]
    reverted = {s for s, _op, outcome, _r in clean_outcomes if outcome == "reverted"}
    for stream in streams:
        if operation == cat.DELETE and stream in NOT_RECREATED:
            reasons = [r for s, _o, _oc, r in clean_outcomes if s == stream]
            assert any(NOT_RECREATED[stream] in r for r in reasons), reasons
            continue
        assert stream in reverted, (stream, clean_outcomes)


# --- restore ------------------------------------------------------------------------------------


def restored(folder: Path, mode: str, sb: Sandbox, tmp_path: Path, lost: bool) -> tuple:
    config = config_file(tmp_path, sb.url, name=f"r-{mode}-{lost}")
    sb.reset_requests()
    if lost:
        sb.set_faults(lost_answer_every=1)
    result = restore(config, folder, "--mode", mode, check=False)
    sb.set_faults()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Run the restore again" not in result.stderr
    assert ("HTTP 502" in result.stderr) == lost  # the fault did hit its writes
    routes = sb.requests()["by_route"]
    ids = json.loads(next(folder.glob(f"restore-{mode}-*.ids.json")).read_text())
    return everything(sb.state()), ids, routes


def test_restore_copy_with_every_answer_lost_ends_like_a_clean_restore(tmp_path):
    with account() as a:
        # One new record of every writable object, so the destination lacks each setting too
        # (a restore creates settings it can't match by name).
        made = creates(a.state())
        target(config_file(tmp_path, a.url, name="a"), made)
        state = a.state()
        folder = backup(config_file(tmp_path, a.url, backup_dir=str(tmp_path / "clean")))
    # closed opportunities and cases are in the matrix
    assert any(
        (o.get("milestone") or {}).get("id") and o.get("closedOn") for o in state["opportunities"]
    )
    assert any(c.get("status") == "CLOSED" for c in state["cases"])
    lost_folder = tmp_path / "lost"
    lost_folder.mkdir()
    for f in folder.iterdir():
        (lost_folder / f.name).write_bytes(f.read_bytes())
    with Sandbox(token=TOKEN, scale=0, seed=11) as b:
        clean, clean_ids, routes = restored(folder, "copy", b, tmp_path, lost=False)
    with Sandbox(token=TOKEN, scale=0, seed=11) as b:
        got, ids, _ = restored(lost_folder, "copy", b, tmp_path, lost=True)
    assert got == clean, diff_snapshots(clean, got)
    assert {k: v for k, v in ids.items() if k != "account"} == {
        k: v for k, v in clean_ids.items() if k != "account"
    }
    for stream in CREATED_BY_RESTORE:  # every object a restore creates was created
        if state.get(stream):
            assert clean.get(stream), f"the clean restore created no {stream}"
    for stream, record in made:  # and every setting it can't match
        obj = cat.get(stream)
        if obj.restore is not None and obj.restore.kind == cat.RESTORE_SETTING:
            name = record.get("name") or record.get("title")
            assert any(name in (r.get("name"), r.get("title")) for r in clean[stream].values()), (
                stream,
                name,
            )
    assert any(r.startswith("POST") for r in routes)


def same_mode_deletes(state: dict) -> list[tuple[str, dict]]:
    """One DELETE of every object a restore recreates: an organisation with people (whose
    `organisation` the restore then puts back with a PUT), and the first record of the others."""
    people = {(p.get("organisation") or {}).get("id") for p in state["parties"]}
    out: list[tuple[str, dict]] = []
    for stream in CREATED_BY_RESTORE:
        obj = cat.get(stream)
        rows = state.get(stream) or []
        if stream == "parties":
            rows = [p for p in rows if p["type"] == "organisation" and p["id"] in people]
        if not rows or cat.DELETE not in obj.operations:
            continue
        keys = (
            {k: rows[0][k] for k in (obj.parent_key, obj.child_key)}
            if obj.is_link
            else {"id": rows[0]["id"]}
        )
        out.append((stream, {**keys, "_sdc_deleted_at": GONE_AT}))
    return out


def test_restore_same_with_every_answer_lost_ends_like_a_clean_restore(tmp_path):
    results = []
    for lost in (False, True):
        with account() as a:
            where = tmp_path / ("lost" if lost else "clean")
            where.mkdir()
            config = config_file(where, a.url, backup_dir=str(where / "backup"))
            folder = backup(config)
            target(config, same_mode_deletes(a.state()), check=False)
            results.append(restored(folder, "same", a, where, lost))
    (clean, _ids, routes), (got, _ids2, _r) = results
    assert got == clean, diff_snapshots(clean, got)
    assert any(r.startswith("PUT") for r in routes), routes  # same-mode updates are covered
    assert any(r.startswith("POST") for r in routes), routes
