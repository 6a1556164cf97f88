"""The example scheduled extract (.github/workflows/capsule-extract.yml) is wired as README says.

Cron, prod environment, token from the CI secret store, state through a file state backend that is
restored and saved between runs. That the file backend carries the state from one fresh runner to
the next is run for real in test_pipeline_csv.py.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_scheduled_extract_workflow():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "capsule-extract.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert triggers["schedule"][0]["cron"].split()[1] == "*"  # hourly
    job = workflow["jobs"]["extract"]
    env = job["env"]
    assert env["TAP_CAPSULE_ACCESS_TOKEN"] == "${{ secrets.CAPSULE_ACCESS_TOKEN }}"
    assert env["MELTANO_STATE_BACKEND_URI"].startswith("file://")
    state_dir = env["MELTANO_STATE_BACKEND_URI"].rsplit("/", 1)[1]
    steps = job["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "meltano --environment=prod run capsule-to-csv" in runs
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore"))
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save"))
    assert restore["with"]["path"] == save["with"]["path"] == state_dir
    assert restore["with"]["restore-keys"].strip() in save["with"]["key"]
    assert steps.index(restore) < steps.index(save)
    jobs = {j["name"] for j in yaml.safe_load((ROOT / "meltano.yml").read_text())["jobs"]}
    assert "capsule-to-csv" in jobs
