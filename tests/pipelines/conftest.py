"""Fixtures for the pipeline tests: the real `meltano` CLI on this repository's meltano.yml, and a
PostgreSQL server.

- Meltano is found through MELTANO_BIN (the Makefile sets it to .venv-meltano/bin/meltano), then
  next to sys.executable, then on PATH. Without one the tests skip, unless REQUIRE_MELTANO=1.
- The plugins are installed once per test session (uv makes that take seconds) into a Meltano
  system folder of the session's own, .meltano/pytest/session-<pid>/ (MELTANO_SYS_DIR_ROOT; git
  ignores .meltano/), so a test session never shares plugin run files with the demo or another
  session; each test also gets its own Meltano system database (state) and output folders under
  tmp_path, so nothing depends on a developer's own .meltano state.
- PostgreSQL comes from PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (.ci/run sets them). Without a
  reachable server the postgres tests skip, unless REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from copy import copy
from dataclasses import dataclass
from pathlib import Path

import pytest
from tap_table import table_rows

ROOT = Path(__file__).resolve().parents[2]
PIPELINE_TOKEN = "pt-7c1e94d2b8f3a6e05d"  # random like a real one: any 8-character run is masked

# Variables from a developer's shell that would change what a test's meltano run does.
_SCRUBBED_PREFIXES = (
    "TAP_CAPSULE",
    "TARGET_CAPSULE",
    "TARGET_CSV",
    "TARGET_POSTGRES",
    "TARGET_JSONL",
    "TAP_SPREADSHEETS",
    "TAP_POSTGRES",
    "MELTANO_",
)


def _required(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def unavailable(what: str, variable: str, reason: str) -> None:
    """Skip, or fail when CI said the thing must be there."""
    if _required(variable):
        pytest.fail(f"{what} is required ({variable}=1) but unavailable: {reason}")
    pytest.skip(f"{what} unavailable ({reason}); set {variable}=1 to make this a failure")


def find_meltano() -> str | None:
    candidates = [
        os.environ.get("MELTANO_BIN"),
        str(Path(sys.executable).parent / "meltano"),
        shutil.which("meltano"),
        str(ROOT / ".venv-meltano" / "bin" / "meltano"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class MeltanoResult:
    returncode: int
    output: str

    def records(self, stream: str) -> int:
        """Records the tap emitted for `stream`, from its closing table (0 if it did not run)."""
        return table_rows(self.output).get(stream, (0, 0, 0))[0]


class Meltano:
    """The meltano CLI on the repository's project, isolated per call by environment variables."""

    def __init__(self, executable: str, sys_dir: Path) -> None:
        self.executable = executable
        self.sys_dir = sys_dir

    def env(
        self, extra: dict[str, str] | None = None, database: Path | None = None
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        env.update(
            {
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "MELTANO_CLI_LOG_LEVEL": "info",
                "NO_COLOR": "1",
                "MELTANO_SYS_DIR_ROOT": str(self.sys_dir),
            }
        )
        if database is not None:
            env["MELTANO_DATABASE_URI"] = f"sqlite:///{database}"
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        database: Path | None = None,
        timeout: float = 300,
        check: bool = True,
        cwd: Path = ROOT,
    ) -> MeltanoResult:
        started = time.monotonic()
        proc = subprocess.run(
            [self.executable, *args],
            cwd=cwd,
            env=self.env(env, database),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        result = MeltanoResult(proc.returncode, proc.stdout)
        if check and proc.returncode != 0:
            tail = "\n".join(proc.stdout.splitlines()[-60:])
            pytest.fail(
                f"meltano {' '.join(args)} exited {proc.returncode} after "
                f"{time.monotonic() - started:.0f}s:\n{tail}"
            )
        return result


@pytest.fixture(scope="session")
def meltano(tmp_path_factory):
    executable = find_meltano()
    if executable is None:
        unavailable(
            "meltano",
            "REQUIRE_MELTANO",
            "no MELTANO_BIN, no meltano next to the interpreter or on PATH; `make test` "
            "installs it into .venv-meltano",
        )
    sys_dir = ROOT / ".meltano" / "pytest" / f"session-{os.getpid()}"
    shutil.rmtree(sys_dir, ignore_errors=True)
    cli = Meltano(executable, sys_dir)
    # One install of every plugin in meltano.yml per session.
    cli("install", database=tmp_path_factory.mktemp("meltano-install") / "meltano.db", timeout=900)
    yield cli
    shutil.rmtree(sys_dir, ignore_errors=True)


@pytest.fixture
def token() -> str:
    """The sandbox token of the pipeline tests (long and distinctive: the plugins redact it)."""
    return PIPELINE_TOKEN


@pytest.fixture
def meltano_db(tmp_path) -> Path:
    """A fresh Meltano system database (holds the state) for one test."""
    return tmp_path / "meltano.db"


# --- PostgreSQL -------------------------------------------------------------------------------


class Postgres:
    def __init__(self) -> None:
        self.host = os.environ.get("PGHOST", "127.0.0.1")
        self.port = os.environ.get("PGPORT", "5432")
        self.user = os.environ.get("PGUSER", "postgres")
        self.password = os.environ.get("PGPASSWORD", "")
        self.database = os.environ.get("PGDATABASE", self.user)
        self.psql = shutil.which("psql")

    def target_env(self, schema: str) -> dict[str, str]:
        return {
            "TARGET_POSTGRES_HOST": self.host,
            "TARGET_POSTGRES_PORT": str(self.port),
            "TARGET_POSTGRES_USER": self.user,
            "TARGET_POSTGRES_PASSWORD": self.password,
            "TARGET_POSTGRES_DATABASE": self.database,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }

    def _psql(self, sql: str, *options: str) -> str:
        """Run one SQL command with psql (no driver in the test venv); its stdout."""
        proc = subprocess.run(
            [
                str(self.psql),
                *("-X", "-w", "-q", *options, "-v", "ON_ERROR_STOP=1"),
                *("-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.database),
                *("-c", sql),
            ],
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout

    def query(self, sql: str) -> list[dict]:
        """Rows as dicts, through psql's JSON aggregation."""
        wrapped = f"SELECT coalesce(json_agg(q), '[]'::json) FROM ({sql}) q"
        return json.loads(self._psql(wrapped, "-t", "-A"))

    def execute(self, sql: str) -> None:
        """Run SQL that returns nothing."""
        self._psql(sql)


@pytest.fixture(scope="session")
def postgres() -> Postgres:
    pg = Postgres()
    if pg.psql is None:
        unavailable("PostgreSQL", "REQUIRE_POSTGRES", "no psql client on PATH")
    try:
        with socket.create_connection((pg.host, int(pg.port)), timeout=3):
            pass
    except OSError as exc:
        unavailable(
            "PostgreSQL", "REQUIRE_POSTGRES", f"nothing listens on {pg.host}:{pg.port} ({exc})"
        )
    try:
        pg.query("SELECT 1 AS ok")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        unavailable("PostgreSQL", "REQUIRE_POSTGRES", f"cannot log in as {pg.user}: {exc}")
    return pg


@pytest.fixture
def pg_schema(postgres: Postgres, request) -> str:
    """A schema of its own for one test, dropped afterwards."""
    name = (
        "pipelines_"
        + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
        + f"_{os.getpid()}"
    )
    postgres.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    yield name
    postgres.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pg_database(postgres: Postgres, request) -> Postgres:
    """A database of its own for one test, dropped afterwards: a Postgres connected to it.

    For a source tap, whose stream names carry the schema (`public-capsule_contacts`): in a database
    of its own a test uses the schema a recipe configures and discovers no other test's tables.
    Needs a role with CREATEDB (.ci/run creates one)."""
    name = (
        "pipelines_"
        + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
        + f"_{os.getpid()}"
    )
    try:
        postgres.execute(f'DROP DATABASE IF EXISTS "{name}"')
        postgres.execute(f'CREATE DATABASE "{name}"')
    except RuntimeError as exc:
        unavailable(
            "PostgreSQL",
            "REQUIRE_POSTGRES",
            f"cannot create a database as {postgres.user} (the role needs CREATEDB): {exc}",
        )
    database = copy(postgres)
    database.database = name
    yield database
    postgres.execute(f'DROP DATABASE IF EXISTS "{name}"')
