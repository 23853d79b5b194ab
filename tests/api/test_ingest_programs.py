"""Response programs on the live path (issue 13): a real server deciding CAD events under
a policy of `programs:`, on SQLite and PostgreSQL. The decisions' pure core is tested in
tests/routing/test_programs.py; here, that the service gives it what it needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import update

from service.lifecycle.ingest import ChangeStatus, IngestEvent
from service.lifecycle.team import StatusChange
from service.settings import Settings
from service.store.tables import CALL
from tests.conftest import Server, running_server
from tests.factories import (
    DOWNTOWN,
    IN_DOWNTOWN,
    OUT_OF_TOWN,
    event,
    ingest_event,
    programs_doc,
)

pytestmark = pytest.mark.asyncio

ALL_DAY = {"daily": ["00:00-24:00"]}


def field_program(pid: str, *, units: int, **changes: Any) -> dict[str, Any]:
    """A field program taking mental-health calls round the clock (hours are not what
    these tests are about)."""
    return {"id": pid, "name": f"Team {pid}", "mode": "field",
            "categories": ["mental_health", "homelessness", "welfare"],
            "hours": ALL_DAY, "units": units, **changes}


@asynccontextmanager
async def serving(database_url: str, folder: Path, programs: list[dict[str, Any]]
                  ) -> AsyncIterator[Server]:
    """A real server whose policy (a file, as `liaison serve --policy`) has `programs`
    (field programs: the crisis line's rule and category are left out)."""
    doc = programs_doc(programs=programs)
    doc["rules"] = [r for r in doc["rules"] if r["category"] != "crisis_line"]
    doc["categories"].remove("crisis_line")
    path = folder / "programs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    async with running_server(Settings(database_url=database_url, policy=str(path))) as s:
        yield s


def located(where: dict[str, float], district: str = "D2") -> dict[str, Any]:
    return {"location": {"address": "1 Main St", "district": district, **where}}


async def decided(server: Server, **fields: Any) -> dict[str, Any]:
    """The decision the CAD is answered with, checked against the call as stored."""
    r = await server.post_event(nature_code="MNTL", **fields)
    assert r.status_code == 202, r.text
    body = r.json()
    call = (await server.client.get(f"/v1/calls/{body['call_id']}")).json()
    assert call["decision"] == body["decision"]
    decision: dict[str, Any] = body["decision"]
    return decision


async def test_a_call_outside_the_only_programs_area_goes_to_police(
        database_url: str, tmp_path: Path) -> None:
    """The event's coordinates reach the decision: inside the polygon the team takes the
    call; outside it police respond, `outside_area`, and the explanation says why."""
    area = {"polygons": DOWNTOWN}
    async with serving(database_url, tmp_path, [field_program("field", units=2,
                                                              area=area)]) as s:
        inside = await decided(s, **located(IN_DOWNTOWN))
        assert inside["destination"] == "call_team", inside["explanation"]
        assert inside["program"]["id"] == "field" and inside["not_served_reason"] is None
        outside = await decided(s, **located(OUT_OF_TOWN))
        assert outside["destination"] == "police"
        assert outside["eligible"] is True
        assert outside["not_served_reason"] == "outside_area"
        assert "outside its service area" in outside["explanation"]


# --- test and training calls hold no live unit ---------------------------------------------

async def fill_with(server: Server, purposes: list[str]) -> None:
    """Calls of these purposes, one per unit of the team: each goes to the team."""
    for purpose in purposes:
        d = await decided(server, purpose=purpose)
        assert d["destination"] == "call_team", d["explanation"]
        assert d["needs_field_unit"] is False
        assert "holds no unit" in d["explanation"]


async def test_training_and_test_calls_never_push_a_live_call_to_police(
        server: Server) -> None:
    """Every unit of the shipped policy's team 'taken' by training and test calls: a live
    eligible call still goes to the team, with every unit free."""
    units = server.runtime.policy.compiled.policy.program.units
    await fill_with(server, ["training"] * (units - 1) + ["test"])
    live = await decided(server)
    assert live["destination"] == "call_team", live["explanation"]
    assert live["program"]["units_busy"] == 0
    assert f"{units} of {units} units free" in live["explanation"]
    # Live calls still fill the units, and a training call is still served when they do.
    for _ in range(units - 1):
        assert (await decided(server))["destination"] == "call_team"
    full = await decided(server, priority=1)  # may not wait (the shipped policy's queue)
    assert (full["destination"], full["not_served_reason"]) == ("police", "units_busy")
    await fill_with(server, ["training"])


async def test_training_calls_stored_as_holding_a_unit_are_not_counted(
        server: Server) -> None:
    """A training call an earlier version stored as holding a unit (its facts had no
    purpose then) is not counted either: the count itself leaves out test and training
    calls."""
    units = server.runtime.policy.compiled.policy.program.units
    await fill_with(server, ["training"] * units)
    async with server.runtime.engine.begin() as conn:
        done = await conn.execute(update(CALL).where(CALL.c.purpose == "training")
                                  .values(holds_unit=True))
        assert done.rowcount == units
    live = await decided(server)
    assert live["destination"] == "call_team", live["explanation"]
    assert live["program"]["units_busy"] == 0


async def test_training_calls_hold_no_unit_of_a_program(database_url: str,
                                                        tmp_path: Path) -> None:
    """In a policy of programs too: the only unit of the only program is not taken by a
    training call."""
    async with serving(database_url, tmp_path, [field_program("field", units=1)]) as s:
        await fill_with(s, ["training"])
        live = await decided(s)
        assert live["destination"] == "call_team", live["explanation"]
        assert (live["program"]["id"], live["program"]["units_busy"]) == ("field", 0)
        full = await decided(s)
        assert (full["destination"], full["not_served_reason"]) == ("police", "units_busy")


# --- each program's own units ----------------------------------------------------------------

def two_teams() -> list[dict[str, Any]]:
    """A downtown team of one unit, tried first, and a citywide team of one unit."""
    return [field_program("downtown", units=1, area={"polygons": DOWNTOWN}),
            field_program("citywide", units=1)]


async def test_the_second_program_takes_a_call_when_the_firsts_units_are_full(
        database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, two_teams()) as s:
        first = await decided(s, **located(IN_DOWNTOWN))
        assert (first["destination"], first["program"]["id"]) == ("call_team", "downtown")
        second = await decided(s, **located(IN_DOWNTOWN))
        assert second["destination"] == "call_team", second["explanation"]
        assert second["program"]["id"] == "citywide"
        assert (second["program"]["units_total"], second["program"]["units_busy"]) == (1, 0)
        assert ("Program 'downtown' (Team downtown) cannot take it now: all 1 of its units "
                "are busy.") in second["explanation"]
        full = await decided(s, **located(IN_DOWNTOWN))
        assert (full["destination"], full["not_served_reason"]) == ("police", "units_busy")


async def test_each_program_counts_the_units_its_own_calls_hold(
        database_url: str, tmp_path: Path) -> None:
    """A call outside downtown holds the citywide unit, not the downtown one: a downtown
    call then goes to the downtown team; when its call closes, its unit is free again."""
    async with serving(database_url, tmp_path, two_teams()) as s:
        away = await decided(s, **located(OUT_OF_TOWN))
        assert (away["destination"], away["program"]["id"]) == ("call_team", "citywide")
        incident = "INC-DOWNTOWN-1"
        here = await decided(s, incident_id=incident, **located(IN_DOWNTOWN))
        assert (here["destination"], here["program"]["id"]) == ("call_team", "downtown"), \
            here["explanation"]
        assert here["program"]["units_busy"] == 0
        full = await decided(s, **located(IN_DOWNTOWN))
        assert (full["destination"], full["not_served_reason"]) == ("police", "units_busy")
        closed = await s.client.post("/v1/cad/events", json=event(
            incident_id=incident, type="closed", occurred_at="2026-03-10T14:30:00-04:00"))
        assert closed.status_code == 202, closed.text
        freed = await decided(s, **located(IN_DOWNTOWN))
        assert (freed["destination"], freed["program"]["id"]) == ("call_team", "downtown")


async def test_a_call_without_a_wait_limit_is_not_queued(database_url: str,
                                                        tmp_path: Path) -> None:
    """The service keeps queues now (tests/api/test_queue.py), but only calls with a wait
    limit wait: a mental-health call, its program's one unit busy and a limit only for
    homelessness, goes to police at once."""
    queue = [{"category": "homelessness", "max_wait_minutes": 20}]
    async with serving(database_url, tmp_path, [field_program("field", units=1,
                                                              queue=queue)]) as s:
        assert (await decided(s))["program"]["id"] == "field"
        full = await decided(s)
        assert (full["destination"], full["not_served_reason"]) == ("police", "units_busy")
        assert full["queued"] is None and full["deferred_until"] is None
        r = await s.post_event(nature_code="VAG")
        assert r.status_code == 202, r.text
        assert r.json()["decision"]["queued"] is not None, r.json()["decision"]


async def test_a_program_unit_the_team_clears_takes_the_next_call(database_url: str,
                                                                  tmp_path: Path) -> None:
    """The team clears the downtown call (a status change, not a CAD close): the next
    downtown call goes to the downtown team again; the citywide call still holds its unit."""
    async with serving(database_url, tmp_path, two_teams()) as s:
        r = await s.post_event(nature_code="MNTL", **located(IN_DOWNTOWN))
        held = r.json()
        assert held["decision"]["program"]["id"] == "downtown"
        assert (await decided(s, **located(IN_DOWNTOWN)))["program"]["id"] == "citywide"
        cleared = await s.client.post(f"/v1/calls/{held['call_id']}/status", json={
            "status": "cleared", "disposition": "resolved_on_scene"})
        assert cleared.status_code == 200, cleared.text
        again = await decided(s, **located(IN_DOWNTOWN))
        assert (again["destination"], again["program"]["id"]) == ("call_team", "downtown")
        full = await decided(s, **located(IN_DOWNTOWN))
        assert (full["destination"], full["not_served_reason"]) == ("police", "units_busy")


async def test_calls_in_one_writer_batch_count_each_others_program_units(
        database_url: str, tmp_path: Path) -> None:
    """Commands the writer takes in one batch, before any is stored, still count each
    other's units per program: two downtown calls take one unit of each program; a clear
    and a new call in one batch, the cleared unit is the new call's."""
    async with serving(database_url, tmp_path, two_teams()) as s:
        compiled = s.runtime.policy.compiled

        def ingest() -> IngestEvent:
            return ingest_event(compiled, nature_code="MNTL", **located(IN_DOWNTOWN))

        # Submitted in one go, so the writer takes them in one batch, in this order.
        both = await asyncio.gather(*(s.runtime.writer.submit(ingest()) for _ in range(2)))
        assert [d["decision"]["program"]["id"] for d in both] == ["downtown", "citywide"]
        downtown = both[0]["call_id"]
        cleared, new = await asyncio.gather(
            s.runtime.writer.submit(ChangeStatus(downtown, StatusChange(
                status="cleared", disposition="cancelled"))),
            s.runtime.writer.submit(ingest()))
        assert cleared["status"] == "cleared"
        assert new["decision"]["destination"] == "call_team"
        assert (new["decision"]["program"]["id"],
                new["decision"]["program"]["units_busy"]) == ("downtown", 0)
