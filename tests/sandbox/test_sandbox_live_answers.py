"""The sandbox answers as live Capsule does where wire-traced clients recorded it.

Each answer is compared with a fixture under tests/fixtures/capsule/live/ whose source is in
tests/fixtures/capsule/NOTES.md (never our own code): the status, the body's shape and the message.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

LIVE = Path(__file__).parents[1] / "fixtures" / "capsule" / "live"


def fixture(name: str) -> dict:
    return json.loads((LIVE / name).read_text())


def shape(value):
    """Keys all the way down (lists by their first item), values left out."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def same_answer(response, name: str) -> None:
    expected = fixture(name)
    assert response.status_code == 422, response.text
    body = response.json()
    assert shape(body) == shape(expected)
    assert body["message"] == expected["message"] == "Validation Failed"
    assert body["errors"][0]["message"] == expected["errors"][0]["message"]


def test_re_adding_a_linked_party_is_a_422(sandbox, sandbox_http):
    session = sandbox_http()
    link = sandbox.state()["opportunity_parties"][0]
    url = f"{sandbox.url}/opportunities/{link['opportunityId']}/parties/{link['partyId']}"
    same_answer(session.post(url), "link.exists.json")
    assert session.delete(url).status_code == 204
    assert session.post(url).status_code == 204  # linked again once it was not


def test_removing_a_tag_the_record_does_not_carry_is_a_422(sandbox, sandbox_http):
    session = sandbox_http()
    state = sandbox.state()
    tag = state["party_tags"][0]
    party = next(p for p in state["parties"] if all(t["id"] != tag["id"] for t in p["tags"]))
    url = f"{sandbox.url}/parties/{party['id']}"
    answer = session.put(url, json={"party": {"tags": [{"id": tag["id"], "_delete": True}]}})
    same_answer(answer, "tag.not-carried.json")


def test_parties_deleted_without_since_is_a_422(sandbox, sandbox_http):
    answer = sandbox_http().get(sandbox.url + "/parties/deleted")
    same_answer(answer, "parties.deleted.no-since.json")


def test_a_duplicate_tag_name_is_a_422(sandbox, sandbox_http):
    session = sandbox_http()
    name = sandbox.state()["party_tags"][0]["name"]
    answer = session.post(sandbox.url + "/parties/tags", json={"tag": {"name": name.upper()}})
    same_answer(answer, "tag.duplicate.json")
    # another entity's tags are another list
    assert session.post(sandbox.url + "/kases/tags", json={"tag": {"name": name}}).status_code in (
        201,
        422,
    )


def test_a_filter_on_an_unknown_field_is_a_422_validation_failed(sandbox, sandbox_http):
    body = {"filter": {"conditions": [{"field": "lastContactedAt", "operator": "is", "value": 1}]}}
    answer = sandbox_http().post(sandbox.url + "/parties/filters/results", json=body)
    same_answer(answer, "filter.unknown-field.json")


def test_legacy_milestones_name_their_pipeline_and_post_milestones_works(sandbox, sandbox_http):
    session = sandbox_http()
    pipeline = next(p for p in sandbox.state()["pipelines"] if not p["deleted"])
    created = session.post(
        sandbox.url + "/milestones",
        json={"milestone": {"name": "Shortlisted", "pipeline": {"id": pipeline["id"]}}},
    )
    assert created.status_code == 201, created.text
    listed = session.get(sandbox.url + f"/pipelines/{pipeline['id']}/milestones?perPage=100")
    assert created.json()["milestone"]["id"] in {m["id"] for m in listed.json()["milestones"]}
    legacy = session.get(sandbox.url + "/milestones").json()["milestones"]
    documented = fixture("../milestones.list.json")["milestones"][-1]
    assert legacy and all(shape(m["pipeline"]) == shape(documented["pipeline"]) for m in legacy)


def test_board_stages_take_embed_meta(sandbox, sandbox_http):
    board = sandbox.state()["boards"][0]
    body = sandbox_http().get(f"{sandbox.url}/boards/{board['id']}/stages?embed=meta").json()
    expected = fixture("boards.stages.meta.json")
    assert shape(body["meta"]) == shape(expected["meta"])
    assert body["meta"]["totalCount"] == len(body["stages"]) > 0


def test_attachments_upload_and_download_as_documented(sandbox, sandbox_http):
    session = sandbox_http()
    content = bytes(range(256)) * 3
    upload = session.post(
        sandbox.url + "/attachments/upload",
        data=content,
        headers={"Content-Type": "application/pdf", "X-Attachment-Filename": quote("Q3 ré.pdf")},
    )
    assert upload.status_code == 200
    assert shape(upload.json()) == shape(fixture("attachments.upload.json"))
    party = sandbox.state()["parties"][0]["id"]
    note = session.post(
        sandbox.url + "/entries",
        json={
            "entry": {
                "type": "note",
                "party": {"id": party},
                "attachments": [{"token": upload.json()["upload"]["token"]}],
            }
        },
    )
    assert note.status_code == 201, note.text  # a note with a file needs no content
    (attachment,) = note.json()["entry"]["attachments"]
    assert attachment["filename"] == "Q3 ré.pdf" and attachment["size"] == len(content)
    assert attachment["contentType"] == "application/pdf"
    download = session.get(f"{sandbox.url}/attachments/{attachment['id']}")
    assert download.status_code == 200 and download.content == content
    # a token is used once
    again = session.post(
        sandbox.url + "/entries",
        json={
            "entry": {
                "type": "note",
                "content": "x",
                "party": {"id": party},
                "attachments": [{"token": upload.json()["upload"]["token"]}],
            }
        },
    )
    assert again.status_code == 422
    assert session.get(f"{sandbox.url}/attachments/999999").status_code == 404


def test_track_tasks_are_embedded_data(sandbox, sandbox_http):
    session = sandbox_http()
    track = sandbox.state()["case_tracks"][0]
    bare = session.get(f"{sandbox.url}/tracks/{track['id']}").json()["track"]
    assert "tasks" not in bare
    for embed in ("task", "tasks"):  # the docs' value and Capsule's own client's
        full = session.get(f"{sandbox.url}/tracks/{track['id']}?embed={embed}").json()["track"]
        assert full["tasks"], embed
