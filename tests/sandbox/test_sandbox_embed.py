"""`embed`: tags, fields and missingImportantFields only when asked; stubs unless embedded."""


def first_person_with_org(records):
    return next(r for r in records if r.get("type") == "person" and r.get("organisation"))


def test_tags_and_fields_absent_without_embed(sandbox, sandbox_http):
    parties = (
        sandbox_http().get(sandbox.url + "/parties", params={"perPage": 100}).json()["parties"]
    )
    for p in parties:
        assert "tags" not in p and "fields" not in p and "missingImportantFields" not in p


def test_tags_and_fields_present_with_embed(sandbox, sandbox_http):
    parties = (
        sandbox_http()
        .get(sandbox.url + "/parties", params={"perPage": 100, "embed": "tags,fields"})
        .json()["parties"]
    )
    assert all("tags" in p and "fields" in p for p in parties)
    assert any(p["tags"] for p in parties) and any(p["fields"] for p in parties)
    assert all("missingImportantFields" not in p for p in parties)


def test_missing_important_fields_embed(sandbox, sandbox_http):
    parties = (
        sandbox_http()
        .get(sandbox.url + "/parties", params={"embed": "missingImportantFields"})
        .json()["parties"]
    )
    assert all(isinstance(p["missingImportantFields"], bool) for p in parties)


def test_custom_field_values_by_type_and_numbers_as_strings(sandbox):
    state = sandbox.state()
    defs = {d["id"]: d for d in state["party_custom_fields"]}
    kinds = set()
    for party in state["parties"]:
        for value in party["fields"]:
            kind = defs[value["definition"]["id"]]["type"]
            kinds.add(kind)
            if kind == "number":
                assert isinstance(value["value"], str)
                float(value["value"])
            if kind == "boolean":
                assert isinstance(value["value"], bool)
            if kind == "list":
                assert value["value"] in defs[value["definition"]["id"]]["options"]
    assert kinds == {"text", "date", "list", "boolean", "number", "link"}


def test_organisation_is_a_stub_unless_embedded(sandbox, sandbox_http):
    session = sandbox_http()
    plain = first_person_with_org(
        session.get(sandbox.url + "/parties", params={"perPage": 100}).json()["parties"]
    )
    assert set(plain["organisation"]) <= {"id", "type", "name", "pictureURL"}
    full = session.get(
        f"{sandbox.url}/parties/{plain['id']}", params={"embed": "organisation"}
    ).json()
    org = full["party"]["organisation"]
    assert org["id"] == plain["organisation"]["id"] and "createdAt" in org


def test_unknown_embed_values_are_ignored(sandbox, sandbox_http):
    response = sandbox_http().get(
        sandbox.url + "/parties", params={"embed": "tags,bogus,milestone"}
    )
    assert response.status_code == 200
    assert all("bogus" not in p for p in response.json()["parties"])


def test_opportunity_embeds_party_and_milestone(sandbox, sandbox_http):
    opp = (
        sandbox_http()
        .get(sandbox.url + "/opportunities", params={"embed": "party,milestone,tags"})
        .json()["opportunities"][0]
    )
    assert "createdAt" in opp["party"] and "probability" in opp["milestone"] and "tags" in opp


def test_teams_memberships_only_when_embedded(sandbox, sandbox_http):
    session = sandbox_http()
    assert all("memberships" not in t for t in session.get(sandbox.url + "/teams").json()["teams"])
    teams = session.get(sandbox.url + "/teams", params={"embed": "memberships"}).json()["teams"]
    assert all(isinstance(t["memberships"], list) for t in teams)


def test_meta_total_count(sandbox, sandbox_http):
    body = (
        sandbox_http().get(sandbox.url + "/parties", params={"embed": "meta", "perPage": 2}).json()
    )
    assert body["meta"]["totalCount"] == len(sandbox.state()["parties"])


def test_refuse_unknown_embed_answers_400_to_meta_and_still_serves_documented_values(
    sandbox, sandbox_http
):
    session = sandbox_http()
    assert "meta" in session.get(sandbox.url + "/parties", params={"embed": "meta"}).json()
    sandbox.set_faults(refuse_unknown_embed=True)
    refused = session.get(sandbox.url + "/parties", params={"embed": "tags,meta"})
    assert refused.status_code == 400
    assert "meta" in refused.json()["message"]
    fine = session.get(sandbox.url + "/parties", params={"embed": "tags,fields"})
    assert fine.status_code == 200 and "meta" not in fine.json()
