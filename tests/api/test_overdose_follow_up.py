"""Follow-up after an overdose (issue 16) through the real routes on both databases: the
shipped policy's `medical` exclusion still sends an overdose to police/EMS and schedules
the team's visit a day later (created by `policy`, naming the exclusion), once per call,
with the CAD's word on consent; other medical calls get none; the figures count them."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from service.access.auth import Role
from service.store.tables import FOLLOW_UP, utcnow
from tests.conftest import WAIT, Server

pytestmark = pytest.mark.asyncio

AT = "2026-03-10T14:00:00-04:00"


async def recv_type(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if msg["type"] == kind:
            return dict(msg)


async def follow_ups_of(s: Server, call_id: str) -> list[dict[str, Any]]:
    r = await s.client.get("/v1/follow-ups", params={"call_id": call_id})
    assert r.status_code == 200, r.text
    return list(r.json()["follow_ups"])


async def post(s: Server, **fields: Any) -> dict[str, Any]:
    r = await s.post_event(occurred_at=AT, **fields)
    assert r.status_code == 202, r.text
    return dict(r.json())


async def test_an_overdose_goes_to_ems_and_the_team_visits_a_day_later(server: Server) -> None:
    s = server
    async with s.connect_board() as ws, s.connect_board(role=Role.dispatcher) as dispatcher:
        od = await post(s, incident_id="OD-1", nature_code="OD", nature_text="Overdose",
                        narrative="Friend found him unresponsive", follow_up_consent=True)
        d = od["decision"]
        assert (d["destination"], d["basis"], d["matched_rules"][0]) == (
            "police", "exclusion", "medical")
        msg = await recv_type(ws, "follow_up_scheduled")
        # A dispatcher's board is told of the visit, not of the person's consent.
        told = await recv_type(dispatcher, "follow_up_scheduled")
        assert told["follow_up"]["id"] == msg["follow_up"]["id"]
        assert told["follow_up"]["consent"] is None and "person" in told["withheld"]
    fu = msg["follow_up"]
    assert msg["call_id"] == od["call_id"] == fu["call_id"]
    assert (fu["created_by"], fu["exclusion"], fu["program_id"], fu["consent"],
            fu["status"]) == ("policy", "medical", "call", True, "scheduled")
    assert datetime.fromisoformat(fu["due_at"]) == datetime.fromisoformat(AT) + timedelta(
        hours=24)
    assert "'medical' exclusion" in fu["note"]
    assert [f["id"] for f in await follow_ups_of(s, od["call_id"])] == [fu["id"]]

    # Later events of the call schedule nothing more; the CAD's word on consent is kept.
    await post(s, incident_id="OD-1", type="updated", narrative="Transported",
               event_id="od-1-2")
    await post(s, incident_id="OD-1", type="updated", follow_up_consent=False,
               event_id="od-1-3")
    [again] = await follow_ups_of(s, od["call_id"])
    assert again["id"] == fu["id"] and again["consent"] is False

    # An overdose whose CAD says nothing of consent: scheduled, consent unknown.
    quiet = await post(s, nature_code="OD", nature_text="Overdose")
    [q] = await follow_ups_of(s, quiet["call_id"])
    assert q["consent"] is None
    # Another medical emergency, and a team call: no follow-up from the policy.
    cardiac = await post(s, nature_code="CARDIAC", nature_text="Cardiac arrest")
    assert cardiac["decision"]["basis"] == "exclusion"
    team = await post(s)
    assert team["decision"]["destination"] == "call_team"
    assert await follow_ups_of(s, cardiac["call_id"]) == []
    assert await follow_ups_of(s, team["call_id"]) == []
    async with s.runtime.engine.connect() as conn:
        by = (await conn.execute(select(FOLLOW_UP.c.call_id).where(
            FOLLOW_UP.c.created_by == "policy"))).scalars().all()
    assert sorted(by) == sorted([od["call_id"], quiet["call_id"]])


async def test_the_figures_count_follow_ups_after_an_overdose(server: Server) -> None:
    s = server
    od = await post(s, nature_code="OD", nature_text="Overdose", follow_up_consent=True)
    other = await post(s, nature_code="OD", nature_text="Overdose")
    [fu] = await follow_ups_of(s, od["call_id"])
    [fu2] = await follow_ups_of(s, other["call_id"])
    r = await s.client.post(f"/v1/follow-ups/{fu['id']}/complete", json={"note": "visited"})
    assert r.status_code == 200, r.text
    r = await s.client.post(f"/v1/follow-ups/{fu2['id']}/cancel", json={})
    assert r.status_code == 200, r.text
    today = utcnow().date()
    span = {"from": (today - timedelta(days=2)).isoformat(),
            "to": (today + timedelta(days=2)).isoformat()}
    figures = (await s.client.get("/v1/metrics", params=span)).json()["follow_ups"]
    assert figures == {"scheduled": 2, "completed": 1, "after_exclusion_scheduled": 2,
                       "after_exclusion_completed": 1}
    csv = (await s.client.get("/v1/metrics/follow_ups.csv", params=span)).text
    assert csv.splitlines() == [
        "scheduled,completed,after_exclusion_scheduled,after_exclusion_completed", "2,1,2,1"]
    page = (await s.client.get("/metrics", params=span)).text
    assert "Follow-ups after an overdose" in page
