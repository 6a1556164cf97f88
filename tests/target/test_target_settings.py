"""`target-capsule --about` shows only settings that work and the real version; a configuration
that sets one of the SDK's settings the target cannot honour is refused with one line."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata

import pytest
from target_helpers import TARGET

from target_capsule.unsupported_settings import UNSUPPORTED


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [TARGET, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_about_lists_only_settings_that_work_and_the_real_version():
    about = json.loads(cli("--about", "--format=json").stdout)
    assert about["version"] == metadata.version("tap-capsule")
    settings = set(about["settings"]["properties"])
    assert settings.isdisjoint(UNSUPPORTED), settings & set(UNSUPPORTED)
    assert {"access_token", "dry_run", "upsert_keys", "validate_records", "stream_maps"} <= settings
    assert "schema-flattening" not in about["capabilities"]
    markdown = cli("--about").stdout
    assert "load_method" not in markdown
    assert "overwrite" not in markdown.lower()


def test_version_is_the_distributions():
    run = cli("--version")
    assert run.returncode == 0
    assert f"target-capsule v{metadata.version('tap-capsule')}," in run.stdout + run.stderr
    assert "could not be detected" not in run.stdout + run.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("load_method", "overwrite"),
        ("add_record_metadata", True),
        ("flattening_enabled", True),
        ("batch_size_rows", 10),
        ("faker_config", {"locale": "en_GB"}),
    ],
)
def test_an_unsupported_sdk_setting_is_refused_with_one_line(tmp_path, name, value):
    base = {"access_token": "tok-settings-1", "api_url": "http://127.0.0.1:9/api/v2"}
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps(base))
    # The clean run: the same configuration without the setting, no input, exits 0.
    assert cli("--config", str(clean)).returncode == 0

    config = tmp_path / "config.json"
    config.write_text(json.dumps({**base, name: value}))
    run = cli("--config", str(config))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "does not support" in line]
    assert len(errors) == 1, run.stderr
    assert f"`{name}`" in errors[0]
    assert "Remove it from the configuration" in errors[0]
    assert "Traceback" not in run.stderr
    assert "tok-settings-1" not in run.stderr
