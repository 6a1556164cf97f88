"""A misspelt setting name ends every command that reads a config, before any request, in one line
with a "did you mean" hint; so does a `<PREFIX>_*` environment variable that names no setting.
Meltano's own extra variables pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from target_helpers import TARGET, TOKEN, messages

from tap_capsule.setting_names import unknown_setting, unknown_variable

BIN = Path(sys.executable).parent
PERSON = {"type": "person", "firstName": "Dry", "lastName": "Typo"}


def run(cmd: list[str], stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_CAPSULE", "TARGET_CAP"))}
    return subprocess.run(
        cmd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **(env or {})},
    )


def one_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "error" in line or ": unknown" in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def lines_of(records: list[tuple[str, dict]]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages(records))


def test_misspelt_dry_run_is_refused_before_any_request(capsule, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"access_token": TOKEN, "api_url": capsule.url, "dryrun": True}))
    proc = run([TARGET, "--config", str(config)], lines_of([("parties", PERSON)]))
    line = one_error(proc)
    assert "`dryrun`" in line
    assert "did you mean `dry_run`?" in line
    assert TOKEN not in proc.stderr
    assert capsule.requests()["total"] == 0  # not even a read
    # The clean twin: the right name plans and writes nothing either, and exits 0.
    config.write_text(json.dumps({"access_token": TOKEN, "api_url": capsule.url, "dry_run": True}))
    assert run([TARGET, "--config", str(config)], lines_of([("parties", PERSON)])).returncode == 0
    assert capsule.requests()["writes"] == 0


def test_misspelt_tap_setting_is_refused_with_a_hint(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"access_token": TOKEN, "tombstone": "stream"}))
    line = one_error(run([str(BIN / "tap-capsule"), "--config", str(config)]))
    assert "`tombstone`" in line
    assert "did you mean `tombstones`?" in line


def test_an_environment_variable_that_names_no_setting_is_refused(capsule, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"access_token": TOKEN, "api_url": capsule.url}))
    proc = run(
        [TARGET, "--config", str(config)],
        lines_of([("parties", PERSON)]),
        env={"TARGET_CAPSULE_DRYRUN": "true"},
    )
    line = one_error(proc)
    assert "TARGET_CAPSULE_DRYRUN" in line
    assert "did you mean TARGET_CAPSULE_DRY_RUN?" in line
    assert capsule.requests()["total"] == 0


def test_meltanos_own_variables_pass(capsule, tmp_path):
    """What Meltano 4.4 puts in a loader's and an inheriting extractor's environment."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"access_token": TOKEN, "api_url": capsule.url}))
    meltano = {
        "TARGET_CAPSULE_DRY_RUN": "true",
        "TARGET_CAPSULE__DIALECT": "target_capsule",
        "TARGET_CAPSULE__LOG_PARSER": "singer-sdk",
        "TARGET_CAPSULE_LOGLEVEL": "info",
        "TARGET_CAPSULE_BACKUP_BACKUP_DIR": "output/backup",  # our backup target's
        "TARGET_CAPSULE_EU_ACCESS_TOKEN": "x",  # a plugin inheriting from target-capsule
        "MELTANO_LOADER_NAME": "target-capsule",
    }
    proc = run([TARGET, "--config", str(config)], "", env=meltano)
    assert proc.returncode == 0, proc.stderr


def test_names_unit():
    known = {"dry_run", "access_token", "start_date"}
    assert unknown_setting("x", {"dry_run": 1}, known) is None
    assert "did you mean `dry_run`" in (unknown_setting("x", {"Dry-Run": 1}, known) or "")
    assert "did you mean" not in (unknown_setting("x", {"zzz": 1}, known) or "did you mean")
    extractor = {
        "TAP_CAPSULE_CSV_START_DATE": "2020-01-01",
        "TAP_CAPSULE_CSV__SELECT": "[]",
        "TAP_CAPSULE__SELECT_FILTER": "[]",
        "TAP_CAPSULE_START_DATE": "2020-01-01",
        "MELTANO_EXTRACTOR_NAME": "tap-capsule-csv",
        "TAP_CAPSULEX": "other program",
    }
    assert unknown_variable("tap-capsule", known, extractor) is None
    assert "TAP_CAPSULE_STARTDATE" in (
        unknown_variable("tap-capsule", known, {"TAP_CAPSULE_STARTDATE": "1"}) or ""
    )


@pytest.mark.parametrize(
    ("command", "args", "config"),
    [
        (["capsule", "undo"], ["changes.jsonl"], {"dryrun": True}),
        (["capsule", "restore"], ["backup"], {"dryrun": True}),
        (["capsule", "verify"], ["backup"], {"tombstone": "off"}),
        (["capsule", "backup"], ["--backup-dir", "b"], {"startdate": "2020-01-01"}),
        (["target-capsule-backup"], [], {"backupdir": "b"}),
    ],
)
def test_every_account_command_refuses_an_unknown_setting(capsule, tmp_path, command, args, config):
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"access_token": TOKEN, "api_url": capsule.url, **config}))
    paths = [a if a.startswith("--") else str(tmp_path / a) for a in args]
    proc = run([str(BIN / command[0]), *command[1:], "--config", str(file), *paths])
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if "unknown setting" in line]
    assert f"`{next(iter(config))}`" in line
    assert "did you mean" in line
    assert capsule.requests()["total"] == 0


def test_every_commands_own_settings_are_listed_for_shared_configs():
    from singer_sdk import Tap, Target

    from tap_capsule.api_client import connection_settings
    from tap_capsule.setting_names import COMMAND_SETTINGS, plugin_setting_names
    from tap_capsule.tap import TapCapsule
    from target_capsule.account.backup import BACKUP_SETTINGS
    from target_capsule.account.restore import RESTORE_SETTINGS
    from target_capsule.target import TargetCapsule

    connection = set(connection_settings().wrapped)
    for plugin, sdk in ((TapCapsule, Tap), (TargetCapsule, Target)):  # not the SDK's own
        builtin: dict = {"properties": {}}
        sdk.append_builtin_config(builtin)
        own = set(plugin.config_jsonschema["properties"]) - connection - set(builtin["properties"])
        assert own <= COMMAND_SETTINGS[plugin.name], f"list {plugin.name}'s new settings"
        assert own <= plugin_setting_names(plugin)
    assert set(BACKUP_SETTINGS) <= COMMAND_SETTINGS["target-capsule-backup"]
    assert set(RESTORE_SETTINGS) <= COMMAND_SETTINGS["capsule restore"]


def test_a_setting_of_another_command_in_a_shared_config_is_noted_not_refused(capsule, tmp_path):
    config = tmp_path / "shared.json"
    shared = {"access_token": TOKEN, "api_url": capsule.url, "dry_run": True, "backup_dir": "b"}
    config.write_text(json.dumps(shared))
    proc = run([str(BIN / "tap-capsule"), "--config", str(config), "--discover"])
    assert proc.returncode == 0, proc.stderr
    assert "note: `dry_run` is a setting of target-capsule; tap-capsule ignores it" in proc.stderr
    assert "note: `backup_dir` is a setting of target-capsule-backup" in proc.stderr
