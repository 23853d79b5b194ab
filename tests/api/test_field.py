"""The field workflow behind the board, against a real server and real websockets: police
backup in one tap (a joint decision to the board and to the CAD), safety check-ins that
alert and escalate, follow-ups as their own queue and as calls, and repeat contact."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from service.calls.history import COUNT_CAP
from service.lifecycle.checkins import SweepDue
from service.settings import Settings
from service.store.tables import DECISION
from tests.conftest import WAIT, Server, running_server
from tests.factories import event
from tests.fakes import cad, settings_for, until

pytestmark = pytest.mark.asyncio


async def recv(ws: Any, wait: float = WAIT) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), wait)))


async def recv_type(ws: Any, *types: str, wait: float = WAIT) -> dict[str, Any]:
    """The next message of one of `types`, skipping others."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        msg = await recv(ws, max(deadline - loop.time(), 0.01))
        if msg["type"] in types:
            return msg


async def none_of_before_a_sweep_and_a_new_call(server: Server, ws: Any, types: set[str],
                                                 *, later: timedelta) -> None:
    """A sweep of the moment `later` from now (as if that much time had passed), then a
    new call; nothing of `types` may come on the board before that call's decision. The
    board sends in seq order, so the new call is the positive signal that everything
    before it has arrived (instead of waiting a while for nothing)."""
    await server.runtime.writer.submit(SweepDue(interval=600, now=datetime.now(UTC) + later))
    marker = (await server.post_event(nature_code="BURGLARY")).json()["call_id"]
    while True:
        msg = await recv(ws)
        assert msg["type"] not in types, msg
        if msg["type"] == "decision" and msg["call_id"] == marker:
            return


async def team_call(server: Server, **fields: Any) -> str:
    r = await server.client.post("/v1/cad/events", json=event(**fields))
    assert r.status_code == 202, r.text
    assert r.json()["decision"]["destination"] == "call_team", r.json()
    return str(r.json()["call_id"])


async def status(server: Server, call_id: str, new: str, expect: int = 200,
                 **more: Any) -> dict[str, Any]:
    r = await server.client.post(f"/v1/calls/{call_id}/status", json={"status": new, **more})
    assert r.status_code == expect, r.text
    return dict(r.json())


async def on_scene(server: Server, call_id: str) -> dict[str, Any]:
    await status(server, call_id, "assigned", unit="CALL-2")
    await status(server, call_id, "en_route")
    return await status(server, call_id, "on_scene")


async def get_call(server: Server, call_id: str) -> dict[str, Any]:
    r = await server.client.get(f"/v1/calls/{call_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- police backup ----------------------------------------------------------------------

async def test_backup_makes_a_joint_response_on_the_board_and_at_the_cad(
        database_url: str) -> None:
    async with cad() as the_cad, running_server(settings_for(database_url, the_cad)) as server:
        # A neighbour dispute: the CAD reads its backup reason (not on a behavioural-health
        # call: tests/api/test_redaction.py).
        call_id = await team_call(server, nature_code="CDX", nature_text="Neighbor dispute")
        await on_scene(server, call_id)
        async with server.connect_board() as ws:
            done = await status(server, call_id, "backup_requested",
                                note="Man now holding a bottle, shouting")
            first = await recv(ws)
            msg = await recv(ws)
        assert done["status"] == "backup_requested"
        assert first["type"] == "status" and first["status"] == "backup_requested"
        assert msg["type"] == "decision" and msg["cause"] == "backup"
        decision = msg["decision"]
        assert (decision["destination"], decision["mode"]) == ("joint", "co_response")
        assert decision["backup"]["reason"] == "Man now holding a bottle, shouting"
        assert decision["backup"]["by"] == "test-supervisor"
        assert decision["backup"]["from_destination"] == "call_team"
        assert "requested police backup: Man now holding a bottle" in decision["explanation"]
        assert "test-supervisor" in decision["explanation"]
        assert msg["call"]["team_status"] == "backup_requested"

        view = await get_call(server, call_id)
        assert view["decision"]["destination"] == "joint"
        assert [d["cause"] for d in view["decisions"]] == ["event", "backup"]
        assert view["call"]["backup_reason"] == "Man now holding a bottle, shouting"
        assert view["call"]["backup_requested_at"] is not None

        # To the CAD, through the outbox, signed.
        await until(lambda: any(a.cause == "backup" for a in the_cad.delivered(call_id)),
                    "the backup decision at the CAD")
        sent = next(a for a in the_cad.delivered(call_id) if a.cause == "backup")
        assert sent.signature_ok
        assert sent.body["decision"]["destination"] == "joint"
        assert sent.body["decision"]["backup"]["reason"] == "Man now holding a bottle, shouting"

        # A second request does not stack: no new decision, the first time and reason kept.
        await status(server, call_id, "on_scene")
        await status(server, call_id, "backup_requested")
        again = await get_call(server, call_id)
        assert [d["cause"] for d in again["decisions"]] == ["event", "backup"]
        assert again["call"]["backup_requested_at"] == view["call"]["backup_requested_at"]
        assert again["call"]["backup_reason"] == "Man now holding a bottle, shouting"
        async with server.runtime.engine.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(DECISION)
                                    .where(DECISION.c.call_id == call_id))).scalar_one()
        assert n == 2

        # A later CAD update keeps the joint response.
        r = await server.post_event(incident_id=view["call"]["incident_id"], type="updated",
                                    occurred_at="2026-03-10T14:09:00-04:00", priority=2,
                                    nature_code="CDX", nature_text="Neighbor dispute")
        assert r.status_code == 202, r.text
        assert r.json()["decision"]["destination"] == "joint"
        assert r.json()["decision"]["backup"]["reason"] == "Man now holding a bottle, shouting"


# -- safety check-ins ---------------------------------------------------------------------

async def test_missed_checkin_alerts_then_escalates_checkin_resets_clear_stops(
        database_url: str) -> None:
    settings = Settings(database_url=database_url, checkin_interval_seconds=0.8,
                        field_sweep_seconds=0.1)
    async with running_server(settings) as server:
        call_id = await team_call(server)
        async with server.connect_board() as ws:
            answer = await on_scene(server, call_id)
            assert answer["checkin_due_at"] is not None
            missed = await recv_type(ws, "checkin_missed", "checkin_escalated")
            assert missed["type"] == "checkin_missed", missed
            assert (missed["call_id"], missed["missed"], missed["level"]) == (call_id, 1, "alert")
            assert missed["unit"] == "CALL-2"
            escalated = await recv_type(ws, "checkin_missed", "checkin_escalated")
            assert escalated["type"] == "checkin_escalated", escalated
            assert escalated["missed"] == 2 and escalated["level"] == "escalation"
            assert "supervisor" in escalated["escalate_to"]
            assert (await get_call(server, call_id))["call"]["checkins_missed"] >= 2

            # All is well: misses forgotten, the next one an interval away, alerts start over.
            r = await server.client.post(f"/v1/calls/{call_id}/checkin",
                                         json={"note": "All calm, talking with him"})
            assert r.status_code == 200, r.text
            assert r.json()["checkins_missed"] == 0 and r.json()["missed_before"] >= 2
            ack = await recv_type(ws, "checkin")
            assert ack["call_id"] == call_id and ack["note"] == "All calm, talking with him"
            again = await recv_type(ws, "checkin_missed", "checkin_escalated")
            assert again["type"] == "checkin_missed" and again["missed"] == 1

            # Cleared: no more check-ins, however long after.
            await status(server, call_id, "cleared", disposition="resolved_on_scene")
            await none_of_before_a_sweep_and_a_new_call(
                server, ws, {"checkin_missed", "checkin_escalated"}, later=timedelta(hours=1))
        view = await get_call(server, call_id)
        assert view["call"]["checkin_due_at"] is None
        r = await server.client.post(f"/v1/calls/{call_id}/checkin", json={})
        assert r.status_code == 409, r.text


async def test_a_sweep_alerts_once_per_miss(database_url: str) -> None:
    """Two sweeps of the same moment (two instances, say) alert once: the sweep re-reads the
    due time inside the writer's transaction."""
    settings = Settings(database_url=database_url, checkin_interval_seconds=600,
                        field_sweep_seconds=3600)
    async with running_server(settings) as server:
        call_id = await team_call(server)
        await on_scene(server, call_id)
        later = datetime.now(UTC) + timedelta(seconds=601)
        sweeps = await asyncio.gather(*(server.runtime.writer.submit(
            SweepDue(interval=600, now=later)) for _ in range(3)))
        assert sum(s["checkins_missed"] for s in sweeps) == 1
        view = await get_call(server, call_id)
        assert view["call"]["checkins_missed"] == 1
        assert [m["type"] for m in view["timeline"]].count("checkin_missed") == 1


# -- follow-ups -------------------------------------------------------------------------

async def test_follow_up_scheduled_due_opened_as_a_linked_call_and_completed(
        database_url: str) -> None:
    settings = Settings(database_url=database_url, field_sweep_seconds=0.1)
    async with running_server(settings) as server:
        call_id = await team_call(server, person={"id": "MNI-77", "name": "J. Doe"})
        await on_scene(server, call_id)
        async with server.connect_board() as ws:
            due = datetime.now(UTC) + timedelta(seconds=1)
            cleared = await status(server, call_id, "cleared", disposition="referred_to_services",
                                   outcome="Agreed to see a counselor",
                                   follow_up_at=due.isoformat(),
                                   follow_up_note="Check the counselor visit happened")
            fu = cleared["follow_up"]
            assert fu["status"] == "scheduled" and fu["call_id"] == call_id
            scheduled = await recv_type(ws, "follow_up_scheduled")
            assert scheduled["follow_up"]["id"] == fu["id"]
            r = await server.client.get("/v1/follow-ups", params={"status": "scheduled"})
            assert [f["id"] for f in r.json()["follow_ups"]] == [fu["id"]]
            assert r.json()["follow_ups"][0]["due"] is False
            r = await server.client.get("/v1/follow-ups", params={
                "due_before": datetime.now(UTC).isoformat()})
            assert r.json()["follow_ups"] == []

            announced = await recv_type(ws, "follow_up_due")
            assert announced["follow_up"]["id"] == fu["id"]
            assert announced["follow_up"]["due"] is True
            assert announced["follow_up"]["original"]["outcome"] == "Agreed to see a counselor"
            await none_of_before_a_sweep_and_a_new_call(  # told once
                server, ws, {"follow_up_due"}, later=timedelta(days=2))

            r = await server.client.post(f"/v1/follow-ups/{fu['id']}/open")
            assert r.status_code == 200, r.text
            opened = r.json()
            new_id = opened["call_id"]
            assert opened["follow_up"]["status"] == "opened"
            assert opened["decision"]["matched_rules"] == ["follow-up"]
            assert opened["decision"]["category"] == "follow_up"
            first = await recv_type(ws, "decision")
            assert first["call_id"] == new_id and first["call"]["channel"] == "follow_up"
            # The person's earlier call is the repeat-contact history.
            assert first["history"]["by"] == "person" and first["history"]["count"] == 1
            assert first["history"]["last_outcome"] == "Agreed to see a counselor"
            note = await recv_type(ws, "follow_up_opened")
            assert note["follow_up_call_id"] == new_id

        view = await get_call(server, new_id)
        assert view["call"]["channel"] == "follow_up"
        assert view["call"]["follow_up_of"] == call_id
        assert view["call"]["source"] == "liaison"
        assert "Check the counselor visit happened" in view["call"]["narrative"]
        # Opening again changes nothing.
        r = await server.client.post(f"/v1/follow-ups/{fu['id']}/open")
        assert r.status_code == 200 and r.json()["call_id"] == new_id
        r = await server.client.post(f"/v1/follow-ups/{fu['id']}/complete",
                                     json={"note": "He went twice"})
        assert r.status_code == 200, r.text
        assert r.json()["follow_up"]["status"] == "completed"
        assert r.json()["follow_up"]["completed_at"] is not None
        r = await server.client.post(f"/v1/follow-ups/{fu['id']}/cancel")
        assert r.status_code == 409, r.text
        r = await server.client.get(f"/v1/follow-ups/{fu['id']}")
        assert r.json()["follow_up_call_id"] == new_id and r.json()["status"] == "completed"


async def test_follow_up_in_hours_cancel_and_refusals(server: Server) -> None:
    call_id = await team_call(server)
    await on_scene(server, call_id)
    # Only when clearing, and one way of saying when.
    await status(server, call_id, "backup_requested", expect=422, follow_up_in_hours=24)
    await status(server, call_id, "cleared", expect=422, disposition="resolved_on_scene",
                 follow_up_in_hours=24, follow_up_at=datetime.now(UTC).isoformat())
    done = await status(server, call_id, "cleared", disposition="resolved_on_scene",
                        follow_up_in_hours=48)
    fu = done["follow_up"]
    due = datetime.fromisoformat(fu["due_at"])
    assert timedelta(hours=47.9) < due - datetime.now(UTC) <= timedelta(hours=48)
    r = await server.client.post(f"/v1/follow-ups/{fu['id']}/cancel",
                                 json={"note": "Moved out of the county"})
    assert r.status_code == 200 and r.json()["follow_up"]["status"] == "cancelled"
    assert (await server.client.post(f"/v1/follow-ups/{fu['id']}/open")).status_code == 409
    assert (await server.client.post("/v1/follow-ups/nope/open")).status_code == 404
    r = await server.client.get("/v1/follow-ups", params={"status": "cancelled"})
    assert [f["id"] for f in r.json()["follow_ups"]] == [fu["id"]]


# -- repeat contact ---------------------------------------------------------------------

async def test_repeat_contact_by_person_then_by_address(server: Server) -> None:
    first = await team_call(server, person={"id": "MNI-1"},
                            location={"address": "200 Central Ave"},
                            occurred_at="2026-03-09T10:00:00-04:00")
    await on_scene(server, first)
    await status(server, first, "cleared", disposition="resolved_on_scene",
                 outcome="Calmed down, stayed home")
    async with server.connect_board() as ws:
        # Same person, another address: by person.
        second = await team_call(server, person={"id": "MNI-1"},
                                 location={"address": "9 Elm St"})
        msg = await recv_type(ws, "decision")
        assert msg["call_id"] == second
        assert msg["history"] == {
            "count": 1, "more": False, "by": "person", "last_at": "2026-03-09T14:00:00+00:00",
            "last_outcome": "Calmed down, stayed home",
            "last_disposition": "resolved_on_scene"}
        # Nobody named, the first address spelt differently: by address.
        third = await team_call(server, location={"address": "200  central ave."})
        msg = await recv_type(ws, "decision")
        assert msg["call_id"] == third
        assert msg["history"]["by"] == "address" and msg["history"]["count"] == 1
        # Nothing before: no history.
        fourth = await team_call(server, location={"address": "1 Nowhere Rd"})
        msg = await recv_type(ws, "decision")
        assert msg["call_id"] == fourth and msg.get("history") is None
    assert (await get_call(server, second))["history"]["by"] == "person"
    assert (await get_call(server, third))["history"]["count"] == 1
    assert (await get_call(server, first))["history"] is None
    assert (await get_call(server, fourth))["history"] is None


async def test_calls_in_one_batch_see_each_other(server: Server) -> None:
    bodies = [event(person={"id": "MNI-9"}, occurred_at=f"2026-03-10T1{i}:00:00-04:00")
              for i in range(4)]
    answers = await asyncio.gather(*(server.client.post("/v1/cad/events", json=b)
                                     for b in bodies))
    ids = [a.json()["call_id"] for a in answers]
    # Read back, each counts the calls opened before it.
    counts = [(await get_call(server, i))["history"] for i in ids]
    assert [h["count"] if h else 0 for h in counts] == [0, 1, 2, 3]
    # On the board, each counts the calls Liaison had before it (in its batch or not).
    first_seen = []
    for i in ids:
        msg = next(m for m in (await get_call(server, i))["timeline"] if m["type"] == "decision")
        first_seen.append((msg["seq"], (msg.get("history") or {}).get("count", 0)))
    for seq, count in first_seen:
        assert count == sum(1 for s, _ in first_seen if s < seq), first_seen


async def test_a_busy_address_is_counted_up_to_the_cap(server: Server) -> None:
    # Sent together, so they share writer batches like a CAD's burst would.
    bodies = [event(location={"address": "500 Shelter Way"}) for _ in range(COUNT_CAP + 5)]
    answers = await asyncio.gather(*(server.client.post("/v1/cad/events", json=b)
                                     for b in bodies))
    assert {a.status_code for a in answers} == {202}
    async with server.connect_board() as ws:
        # (the team's units are all taken by now: it goes to police, history and all; the
        # calls that queued for them fall back first, their limits passed by 15:00)
        r = await server.post_event(location={"address": "500 shelter way"},
                                    occurred_at="2026-03-10T15:00:00-04:00")
        newest = r.json()["call_id"]
        msg = await recv_type(ws, "decision")
        while msg["call_id"] != newest:
            assert msg["cause"] == "wait_limit", msg
            msg = await recv_type(ws, "decision")
        assert msg["history"]["count"] == COUNT_CAP and msg["history"]["more"] is True
    assert (await get_call(server, newest))["history"]["count"] == COUNT_CAP
