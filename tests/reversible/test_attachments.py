"""Attachments through backup, restore and verify, between two sandbox accounts."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

import pytest
import requests
from reversible_helpers import TOKEN, backup, config_file, restore, verify

from tap_capsule.sandbox import Sandbox

REPORT = b"%PDF-1.4 quarterly report\n" + bytes(range(256)) * 40
PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256))) * 20


@pytest.fixture
def account_a():
    with Sandbox(token=TOKEN, scale=10, seed=7) as sb:
        yield sb


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


def note_with_files(sb: Sandbox, party: int, files: list[tuple[str, str, bytes]]) -> dict:
    session = http()
    tokens = []
    for name, kind, content in files:
        answer = session.post(
            sb.url + "/attachments/upload",
            data=content,
            headers={"Content-Type": kind, "X-Attachment-Filename": quote(name)},
        )
        assert answer.status_code == 200, answer.text
        tokens.append({"token": answer.json()["upload"]["token"]})
    created = session.post(
        sb.url + "/entries",
        json={
            "entry": {
                "type": "note",
                "content": "files",
                "party": {"id": party},
                "attachments": tokens,
            }
        },
    )
    assert created.status_code == 201, created.text
    return created.json()["entry"]


def test_backup_copy_verify_with_attachments_compares_hashes(account_a, tmp_path):
    parties = account_a.state()["parties"]
    note_with_files(account_a, parties[0]["id"], [("Q3 report.pdf", "application/pdf", REPORT)])
    note_with_files(
        account_a,
        parties[1]["id"],
        [("photo.png", "image/png", PHOTO), ("copy of report.pdf", "application/pdf", REPORT)],
    )
    config_a = config_file(tmp_path, account_a.url, backup_dir=str(tmp_path / "backup"))
    account_a.reset_requests()
    folder = backup(config_a)
    downloads = [k for k in account_a.requests()["by_route"] if "/attachments/" in k]
    assert account_a.requests()["by_route"]["GET /attachments/{id}"] == 3  # one per file
    assert downloads
    manifest = json.loads((folder / "manifest.json").read_text())
    kept = manifest["attachments"]
    assert len(kept) == 3 and manifest["attachment_files"] is True
    digests = {hashlib.sha256(REPORT).hexdigest(), hashlib.sha256(PHOTO).hexdigest()}
    assert {v["sha256"] for v in kept.values()} == digests
    assert {v["size"] for v in kept.values()} == {len(REPORT), len(PHOTO)}
    # content-addressed: the report twice, stored once
    assert {p.name for p in (folder / "attachments").iterdir()} == digests
    assert (folder / "attachments" / hashlib.sha256(PHOTO).hexdigest()).read_bytes() == PHOTO

    with Sandbox(token=TOKEN, scale=0, seed=11) as b:
        config_b = config_file(tmp_path, b.url, name="b")
        restore(config_b, folder, "--mode", "copy")
        assert b.requests()["by_route"]["POST /attachments/upload"] == 3
        notes = [e for e in b.state()["entries"] if e.get("attachments")]
        assert sorted(a["filename"] for e in notes for a in e["attachments"]) == [
            "Q3 report.pdf",
            "copy of report.pdf",
            "photo.png",
        ]
        id_map = folder / "restore-copy-sandbox.ids.json"
        run, report = verify(config_b, folder, "--id-map", str(id_map), "--copy")
        assert report["differences"] == 0, report["details"]
        assert report["limits"]["notes_with_attachments_kept_without_files"] == 0

        # Same name, other bytes: only the hash tells them apart.
        session = http()
        note = next(e for e in notes if e["attachments"][0]["filename"] == "Q3 report.pdf")
        upload = session.post(
            b.url + "/attachments/upload",
            data=REPORT[:-1] + b"!",
            headers={"Content-Type": "application/pdf", "X-Attachment-Filename": "Q3%20report.pdf"},
        ).json()["upload"]["token"]
        changed = session.put(
            f"{b.url}/entries/{note['id']}",
            json={
                "entry": {
                    "attachments": [
                        {"id": note["attachments"][0]["id"], "_delete": True},
                        {"token": upload},
                    ]
                }
            },
        )
        assert changed.status_code == 200, changed.text
        run, report = verify(config_b, folder, "--id-map", str(id_map), "--copy")
        assert report["differences"] == 1 and run.returncode == 1
        (detail,) = [d for d in report["details"] if "fields" in d]
        assert detail["stream"] == "entries" and list(detail["fields"]) == ["attachments"]


def test_attachments_off_keeps_names_and_counts_them_as_a_limit(account_a, tmp_path):
    party = account_a.state()["parties"][0]["id"]
    note_with_files(account_a, party, [("photo.png", "image/png", PHOTO)])
    config_a = config_file(
        tmp_path, account_a.url, backup_dir=str(tmp_path / "backup"), attachments=False
    )
    account_a.reset_requests()
    folder = backup(config_a)
    assert "GET /attachments/{id}" not in account_a.requests()["by_route"]
    manifest = json.loads((folder / "manifest.json").read_text())
    (kept,) = manifest["attachments"].values()
    assert kept["filename"] == "photo.png" and "sha256" not in kept
    assert not (folder / "attachments").exists()
    with Sandbox(token=TOKEN, scale=0, seed=11) as b:
        config_b = config_file(tmp_path, b.url, name="b")
        restore(config_b, folder, "--mode", "copy")
        id_map = folder / "restore-copy-sandbox.ids.json"
        run, report = verify(config_b, folder, "--id-map", str(id_map), "--copy")
        assert report["differences"] == 0, report["details"]
        assert report["limits"]["notes_with_attachments_kept_without_files"] == 1
        assert "notes with attachments kept without files" in run.stderr
