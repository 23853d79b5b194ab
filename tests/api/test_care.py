"""Warm handoffs to care (issue 16) over a real server on both databases: a handoff
offered to a provider (the warm line among them), its steps timed and by whom, each told
to the board (withheld whole from a dispatcher), bad steps refused, and a handoff not
connected within the confirmation time raising one follow-up (the sweeper)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.access.auth import Role
from service.lifecycle.checkins import SweepDue
from service.settings import Settings
from service.store.tables import AUDIT, utcnow
from tests.conftest import WAIT, Server, running_server

pytestmark = pytest.mark.asyncio


async def recv_type(ws: Any, kind: str, **match: Any) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if msg["type"] == kind and all(msg.get(k) == v for k, v in match.items()):
            return dict(msg)


async def a_call(s: Server) -> str:
    r = await s.post_event()
    assert r.status_code == 202, r.text
    return str(r.json()["call_id"])


async def providers(s: Server) -> None:
    for pid, name, services in (("peer-line", "Peer Warm Line", ["warm_line", "peer_support"]),
                                ("safe-harbor", "Safe Harbor", ["shelter", "housing"])):
        r = await s.client.put(f"/v1/providers/{pid}", json={"name": name,
                                                             "services": services})
        assert r.status_code == 200, r.text


async def offer(s: Server, call_id: str, provider_id: str, status: int = 201,
                **more: Any) -> dict[str, Any]:
    r = await s.client.post(f"/v1/calls/{call_id}/care",
                            json={"provider_id": provider_id, **more})
    assert r.status_code == status, r.text
    return dict(r.json())


async def step(s: Server, referral_id: str, expect: int = 200, **body: Any
               ) -> dict[str, Any]:
    r = await s.client.post(f"/v1/care/{referral_id}/steps", json=body)
    assert r.status_code == expect, r.text
    return dict(r.json())


def ago(hours: float) -> str:
    return (utcnow() - timedelta(hours=hours)).isoformat()


async def test_a_handoff_offered_accepted_and_connected(server: Server) -> None:
    s = server
    await providers(s)
    call_id = await a_call(s)
    async with s.connect_board() as ws, s.connect_board(role=Role.dispatcher) as dws:
        offered = await offer(s, call_id, "peer-line", note="ask for Dana", at=ago(2))
        assert (offered["status"], offered["kind"], offered["provider_name"]) == (
            "offered", "warm_line", "Peer Warm Line")
        assert offered["services"] == ["peer_support", "warm_line"]
        assert offered["connected_at"] is None and offered["follow_up_id"] is None
        msg = await recv_type(ws, "care", event="offered")
        assert msg["call_id"] == call_id and msg["referral"] == offered
        # A dispatcher sees that a handoff moved, not to whom, nor the note.
        seen = await recv_type(dws, "care", event="offered")
        assert seen["referral"] is None and seen["withheld"] == ["care"]
        assert "Peer Warm Line" not in json.dumps(seen) and "Dana" not in json.dumps(seen)

        accepted = await step(s, offered["id"], status="accepted", at=ago(1))
        assert accepted["status"] == "accepted"
        connected = await step(s, offered["id"], status="connected")
        assert connected["status"] == "connected" and connected["connected_at"]
        assert (await recv_type(ws, "care", event="connected"))["referral"] == connected

    assert [x["status"] for x in connected["steps"]] == ["offered", "accepted", "connected"]
    assert all(x["by"] for x in connected["steps"])
    listed = (await s.client.get(f"/v1/calls/{call_id}/care")).json()["referrals"]
    assert listed == [connected]
    # A second handoff of the same call, declined with why.
    other = await offer(s, call_id, "safe-harbor")
    assert other["kind"] == "care"
    declined = await step(s, other["id"], status="declined", reason="no beds tonight")
    assert (declined["status"], declined["declined_reason"]) == ("declined", "no beds tonight")
    listed = (await s.client.get(f"/v1/calls/{call_id}/care")).json()["referrals"]
    assert [x["id"] for x in listed] == [offered["id"], other["id"]]
    async with s.runtime.engine.connect() as conn:
        actions = list((await conn.execute(
            select(AUDIT.c.action).where(AUDIT.c.action.like("care.%"))
            .order_by(AUDIT.c.id))).scalars())
    assert actions == ["care.offer", "care.step", "care.step", "care.offer", "care.step"]


async def test_bad_handoffs_and_steps_are_refused(server: Server) -> None:
    s = server
    await providers(s)
    call_id = await a_call(s)
    assert (await s.client.post("/v1/calls/nope/care", json={"provider_id": "peer-line"})
            ).status_code == 404
    r = await s.client.post(f"/v1/calls/{call_id}/care", json={"provider_id": "nobody"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "provider_id"
    future = (utcnow() + timedelta(hours=1)).isoformat()
    r = await s.client.post(f"/v1/calls/{call_id}/care",
                            json={"provider_id": "peer-line", "at": future})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "at"
    assert (await s.client.delete("/v1/providers/safe-harbor")).status_code == 200
    r = await s.client.post(f"/v1/calls/{call_id}/care", json={"provider_id": "safe-harbor"})
    assert r.status_code == 422, "a retired provider takes no handoff"

    h = await offer(s, call_id, "peer-line", at=ago(3))
    r = await s.client.post(f"/v1/care/{h['id']}/steps", json={"status": "declined"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reason"
    r = await s.client.post(f"/v1/care/{h['id']}/steps",
                            json={"status": "accepted", "by": "someone else"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "by"
    r = await s.client.post(f"/v1/care/{h['id']}/steps", json={"status": "offered"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "status"
    r = await s.client.post(f"/v1/care/{h['id']}/steps",
                            json={"status": "accepted", "at": ago(4)})
    assert r.status_code == 422 and "before the handoff's last step" in r.text
    r = await s.client.post(f"/v1/care/{h['id']}/steps",
                            json={"status": "accepted", "at": future})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "at"
    await step(s, h["id"], status="connected")
    r = await s.client.post(f"/v1/care/{h['id']}/steps", json={"status": "declined",
                                                              "reason": "changed mind"})
    assert r.status_code == 409 and r.json()["current"] == "connected"
    assert (await s.client.post("/v1/care/nope/steps", json={"status": "accepted"})
            ).status_code == 404
    # Nothing refused left a trace: one handoff, its two steps.
    [kept] = (await s.client.get(f"/v1/calls/{call_id}/care")).json()["referrals"]
    assert [x["status"] for x in kept["steps"]] == ["offered", "connected"]


async def follow_ups(s: Server, call_id: str) -> list[dict[str, Any]]:
    r = await s.client.get("/v1/follow-ups", params={"call_id": call_id})
    assert r.status_code == 200, r.text
    return list(r.json()["follow_ups"])


async def test_a_handoff_not_connected_in_time_raises_one_follow_up(database_url: str
                                                                    ) -> None:
    # The sweeper is left to its hourly round here; each sweep is submitted by the test,
    # after the steps it must see (the next test has the sweeper running by itself).
    settings = Settings(database_url=database_url, field_sweep_seconds=3600)
    async with running_server(settings) as s:
        await providers(s)
        confirmed, late, recent = [await a_call(s) for _ in range(3)]
        a = await offer(s, confirmed, "peer-line", at=ago(49))
        await step(s, a["id"], status="connected", at=ago(47))
        b = await offer(s, late, "safe-harbor", at=ago(49))
        await step(s, b["id"], status="accepted", at=ago(48))
        await offer(s, recent, "safe-harbor", at=ago(1))
        async with s.connect_board() as ws:
            # Sweeps of the same moment (several instances, say) raise it once.
            sweeps = await asyncio.gather(*(s.runtime.writer.submit(
                SweepDue(interval=900, care_confirm_hours=48)) for _ in range(3)))
            assert sum(x["care_overdue"] for x in sweeps) == 1
            msg = await recv_type(ws, "care", event="overdue")
            assert msg["call_id"] == late and msg["referral"]["id"] == b["id"]
            again = await s.runtime.writer.submit(SweepDue(interval=900,
                                                           care_confirm_hours=48))
            assert again["care_overdue"] == 0
        [raised] = await follow_ups(s, late)
        assert raised["created_by"] == "care" and "Safe Harbor" in raised["note"]
        assert raised["id"] == msg["referral"]["follow_up_id"]
        assert await follow_ups(s, confirmed) == [] and await follow_ups(s, recent) == []
        [listed] = (await s.client.get(f"/v1/calls/{late}/care")).json()["referrals"]
        assert listed["follow_up_id"] == raised["id"]
        # Connected after all: recorded; the follow-up stays for the team to close.
        await step(s, b["id"], status="connected")
        assert len(await follow_ups(s, late)) == 1


async def test_the_sweeper_raises_it_by_itself(database_url: str) -> None:
    settings = Settings(database_url=database_url, field_sweep_seconds=0.2,
                        care_confirm_hours=24)
    async with running_server(settings) as s:
        await providers(s)
        call_id = await a_call(s)
        async with s.connect_board() as ws:
            h = await offer(s, call_id, "peer-line", at=ago(25))
            msg = await recv_type(ws, "follow_up_scheduled", call_id=call_id)
            assert "within 24 h" in msg["follow_up"]["note"]
            told = await recv_type(ws, "care", event="overdue")
            assert told["referral"]["id"] == h["id"]
        assert [f["created_by"] for f in await follow_ups(s, call_id)] == ["care"]


async def test_the_referring_officer_sees_that_care_was_reached_not_the_details(
        server: Server) -> None:
    s = server
    await providers(s)
    async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as officer:
        r = await officer.post("/v1/session", json={
            "username": s.creds.users[Role.officer], "password": s.creds.password})
        assert r.status_code == 200, r.text
        r = await officer.post("/v1/referrals", json={
            "who": "Dana", "where": "Williams Park", "what": "Asked for a bed",
            "concern": "homelessness", "consent": True})
        assert r.status_code == 202, r.text
        call_id = r.json()["call_id"]

        async def seen() -> dict[str, Any]:
            got = await officer.get("/v1/referrals")
            assert got.status_code == 200, got.text
            [ref] = got.json()["referrals"]
            assert ref["call_id"] == call_id
            return dict(ref)

        assert (await seen())["care"] == {"connected": False, "services": []}
        shelter = await offer(s, call_id, "safe-harbor", note="zq-note-shelter")
        await step(s, shelter["id"], status="declined", reason="zq-reason-full")
        assert (await seen())["care"] == {"connected": False, "services": []}
        warm = await offer(s, call_id, "peer-line", note="zq-note-warm")
        await step(s, warm["id"], status="connected")
        ref = await seen()
        assert ref["care"] == {"connected": True, "services": ["peer_support", "warm_line"]}
        text = json.dumps(ref)
        for secret in ("Safe Harbor", "Peer Warm Line", "safe-harbor", "peer-line",
                       "zq-note", "zq-reason"):
            assert secret not in text, secret
        # Nor may the officer read the handoffs themselves.
        assert (await officer.get(f"/v1/calls/{call_id}/care")).status_code == 403
