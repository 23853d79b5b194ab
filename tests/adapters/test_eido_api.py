"""EIDO over real HTTP, on SQLite and PostgreSQL: POST /v1/cad/eido routes and keeps
rejects, GET /v1/calls/{id}/eido is a valid EIDO carrying the decision."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from service.store.tables import BOARD, CAD_EVENT, CALL, REJECT
from tests.conftest import Server
from tests.factories import eido
from tests.shared_data import (
    DRAFT_2020,
    JCARD,
    SAMPLE,
    SAMPLE_2021,
    SCHEMA_021_1B,
    THIRD_PARTY,
    schema_errors,
    shared_json,
)

pytestmark = pytest.mark.asyncio


async def count(server: Server, table: Any) -> int:
    async with server.runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def post(server: Server, doc: Any, **params: str) -> httpx.Response:
    return await server.client.post("/v1/cad/eido", json=doc, params=params,
                                     headers={"accept": "application/json"})


async def call_of(server: Server, call_id: str) -> dict[str, Any]:
    r = await server.client.get(f"/v1/calls/{call_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_official_sample_is_accepted_routed_and_idempotent(server: Server) -> None:
    sample = shared_json(SAMPLE)
    first = await post(server, sample, strict="true")
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["warnings"] == [] and body["mode"] == "strict"
    # A call-transfer EIDO says nothing of the incident yet: police, the safe default.
    assert body["decision"]["destination"] == "police"
    assert body["decision"]["basis"] == "no_rule"
    call = await call_of(server, body["call_id"])
    assert call["call"]["source"] == "eido"
    assert call["call"]["incident_id"] == sample["$id"]
    assert call["call"]["nature_code"] == "TROUBLE"
    assert call["call"]["location"]["address"].startswith("42 W Cellular Street, Wilmington")
    rows = (await count(server, CAD_EVENT), await count(server, BOARD), await count(server, CALL))

    again = await post(server, sample)  # the same document, even in the other mode
    assert again.status_code == 202
    assert {k: again.json()[k] for k in ("call_id", "event_id", "decision")} == \
        {k: body[k] for k in ("call_id", "event_id", "decision")}
    assert (await count(server, CAD_EVENT), await count(server, BOARD),
            await count(server, CALL)) == rows


async def test_later_states_update_the_decision_and_a_closed_status_closes(
        server: Server) -> None:
    created = (await post(server, eido(code="MNTL"))).json()
    assert created["decision"]["destination"] == "call_team", created
    assert created["decision"]["category"] == "mental_health"

    welfare = await post(server, eido(code="WELFARE", internal_text="Check welfare",
                                      at="2026-03-10T14:05:00-04:00"))
    assert welfare.status_code == 202
    assert welfare.json()["call_id"] == created["call_id"]
    assert welfare.json()["decision"]["category"] == "call_for_assistance"

    knife = await post(server, eido(code="WELFARE", internal_text="Check welfare",
                                    notes=["<p>Brother now has a knife.</p>"],
                                    at="2026-03-10T14:10:00-04:00"))
    d = knife.json()["decision"]
    assert (d["destination"], d["basis"], d["matched_rules"][0]) == (
        "police", "exclusion", "weapon")

    violent = await post(server, eido(code="MTLV", internal_text=None,
                                      at="2026-03-10T14:12:00-04:00"))
    call = await call_of(server, created["call_id"])
    assert call["call"]["flags"] == ["violence"]
    assert violent.json()["decision"]["matched_rules"][0] == "violence"

    closed = await post(server, eido(code="MTLV", status=["Closed"],
                                     at="2026-03-10T14:30:00-04:00"))
    assert closed.status_code == 202
    call = await call_of(server, created["call_id"])
    assert call["call"]["closed_at"] == "2026-03-10T18:30:00+00:00"
    assert [e["type"] for e in call["events"]] == ["created", "updated", "updated", "updated",
                                                   "closed"]
    assert call["timeline"][-1]["type"] == "call_closed"
    assert [x["decision"]["destination"] for x in call["decisions"]] == [
        "call_team", "call_team", "police", "police"]


async def test_known_deviations_lenient_warns_strict_refuses_and_keeps(server: Server) -> None:
    array_incident = eido(unique="arr")
    array_incident["incidentComponent"] = [array_incident["incidentComponent"]]
    cases = [
        (shared_json(JCARD), "callComponent[0].lastUpdateTimestamp"),
        (shared_json(SAMPLE_2021), "personComponent[0].lastUpdateTimeStamp"),
        (shared_json(DRAFT_2020), "incidentComponent"),
        (array_incident, "incidentComponent"),
    ]
    decisions = []
    for doc, field in cases:
        strict = await post(server, doc, strict="true")
        assert strict.status_code == 422, strict.text
        assert strict.json()["mode"] == "strict"
        assert field in {e["field"] for e in strict.json()["detail"]}
        assert all(e["reason"] for e in strict.json()["detail"])
        lenient = await post(server, doc)
        assert lenient.status_code == 202, lenient.text
        assert field in {w["field"] for w in lenient.json()["warnings"]}
        decisions.append(lenient.json()["decision"])
    assert await count(server, REJECT) == len(cases)
    # The 2020 draft carries an incident type: CU1, violent civil unrest, goes to police.
    assert (decisions[2]["destination"], decisions[2]["basis"]) == ("police", "exclusion")
    assert decisions[3]["destination"] == "call_team"


async def test_a_location_type_outside_its_registry_warns_leniently_refuses_strictly(
        server: Server) -> None:
    """'Incident' for 'CurrentIncident': routing does not use the type, so one CAD habit
    does not refuse every call; strict mode still refuses it, and keeps the body."""
    doc = eido(unique="loc-type")
    doc["locationComponent"][0]["locationTypeDescriptionRegistryText"] = "Incident"
    where = "locationComponent[0].locationTypeDescriptionRegistryText"
    strict = await post(server, doc, strict="true")
    assert strict.status_code == 422, strict.text
    assert [e["field"] for e in strict.json()["detail"]] == [where]
    assert "'Incident' is not in the EIDO-LocationType registry" in \
        strict.json()["detail"][0]["reason"]
    assert strict.json()["reject_id"] >= 1 and await count(server, CALL) == 0
    lenient = await post(server, doc)
    assert lenient.status_code == 202, lenient.text
    assert [w["field"] for w in lenient.json()["warnings"]] == [where]
    assert lenient.json()["decision"]["destination"] == "call_team"
    call = await call_of(server, lenient.json()["call_id"])
    assert call["call"]["location"]["address"] == "1300 1st Ave N, St. Petersburg, FL, US"
    assert call["call"]["location"]["district"] == "D2"


async def test_strict_setting_applies_unless_the_request_says_otherwise(
        server: Server) -> None:
    server.runtime.settings.eido_strict = True
    # A known deviation: the incident as an array of one (the 2020 draft's shape).
    deviant = eido(unique="setting")
    deviant["incidentComponent"] = [deviant["incidentComponent"]]
    assert (await post(server, deviant)).status_code == 422
    assert (await post(server, deviant, strict="false")).status_code == 202
    bad = await post(server, deviant, strict="maybe")
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "strict"


async def test_third_party_look_alikes_are_refused_with_reasons_and_kept(
        server: Server) -> None:
    for relative in THIRD_PARTY:
        r = await post(server, shared_json(relative))
        assert r.status_code == 422, r.text
        detail = {e["field"]: e["reason"] for e in r.json()["detail"]}
        assert "not a common incident type code" in detail[
            "incidentComponent.incidentTypeCommonRegistryText"]
        assert r.json()["reject_id"] >= 1
    assert await count(server, CALL) == 0 and await count(server, CAD_EVENT) == 0
    async with server.runtime.engine.connect() as conn:
        kept = (await conn.execute(select(REJECT.c.source, REJECT.c.path, REJECT.c.body,
                                          REJECT.c.errors).order_by(REJECT.c.id))).all()
    assert [k.source for k in kept] == ["eido"] * 3
    assert {k.path for k in kept} == {"/v1/cad/eido"}
    assert json.loads(kept[0].body)["messageKind"] == "Alert"
    assert "incidentTypeCommonRegistryText" in kept[0].errors


async def test_not_json_is_refused_and_kept(server: Server) -> None:
    r = await server.client.post("/v1/cad/eido", content=b"{not json",
                                 headers={"content-type": "application/emergency.eido+json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "(body)"
    assert await count(server, REJECT) == 1


async def test_notes_with_script_are_stripped_to_text(server: Server) -> None:
    doc = eido(notes=["<p>Sister is worried &amp; tired.</p><script>fetch('/x')</script>"
                      "<img src=x onerror=\"alert(1)\"><style>*{}</style>"])
    body = (await post(server, doc)).json()
    call = await call_of(server, body["call_id"])
    assert call["call"]["narrative"] == "Sister is worried & tired."


async def test_eido_out_is_valid_and_carries_the_decision(server: Server) -> None:
    body = (await post(server, eido(code="MNTL", priority=8))).json()
    r = await server.client.get(f"/v1/calls/{body['call_id']}/eido")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/emergency.eido+json")
    out = r.json()
    assert schema_errors(out) == [] and schema_errors(out, SCHEMA_021_1B) == []
    assert out["$id"] == eido()["$id"]  # the incident keeps its tracking identifier
    incident = out["incidentComponent"]
    assert incident["incidentTypeCommonRegistryText"] == "MNTL"
    assert incident["incidentCommonPriorityNumber"] == 8
    assert incident["incidentStatusCommonRegistryText"] == ["Active"]
    routing = out["notesComponent"][-1]
    assert routing["$id"] in {n["$ref"] for n in incident["notesReference"]}
    assert '<data value="call_team">' in routing["notesActionComments"]
    assert body["decision"]["policy_version"] in routing["notesActionComments"]

    # A call from the generic contract is an EIDO too.
    generic = (await server.post_event(nature_code="VAG")).json()
    out = (await server.client.get(f"/v1/calls/{generic['call_id']}/eido")).json()
    assert schema_errors(out) == []
    assert out["incidentComponent"]["incidentTypeCommonRegistryText"] == "VAG"
    assert (await server.client.get("/v1/calls/nope/eido")).status_code == 404
