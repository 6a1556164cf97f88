"""Helpers of the reversibility tests: the real CLIs (target-capsule, capsule undo, ...) against
in-process sandboxes, and a normalised snapshot of a sandbox account for before/after comparisons.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import typing as t
from pathlib import Path

from tap_capsule import catalogue as cat
from target_capsule import changelog

BIN = Path(sys.executable).parent
TOKEN = "tok-reversible-7c1e2d"  # distinctive, so tests can grep any output for a leak


@dataclasses.dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict]:
        return [json.loads(x) for x in self.stdout.splitlines() if x.strip().startswith("{")]


def config_file(tmp: Path, url: str, name: str = "config", **settings: t.Any) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(
        json.dumps({"access_token": TOKEN, "api_url": url, "max_retries": 3, **settings})
    )
    return path


def run(args: list[str], stdin: str = "", check: bool = True, timeout: float = 300) -> Run:
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)
    result = Run(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[0]} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    assert TOKEN not in proc.stdout + proc.stderr
    return result


def singer(records: list[tuple[str, dict]]) -> str:
    """SCHEMA once per stream, then its RECORDs, as Singer JSONL."""
    out: list[dict] = []
    seen: set[str] = set()
    for stream, record in records:
        if stream not in seen:
            seen.add(stream)
            obj = cat.get(stream)
            out.append(
                {
                    "type": "SCHEMA",
                    "stream": stream,
                    "schema": obj.json_schema(),
                    "key_properties": list(obj.key_properties),
                }
            )
        out.append({"type": "RECORD", "stream": stream, "record": record})
    return "".join(json.dumps(m) + "\n" for m in out)


def target(config: Path, records: list[tuple[str, dict]] | str, check: bool = True) -> Run:
    text = records if isinstance(records, str) else singer(records)
    return run([str(BIN / "target-capsule"), "--config", str(config)], text, check)


# What Capsule sets itself, or derives: never part of an account's content.
VOLATILE = {"createdAt", "updatedAt", "lastContactedAt", "pictureURL", "lastStageChangedAt"}
CONTENT_STREAMS = (
    "parties",
    "opportunities",
    "cases",
    "entries",
    "tasks",
    "opportunity_parties",
    "case_parties",
    "opportunity_tracks",
    "case_tracks",
    "party_tags",
    "party_custom_fields",
)


def _strip(value: t.Any, top: bool, skip: t.AbstractSet[str] = frozenset()) -> t.Any:
    if isinstance(value, dict):
        return {
            k: _strip(v, False)
            for k, v in sorted(value.items())
            if k not in VOLATILE and k not in skip and not (k == "id" and "definition" not in value)
        }
    if isinstance(value, list):
        return sorted((_strip(v, False) for v in value), key=json.dumps)
    return value


def snapshot(
    state: dict, streams: t.Iterable[str] = CONTENT_STREAMS, renamed: dict | None = None
) -> dict[str, dict]:
    """Per stream, record id (or link key) → content without what Capsule sets itself (its
    read-only fields). `renamed` maps stream → {new id: old id} for recreated records."""
    out: dict[str, dict] = {}
    for stream in streams:
        obj = cat.get(stream)
        back = {str(k): str(v) for k, v in ((renamed or {}).get(stream) or {}).items()}
        rows = {}
        for record in state.get(stream) or ():
            key = record.get("id")
            if key is None:
                key = "/".join(str(record.get(k)) for k in obj.key_properties)
            rows[back.get(str(key), str(key))] = _strip(record, True, obj.all_read_only)
        out[stream] = rows
    return out


def undo(config: Path, change_log: Path, *extra: str, check: bool = True) -> tuple[Run, dict]:
    """`capsule undo --config CONFIG CHANGE_LOG`; the run and its JSON report."""
    result = run(
        [str(BIN / "capsule"), "undo", "--config", str(config), str(change_log), *extra],
        check=check,
    )
    lines = result.json_lines()
    return result, (lines[-1] if lines else {})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def writes_of(change_log: Path) -> list[dict]:
    """The newest run's writes in a change log, each pending line folded with its settling line."""
    return changelog.read(change_log)[1]


def diff_snapshots(a: dict, b: dict) -> list[str]:
    """Readable differences between two snapshots (for assertion messages)."""
    out = []
    for stream in sorted(set(a) | set(b)):
        rows_a, rows_b = a.get(stream, {}), b.get(stream, {})
        for key in sorted(set(rows_a) | set(rows_b)):
            x, y = rows_a.get(key), rows_b.get(key)
            if x == y:
                continue
            if x is None or y is None:
                out.append(f"{stream} {key}: {'added' if x is None else 'missing'}")
                continue
            fields = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
            out.append(
                f"{stream} {key}: "
                + "; ".join(f"{f}: {x.get(f)!r} -> {y.get(f)!r}" for f in fields)
            )
    return out


def backup(config: Path) -> Path:
    """The plain-pipe recipe: `tap-capsule --config C | target-capsule-backup --config C`.

    As the README's recipe says, the config selects the child streams (`child_streams: true`).
    """
    settings = json.loads(config.read_text())
    config.write_text(json.dumps({**settings, "child_streams": True}))
    folder = Path(settings["backup_dir"])
    tap = subprocess.Popen(
        [str(BIN / "tap-capsule"), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    result = subprocess.run(
        [str(BIN / "target-capsule-backup"), "--config", str(config)],
        stdin=tap.stdout,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tap.stdout is not None
    tap.stdout.close()
    assert tap.wait(timeout=300) == 0
    assert result.returncode == 0, result.stderr
    return folder


def verify(config: Path, folder: Path, *extra: str) -> tuple[Run, dict]:
    """`capsule verify --config C FOLDER ...`; the run and its JSON report."""
    result = run(
        [str(BIN / "capsule"), "verify", "--config", str(config), str(folder), *extra], check=False
    )
    lines = result.json_lines()
    return result, (lines[-1] if lines else {})


def restore(config: Path, folder: Path, *extra: str, check: bool = True) -> Run:
    return run(
        [str(BIN / "capsule"), "restore", "--config", str(config), str(folder), *extra], check=check
    )


# Every stream a record can be created in (settings, links and tracks included).
WRITABLE = tuple(o.stream for o in cat.OBJECTS if cat.INSERT in o.operations)


def creates(state: dict) -> list[tuple[str, dict]]:
    """One new record in every writable stream, closed opportunities and cases included."""
    party = next(p for p in state["parties"] if p["type"] == "organisation")["id"]
    person = next(p for p in state["parties"] if p["type"] == "person")["id"]
    pipeline = state["pipelines"][0]["id"]
    user = state["users"][0]["id"]
    won = next(m for m in state["milestones"] if m.get("complete") and m["probability"] == 100)
    opportunity = state["opportunities"][0]["id"]
    kase = state["cases"][0]["id"]
    # Neither linked already nor the record's own party (Capsule refuses both with a 422).
    linked_o = {
        x["partyId"] for x in state["opportunity_parties"] if x["opportunityId"] == opportunity
    } | {state["opportunities"][0]["party"]["id"]}
    linked_c = {x["partyId"] for x in state["case_parties"] if x["caseId"] == kase} | {
        state["cases"][0]["party"]["id"]
    }
    free_o = next(p["id"] for p in state["parties"] if p["id"] not in linked_o)
    free_c = next(p["id"] for p in state["parties"] if p["id"] not in linked_c)
    opp_def = next(d for d in state["track_definitions"] if d["captureRule"] == "OPPORTUNITY")
    case_def = next(d for d in state["track_definitions"] if d["captureRule"] == "CASEFILE")
    records: list[tuple[str, dict]] = [
        ("parties", {"type": "organisation", "name": "Lost Answer Ltd"}),
        (
            "parties",
            {
                "type": "person",
                "firstName": "Lana",
                "lastName": "Lost",
                "emailAddresses": [{"address": "lana@lost.example"}],
            },
        ),
        (
            "opportunities",
            {
                "name": "Open deal",
                "party": {"id": party},
                "milestone": {"id": state["milestones"][0]["id"]},
            },
        ),
        (
            "opportunities",
            {
                # closed: Capsule sets the probability from the milestone, whatever was sent
                "name": "Won deal",
                "party": {"id": party},
                "milestone": {"id": won["id"]},
                "probability": 40,
                "closedOn": "2026-01-05",
            },
        ),
        ("cases", {"name": "Open case", "party": {"id": person}, "owner": {"id": user}}),
        (
            "cases",
            {
                "name": "Closed case",
                "party": {"id": person},
                "owner": {"id": user},
                "status": "CLOSED",
            },
        ),
        ("entries", {"type": "note", "content": "Lost answer note", "party": {"id": person}}),
        ("tasks", {"description": "Lost answer task", "dueOn": "2026-03-04"}),
        ("milestones", {"name": "Lost stage", "pipeline": {"id": pipeline}, "probability": 15}),
        ("lost_reasons", {"name": "Lost answer reason"}),
        ("resthooks", {"event": "party/created", "targetUrl": "https://hooks.example/lost"}),
        ("categories", {"name": "Lost answer category"}),
        ("activity_types", {"name": "Lost answer activity"}),
        ("custom_titles", {"title": "Lost Dr"}),
        ("party_tags", {"name": "lost-party-tag"}),
        ("opportunity_tags", {"name": "lost-deal-tag"}),
        ("case_tags", {"name": "lost-case-tag"}),
        ("party_custom_fields", {"name": "Lost field", "type": "text"}),
        ("opportunity_custom_fields", {"name": "Lost deal field", "type": "text"}),
        ("case_custom_fields", {"name": "Lost case field", "type": "text"}),
        ("opportunity_parties", {"opportunityId": opportunity, "partyId": free_o}),
        ("case_parties", {"caseId": kase, "partyId": free_c}),
        (
            "opportunity_tracks",
            {
                "opportunityId": opportunity,
                "definition": {"id": opp_def["id"]},
                "trackDateOn": "2026-02-01",
            },
        ),
        (
            "case_tracks",
            {"caseId": kase, "definition": {"id": case_def["id"]}, "trackDateOn": "2026-02-02"},
        ),
    ]
    assert {s for s, _ in records} == set(WRITABLE), set(WRITABLE) - {s for s, _ in records}
    return records


def everything(state: dict, renamed: dict | None = None) -> dict:
    """A snapshot of every stream the sandbox holds, what Capsule sets itself left out (and a
    note's `entryAt`, which Capsule sets to the time of the create when none is sent).

    `renamed`: stream -> {new id: old id} of recreated records.
    """
    out = snapshot(state, [o.stream for o in cat.OBJECTS if o.stream in state], renamed)
    for row in out.get("entries", {}).values():
        row.pop("entryAt", None)
    return out
