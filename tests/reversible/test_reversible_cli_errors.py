"""A user's mistake in any of the commands: one line that says what to fix, exit 1."""

from __future__ import annotations

import json

import pytest
from reversible_helpers import BIN, TOKEN, run


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("restore", ["{config}", "{tmp}/nope"], "holds no manifest.json"),
        ("verify", ["{config}", "{tmp}/nope"], "holds no manifest.json"),
        ("undo", ["{config}", "{tmp}/nope.jsonl"], "does not exist"),
        ("restore", ["{tmp}/missing.json", "{tmp}"], "missing.json"),
        ("backup", ["{tmp}/missing.json", "--backup-dir", "{tmp}/b"], "missing.json"),
    ],
)
def test_one_line_and_exit_1(tmp_path, command, args, message):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"access_token": TOKEN, "api_url": "http://127.0.0.1:9/api/v2"}))
    argv = [a.format(config=config, tmp=tmp_path) for a in args]
    result = run([str(BIN / "capsule"), command, "--config", *argv], check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"capsule {command}: error: "), result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_backup_target_without_a_folder(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({}))
    result = run([str(BIN / "target-capsule-backup"), "--config", str(config)], "", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "target-capsule-backup: set `backup_dir`, the folder to write"


def test_backup_target_refuses_a_record_before_its_schema(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"backup_dir": str(tmp_path / "b")}))
    line = json.dumps({"type": "RECORD", "stream": "parties", "record": {"id": 1}}) + "\n"
    result = run([str(BIN / "target-capsule-backup"), "--config", str(config)], line, check=False)
    assert result.returncode == 1
    assert "before its SCHEMA" in result.stderr
    assert not (tmp_path / "b" / "manifest.json").exists()  # an unfinished backup has none
