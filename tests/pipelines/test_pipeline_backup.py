"""The backup recipe through Meltano: `meltano run backup` (tap-capsule-all target-capsule-backup)
writes every stream, child streams included, and a manifest; capsule-verify then finds no
difference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tap_capsule.sandbox import Sandbox

pytestmark = pytest.mark.meltano


def test_meltano_backup_job_writes_every_stream(meltano, meltano_db, tmp_path, token):
    folder = tmp_path / "backup"
    with Sandbox(token=token, scale=15, seed=5) as sb:
        meltano(
            "--environment=dev",
            "run",
            "backup",
            database=meltano_db,
            env={
                "TAP_CAPSULE_API_URL": sb.url,
                "TAP_CAPSULE_ACCESS_TOKEN": token,
                "TARGET_CAPSULE_BACKUP_API_URL": sb.url,
                "TARGET_CAPSULE_BACKUP_ACCESS_TOKEN": token,
                "TARGET_CAPSULE_BACKUP_BACKUP_DIR": str(folder),
            },
        )
        state = sb.state()
        config = tmp_path / "tap.json"
        config.write_text(json.dumps({"access_token": token, "api_url": sb.url}))
        verify = subprocess.run(
            [
                str(Path(sys.executable).parent / "capsule"),
                "verify",
                "--config",
                str(config),
                str(folder),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    manifest = json.loads((folder / "manifest.json").read_text())
    streams = manifest["streams"]
    for stream in (
        "parties",
        "entries",
        "tasks",
        "milestones",
        "opportunity_parties",
        "opportunity_tracks",
        "case_tracks",
        "users",
        "party_custom_fields",
    ):
        assert streams[stream]["records"] == len(state[stream]), stream
    assert manifest["account"]["name"]
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["differences"] == 0
