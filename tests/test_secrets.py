"""No secret setting reaches any output of either plugin, whatever the failure and its form.

Every failure mode of tap-capsule and target-capsule runs through the real CLIs with marked secrets
(access token, refresh token, client id and secret); then stdout, stderr and every file the run
wrote (rejects included) are scanned for each secret, its encoded forms and any 10-character run
of it. The only files allowed to hold a secret are the settings file itself and the OAuth token
cache, whose purpose it is.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import typing as t
from pathlib import Path
from urllib.parse import quote

import pytest

from tap_capsule.api_client import CapsuleConfigError, clean_secret
from tap_capsule.sandbox import Sandbox
from tap_capsule.secrets import MASK, Redactor

BIN = Path(sys.executable).parent
ACCESS = "acc3ssSECRETtok7Qw9zK2mVb"
READ_ONLY = "r0nlySECRETtok5Gh2Jd8Lq"
WRONG = "wr0ngSECRETtok3Ft6Ys1Pe"
REFRESH = "r3fr3shSECRETtok4Lp4Xv8Nw"
CLIENT_ID = "cl1entidSECRET9Rt2Mk"
CLIENT_SECRET = "cl13ntSECRETsec6Hn6Tb3Qz"
SECRETS = (ACCESS, READ_ONLY, WRONG, REFRESH, CLIENT_ID, CLIENT_SECRET)


def forms(secret: str) -> set[str]:
    """The ways a secret can leak: whole, encoded, or any 10-character run of it."""
    out = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode().rstrip("=")}
    out |= {secret[i : i + 10] for i in range(len(secret) - 9)}
    return out


def leaks(text: str) -> list[str]:
    return sorted({f for s in SECRETS for f in forms(s) if f in text})


@pytest.fixture
def capsule() -> t.Iterator[Sandbox]:
    with Sandbox(
        token=ACCESS,
        scale=5,
        seed=3,
        read_only_token=READ_ONLY,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH,
    ) as sb:
        yield sb


PARTY_SCHEMA = {
    "type": "SCHEMA",
    "stream": "parties",
    "schema": {
        "properties": {"type": {}, "name": {}, "firstName": {}, "lastName": {}, "about": {}}
    },
}


def records(*items: dict) -> str:
    lines = [PARTY_SCHEMA] + [{"type": "RECORD", "stream": "parties", "record": r} for r in items]
    return "".join(json.dumps(m) + "\n" for m in lines)


def run(plugin: str, tmp_path: Path, config: dict, stdin: str = "", *args: str) -> tuple[int, str]:
    """Run one CLI; return its exit code and everything it wrote (output and files)."""
    work = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    work.mkdir()
    cfg = work / "config.json"
    own = {"rejects_path": str(work / "rejects.jsonl")} if plugin == "target-capsule" else {}
    cfg.write_text(json.dumps({**own, **config}))  # the tap refuses a setting it does not have
    proc = subprocess.run(
        [str(BIN / plugin), "--config", str(cfg), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=work,
    )
    written = [
        p.read_text(errors="replace")
        for p in work.rglob("*")
        if p.is_file() and p.name not in {"config.json", "token-cache.json"}
    ]
    return proc.returncode, "\n".join([proc.stdout, proc.stderr, *written])


def oauth(sb: Sandbox, work_token: str = WRONG, **more: str) -> dict:
    return {
        "api_url": sb.url,
        "access_token": work_token,
        "refresh_token": REFRESH,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **more,
    }


def target_cases(sb: Sandbox) -> dict[str, tuple[dict, str, int]]:
    person = {"type": "person", "firstName": "Ada"}  # no lastName: rejected, record kept
    return {
        "token with surrounding whitespace works": (
            {"api_url": sb.url, "access_token": f"  {ACCESS}\n"},
            records({"type": "organisation", "name": "Spaced Token Ltd"}),
            0,
        ),
        "token with a line break inside": (
            {"api_url": sb.url, "access_token": f"{ACCESS[:9]}\n{ACCESS[9:]}"},
            records({"type": "organisation", "name": "X"}),
            1,
        ),
        "wrong token": (
            {"api_url": sb.url, "access_token": WRONG},
            records({"type": "organisation", "name": "X"}),
            1,
        ),
        "read-only token writes": (
            {"api_url": sb.url, "access_token": READ_ONLY},
            records({"type": "organisation", "name": "X"}),
            0,
        ),
        "secrets inside rejected records": (
            {"api_url": sb.url, "access_token": ACCESS, "client_secret": CLIENT_SECRET},
            records(
                {**person, "about": ACCESS},
                {**person, "about": f"half {ACCESS[:12]} and {quote(CLIENT_SECRET)}"},
                {**person, ACCESS: "as a key", "about": f"Bearer {ACCESS}\n"},
            ),
            0,
        ),
        "secret in a malformed line": (
            {"api_url": sb.url, "access_token": ACCESS},
            records({"type": "organisation", "name": "Y Ltd"}) + f"{{broken {ACCESS}\n",
            1,
        ),
        "refresh refused": (
            {**oauth(sb), "refresh_token": WRONG + "x"},
            records({"type": "organisation", "name": "X"}),
            1,
        ),
        "refresh works": (oauth(sb), records({"type": "organisation", "name": "Refreshed"}), 0),
        "plain http to another host": (
            {"api_url": "http://capsule.example.com/api/v2", "access_token": ACCESS},
            records({"type": "organisation", "name": "X"}),
            1,
        ),
        "capsule failing every request": (
            {"api_url": sb.url, "access_token": f"{ACCESS}\n", "max_retries": 1},
            records({"type": "organisation", "name": "Down Ltd"}),
            1,
        ),
        "token of the wrong type": (
            {"api_url": sb.url, "access_token": 4711000000123456789},
            records({"type": "organisation", "name": "X"}),
            1,
        ),
    }


def test_target_failure_modes_never_show_a_secret(capsule, tmp_path):
    seen = []
    for name, (config, stdin, code) in target_cases(capsule).items():
        if name == "token of the wrong type":
            SECRETS_EXTRA.append(str(config["access_token"]))
        capsule.set_faults(error_every=1 if name == "capsule failing every request" else 0)
        returncode, output = run("target-capsule", tmp_path, config, stdin)
        assert returncode == code, f"{name}: exit {returncode}\n{output[-2000:]}"
        assert "Traceback" not in output, name
        found = leaks(output) + [s for s in SECRETS_EXTRA if s in output]
        assert found == [], f"{name}: {found}\n{output[-3000:]}"
        seen.append(output)
    assert MASK in "".join(seen)  # the secrets in records were there, and masked


SECRETS_EXTRA: list[str] = []


def test_tap_failure_modes_never_show_a_secret(capsule, tmp_path):
    cases: dict[str, tuple[dict, tuple[str, ...], int]] = {
        "token with surrounding whitespace works": (
            {"api_url": capsule.url, "access_token": f"\t{ACCESS}\r\n"},
            ("--discover",),
            0,
        ),
        "token with a space inside": (
            {"api_url": capsule.url, "access_token": f"{ACCESS[:5]} {ACCESS[5:]}"},
            (),
            1,
        ),
        "wrong token": ({"api_url": capsule.url, "access_token": WRONG}, (), 1),
        "refresh refused": ({**oauth(capsule), "refresh_token": WRONG + "y"}, (), 1),
        "refresh works": (oauth(capsule), ("--discover",), 0),
        "plain http to another host": (
            {"api_url": "http://capsule.example.com/api/v2", "access_token": ACCESS},
            (),
            1,
        ),
        "capsule failing every request": (
            {"api_url": capsule.url, "access_token": f" {ACCESS}", "max_retries": 1},
            (),
            1,
        ),
    }
    for name, (config, args, code) in cases.items():
        capsule.set_faults(error_every=1 if name == "capsule failing every request" else 0)
        returncode, output = run("tap-capsule", tmp_path, config, "", *args)
        assert returncode == code, f"{name}: exit {returncode}\n{output[-2000:]}"
        assert leaks(output) == [], f"{name}: {leaks(output)}\n{output[-3000:]}"


def test_tokens_are_stripped_or_refused():
    assert clean_secret({"access_token": f" {ACCESS}\n"}, "access_token") == ACCESS
    assert clean_secret({"access_token": None}, "access_token") is None
    for inside in ("\n", " ", "\x00", "\x7f"):
        with pytest.raises(CapsuleConfigError, match="access_token has whitespace inside") as exc:
            clean_secret({"access_token": f"{ACCESS[:4]}{inside}{ACCESS[4:]}"}, "access_token")
        assert not leaks(str(exc.value))


@pytest.mark.parametrize(
    "text",
    [
        f"Invalid header value b'Bearer {ACCESS}\\n'",
        f"token={quote(ACCESS)}&x=1",
        base64.b64encode(f"{CLIENT_SECRET}".encode()).decode(),
        f"cut short: {ACCESS[:11]}…",
        json.dumps({"t": ACCESS + "\n"}),
    ],
)
def test_redactor_masks_every_form(text):
    masked = Redactor([ACCESS, CLIENT_SECRET]).redact(text)
    assert MASK in masked
    assert leaks(masked) == []


def test_uncaught_errors_are_printed_masked():
    code = (
        "from tap_capsule import secrets\n"
        f"secrets.install({{'access_token': {ACCESS!r}}})\n"
        f"secrets.install({{'client_secret': {CLIENT_SECRET!r}}})\n"
        f"raise RuntimeError('boom ' + {ACCESS!r} + ' ' + {CLIENT_SECRET[:12]!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "RuntimeError: boom ***" in proc.stderr
    assert leaks(proc.stderr) == []
