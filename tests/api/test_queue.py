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
import yaml
from sqlalchemy import select

from service.settings import Settings
from service.store.tables import CALL, DECISION
from tests.api.test_ingest_programs import field_program
from tests.conftest import Server, running_server
from tests.factories import event, programs_doc

pytestmark = pytest.mark.asyncio

TUESDAY = "2026-03-10T{}:00-04:00"  # inside the round-the-clock programs' hours
MH_20 = [{"category": "mental_health", "priority": {"min": 3}, "max_wait_minutes": 20}]


def at(hhmm: str) -> str:
    return TUESDAY.format(hhmm)


def policy_file(folder: Path, programs: list[dict[str, Any]], **changes: Any) -> str:
    doc = programs_doc(programs=programs, **changes)
    doc["rules"] = [r for r in doc["rules"] if r["category"] != "crisis_line"]
    doc["categories"].remove("crisis_line")
    path = folder / "programs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


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


async def test_a_one_team_policy_decides_as_before(server: Server) -> None:
    """The shipped policy (one team, no queue settings): full units go to police."""
    units = server.runtime.policy.compiled.policy.program.units
    for _ in range(units):
        assert (await post(server))["decision"]["destination"] == "call_team"
    full = (await post(server))["decision"]
    assert (full["destination"], full["not_served_reason"]) == ("police", "units_busy")
    assert full["queued"] is None


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
