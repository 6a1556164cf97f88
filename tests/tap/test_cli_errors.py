"""A user's mistake ends either plugin with exit code 1 and one line, through the real CLIs.

Each case is compared with a clean run against the same sandbox: the clean run succeeds, the
faulty one fails with one line that says what to fix, without a traceback and without the token.
`--log-level debug` brings the traceback back.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TAP = str(BIN / "tap-capsule")
TARGET = str(BIN / "target-capsule")

# One valid record for the target: an organisation needs only its name.
TARGET_INPUT = "\n".join(
    json.dumps(m)
    for m in (
        {
            "type": "SCHEMA",
            "stream": "parties",
            "schema": {"properties": {"type": {"type": "string"}, "name": {"type": "string"}}},
            "key_properties": [],
        },
        {"type": "RECORD", "stream": "parties", "record": {"type": "organisation", "name": "A"}},
    )
)


def run(cmd: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)


def error_lines(stderr: str) -> list[str]:
    """The lines that are not the SDK's INFO log."""
    return [line for line in stderr.splitlines() if "| INFO " not in line and line.strip()]


def assert_one_line(proc: subprocess.CompletedProcess, plugin: str, *needles: str) -> str:
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{plugin}: error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.fixture
def write_json(tmp_path):
    def write(name: str, value: object) -> str:
        path = tmp_path / name
        path.write_text(value if isinstance(value, str) else json.dumps(value))
        return str(path)

    return write


@pytest.fixture
def parties_catalog(sandbox, sandbox_token, write_json):
    config = write_json("good.json", {"access_token": sandbox_token, "api_url": sandbox.url})
    catalog = json.loads(run([TAP, "--config", config, "--discover"]).stdout)
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = entry["tap_stream_id"] == "party_tags"
    return write_json("catalog.json", catalog)


def test_clean_runs_succeed(sandbox, sandbox_token, write_json, parties_catalog):
    config = write_json("good.json", {"access_token": sandbox_token, "api_url": sandbox.url})
    state = write_json("state.json", {})
    tap = run([TAP, "--config", config, "--catalog", parties_catalog, "--state", state])
    assert tap.returncode == 0, tap.stderr[-2000:]
    assert '"type":"RECORD"' in tap.stdout
    target = run([TARGET, "--config", config], TARGET_INPUT)
    assert target.returncode == 0, target.stderr[-2000:]
    assert "error:" not in tap.stderr + target.stderr


@pytest.mark.parametrize("plugin", [TAP, TARGET])
def test_a_rejected_token_is_one_line_without_the_token(plugin, sandbox, write_json):
    token = "mistyped-token-1234"
    config = write_json("bad.json", {"access_token": token, "api_url": sandbox.url})
    proc = run([plugin, "--config", config], TARGET_INPUT)
    if plugin == TARGET:
        # target-capsule reports it in its own log line (its run summary follows, no traceback).
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        assert "HTTP 401" in proc.stderr
    else:
        assert_one_line(proc, "tap-capsule", "HTTP 401", "access_token")
    assert token not in proc.stderr + proc.stdout


@pytest.mark.parametrize("plugin", [TAP, TARGET])
def test_a_closed_port_fails_at_once_saying_what_to_check(plugin, sandbox_token, write_json):
    """Nothing listening at `api_url` is a wrong port or a stopped sandbox: one line, no retries."""
    with socket.socket() as closed:  # bound, so no one else takes the port, but not listening
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/api/v2"
        config = write_json("closed.json", {"access_token": sandbox_token, "api_url": url})
        args = [plugin, "--config", config] + (["--discover"] if plugin == TAP else [])
        proc = run(args, TARGET_INPUT)
    expected = f"could not connect to {url} (connection refused): is `api_url` right"
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "retry" not in proc.stderr  # the clean failure comes before any retry
    assert "Capsule may be having trouble" not in proc.stderr
    if plugin == TAP:
        assert_one_line(proc, "tap-capsule", expected, "is the sandbox running?")
    else:  # target-capsule reports it in its own log line (after its INFO run summary)
        lines = error_lines(proc.stderr)
        assert len(lines) == 1, lines
        assert expected in lines[0] and "is the sandbox running?" in lines[0]


@pytest.mark.parametrize("plugin", [TAP, TARGET])
def test_plain_http_to_another_host_is_refused_in_one_line(plugin, sandbox_token, write_json):
    url = "http://capsule.example.com/api/v2"
    config = write_json("http.json", {"access_token": sandbox_token, "api_url": url})
    proc = run([plugin, "--config", config], TARGET_INPUT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "Use https://" in proc.stderr
    if plugin == TAP:
        assert_one_line(proc, "tap-capsule", "api_url", "Use https://")


def test_a_setting_out_of_range_names_the_setting(
    sandbox, sandbox_token, write_json, parties_catalog
):
    config = write_json(
        "range.json", {"access_token": sandbox_token, "api_url": sandbox.url, "page_size": 500}
    )
    proc = run([TAP, "--config", config, "--catalog", parties_catalog])
    assert_one_line(proc, "tap-capsule", "setting page_size is 500 but must be at most 100")
    # Discovery too: the SDK only warns there, so the mistake would surface later, elsewhere.
    proc = run([TAP, "--config", config, "--discover"])
    assert_one_line(proc, "tap-capsule", "setting page_size")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("plugin", "settings", "needle"),
    [
        (TAP, {"tombstones": "maybe"}, 'tombstones is "maybe" but must be one of inline'),
        (TARGET, {"dry_run": "maybe"}, 'dry_run is "maybe" but must be a boolean'),
        (TAP, {"access_token": None}, "access_token is set but must be a string"),
        (TARGET, {"access_token": 123456789}, "access_token is set but must be a string"),
    ],
)
def test_a_mistyped_setting_is_one_line_naming_it_never_its_secret_value(
    plugin, settings, needle, sandbox, sandbox_token, write_json
):
    config = write_json(
        "typo.json", {"access_token": sandbox_token, "api_url": sandbox.url, **settings}
    )
    proc = run([plugin, "--config", config], stdin="\n")
    line = assert_one_line(proc, plugin.rsplit("/", 1)[-1], needle)
    assert "123456789" not in line


def test_a_missing_token_is_one_line_but_about_still_describes(sandbox, write_json):
    config = write_json("none.json", {"api_url": sandbox.url})
    proc = run([TAP, "--config", config])
    assert_one_line(proc, "tap-capsule", "setting access_token is required")
    # `meltano invoke tap-capsule --about` passes whatever config it has: --about runs nothing.
    about = run([TAP, "--config", config, "--about", "--format=json"])
    assert about.returncode == 0, about.stderr
    assert "access_token" in json.loads(about.stdout)["settings"]["properties"]


def test_a_refresh_token_without_its_client_is_one_line(sandbox, sandbox_token, write_json):
    config = write_json(
        "oauth.json",
        {"access_token": sandbox_token, "api_url": sandbox.url, "refresh_token": "r-123"},
    )
    proc = run([TAP, "--config", config, "--discover"])
    assert_one_line(proc, "tap-capsule", "client_id", "client_secret")
    assert "r-123" not in proc.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [("", "is empty"), ("{bad", "is not valid JSON"), ("[]", "JSON object")],
)
def test_an_unusable_state_file_is_one_line(
    content, needle, sandbox, sandbox_token, write_json, parties_catalog
):
    config = write_json("good.json", {"access_token": sandbox_token, "api_url": sandbox.url})
    state = write_json("state.json", content)
    proc = run([TAP, "--config", config, "--catalog", parties_catalog, "--state", state])
    assert_one_line(proc, "tap-capsule", "--state", needle)
    assert proc.stdout == ""


@pytest.mark.parametrize("plugin", [TAP, TARGET])
def test_a_missing_config_file_is_one_line(plugin, tmp_path):
    proc = run([plugin, "--config", str(tmp_path / "nope.json")])
    assert_one_line(proc, Path(plugin).name, "no such file")


def test_log_level_debug_shows_the_traceback(sandbox, write_json):
    config = write_json("bad.json", {"access_token": "wrong-token", "api_url": sandbox.url})
    quiet = run([TAP, "--config", config, "--discover"])
    loud = run([TAP, "--config", config, "--discover", "--log-level", "debug"])
    assert quiet.returncode == loud.returncode == 1
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
    assert "CapsuleAuthError" in loud.stderr


def test_a_bug_keeps_its_traceback():
    code = (
        "from tap_capsule.cli import run\n"
        "def load():\n"
        "    raise RuntimeError('a bug, not a user mistake')\n"
        "run(load, 'tap-capsule', [])\n"
    )
    proc = run([sys.executable, "-c", code])
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "RuntimeError: a bug, not a user mistake" in proc.stderr
