"""Response programs on the live path (issue 13): a real server deciding CAD events under
a policy of `programs:`, on SQLite and PostgreSQL. The decisions' pure core is tested in
tests/routing/test_programs.py; here, that the service gives it what it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import update

from service.settings import Settings
from service.store.tables import CALL
from tests.conftest import Server, running_server
from tests.factories import DOWNTOWN, IN_DOWNTOWN, OUT_OF_TOWN, programs_doc

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
    full = await decided(server)
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
