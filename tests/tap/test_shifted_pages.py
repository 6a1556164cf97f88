"""Records deleted while the tap pages through a list: nothing is silently skipped.

Capsule's pages are by number, so deleting a record the read has passed moves the next page's first
record onto a page already read. The tap compares the deleted feed since the read began with what
it saw and reads the pages that may have shifted again (the choice measured here), saying so in
its log.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.tap.conftest import TAP, discover, select

PAGE = 4


def read_parties_deleting(tmp_path, sandbox, config: dict, delete_after: int) -> tuple[list, str]:
    """Run the tap on parties; after `delete_after` records, delete the first one it sent."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(select(discover(config_path), {"parties"})))
    log = tmp_path / "tap.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [TAP, "--config", str(config_path), "--catalog", str(catalog)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert process.stdout is not None
        records: list[dict] = []
        for line in process.stdout:
            message = json.loads(line)
            if message["type"] != "RECORD":
                continue
            records.append(message["record"])
            if delete_after and len(records) == delete_after:
                sandbox.delete_record("parties", records[0]["id"])
        process.stdout.close()
        assert process.wait(timeout=120) == 0
    return records, log.read_text()


@pytest.mark.parametrize("tombstones", ["inline", "off"])
def test_a_deletion_during_the_read_skips_nothing(
    tmp_path, sandbox_factory, sandbox_token, tombstones
):
    sandbox = sandbox_factory(scale=30, seed=7, faults={"slow_every": 1, "slow_seconds": 0.05})
    config = {
        "access_token": sandbox_token,
        "api_url": sandbox.url,
        "page_size": PAGE,
        "tombstones": tombstones,
    }
    records, log = read_parties_deleting(tmp_path, sandbox, config, delete_after=2 * PAGE)
    alive = {p["id"] for p in sandbox.state()["parties"]}
    sent = {r["id"] for r in records if not r.get("_sdc_deleted_at")}
    assert alive <= sent, f"skipped: {sorted(alive - sent)}"
    assert "may have shifted; reading them again" in log


def test_a_read_without_deletions_is_read_once(tmp_path, sandbox_factory, sandbox_token):
    sandbox = sandbox_factory(scale=30, seed=7)
    config = {"access_token": sandbox_token, "api_url": sandbox.url, "page_size": PAGE}
    sandbox.reset_requests()
    records, log = read_parties_deleting(tmp_path, sandbox, config, delete_after=0)
    assert sandbox.requests()["by_path"]["GET /parties"] == -(-30 // PAGE)
    assert "shifted" not in log
    assert len({r["id"] for r in records}) == len(records)
