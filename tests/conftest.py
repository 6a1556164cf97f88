"""Shared fixtures: a Capsule sandbox in-process, a factory for custom ones, one run by the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tap_capsule.sandbox import Sandbox, SandboxClient

SANDBOX_TOKEN = "test-token-5f3a9c"  # distinctive, so tests can grep any output for a leak


@pytest.fixture
def sandbox_token() -> str:
    return SANDBOX_TOKEN


@pytest.fixture
def sandbox(sandbox_token: str):
    with Sandbox(token=sandbox_token, scale=30, seed=7) as sb:
        yield sb


@pytest.fixture
def sandbox_factory(sandbox_token: str):
    """`sandbox_factory(scale=.., faults=..)` → a started Sandbox (default token: the fixture's)."""
    started: list[Sandbox] = []

    def make(**kwargs) -> Sandbox:
        kwargs.setdefault("token", sandbox_token)
        sb = Sandbox(**kwargs).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


def sandbox_command() -> list[str]:
    script = Path(sys.executable).parent / "capsule"
    if script.exists():
        return [str(script), "sandbox"]
    return [sys.executable, "-m", "tap_capsule.sandbox"]


class CliSandbox(SandboxClient):
    """A `capsule sandbox` subprocess; `.url` is the API base URL it printed first."""

    def __init__(self, args: list[str]) -> None:
        self.process = subprocess.Popen(
            sandbox_command() + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        first = self.process.stdout.readline().strip()
        if not first.startswith("http"):
            self.stop()
            raise RuntimeError(f"capsule sandbox did not start: {first!r} {self.stderr!r}")
        self.first_line = first
        self.stderr = ""
        super().__init__(first)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _, self.stderr = self.process.communicate()
        return self.process.returncode


@pytest.fixture
def sandbox_cli_factory(sandbox_token: str):
    """`sandbox_cli_factory("--scale", "1000")` → a started CLI sandbox (port 0, fixture token)."""
    started: list[CliSandbox] = []

    def make(*args: str) -> CliSandbox:
        sb = CliSandbox(["--port", "0", "--host", "127.0.0.1", "--token", sandbox_token, *args])
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox_cli(sandbox_cli_factory):
    """`capsule sandbox --port 0 --token <sandbox_token> --scale 30 --seed 7` as a subprocess."""
    return sandbox_cli_factory("--scale", "30", "--seed", "7")


@pytest.fixture
def sandbox_http(sandbox_token: str):
    """`sandbox_http(token=...)` → a requests.Session sending that bearer token (closed after)."""
    import requests

    sessions: list = []

    def make(token: str | None = sandbox_token):
        session = requests.Session()
        session.trust_env = False  # loopback: never through an environment proxy
        if token is not None:
            session.headers["Authorization"] = f"Bearer {token}"
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()
