"""Every shell block of the README and of docs/*.md runs, as written, against the Capsule sandbox.

The blocks are read from the pages themselves, so a command changed there is tested as changed, and
a new block fails `test_every_block_has_a_plan` until it gets a plan here. A block that must not run
is written as ```console instead of ```bash. The substitutions, all:

- ports and hosts: the sandbox runs on a free port, and its URL reaches the plugins through the
  documented settings variables (`TAP_CAPSULE_API_URL`, `TARGET_CAPSULE_API_URL`); `capsule sandbox
  --port 8765` and `make sandbox` get a free port, and that server runs in the background for the
  other lines; blocks that use the files in examples/ run in the test's tmp folder, on copies whose
  `http://127.0.0.1:8765/api/v2` (and the block's) is the test sandbox's URL;
- secrets written as `...`: the sandbox's token (`demo-token`, the token of `make sandbox`, so the
  `demo` environment and the examples reach it as they are);
- paths: output folders, rejects files and Meltano's system database go to the test's tmp
  folder (`TARGET_CSV_OUTPUT_PATH`, `TARGET_CAPSULE_REJECTS_PATH`, `MELTANO_DATABASE_URI`), plugins
  come from the test session's Meltano folder, and `target-jsonl` and `tap-spreadsheets` from the
  venvs Meltano installed them into (the docs assume they are installed);
- PostgreSQL: the PG* values of the test's server, and a schema of the test's own
  (`TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA`) instead of "capsule";
- the benchmark runs small (`--repeat 1 --small 100 --large 300`): it prints figures only.

Blocks that cannot run here are skipped with the reason in `PLAN`.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tap_capsule.sandbox import Sandbox

pytestmark = pytest.mark.meltano

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    block
    for page in PAGES
    for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(encoding="utf-8"), re.S | re.M)
]
TOKEN = "demo-token"  # the token of `make sandbox`, the demo environment and examples/
EXAMPLE_URL = "http://127.0.0.1:8765/api/v2"
POSTGRES = "needs a view in PostgreSQL: test_pipeline_db_import.py runs this recipe as written"


def first_line(block: str) -> str:
    line = next(line for line in block.splitlines() if line.strip()).split("#")[0].strip()
    return line.removesuffix("\\").strip()  # a command continued on the next line


# First line of a block (comment stripped) -> the runner below, or the reason it is skipped.
PLAN: dict[str, str] = {
    "make demo": "skip: tests/pipelines/test_pipeline_demo.py runs the demo (twice, free port)",
    "make test": "skip: the whole suite itself; .ci/run runs it in CI",
    "python3 -m venv .venv && .venv/bin/pip install .": "skip: installs into the checkout's .venv; "
    "`make install` does it (editable) before every test run",
    "tap-capsule --version": "tap_examples",
    "make meltano": "meltano_run",
    "export TAP_CAPSULE_ACCESS_TOKEN=...": "meltano_prod",
    "export PGHOST=... PGUSER=... PGPASSWORD=... PGDATABASE=...": "postgres_run",
    "meltano --environment=demo select tap-capsule --list --all": "select_list",
    "tap-capsule --config examples/tap-capsule.sandbox.json --discover > catalog.json": "pipe",
    "meltano --environment=demo run csv-to-capsule": "csv_import",
    "tap-spreadsheets --config examples/csv.json": "undo",
    "rm -rf output/backups/sandbox": "backup_restore",
    "make sandbox": "make_sandbox",
    "make sql": "make_sql",
    "meltano --environment=demo run capsule-to-duckdb": "sql_copy",
    "capsule sync --config examples/sync.sandbox.json": "sync_recipe",
    "make docs-settings": "skip: rewrites docs/settings.md in the checkout; "
    "tests/test_docs.py runs the same comparison",
    "meltano install extractor tap-postgres": f"skip: {POSTGRES}",
    "meltano add --no-install --from-ref $CHECKOUT/plugins/extractors/tap-capsule.yml "
    "--plugin-type extractor tap-capsule": "hub",
    "capsule sandbox --port 8765 --token test-token --scale 1000 --seed 1": "sandbox",
    "capsule sandbox --port 8765 --token test-token --large 100000 "
    "--rate-window 1": "large_sandbox",
    ".venv/bin/python benchmarks/tap_throughput.py": "benchmark",
    "make lint": "skip: `ruff format` rewrites the checkout; CI runs `make lint` in `make test`",
    ".venv/bin/pre-commit install": "skip: installs a git hook into this checkout",
}


def test_every_block_has_a_plan():
    assert BLOCKS, "README.md and docs/*.md have no ```bash blocks"
    unplanned = [first_line(b) for b in BLOCKS if first_line(b) not in PLAN]
    assert unplanned == [], "give these blocks a plan in this test"
    gone = set(PLAN) - {first_line(b) for b in BLOCKS}
    assert gone == set(), "these planned blocks are no longer in README.md or docs/*.md"
    firsts = [first_line(b) for b in BLOCKS]
    assert sorted({f for f in firsts if firsts.count(f) > 1}) == [], "start each block differently"


def block(first: str) -> str:
    return next(b for b in BLOCKS if first_line(b) == first)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Shell:
    """Runs README blocks with bash, in `cwd`, with the test session's tools on PATH."""

    def __init__(self, meltano, tmp_path: Path) -> None:
        self.meltano = meltano
        self.tmp = tmp_path
        jsonl = meltano.sys_dir / "loaders" / "target-jsonl" / "venv" / "bin"
        sheets = meltano.sys_dir / "extractors" / "tap-spreadsheets" / "venv" / "bin"
        path = [
            str(Path(sys.executable).parent),
            str(Path(meltano.executable).parent),
            str(jsonl),
            str(sheets),
        ]
        self.base = {
            "PATH": os.pathsep.join([*path, os.environ.get("PATH", "")]),
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        }

    def run(self, script: str, cwd: Path = ROOT, **env: str) -> str:
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=self.meltano.env({**self.base, **env}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, (
            f"{script}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
        )
        return proc.stdout + proc.stderr


@pytest.fixture
def shell(meltano, tmp_path):
    return Shell(meltano, tmp_path)


@pytest.fixture
def capsule():
    with Sandbox(token=TOKEN, scale=20, seed=5) as sb:
        yield sb


def examples(tmp: Path, url: str) -> None:
    """examples/*.json in `tmp`, pointing at `url`, and the CSV file examples/csv.json reads."""
    (tmp / "examples").mkdir()
    for path in (ROOT / "examples").glob("*.json"):
        (tmp / "examples" / path.name).write_text(path.read_text().replace(EXAMPLE_URL, url))
    data = tmp / "tests" / "pipelines" / "data"
    data.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "pipelines" / "data" / "people.csv", data)


def make_sandbox_account() -> Sandbox:
    """The account `make sandbox` serves (200 parties, seed 1), which the docs' figures describe."""
    return Sandbox(token=TOKEN, scale=200, seed=1)


@pytest.mark.parametrize(
    "first", list(PLAN), ids=[p.split()[0] + f"-{i}" for i, p in enumerate(PLAN)]
)
def test_readme_block_runs(first, shell, capsule, tmp_path, request):
    plan = PLAN[first]
    if plan.startswith("skip:"):
        pytest.skip(plan.removeprefix("skip: "))
    RUNNERS[plan](block(first), shell, capsule, tmp_path, request)


def tap_examples(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    examples(tmp, sb.url)
    out = shell.run(text, cwd=tmp)
    assert "tap-capsule v" in out
    catalog = json.loads((tmp / "catalog.json").read_text())
    assert {e["tap_stream_id"] for e in catalog["streams"]} >= {"parties", "opportunity_parties"}
    assert [f for f in (tmp / "output" / "jsonl").glob("parties*.jsonl") if f.stat().st_size], out


def meltano_run(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    # The demo environment as it is (token demo-token); only the port is the test sandbox's.
    shell.run(text, TAP_CAPSULE_API_URL=sb.url, TARGET_CSV_OUTPUT_PATH=str(tmp / "csv"))
    header = (tmp / "csv" / "parties.csv").read_text().splitlines()[0].split(",")
    assert "owner__name" in header and any(h.startswith("custom_fields__") for h in header)


def meltano_prod(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    # The prod environment, with the sandbox standing in for Capsule's API.
    script = text.replace("TAP_CAPSULE_ACCESS_TOKEN=...", f"TAP_CAPSULE_ACCESS_TOKEN={TOKEN}")
    shell.run(script, TAP_CAPSULE_API_URL=sb.url, TARGET_CSV_OUTPUT_PATH=str(tmp / "csv"))
    with (tmp / "csv" / "parties.csv").open(newline="", encoding="utf-8") as fh:
        ids = {row["id"] for row in csv.DictReader(fh)}
    assert ids == {str(p["id"]) for p in sb.state()["parties"]}  # every party, no tombstone


def postgres_run(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    # The PG* values are the test server's; the schema is the test's own instead of "capsule", and
    # the token is the one the block before exported (a reader runs the blocks in one shell).
    pg = request.getfixturevalue("postgres")
    schema = request.getfixturevalue("pg_schema")
    values = f"PGHOST={pg.host} PGPORT={pg.port} PGUSER={pg.user} PGPASSWORD={pg.password}"
    script = text.replace(
        "PGHOST=... PGUSER=... PGPASSWORD=... PGDATABASE=...", f"{values} PGDATABASE={pg.database}"
    )
    shell.run(
        script,
        TAP_CAPSULE_API_URL=sb.url,
        TAP_CAPSULE_ACCESS_TOKEN=TOKEN,
        TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=schema,
    )
    rows = pg.query(f'SELECT count(*) AS n FROM "{schema}".parties WHERE _sdc_deleted_at IS NULL')
    # Only the live ones: deletions are rows of parties_deleted (`tombstones: stream`, the default).
    assert rows[0]["n"] == len(sb.state()["parties"])


def select_list(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    out = shell.run(text, TAP_CAPSULE_API_URL=sb.url, TAP_CAPSULE_ACCESS_TOKEN=TOKEN)
    assert "opportunity_parties" in out and "parties.id" in out


def pipe(text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> None:
    examples(tmp, sb.url)
    shell.run(text, cwd=tmp)  # first run: no state.json yet
    assert list((tmp / "output" / "jsonl").glob("parties*.jsonl"))
    first = json.loads((tmp / "state.json").read_text())
    assert first["bookmarks"]["parties"]["replication_key_value"]
    sb.touch("parties", sb.state()["parties"][0]["id"], about="changed")
    shell.run(text, cwd=tmp)  # second run resumes from the first run's state
    second = json.loads((tmp / "state.json").read_text())
    assert second["bookmarks"]["parties"]["replication_key_value"]


def csv_import(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    with Sandbox(token="demo-token", scale=10, seed=5) as demo:  # the demo environment's token
        script = text.replace("demo-output/", f"{tmp}/demo-output/")
        out = shell.run(
            script,
            TARGET_CAPSULE_API_URL=demo.url,
            TARGET_CAPSULE_REJECTS_PATH=f"{tmp}/demo-output/rejects.jsonl",
        )
    assert (tmp / "demo-output" / "rejects.jsonl").exists(), out


def hub(text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> None:
    # "In a Meltano project of your own": a new one, with its own plugin folder.
    project_env = {"MELTANO_SYS_DIR_ROOT": str(tmp / "proj" / ".meltano")}
    shell.run("meltano init --no-usage-stats proj", cwd=tmp, **project_env)
    shell.run(text, cwd=tmp / "proj", CHECKOUT=str(ROOT), **project_env)
    about = shell.run(
        "meltano invoke tap-capsule --about --format=json", cwd=tmp / "proj", **project_env
    )
    assert '"name": "tap-capsule"' in about


def sandbox(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    port = str(free_port())
    server, *rest = text.replace("8765", port).splitlines()
    proc = subprocess.Popen(
        server.split(),
        cwd=tmp,
        stdout=subprocess.PIPE,
        text=True,
        env=shell.meltano.env(shell.base),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"http://127.0.0.1:{port}/api/v2"
        out = shell.run("\n".join(line for line in rest if not line.startswith("#")))
        assert 'rel="next"' in out
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def large_sandbox(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    """The large account starts at once and serves a deep page of its 100,000 parties."""
    port = str(free_port())
    proc = subprocess.Popen(
        text.strip().replace("8765", port).split(),
        cwd=tmp,
        stdout=subprocess.PIPE,
        text=True,
        env=shell.meltano.env(shell.base),
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}/api/v2"
        answer = requests.get(
            url + "/parties",
            params={"page": 900, "perPage": 100},
            headers={"Authorization": "Bearer test-token"},
            timeout=60,
        )
        assert answer.status_code == 200
        assert len(answer.json()["parties"]) == 100
        assert 'rel="next"' in answer.headers["Link"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def undo(text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> None:
    with make_sandbox_account() as account:
        examples(tmp, account.url)
        before = account.state()["parties"]
        out = shell.run(text, cwd=tmp)
        after = account.state()["parties"]
    lines = [json.loads(x) for x in (tmp / "output" / "changes.jsonl").read_text().splitlines()]
    # Written ahead: a `pending` line before each write, then its outcome.
    changes = [x for x in lines if x.get("status") == "applied"]
    assert len(lines) == 2 * len(changes), lines
    rejects = (tmp / "output" / "rejects.jsonl").read_text().splitlines()
    assert (len(changes), len(rejects)) == (6, 2), out  # as the recipe says
    assert [p["id"] for p in after] == [p["id"] for p in before], "the undo removed the import"
    report = next(line for line in out.splitlines() if line.startswith('{"run_id"'))
    assert json.loads(report)["totals"]["reverted"] == 6, out


def backup_restore(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    with make_sandbox_account() as account:
        examples(tmp, account.url)
        before = {p["id"] for p in account.state()["parties"]}
        out = shell.run(text.replace(EXAMPLE_URL, account.url), cwd=tmp)
        after = {p["id"] for p in account.state()["parties"]}
    assert 11002 in before and 11002 not in after and len(after) == len(before), out
    assert "0 difference(s) outside the documented limits" in out
    assert json.loads((tmp / "verify.json").read_text())["differences"] == 0
    id_map = (tmp / "output" / "backups" / "sandbox" / "restore-same-sandbox.ids.json").read_text()
    assert "11002" in id_map


def make_sandbox(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    # The block's `make sandbox`, on a free port, in a process group of its own to stop it.
    port = free_port()
    command = ["make", "-s", "--no-print-directory", *text.split("#")[0].split()[1:]]
    proc = subprocess.Popen(
        [command[0], *command[1:], f"SANDBOX_PORT={port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=shell.meltano.env(shell.base),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}/api/v2"
        out = shell.run(f"curl -sf -H 'Authorization: Bearer {TOKEN}' {url}/parties?perPage=100")
        assert len(json.loads(out)["parties"]) == 100  # 200 parties: the demo's account
    finally:
        # What Ctrl-C does: a signal to the whole group, make and the sandbox at once. A group
        # still running after that is killed (never leaked into later tests) and fails the test.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            raise AssertionError("make sandbox did not stop on SIGTERM to its group") from None
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def benchmark(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    out = shell.run(text.strip() + " --repeat 1 --small 100 --large 300")
    assert "marginal CPU per record" in out and "CPU per child request" in out


def make_sql(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    # The demo's SQL part on a free port, with its output and state in the test's folder.
    out = shell.run(
        text.split("#")[0].strip(),
        DEMO_PORT="0",
        DEMO_OUTPUT=str(tmp / "demo-output"),
        DEMO_STATE_DB=str(tmp / "demo.db"),
    )
    assert "open_opportunities" in out and "Ada Admin" in out, out
    assert (tmp / "demo-output" / "warehouse.duckdb").is_file()


def sql_copy(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    database = tmp / "demo-output" / "warehouse.duckdb"
    script = text.replace("demo-output", f"{tmp}/demo-output")
    out = shell.run(script, TAP_CAPSULE_API_URL=sb.url, TARGET_CAPSULE_DUCKDB_PATH=str(database))
    owners = {(o.get("owner") or {}).get("name") for o in sb.state()["opportunities"]}
    assert "open_opportunities" in out and any(o and o in out for o in owners), out


def sync_recipe(
    text: str, shell: Shell, sb: Sandbox, tmp: Path, request: pytest.FixtureRequest
) -> None:
    pg = request.getfixturevalue("postgres")
    schema = request.getfixturevalue("pg_schema")  # the test's own, instead of capsule_sync
    with make_sandbox_account() as account:
        examples(tmp, account.url)
        config = tmp / "examples" / "sync.sandbox.json"
        config.write_text(config.read_text().replace("capsule_sync", schema))
        out = shell.run(
            text.replace("capsule_sync.", f"{schema}."),
            cwd=tmp,
            PGHOST=pg.host,
            PGPORT=str(pg.port),
            PGUSER=pg.user,
            PGPASSWORD=pg.password,
            PGDATABASE=pg.database,
        )
        parties = account.state()["parties"]
    hoppers = [p for p in parties if p.get("lastName") == "Hopper"]
    assert len(hoppers) == 1 and str(hoppers[0]["id"]) in out, out  # created once, id written back
    assert next(p for p in parties if p["id"] == 11002)["about"] == "Edited in SQL"
    assert '"operation": "INSERT"' in (tmp / "output" / "sync-changes.jsonl").read_text()


RUNNERS = {
    "tap_examples": tap_examples,
    "meltano_run": meltano_run,
    "meltano_prod": meltano_prod,
    "postgres_run": postgres_run,
    "select_list": select_list,
    "pipe": pipe,
    "csv_import": csv_import,
    "hub": hub,
    "sandbox": sandbox,
    "large_sandbox": large_sandbox,
    "undo": undo,
    "backup_restore": backup_restore,
    "make_sandbox": make_sandbox,
    "benchmark": benchmark,
    "make_sql": make_sql,
    "sql_copy": sql_copy,
    "sync_recipe": sync_recipe,
}
