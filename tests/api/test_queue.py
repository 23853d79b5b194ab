"""Calls waiting for a response program in the live service (issue 13,
QUEUE-CONTRACT): queued when a program's units are full, deferred to its next shift,
taken when a unit frees, fallen back at the wait limit, on SQLite and PostgreSQL, through
the real routes of a real uvicorn. The pure core is tested in tests/routing/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from service.access.auth import Role
from service.settings import Settings
from service.store.tables import CALL, DECISION, OUTBOX
from tests.api.test_field import recv_type
from tests.api.test_ingest_programs import field_program
from tests.conftest import Server, running_server
from tests.factories import event, programs_doc, write_policy

pytestmark = pytest.mark.asyncio

TUESDAY = "2026-03-10T{}:00-04:00"  # inside the round-the-clock programs' hours
MH_20 = [{"category": "mental_health", "priority": {"min": 3}, "max_wait_minutes": 20}]


def at(hhmm: str) -> str:
    return TUESDAY.format(hhmm)


def policy_file(folder: Path, programs: list[dict[str, Any]], **changes: Any) -> str:
    doc = programs_doc(programs=programs, **changes)
    doc["rules"] = [r for r in doc["rules"] if r["category"] != "crisis_line"]
    doc["categories"].remove("crisis_line")
    return write_policy(folder / "programs.yaml", doc)


@asynccontextmanager
async def serving(database_url: str, folder: Path, programs: list[dict[str, Any]],
                  **settings: Any) -> AsyncIterator[Server]:
    """A real server on a policy of `programs` (a file, as `liaison serve --policy`)."""
    async with running_server(Settings(database_url=database_url,
                                       policy=policy_file(folder, programs),
                                       **settings)) as s:
        yield s


def one_unit(**changes: Any) -> list[dict[str, Any]]:
    """One field team of one unit, mental-health calls of priority 3+ waiting 20 min."""
    return [field_program("field", units=1, queue=MH_20, **changes)]


async def post(server: Server, **fields: Any) -> dict[str, Any]:
    r = await server.post_event(**{"nature_code": "MNTL", **fields})
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


async def call_row(server: Server, call_id: str) -> dict[str, Any]:
    async with server.runtime.engine.connect() as conn:
        row = (await conn.execute(select(CALL).where(CALL.c.id == call_id))).mappings().one()
    return dict(row)


async def causes(server: Server, call_id: str) -> list[str]:
    async with server.runtime.engine.connect() as conn:
        rows = await conn.execute(select(DECISION.c.cause).where(DECISION.c.call_id == call_id)
                                  .order_by(DECISION.c.id))
    return list(rows.scalars())


async def clear(server: Server, call_id: str, **more: Any) -> dict[str, Any]:
    r = await server.client.post(f"/v1/calls/{call_id}/status", json={
        "status": "cleared", "disposition": "resolved_on_scene", **more})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# --- queued at once -------------------------------------------------------------------------

async def test_a_call_is_queued_when_the_programs_units_are_full(database_url: str,
                                                                 tmp_path: Path) -> None:
    """The CAD's answer says so at once: queued since the call's time, its wait limit,
    its position; it holds no unit; the stored call waits for the program until its
    deadline. A second waits behind it."""
    async with serving(database_url, tmp_path, one_unit()) as s:
        held = await post(s, occurred_at=at("14:00"))
        assert held["decision"]["program"]["id"] == "field"
        first = await post(s, occurred_at=at("14:02"))
        d = first["decision"]
        assert (d["destination"], d["program"]["id"]) == ("call_team", "field"), d
        assert d["queued"] == {"since": "2026-03-10T14:02:00-04:00", "wait_limit_s": 1200,
                               "position": 1}
        assert d["needs_field_unit"] is False and d["not_served_reason"] is None
        assert "Queued for program 'field'" in d["explanation"]
        row = await call_row(s, first["call_id"])
        assert row["wait_program"] == "field" and row["holds_unit"] is False
        assert row["wait_deadline"] is not None
        assert (row["wait_deadline"] - row["wait_since"]).total_seconds() == 1200
        second = (await post(s, occurred_at=at("14:03")))["decision"]
        assert second["queued"]["position"] == 2


async def test_test_and_training_calls_are_never_queued(database_url: str,
                                                        tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, one_unit()) as s:
        await post(s, occurred_at=at("14:00"))
        for purpose in ("test", "training"):
            d = (await post(s, occurred_at=at("14:01"), purpose=purpose))["decision"]
            assert d["queued"] is None and d["deferred_until"] is None, d
            assert d["destination"] == "call_team" and d["needs_field_unit"] is False
        live = (await post(s, occurred_at=at("14:02")))["decision"]
        assert live["queued"]["position"] == 1  # the test and training calls wait for none


async def test_an_update_making_a_queued_call_urgent_falls_back(database_url: str,
                                                                tmp_path: Path) -> None:
    """Priority 1 has no wait limit: the queued call may wait no longer, police respond
    (`wait_exceeded`), recorded with cause `urgent`, and it waits no more."""
    async with serving(database_url, tmp_path, one_unit()) as s:
        await post(s, occurred_at=at("14:00"))
        incident = "INC-URGENT"
        queued = await post(s, incident_id=incident, occurred_at=at("14:01"))
        assert queued["decision"]["queued"] is not None
        r = await s.post_event(incident_id=incident, type="updated", priority=1,
                               occurred_at=at("14:04"))
        assert r.status_code == 202, r.text
        d = r.json()["decision"]
        assert (d["destination"], d["not_served_reason"]) == ("police", "wait_exceeded"), d
        assert "an update made it urgent" in d["explanation"]
        assert await causes(s, queued["call_id"]) == ["event", "urgent"]
        assert (await call_row(s, queued["call_id"]))["wait_program"] is None


async def test_the_cad_closing_a_waiting_call_takes_it_out_of_the_queue(
        database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, one_unit()) as s:
        await post(s, occurred_at=at("14:00"))
        incident = "INC-GONE"
        queued = await post(s, incident_id=incident, occurred_at=at("14:01"))
        assert queued["decision"]["queued"]["position"] == 1
        r = await s.client.post("/v1/cad/events", json=event(
            incident_id=incident, type="closed", occurred_at=at("14:05")))
        assert r.status_code == 202, r.text
        assert (await call_row(s, queued["call_id"]))["wait_program"] is None
        after = (await post(s, occurred_at=at("14:06")))["decision"]
        assert after["queued"]["position"] == 1  # the closed call no longer counts


# --- a unit frees: the queue's next call takes it ------------------------------------------

async def test_a_unit_clearing_takes_the_most_urgent_oldest_queued_call(
        database_url: str, tmp_path: Path) -> None:
    """The team clears its call: the oldest of the most urgent queued calls is taken at
    once (cause `unit_free`), to the board and (webhook) the CAD's outbox; the next clear
    takes the next one."""
    async with serving(database_url, tmp_path, one_unit(), webhook_url="http://127.0.0.1:9/",
                       webhook_secret="s" * 32) as s:
        held = await post(s, occurred_at=at("14:00"))
        later = await post(s, occurred_at=at("14:01"), priority=4)
        oldest = await post(s, occurred_at=at("14:02"), priority=3)
        newer = await post(s, occurred_at=at("14:03"), priority=3)
        assert [c["decision"]["queued"]["position"] for c in (later, oldest, newer)] \
            == [1, 2, 3]  # each as it came; offered by urgency
        async with s.connect_board() as ws:
            await clear(s, held["call_id"], at="2026-03-10T18:10:00Z")
            taken = await recv_type(ws, "decision")
        assert (taken["call_id"], taken["cause"]) == (oldest["call_id"], "unit_free")
        d = taken["decision"]
        assert d["queued"] is None and d["needs_field_unit"] is True
        assert (d["destination"], d["program"]["id"], d["program"]["units_busy"]) \
            == ("call_team", "field", 1)
        assert "a unit came free at Tue 14:10 and takes it" in d["explanation"]
        assert d["decided_at"] == "2026-03-10T18:10:00Z"
        row = await call_row(s, oldest["call_id"])
        assert row["holds_unit"] is True and row["wait_program"] is None
        assert await causes(s, oldest["call_id"]) == ["event", "unit_free"]
        async with s.runtime.engine.connect() as conn:
            sent = (await conn.execute(select(OUTBOX.c.cause).where(
                OUTBOX.c.call_id == oldest["call_id"]).order_by(OUTBOX.c.id))).scalars()
            assert list(sent) == ["event", "unit_free"]
        await clear(s, oldest["call_id"])
        assert await causes(s, newer["call_id"]) == ["event", "unit_free"]
        assert await causes(s, later["call_id"]) == ["event"]


async def test_a_status_change_cannot_happen_in_the_future(database_url: str,
                                                           tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, one_unit()) as s:
        held = await post(s, occurred_at=at("14:00"))
        r = await s.client.post(f"/v1/calls/{held['call_id']}/status", json={
            "status": "cleared", "disposition": "resolved_on_scene",
            "at": "2999-01-01T00:00:00Z"})
        assert r.status_code == 422, r.text
        [detail] = r.json()["detail"]
        assert detail["field"] == "at" and "future" in detail["reason"], detail


async def test_the_cad_closing_a_unit_holding_call_offers_its_unit(
        database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, one_unit()) as s:
        incident = "INC-HELD"
        await post(s, incident_id=incident, occurred_at=at("14:00"))
        queued = await post(s, occurred_at=at("14:01"))
        r = await s.client.post("/v1/cad/events", json=event(
            incident_id=incident, type="closed", occurred_at=at("14:05")))
        assert r.status_code == 202, r.text
        assert await causes(s, queued["call_id"]) == ["event", "unit_free"]
        assert (await call_row(s, queued["call_id"]))["holds_unit"] is True


async def test_an_override_sending_a_held_call_to_police_offers_its_unit(
        database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, one_unit()) as s:
        held = await post(s, occurred_at=at("14:00"))
        queued = await post(s, occurred_at=at("14:01"))
        r = await s.client.post(f"/v1/calls/{held['call_id']}/override", json={
            "destination": "police", "reason": "caller has a weapon"})
        assert r.status_code == 200, r.text
        assert await causes(s, queued["call_id"]) == ["event", "unit_free"]


# --- timers -----------------------------------------------------------------------------------

async def test_the_sweeper_falls_back_a_call_whose_wait_limit_passed(
        database_url: str, tmp_path: Path) -> None:
    """A 3-second wait limit and no unit clearing: the sweeper, on the queue's clock (the
    last CAD time plus the time since), falls it back: police, `wait_exceeded`, cause
    `wait_limit`, on the board."""
    quick = [{"category": "mental_health", "max_wait_minutes": 0.05}]
    async with serving(database_url, tmp_path,
                       [field_program("field", units=1, queue=quick)],
                       field_sweep_seconds=0.2) as s:
        await post(s, occurred_at=at("14:00"))
        async with s.connect_board() as ws:
            queued = await post(s, occurred_at=at("14:00"))
            assert queued["decision"]["queued"]["wait_limit_s"] == 3
            first = await recv_type(ws, "decision")
            assert first["cause"] == "event"
            fell = await recv_type(ws, "decision")
        assert (fell["call_id"], fell["cause"]) == (queued["call_id"], "wait_limit")
        d = fell["decision"]
        assert (d["destination"], d["not_served_reason"]) == ("police", "wait_exceeded")
        assert "its wait limit (3 s) passed" in d["explanation"]
        assert (await call_row(s, queued["call_id"]))["wait_program"] is None


async def test_a_replay_of_old_cad_times_does_not_fall_back_early(
        database_url: str, tmp_path: Path) -> None:
    """Calls of last March, sweeps every 0.2 s: the queue's clock is the feed's, so a
    20-minute wait does not pass by the wall clock; it passes when the feed gets there."""
    async with serving(database_url, tmp_path, one_unit(), field_sweep_seconds=0.2,
                       checkin_interval_seconds=1.0) as s:
        held = await post(s, occurred_at=at("14:00"))
        queued = await post(s, occurred_at=at("14:01"))
        async with s.connect_board() as ws:
            for step in ("assigned", "on_scene"):
                r = await s.client.post(f"/v1/calls/{held['call_id']}/status",
                                        json={"status": step, "unit": "CALL-1"})
                assert r.status_code == 200, r.text
            # A sweep after the call was queued (it also settled the queue).
            await recv_type(ws, "checkin_missed")
        assert (await call_row(s, queued["call_id"]))["wait_program"] == "field"
        assert await causes(s, queued["call_id"]) == ["event"]
        await post(s, occurred_at=at("14:21"), purpose="training")
        assert await causes(s, queued["call_id"]) == ["event", "wait_limit"]


async def test_a_referral_at_three_is_deferred_then_taken_at_shift_start(
        database_url: str, tmp_path: Path) -> None:
    """An officer's referral at 03:00, the team on from 08:00: scheduled for 08:00, held
    by no unit; once the feed passes 08:00 the free unit takes it (cause `shift_start`)."""
    programs = [field_program("field", units=1, hours={"daily": ["08:00-20:00"]},
                              deferrable=["officer_referral"])]
    async with serving(database_url, tmp_path, programs) as s:
        referral = await post(s, occurred_at=at("03:00"), channel="officer_referral",
                              nature_code="VAG")
        d = referral["decision"]
        assert d["deferred_until"] == "2026-03-10T08:00:00-04:00", d
        assert (d["destination"], d["needs_field_unit"]) == ("call_team", False)
        row = await call_row(s, referral["call_id"])
        assert (row["wait_program"], row["wait_deadline"]) == ("field", None)
        await post(s, occurred_at=at("07:59"), purpose="training")
        assert await causes(s, referral["call_id"]) == ["event"]
        late = await post(s, occurred_at=at("08:05"))  # settles up to 08:05 first
        assert await causes(s, referral["call_id"]) == ["event", "shift_start"]
        taken = await call_row(s, referral["call_id"])
        assert taken["holds_unit"] is True and taken["wait_program"] is None
        assert "a unit takes it at Tue 08:00" in taken["decision"]
        # The referral holds the only unit now: the 08:05 call finds it busy.
        assert late["decision"]["program"]["units_busy"] == 1


async def test_units_freed_off_duty_take_the_waiting_referral_at_the_next_shift(
        database_url: str, tmp_path: Path) -> None:
    """Shifts 08:00-10:00 and 13:00-14:00. A call at 09:55 holds the only unit; a referral
    at 09:58 finds it busy and waits for the next free unit; the unit is still out at
    13:00 and clears at 14:55, off duty, so nothing is offered then. The next shift's start
    (08:00 the next day) gives the free unit the referral, once the feed passes it."""
    programs = [field_program("field", units=1,
                              hours={"daily": ["08:00-10:00", "13:00-14:00"]},
                              deferrable=["officer_referral"])]
    async with serving(database_url, tmp_path, programs) as s:
        held = await post(s, occurred_at=at("09:55"))
        referral = await post(s, occurred_at=at("09:58"), channel="officer_referral",
                              nature_code="VAG")
        assert referral["decision"]["deferred_until"] == at("09:58")
        await clear(s, held["call_id"], at=at("14:55"))
        assert await causes(s, referral["call_id"]) == ["event"]
        await post(s, occurred_at="2026-03-11T07:30:00-04:00", purpose="training")
        assert await causes(s, referral["call_id"]) == ["event"]
        await post(s, occurred_at="2026-03-11T08:10:00-04:00", purpose="training")
        assert await causes(s, referral["call_id"]) == ["event", "shift_start"]
        taken = await call_row(s, referral["call_id"])
        assert taken["holds_unit"] is True and taken["wait_program"] is None
        assert "a unit takes it at Wed 08:00" in taken["decision"]


# --- several instances on one PostgreSQL ------------------------------------------------------

async def test_two_instances_offer_a_freed_unit_once(postgres_url: str,
                                                     tmp_path: Path) -> None:
    """Two instances on one database, both sweeping every 0.1 s: a unit cleared through
    one is offered to one queued call, once; the other still waits."""
    settings = Settings(database_url=postgres_url, policy=policy_file(tmp_path, one_unit()),
                        field_sweep_seconds=0.1, checkin_interval_seconds=1.0)
    async with running_server(settings) as a, \
            running_server(settings, creds=a.creds) as b:
        held = await post(a, occurred_at=at("14:00"))
        first = await post(b, occurred_at=at("14:01"))
        second = await post(a, occurred_at=at("14:02"))
        assert second["decision"]["queued"]["position"] == 2
        async with b.connect_board() as ws:
            await clear(a, held["call_id"])
            for step in ("assigned", "on_scene"):
                r = await b.client.post(f"/v1/calls/{first['call_id']}/status",
                                        json={"status": step, "unit": "CALL-1"})
                assert r.status_code == 200, r.text
            # Sweeps of both instances ran after the clear: two check-ins missed.
            await recv_type(ws, "checkin_missed")
            await recv_type(ws, "checkin_escalated")
        async with a.runtime.engine.connect() as conn:
            offered = (await conn.execute(select(func.count()).select_from(DECISION).where(
                DECISION.c.cause == "unit_free"))).scalar_one()
        assert offered == 1
        assert await causes(a, first["call_id"]) == ["event", "unit_free"]
        assert (await call_row(a, second["call_id"]))["wait_program"] == "field"


# --- reading the queue ------------------------------------------------------------------------

async def test_the_programs_and_the_queue_as_the_board_reads_them(database_url: str,
                                                                   tmp_path: Path) -> None:
    """GET /v1/programs counts each program's units and waiting calls; GET /v1/queue lists
    the waiting calls in the order a free unit takes them, on the queue's clock (the
    feed's: last March), each a call summary narrowed for the reader."""
    programs = [field_program("field", units=1, queue=MH_20,
                              hours={"daily": ["08:00-20:00"]},
                              deferrable=["officer_referral"])]
    async with serving(database_url, tmp_path, programs) as s:
        await post(s, occurred_at=at("14:00"))
        later = await post(s, occurred_at=at("14:01"), priority=4)
        urgent = await post(s, occurred_at=at("14:02"), priority=3)
        referral = await post(s, occurred_at=at("14:03"), channel="officer_referral",
                              nature_code="VAG")
        # On duty with the unit out: the referral waits for the next free unit, no limit.
        assert referral["decision"]["deferred_until"] == at("14:03")

        r = await s.client.get("/v1/programs")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["at"].startswith("2026-03-10T18:03")  # the feed's clock, not the wall's
        [field] = body["programs"]
        assert field == {"id": "field", "name": "Team field", "mode": "field",
                         "hours": "daily 08:00-20:00", "on_duty": True, "units_total": 1,
                         "units_from": "policy", "units_busy": 1, "queued": 2, "deferred": 1,
                         "next_shift_start": "2026-03-11T08:00:00-04:00"}

        for role in (Role.supervisor, Role.dispatcher, Role.call_team):
            r = await s.client.get("/v1/queue", headers=s.creds.bearer(role))
            assert r.status_code == 200, (role, r.text)
            calls = r.json()["calls"]
            # Most urgent first (priority 3 before 4), the oldest among equals; the
            # referral (priority 3, waiting since 14:03) before the priority-4 call.
            assert [c["call_id"] for c in calls] == [urgent["call_id"], referral["call_id"],
                                                     later["call_id"]]
            first, deferred, second = calls
            assert (first["kind"], first["position"], first["program"]) == (
                "queued", 1, {"id": "field", "name": "Team field"})
            assert first["since"] == "2026-03-10T18:02:00+00:00"
            assert first["deadline"] == "2026-03-10T18:22:00+00:00"
            assert 0 < first["seconds_left"] <= 1140
            assert first["call"]["incident_id"] and "narrative" not in first["call"]
            assert second["position"] == 3
            assert (deferred["kind"], deferred["deadline"], deferred["seconds_left"],
                    deferred["position"]) == ("deferred", None, None, 2)
            assert first["call"]["withheld"] == []  # a summary carries nothing to withhold

        r = await s.client.get("/v1/queue", headers=s.creds.bearer(Role.officer))
        assert r.status_code == 403, r.text
