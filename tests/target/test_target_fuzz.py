"""Property-based fuzzing of target-capsule against the sandbox.

Hypothesis generates Singer input of random shapes and values: hostile and sloppy ids, nested
objects and lists, unicode, huge strings, nulls, wrong types, blank and broken lines, schemas loose
or nonsensical. Whatever comes in, three things hold:

1. The target never crashes: it finishes, or it stops with the one-line input error.
2. No request goes to a path outside the record's own object: every write is one of the record
   stream's own catalogue paths with plain numeric ids (reads may look up definitions and
   candidates, but only on catalogue paths with numeric ids).
3. A record the target rejects itself (no HTTP status) causes no write at all.

The property runs in-process (the SDK's own `listen`) so that many examples fit in seconds; one
test sends generated input through the real CLI.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import typing as t

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from target_helpers import TOKEN, run_target  # noqa: F401 - fixture

from tap_capsule import catalogue as cat
from tap_capsule.sandbox import Sandbox
from target_capsule.target import TargetCapsule

STREAMS = [
    "parties",
    "opportunities",
    "cases",
    "entries",
    "tasks",
    "party_tags",
    "milestones",
    "opportunity_parties",
    "case_tracks",
]
WRITES = {"POST", "PUT", "DELETE", "PATCH"}
READ_ONLY_POSTS = re.compile(r"^POST /(parties|opportunities|kases)/filters/results$")

HOSTILE_IDS = [
    "10000004/../../kases/30000003",
    "10000005?x=1",
    "7#frag",
    "%2e%2e/1",
    "١٢",
    " 12 ",
    "0",
    "-1",
    "1e3",
    "12.0",
    "",
    "1,2,3",
]


def template_regex(template: str, many: bool = False) -> str:
    """A catalogue path as a regex: each `{field}` one plain id (or a comma list, for reads)."""
    one = "[0-9]+(,[0-9]+)*" if many else "[0-9]+"
    return re.sub(r"\\\{\w+\\\}", one, re.escape(template))


def own_write_paths(stream: str) -> re.Pattern[str]:
    """The writes a record of `stream` may cause: its own object's POST, PUT and DELETE."""
    obj = cat.get(stream)
    parts = [f"POST {template_regex(obj.post_path)}"]
    parts += [f"(PUT|DELETE) {template_regex(obj.single_path)}"]
    return re.compile("^(" + "|".join(parts) + ")$")


READ_PATHS = re.compile(
    "^GET ("
    + "|".join(
        sorted(
            {
                template_regex(tpl, many=True)
                for o in cat.OBJECTS
                for tpl in (o.path, o.single_path, o.deleted_path)
                if tpl
            }
            | {
                r"/(parties|opportunities|kases)/search",
                r"/(parties|opportunities|kases)/[0-9]+/entries",
                r"/parties/[0-9]+/(opportunities|kases|people)",
                r"/users/current",
                r"/site",
            }
        )
    )
    + ")$"
)

# --- strategies ---------------------------------------------------------------------------------

huge = st.builds(lambda ch, n: ch * n, st.characters(), st.integers(5_000, 120_000))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    huge,
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
ids = st.one_of(st.sampled_from(HOSTILE_IDS), st.integers(-3, 2**64), st.text(max_size=12), scalars)


@st.composite
def records(draw: st.DrawFn, stream: str) -> t.Any:
    obj = cat.get(stream)
    fields = [*sorted(obj.schema), "_sdc_deleted_at", "unknown_field", "tags", "custom_fields"]
    record = draw(st.dictionaries(st.sampled_from(fields), values, max_size=6))
    for name in ["id", *cat.path_fields(obj.single_path), *cat.path_fields(obj.post_path)]:
        if draw(st.booleans()):
            record[name] = draw(ids)
    if draw(st.integers(0, 9)) == 0:
        return draw(values)  # not a record at all
    return record


@st.composite
def schemas(draw: st.DrawFn, stream: str) -> dict:
    obj = cat.get(stream)
    kind = draw(st.sampled_from(["catalogue", "loose", "loose", "nonsense"]))
    if kind == "catalogue":
        schema: t.Any = obj.json_schema()
    elif kind == "loose":
        schema = {"properties": {name: {} for name in obj.schema}}
    else:
        schema = draw(values)
    return {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": []}


@st.composite
def inputs(draw: st.DrawFn) -> tuple[str, str, int]:
    """(stream, input text, number of RECORD messages)."""
    stream = draw(st.sampled_from(STREAMS))
    lines = [json.dumps(draw(schemas(stream)))]
    count = draw(st.integers(1, 3))
    for _ in range(count):
        record = draw(records(stream))
        lines.append(json.dumps({"type": "RECORD", "stream": stream, "record": record}))
    noise = draw(
        st.lists(
            st.sampled_from(
                [
                    "",
                    "   ",
                    "{broken",
                    "[1, 2]",
                    '{"type": "HELLO"}',
                    "null",
                    '{"type": "STATE", "value": {"bookmarks": {}}}',
                    '{"type": "STATE", "value": 3}',
                    '{"type": "STATE"}',
                    f'{{"type": "ACTIVATE_VERSION", "stream": "{stream}", "version": 1}}',
                    f'{{"type": "BATCH", "stream": "{stream}", "encoding": {{}}, "manifest": []}}',
                    f'{{"type": "SCHEMA", "stream": "{stream}"}}',
                    '{"type": "RECORD", "stream": "pipelines", "record": {}}',
                    '{"type": "SCHEMA", "stream": "contacts", "schema": {"properties": {}}}',
                ]
            ),
            max_size=2,
        )
    )
    for line in noise:
        lines.insert(draw(st.integers(1, len(lines))), line)
    return stream, "\n".join(lines) + "\n", count


# --- running ------------------------------------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def run_in_process(sb: Sandbox, text: str, rejects: t.Any) -> tuple[int, list[logging.LogRecord]]:
    config = {
        "access_token": TOKEN,
        "api_url": sb.url,
        "rejects_path": str(rejects),
        "max_retries": 1,
    }
    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    code = 0
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                TargetCapsule(config=config, validate_config=True).listen(io.StringIO(text))
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        root.removeHandler(handler)
    return code, handler.records


@pytest.fixture(scope="module")
def sandbox() -> t.Iterator[Sandbox]:
    with Sandbox(token=TOKEN, scale=10, seed=5) as sb:
        yield sb


def check_requests(sb: Sandbox, stream: str, rejects: list[dict], count: int) -> None:
    by_path = sb.requests()["by_path"]
    own = own_write_paths(stream)
    writes = {p: n for p, n in by_path.items() if p.split()[0] in WRITES}
    for path in writes:
        if READ_ONLY_POSTS.match(path):
            continue
        assert own.match(path), f"{stream}: write outside the record's object: {path}"
    for path in by_path:
        if path.split()[0] == "GET":
            assert READ_PATHS.match(path), f"{stream}: read of an unexpected path: {path}"
    ours = [r for r in rejects if r["http_status"] is None]
    if ours and len(ours) == count:
        real = {p: n for p, n in writes.items() if not READ_ONLY_POSTS.match(p)}
        assert real == {}, f"{stream}: writes {real} for records the target rejected: {ours}"


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(case=inputs())
def test_fuzzed_input_never_crashes_or_strays(sandbox, tmp_path, case):
    stream, text, count = case
    rejects = tmp_path / "rejects.jsonl"
    sandbox.reset_requests()
    code, logs = run_in_process(sandbox, text, rejects)
    errors = [r for r in logs if r.levelno >= logging.ERROR]
    assert not any(r.exc_info for r in logs), "a traceback was logged"
    if code:
        assert code == 1
        message = errors[-1].getMessage()
        assert message.startswith("Stopped at input line ") or "unresolved" in message, message
    else:
        assert errors == []
    found = [json.loads(line) for line in rejects.read_text().split("\n") if line]
    check_requests(sandbox, stream, found, count)


@settings(max_examples=3, deadline=None, derandomize=True)
@given(case=inputs())
def test_fuzzed_input_through_the_cli(case):
    stream, text, count = case
    with Sandbox(token=TOKEN, scale=5, seed=9) as sb:
        import subprocess
        import sys
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as work:
            rejects = Path(work) / "rejects.jsonl"
            cfg = Path(work) / "config.json"
            cfg.write_text(
                json.dumps({"access_token": TOKEN, "api_url": sb.url, "rejects_path": str(rejects)})
            )
            proc = subprocess.run(
                [str(Path(sys.executable).parent / "target-capsule"), "--config", str(cfg)],
                input=text,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert proc.returncode in (0, 1)
            assert "Traceback" not in proc.stderr
            if proc.returncode:
                last = proc.stderr.strip().splitlines()[-1]
                assert "Stopped at input line " in last or "unresolved" in last, last
            found = [json.loads(line) for line in rejects.read_text().split("\n") if line]
            check_requests(sb, stream, found, count)
