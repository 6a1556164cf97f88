"""The one `capsule` command: subcommands, version, completion, old names, and `capsule backup`."""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import subprocess

import pytest
from reversible_helpers import BIN, TOKEN, run

SUBCOMMANDS = ("sandbox", "backup", "verify", "restore", "undo")


def test_help_lists_every_subcommand():
    result = run([str(BIN / "capsule"), "--help"], check=False)
    assert result.returncode == 0
    for name in (*SUBCOMMANDS, "completion"):
        assert f"    {name}" in result.stdout, name


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_its_own_help(name):
    result = run([str(BIN / "capsule"), name, "--help"], check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: capsule {name} ")


def test_version_is_the_installed_distribution():
    result = run([str(BIN / "capsule"), "--version"], check=False)
    assert result.stdout.strip() == f"capsule {importlib.metadata.version('tap-capsule')}"


def test_unknown_subcommand_is_one_line_exit_2():
    result = run([str(BIN / "capsule"), "restor"], check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("capsule: error: argument SUBCOMMAND: invalid choice: 'restor'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_arguments_name_the_subcommand():
    result = run([str(BIN / "capsule"), "undo"], check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("capsule undo: error: the following arguments")


def test_bash_completion_knows_subcommands_and_their_options():
    result = run([str(BIN / "capsule"), "completion", "bash"], check=False)
    assert result.returncode == 0, result.stderr
    script = result.stdout
    assert "complete" in script and "restore" in script
    # Options of a subcommand come from its real parser.
    assert "--backup-dir" in script and "--run-id" in script and "--scale" in script
    syntax = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert syntax.returncode == 0, syntax.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("capsule-undo", "undo"),
        ("capsule-restore", "restore"),
        ("capsule-verify", "verify"),
        ("capsule-sandbox", "sandbox"),
    ],
)
def test_old_names_still_run_and_say_what_replaces_them(old, new):
    result = run([str(BIN / old), "--help"], check=False)
    assert result.returncode == 0
    assert f"run `capsule {new}` instead" in result.stderr
    assert result.stdout.startswith(f"usage: capsule {new} ")


def _backup_config(tmp_path, url):
    config = tmp_path / "tap.json"
    config.write_text(json.dumps({"access_token": TOKEN, "api_url": url}))
    return config


def test_capsule_backup_writes_a_finished_backup(tmp_path, sandbox_cli_factory):
    sb = sandbox_cli_factory("--token", TOKEN, "--scale", "10", "--seed", "3")
    folder = tmp_path / "backup"
    config = _backup_config(tmp_path, sb.url)
    result = run(
        [
            str(BIN / "capsule"),
            "backup",
            "--config",
            str(config),
            "--backup-dir",
            str(folder),
        ],
        check=False,
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    with gzip.open(folder / "parties.jsonl.gz", "rt") as lines:
        parties = [json.loads(line) for line in lines if line.strip()]
    assert manifest["streams"]["parties"]["records"] == len(parties) == 10
    # Child streams are part of a backup.
    assert "opportunity_parties" in manifest["streams"]
    assert TOKEN not in result.stderr
    # The tap's figures (requests and budget, per stream) are the progress of both commands.
    assert "Sync finished:" in result.stderr and "| parties " in result.stderr
    checked = run(
        [str(BIN / "capsule"), "verify", "--config", str(config), str(folder)], check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout.splitlines()[-1])["differences"] == 0
    assert "Sync finished:" in checked.stderr and "| parties " in checked.stderr
    assert TOKEN not in checked.stderr


def test_capsule_backup_whose_tap_fails_stays_unfinished(tmp_path, sandbox_cli_factory):
    """A tap that fails (here: Capsule refuses its token) leaves the folder without a manifest,
    and the command's last line says so; a shell pipe would have exited 0."""
    sb = sandbox_cli_factory("--token", TOKEN, "--scale", "10", "--seed", "3")
    config = tmp_path / "tap.json"
    config.write_text(json.dumps({"access_token": "wrong-" + TOKEN, "api_url": sb.url}))
    folder = tmp_path / "backup"
    result = run(
        [str(BIN / "capsule"), "backup", "--config", str(config), "--backup-dir", str(folder)],
        check=False,
    )
    assert result.returncode == 1
    assert not (folder / "manifest.json").exists()
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("capsule backup: error: tap-capsule failed (exit 1)")
    assert "unfinished" in last
