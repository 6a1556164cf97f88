"""meltano.yml and the Meltano Hub plugin definitions agree with what the plugins say about
themselves (`--about`), and the Hub definitions work with `meltano add --from-ref`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"access_token", "refresh_token", "client_id", "client_secret"}
# Settings every SDK plugin has; a definition may leave them out.
SDK_BUILTINS = {
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
    "add_record_metadata",
    "load_method",
    "batch_size_rows",
    "validate_records",
}


def about(executable: str) -> dict:
    script = Path(sys.executable).parent / executable
    out = subprocess.run(
        [str(script), "--about", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return json.loads(out)


def own_settings(executable: str) -> set[str]:
    return set(about(executable)["settings"]["properties"]) - SDK_BUILTINS


def project() -> dict:
    return yaml.safe_load((ROOT / "meltano.yml").read_text())


def plugin(kind: str, name: str) -> dict:
    return next(p for p in project()["plugins"][kind] if p["name"] == name)


@pytest.mark.parametrize(
    ("kind", "name"), [("extractors", "tap-capsule"), ("loaders", "target-capsule")]
)
def test_meltano_yml_declares_every_setting_and_marks_secrets(kind, name):
    definition = plugin(kind, name)
    settings = {s["name"]: s for s in definition["settings"]}
    assert own_settings(name) <= set(settings)
    for secret in SECRETS:
        assert settings[secret].get("sensitive") is True, secret
    assert all("kind" in s for s in settings.values())
    assert definition["namespace"] == name.replace("-", "_")
    assert definition["pip_url"] == "-e ."
    assert set(definition["capabilities"]) <= set(about(name)["capabilities"]) | {"stream-maps"}


@pytest.mark.parametrize(
    ("kind", "name"), [("extractors", "tap-capsule"), ("loaders", "target-capsule")]
)
def test_hub_definition_declares_every_setting(kind, name):
    definition = yaml.safe_load((ROOT / "plugins" / kind / f"{name}.yml").read_text())
    for key in (
        "name",
        "variant",
        "namespace",
        "pip_url",
        "executable",
        "capabilities",
        "settings",
    ):
        assert definition.get(key), key
    settings = {s["name"]: s for s in definition["settings"]}
    assert own_settings(name) <= set(settings)
    assert {n for n, s in settings.items() if s.get("sensitive")} == SECRETS
    assert set(definition["capabilities"]) <= set(about(name)["capabilities"])


def test_jobs_and_schedule():
    doc = project()
    jobs = {j["name"]: j["tasks"] for j in doc["jobs"]}
    assert jobs == {
        "capsule-to-csv": ["tap-capsule-csv target-csv"],
        "capsule-to-postgres": ["tap-capsule target-postgres"],
        "capsule-to-postgres-reconcile": ["tap-capsule target-postgres"],
        "csv-to-capsule": ["tap-spreadsheets target-capsule"],
        "postgres-to-capsule": ["tap-postgres target-capsule"],
        "backup": ["tap-capsule-all target-capsule-backup"],
        "capsule-to-duckdb": ["tap-capsule-sql target-capsule-duckdb"],
        "capsule-sync": ["capsule-sync:run"],
    }
    schedules = {s["job"]: s for s in doc["schedules"]}
    assert list(schedules) == ["capsule-to-postgres", "capsule-to-postgres-reconcile"]
    # The reconcile is a full refresh next to the hourly incremental job.
    assert schedules["capsule-to-postgres-reconcile"]["env"] == {"MELTANO_RUN_FULL_REFRESH": "true"}
    assert {e["name"] for e in doc["environments"]} == {"dev", "demo", "prod"}
    pip_urls = {p["name"]: p["pip_url"] for p in doc["plugins"]["loaders"]}
    assert pip_urls["target-csv"].startswith("meltanolabs-target-csv")
    assert pip_urls["target-postgres"].startswith("meltanolabs-target-postgres")
    assert pip_urls["target-jsonl"].startswith("target-jsonl")
    assert pip_urls["target-capsule-duckdb"] == "-e ."
    # The DuckDB job states its tombstone mode and reads tasks whole (deleted tasks leave it).
    sql_tap = plugin("extractors", "tap-capsule-sql")
    assert sql_tap["inherit_from"] == "tap-capsule"
    assert sql_tap["config"] == {"tombstones": "inline", "tasks_mode": "full"}


def test_the_sync_utility_declares_every_setting_of_capsule_sync():
    from target_capsule.account.sync.cli import SETTINGS

    definition = plugin("utilities", "capsule-sync")
    settings = {s["name"]: s for s in definition["settings"]}
    # The connection settings beyond token and URL stay available as CAPSULE_SYNC_* variables.
    assert {"access_token", "api_url", "database_url", "schema", "conflict", "objects"} <= set(
        settings
    )
    assert set(settings) <= set(SETTINGS)
    assert settings["access_token"]["sensitive"] is True
    assert settings["database_url"]["sensitive"] is True
    assert {o["value"] for o in settings["conflict"]["options"]} == {
        "capsule",
        "database",
        "newest",
    }
    assert (definition["executable"], definition["commands"]["run"]["args"]) == ("capsule", "sync")


@pytest.mark.meltano
def test_hub_definitions_add_install_and_run_in_a_new_project(meltano, tmp_path):
    env = {"MELTANO_SYS_DIR_ROOT": str(tmp_path / "proj" / ".meltano")}
    meltano("init", "--no-usage-stats", "proj", cwd=tmp_path, env=env)
    proj = tmp_path / "proj"
    for kind, kind_dir, name in (
        ("extractor", "extractors", "tap-capsule"),
        ("loader", "loaders", "target-capsule"),
    ):
        meltano(
            "add",
            "--no-install",
            "--from-ref",
            str(ROOT / "plugins" / kind_dir / f"{name}.yml"),
            "--plugin-type",
            kind,
            name,
            cwd=proj,
            env=env,
        )
    doc = yaml.safe_load((proj / "meltano.yml").read_text())
    assert [p["name"] for p in doc["plugins"]["extractors"]] == ["tap-capsule"]
    assert [p["name"] for p in doc["plugins"]["loaders"]] == ["target-capsule"]
    # The Hub's pip_url is the PyPI name; install this checkout instead.
    for kind in ("extractors", "loaders"):
        doc["plugins"][kind][0]["pip_url"] = f"-e {ROOT}"
    (proj / "meltano.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    meltano("install", cwd=proj, env=env, timeout=600)
    listed = meltano("config", "list", "--all", "tap-capsule", cwd=proj, env=env).output
    assert "access_token" in listed and "page_size" in listed
    for name in ("tap-capsule", "target-capsule"):
        out = meltano("invoke", name, "--about", "--format=json", cwd=proj, env=env).output
        assert f'"name": "{name}"' in out
