"""The CAD endpoint and the call routes, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import func, select

from service.store.tables import BOARD, CAD_EVENT, CALL, REJECT
from tests.conftest import Server
from tests.factories import event

pytestmark = pytest.mark.asyncio


async def count(server: Server, table) -> int:  # type: ignore[no-untyped-def]
    async with server.runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_event_in_explained_decision_out(server: Server) -> None:
    r = await server.post_event(nature_code="MNTL")
    assert r.status_code == 202, r.text
    body = r.json()
    d = body["decision"]
    assert d["destination"] == "call_team"
    assert d["mode"] == "call_with_police_standby"
    assert d["category"] == "mental_health"
    assert d["policy_version"] == "st-petersburg-call@1"
    assert d["matched_rules"] == ["mental-health"]
    assert "mental-health" in d["explanation"] and "phase 2" in d["explanation"]
    assert d["program"]["within_hours"] is True
    call = (await server.client.get(f"/v1/calls/{body['call_id']}")).json()
    assert call["decision"] == d
    assert call["call"]["nature_code"] == "MNTL"
    assert [e["event_id"] for e in call["events"]] == [body["event_id"]]
    assert [m["type"] for m in call["timeline"]] == ["decision"]


async def test_retry_returns_first_answer_and_stores_nothing_new(server: Server) -> None:
    ev = event()
    first = await server.client.post("/v1/cad/events", json=ev)
    rows = (await count(server, CAD_EVENT), await count(server, BOARD), await count(server, CALL))
    again = await server.client.post("/v1/cad/events", json=ev)
    assert again.status_code == 202
    assert again.json() == first.json()
    # The same id with other content is no retry: refused (tests/api/test_idempotency.py).
    changed = await server.client.post("/v1/cad/events", json={**ev, "nature_code": "ALRBA"})
    assert changed.status_code == 409 and changed.json()["event_id"] == ev["event_id"]
    assert (await count(server, CAD_EVENT), await count(server, BOARD),
            await count(server, CALL)) == rows


async def test_concurrent_retries_store_one_event(server: Server) -> None:
    ev = event()
    answers = await asyncio.gather(*(server.client.post("/v1/cad/events", json=ev)
                                     for _ in range(10)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1
    assert await count(server, CAD_EVENT) == 1
    assert await count(server, BOARD) == 1


async def test_bad_input_names_each_field_and_is_kept(server: Server) -> None:
    bad = event(occurred_at="2026-03-10T14:00:00", channel="pager", flags=["weapon", "bees"],
                location={"lat": 123.0}, nature_cod="MNTL")
    r = await server.client.post("/v1/cad/events", json=bad)
    assert r.status_code == 422
    fields = {d["field"]: d["reason"] for d in r.json()["detail"]}
    assert set(fields) == {"occurred_at", "channel", "flags[1]", "location.lat", "nature_cod"}
    assert "timezone" in fields["occurred_at"]
    assert await count(server, CAD_EVENT) == 0 and await count(server, CALL) == 0
    async with server.runtime.engine.connect() as conn:
        kept = (await conn.execute(select(REJECT.c.body, REJECT.c.errors))).one()
    assert json.loads(kept.body)["nature_cod"] == "MNTL"
    assert "location.lat" in kept.errors
    assert r.json()["reject_id"] >= 1


async def test_malformed_json_and_missing_nature_code(server: Server) -> None:
    r = await server.client.post("/v1/cad/events", content=b"{not json",
                                 headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"
    ev = event()
    del ev["nature_code"]
    r = await server.client.post("/v1/cad/events", json=ev)
    assert r.status_code == 422
    assert r.json()["detail"] == [{"field": "nature_code", "type": "value_error",
                                   "reason": "a created event must carry the call's nature code"}]
    assert await count(server, REJECT) == 2


async def test_weapon_reported_later_sends_the_call_to_police(server: Server) -> None:
    ev = event()
    created = (await server.client.post("/v1/cad/events", json=ev)).json()
    assert created["decision"]["destination"] == "call_team"
    upd = (await server.post_event(incident_id=ev["incident_id"], type="updated",
                                   occurred_at="2026-03-10T14:05:00-04:00",
                                   flags=["weapon"])).json()
    assert upd["call_id"] == created["call_id"]
    assert upd["decision"]["destination"] == "police"
    assert upd["decision"]["basis"] == "exclusion"
    assert upd["decision"]["matched_rules"][0] == "weapon"
    call = (await server.client.get(f"/v1/calls/{created['call_id']}")).json()
    assert [m["type"] for m in call["timeline"]] == ["decision", "decision", "call_updated"]
    assert [d["decision"]["destination"] for d in call["decisions"]] == ["call_team", "police"]


async def test_out_of_order_events_resolve_by_cad_time(server: Server) -> None:
    inc = "INC-ORDER"
    base = event(incident_id=inc)
    await server.client.post("/v1/cad/events", json=base)
    # The weapon report (14:10) arrives before a harmless earlier update (14:05);
    # updates carry only what changed.
    weapon = await server.client.post("/v1/cad/events", json={
        "event_id": "w", "incident_id": inc, "type": "updated", "flags": ["weapon"],
        "occurred_at": "2026-03-10T14:10:00-04:00"})
    older = await server.client.post("/v1/cad/events", json={
        "event_id": "o", "incident_id": inc, "type": "updated", "flags": [],
        "narrative": "Calm now.", "occurred_at": "2026-03-10T14:05:00-04:00"})
    assert weapon.json()["decision"]["destination"] == "police"
    # The older update must not undo the newer weapon report.
    assert older.json()["decision"]["destination"] == "police"
    call = (await server.client.get(f"/v1/calls/{older.json()['call_id']}")).json()
    assert call["call"]["flags"] == ["weapon"]
    assert call["call"]["narrative"] == "Calm now."


async def test_closed_event_closes_the_call_and_frees_the_unit(server: Server) -> None:
    units = server.runtime.policy.compiled.policy.program.units
    incidents = [event() for _ in range(units)]
    for ev in incidents:
        r = await server.client.post("/v1/cad/events", json=ev)
        assert r.json()["decision"]["destination"] == "call_team"
    # Priority 1: it may not wait for a unit (the shipped policy's queue).
    full = (await server.post_event(priority=1)).json()["decision"]
    assert full["destination"] == "police" and full["not_served_reason"] == "units_busy"
    assert full["eligible"] is True and "busy" in full["explanation"]
    closed = await server.post_event(incident_id=incidents[0]["incident_id"], type="closed",
                                     occurred_at="2026-03-10T15:00:00-04:00")
    call = (await server.client.get(f"/v1/calls/{closed.json()['call_id']}")).json()
    assert call["call"]["closed_at"] is not None
    assert call["timeline"][-1]["type"] == "call_closed"
    assert (await server.post_event()).json()["decision"]["destination"] == "call_team"


async def test_off_hours_call_is_eligible_but_not_served(server: Server) -> None:
    d = (await server.post_event(occurred_at="2026-03-11T07:15:00+00:00")).json()["decision"]
    # 03:15 in New York.
    assert d["destination"] == "police" and d["eligible"] is True
    assert d["not_served_reason"] == "off_hours"
    # The shipped policy's programs: the decision names the CALL field team and its hours.
    assert d["program"]["id"] == "call"
    assert ("Program 'call' (CALL field team) cannot take it now: outside its hours (daily "
            "08:00-24:00; call at Wed 03:15 local)") in d["explanation"]


async def test_unmatched_call_goes_to_police_visibly(server: Server) -> None:
    d = (await server.post_event(nature_code="ZZZ", nature_text="Unknown code",
                                 narrative=None)).json()["decision"]
    assert d["destination"] == "police" and d["basis"] == "no_rule"
    assert "No rule matched" in d["explanation"]


async def test_team_status_follows_allowed_transitions(server: Server) -> None:
    call_id = (await server.post_event()).json()["call_id"]
    path = f"/v1/calls/{call_id}/status"
    wrong = await server.client.post(path, json={"status": "on_scene"})
    assert wrong.status_code == 409
    assert wrong.json()["allowed"] == ["assigned", "cleared"]
    for status in ("assigned", "en_route", "on_scene", "backup_requested"):
        r = await server.client.post(path, json={"status": status, "unit": "CALL-2"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    no_dispo = await server.client.post(path, json={"status": "cleared"})
    assert no_dispo.status_code == 409 and "disposition" in no_dispo.json()["message"]
    bad_dispo = await server.client.post(path, json={"status": "cleared", "disposition": "x"})
    assert bad_dispo.status_code == 422
    done = await server.client.post(path, json={"status": "cleared",
                                                "disposition": "referred_to_services"})
    assert done.status_code == 200 and done.json()["allowed_next"] == []
    after = await server.client.post(path, json={"status": "assigned"})
    assert after.status_code == 409 and after.json()["allowed"] == []
    call = (await server.client.get(f"/v1/calls/{call_id}")).json()
    assert call["call"]["team_status"] == "cleared"
    assert call["call"]["disposition"] == "referred_to_services"
    statuses = [m["status"] for m in call["timeline"] if m["type"] == "status"]
    assert statuses == ["assigned", "en_route", "on_scene", "backup_requested", "cleared"]


async def test_status_on_a_police_call_is_refused(server: Server) -> None:
    call_id = (await server.post_event(nature_code="ALRBA", nature_text="Alarm",
                                       narrative=None)).json()["call_id"]
    r = await server.client.post(f"/v1/calls/{call_id}/status", json={"status": "assigned"})
    assert r.status_code == 409 and r.json()["destination"] == "police"
    missing = await server.client.post("/v1/calls/nope/status", json={"status": "assigned"})
    assert missing.status_code == 404


async def test_override_needs_a_reason_and_keeps_it(server: Server) -> None:
    call_id = (await server.post_event()).json()["call_id"]
    path = f"/v1/calls/{call_id}/override"
    no_reason = await server.client.post(path, json={"destination": "police"})
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"][0]["field"] == "reason"
    r = await server.client.post(path, json={"destination": "police", "by": "disp-7",
                                             "reason": "Caller known to carry a firearm"})
    assert r.status_code == 200
    d = r.json()
    assert d["destination"] == "police" and d["not_served_reason"] == "override"
    assert d["override"]["from_destination"] == "call_team"
    assert d["override"]["reason"] == "Caller known to carry a firearm"
    # The record names who is logged in, whatever the body says.
    assert "test-supervisor" in d["explanation"] and "disp-7" not in d["explanation"]
    call = (await server.client.get(f"/v1/calls/{call_id}")).json()
    assert call["decision"]["override"]["by"] == "test-supervisor"
    assert [x["cause"] for x in call["decisions"]] == ["event", "override"]


async def test_health_reports_policy_and_database(server: Server) -> None:
    r = await server.client.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["policy"]["version"] == "st-petersburg-call@1"


async def test_health_is_503_when_the_database_is_gone(server: Server) -> None:
    engine = server.runtime.engine
    if engine.dialect.name == "sqlite":
        # Point the health check at a database that cannot be opened.
        from service.store.db import create_engine

        server.runtime.engine = create_engine("sqlite+aiosqlite:////nonexistent/dir/x.db")
    else:
        from service.store.db import create_engine

        server.runtime.engine = create_engine(
            "postgresql+asyncpg://nobody:wrong@127.0.0.1:1/none")
    try:
        r = await server.client.get("/v1/health")
        assert r.status_code == 503
        assert "database unreachable" in r.json()["problems"][0]
    finally:
        await server.runtime.engine.dispose()
        server.runtime.engine = engine


async def test_new_calls_ids_are_time_ordered(server: Server) -> None:
    """A new call's id is a UUIDv7 (service/store/ids.py): the calls of a burst, one after
    another, have ids in the order they came, so their index entries sit side by side."""
    ids = []
    for _ in range(3):
        r = await server.post_event()
        assert r.status_code == 202, r.text
        ids.append(r.json()["call_id"])
        await asyncio.sleep(0.002)
    assert [uuid.UUID(i).version for i in ids] == [7, 7, 7]
    assert ids == sorted(ids)
