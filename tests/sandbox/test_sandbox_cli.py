"""The `capsule sandbox` command: URL on the first line, serving, clean stop, bad arguments."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def command() -> list[str]:
    script = Path(sys.executable).parent / "capsule"
    return (
        [str(script), "sandbox"]
        if script.exists()
        else [sys.executable, "-m", "tap_capsule.sandbox"]
    )


def test_prints_api_url_first_and_serves(sandbox_cli, sandbox_http):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v2", sandbox_cli.first_line)
    assert sandbox_cli.url == sandbox_cli.first_line
    response = sandbox_http().get(sandbox_cli.url + "/parties")
    assert response.status_code == 200 and response.json()["parties"]
    assert sandbox_cli.requests()["by_path"] == {"GET /parties": 1}


def test_pages_through_scale_1000_by_link_headers(sandbox_cli_factory, sandbox_http):
    sb = sandbox_cli_factory("--scale", "1000", "--seed", "3")
    session = sandbox_http()
    url, ids, pages = sb.url + "/parties?perPage=100&embed=tags,fields,organisation", [], 0
    while url:
        response = session.get(url)
        assert response.status_code == 200
        ids += [p["id"] for p in response.json()["parties"]]
        pages += 1
        match = re.search(r'<([^>]+)>;\s*rel="next"', response.headers.get("Link", ""))
        url = match.group(1) if match else None
    assert len(ids) == len(set(ids)) == len(sb.state()["parties"])
    assert pages == -(-len(ids) // 100)


def test_sigterm_and_sigint_exit_cleanly(sandbox_token):
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen(
            [*command(), "--port", "0", "--token", sandbox_token, "--scale", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with process:
            assert process.stdout.readline().startswith("http://")
            process.send_signal(sig)
            assert process.wait(timeout=10) == 0


def test_token_from_environment(sandbox_token):
    import os

    env = {**os.environ, "CAPSULE_SANDBOX_TOKEN": sandbox_token}
    with subprocess.Popen(
        [*command(), "--port", "0", "--scale", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout.readline().startswith("http://")
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--scale", "-1"], "--scale"),
        (["--large", "-5"], "--large"),
        (["--port", "70000"], "--port"),
        (["--port", "abc"], "--port"),
        (["--rate-limit", "x"], "--rate-limit"),
        (["--error-every", "-2"], "--error-every"),
        (["--error-status", "42"], "--error-status"),
        (["--slow-seconds", "nan"], "--slow-seconds"),
        (["--client-id", "only"], "--client-id"),
        (["--token-grant", "read superuser"], "--token-grant"),
        (["--extra-token", "tok=read nope"], "--extra-token"),
        (["--extra-token", "no-equals-sign"], "--extra-token"),
        (["--owner-clears-team", "kase,widget"], "--owner-clears-team"),
        (None, "--token"),
    ],
)
def test_bad_arguments_give_one_line_and_nonzero_exit(args, needle, sandbox_token):
    import os

    argv = ["--port", "0"] + (["--token", sandbox_token, *args] if args is not None else [])
    env = {k: v for k, v in os.environ.items() if k != "CAPSULE_SANDBOX_TOKEN"}
    result = subprocess.run(command() + argv, capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert result.stdout == ""


def test_cli_faults_throttle_first(sandbox_cli_factory, sandbox_http):
    sb = sandbox_cli_factory("--scale", "2", "--throttle-first", "1", "--error-every", "2")
    session = sandbox_http()
    assert session.get(sb.url + "/users").status_code == 429
    assert session.get(sb.url + "/users").status_code == 200
    assert session.get(sb.url + "/users").status_code == 503
