"""The unit recommendation through a real uvicorn, on SQLite and PostgreSQL: units on the
roster with positions from an AVL feed, a policy whose mental-health calls need a
youth-trained unit, the recommendation in the call's view and at its own route (and to
whom), the assignment keeping what was recommended and whether it was taken, and the
figures that compare."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from service.access.auth import Role
from service.settings import Settings
from service.store.tables import ASSIGNMENT
from tests.conftest import Server, running_server
from tests.factories import event, shipped_doc

pytestmark = pytest.mark.asyncio
DAY = {"from": "2026-03-10", "to": "2026-03-11"}
CALL_AT = {"lat": 27.7700, "lon": -82.6500}


def north(km: float) -> dict[str, float]:
    """A point `km` due north of the calls."""
    return {"lat": CALL_AT["lat"] + km / 111.195, "lon": CALL_AT["lon"]}


def youth_policy(folder: Path) -> str:
    """The shipped policy, on shift all day, its field team's mental-health calls asking
    for a youth-trained unit."""
    doc = shipped_doc()
    for program in doc["programs"]:
        if "hours" in program:
            program["hours"] = {"daily": ["00:00-24:00"]}
    doc["programs"][0]["requires"] = {"mental_health": ["youth_trained"]}
    doc.pop("tests", None)
    path = folder / "youth.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


def as_role(s: Server, role: Role) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=s.base_url, timeout=30, headers=s.creds.bearer(role))


@asynccontextmanager
async def roster(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    """A server with three units of the field team on duty: CALL-1 (peer) 0.5 km from the
    calls, CALL-2 (youth-trained) 2 km, CALL-3 (youth-trained) 6 km, placed by AVL now."""
    settings = Settings(database_url=database_url, policy=youth_policy(tmp_path))
    async with running_server(settings) as s:
        for uid, caps in (("CALL-1", ["peer"]), ("CALL-2", ["youth_trained", "peer"]),
                          ("CALL-3", ["youth_trained"])):
            r = await s.client.put(f"/v1/units/{uid}", json={
                "program_id": "call", "call_sign": uid.replace("-", " "),
                "capabilities": caps, "on_duty": True})
            assert r.status_code in (200, 201), r.text
        now = datetime.now(UTC).isoformat()
        r = await s.client.post("/v1/units/positions", json={"positions": [
            {"unit_id": uid, **north(km), "accuracy_m": 10, "at": now}
            for uid, km in (("CALL-1", 0.5), ("CALL-2", 2.0), ("CALL-3", 6.0))]})
        assert r.status_code in (200, 202), r.text
        yield s


async def team_call(s: Server, **fields: Any) -> str:
    r = await s.client.post("/v1/cad/events", json=event(location={
        "address": "1300 1st Ave N", "district": "D2", **CALL_AT}, **fields))
    assert r.status_code == 202, r.text
    assert r.json()["decision"]["destination"] == "call_team", r.json()
    return str(r.json()["call_id"])


async def recommendation(s: Server, call_id: str) -> dict[str, Any]:
    r = await s.client.get(f"/v1/calls/{call_id}/recommendation")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_the_nearest_able_unit_is_recommended_and_the_assignment_keeps_it(
        database_url: str, tmp_path: Path) -> None:
    async with roster(database_url, tmp_path) as s:
        call_id = await team_call(s)  # mental health: needs youth_trained
        got = (await recommendation(s, call_id))["recommendation"]
        assert (got["unit_id"], got["basis"], got["eta_minutes"]) == ("CALL-2", "distance", 4)
        assert got["distance_km"] == pytest.approx(2.0, abs=0.01)
        assert got["needs"] == ["youth_trained"]
        assert got["reason"] == ("CALL-2: 2.0 km, about 4 min, youth_trained; CALL-1 is "
                                 "nearer but lacks youth_trained")
        assert got["passed_over"] == [{"unit_id": "CALL-1", "why": "lacks youth_trained"}]
        # The same in the call's view, for those who see the board.
        async with as_role(s, Role.dispatcher) as dispatcher:
            view = (await dispatcher.get(f"/v1/calls/{call_id}")).json()
            assert view["recommendation"] == got and view["assignment"] is None
        # A homelessness call asks nothing: the nearest available unit.
        other = await team_call(s, nature_code="VAG", nature_text="Vagrant sleeping",
                                narrative=None)
        assert (await recommendation(s, other))["recommendation"]["unit_id"] == "CALL-1"

        # One tap: the recommended unit, taken; the answer and the record say so.
        r = await s.client.post(f"/v1/calls/{call_id}/status",
                                json={"status": "assigned", "unit": "CALL-2"})
        assert r.status_code == 200, r.text
        kept = r.json()["assignment"]
        assert {k: kept[k] for k in ("assigned_unit", "recommended_unit", "eta_minutes",
                                     "basis", "taken")} == {
            "assigned_unit": "CALL-2", "recommended_unit": "CALL-2", "eta_minutes": 4,
            "basis": "distance", "taken": True}
        assert kept["reason"] == got["reason"]
        engine = s.runtime.engine
        async with engine.connect() as conn:
            row = (await conn.execute(select(ASSIGNMENT).where(
                ASSIGNMENT.c.call_id == call_id))).mappings().one()
        assert (row["recommended_unit"], row["assigned_unit"], row["taken"]) == (
            "CALL-2", "CALL-2", True)
        assert row["distance_km"] == pytest.approx(2.0, abs=0.01)
        # Assigned: no recommendation any more, the assignment instead.
        after = await recommendation(s, call_id)
        assert after["recommendation"] is None and after["assignment"]["taken"] is True

        # CALL-2 is on that call now: the next youth call gets CALL-3, CALL-2 passed over.
        second = await team_call(s)
        got = (await recommendation(s, second))["recommendation"]
        assert got["unit_id"] == "CALL-3"
        assert got["reason"] == ("CALL-3: 6.0 km, about 12 min, youth_trained; CALL-1 is "
                                 "nearer but lacks youth_trained; CALL-2 is nearer but "
                                 "assigned to another call")
        # The team sends CALL-1 anyway: kept as not taken.
        r = await s.client.post(f"/v1/calls/{second}/status",
                                json={"status": "assigned", "unit": "CALL-1"})
        assert r.json()["assignment"]["taken"] is False
        assert r.json()["assignment"]["recommended_unit"] == "CALL-3"

        # No youth-trained unit left free (CALL-3 signs off): none, and why.
        r = await s.client.post("/v1/units/CALL-3/duty", json={"on_duty": False})
        assert r.status_code == 200, r.text
        third = await team_call(s)
        got = (await recommendation(s, third))["recommendation"]
        assert got["unit_id"] is None and got["basis"] is None
        assert got["reason"] == ("No unit available with youth_trained: CALL-1 assigned to "
                                 "another call; CALL-2 assigned to another call; CALL-3 "
                                 "off duty")


async def test_who_sees_the_recommendation(database_url: str, tmp_path: Path) -> None:
    async with roster(database_url, tmp_path) as s:
        call_id = await team_call(s)
        for role in (Role.call_team, Role.supervisor, Role.dispatcher):
            async with as_role(s, role) as c:
                r = await c.get(f"/v1/calls/{call_id}/recommendation")
                assert r.status_code == 200 and r.json()["recommendation"]["unit_id"] \
                    == "CALL-2", (role, r.text)
                assert (await c.get(f"/v1/calls/{call_id}")).json()["recommendation"][
                    "unit_id"] == "CALL-2"
        for role in (Role.cad, Role.officer, Role.analyst):
            async with as_role(s, role) as c:
                assert (await c.get(f"/v1/calls/{call_id}/recommendation")).status_code \
                    == 403
        # The CAD reads the call back (its source): no units in it.
        async with as_role(s, Role.cad) as c:
            view = (await c.get(f"/v1/calls/{call_id}")).json()
            assert "recommendation" not in view and "assignment" not in view
        async with as_role(s, Role.dispatcher) as c:
            assert (await c.get("/v1/calls/nope/recommendation")).status_code == 404
        # A police call has none.
        police = (await s.client.post("/v1/cad/events", json=event(
            nature_code="BURGLARY", nature_text="Burglary in progress"))).json()["call_id"]
        assert (await recommendation(s, police))["recommendation"] is None


async def test_figures_compare_the_recommendation_with_what_happened(
        database_url: str, tmp_path: Path) -> None:
    """Two youth calls: A assigned to the recommended CALL-2 (2 km, about 4 min), on
    scene 7 minutes later (3 more than estimated); B assigned to CALL-1 though CALL-3 was
    recommended (6 km, about 12 min). All: 2 assignments, 2 recommended, 1 taken (0.5);
    by basis: distance 2. (A's `at` is before it was decided, by our clock: its time to
    assign is left out, B's counts.)"""
    async with roster(database_url, tmp_path) as s:
        a = await team_call(s)
        b = await team_call(s)
        # The team's device says when (`at`): assigned 9 minutes ago, on scene 2 ago.
        now = datetime.now(UTC)
        post = s.client.post
        assert (await post(f"/v1/calls/{a}/status", json={
            "status": "assigned", "unit": "CALL-2",
            "at": (now - timedelta(minutes=9)).isoformat()})).status_code == 200
        assert (await post(f"/v1/calls/{a}/status", json={
            "status": "on_scene", "at": (now - timedelta(minutes=2)).isoformat()}
        )).status_code == 200
        assert (await post(f"/v1/calls/{b}/status", json={
            "status": "assigned", "unit": "CALL-1"})).status_code == 200

        doc = (await s.client.get("/v1/metrics", params=DAY)).json()
        rows = {r["group"]: r for r in doc["recommendations"]}
        assert set(rows) == {"all", "distance"}
        every = rows["all"]
        assert (every["assignments"], every["recommended"], every["taken"],
                every["taken_share"]) == (2, 2, 1, 0.5)
        assert every["distance_p50_km"] == pytest.approx(4.0, abs=0.02)  # 2 and 6 km
        assert every["eta_p50_minutes"] == 8.0  # 4 and 12
        assert every["to_scene_p50_minutes"] == 7.0
        assert every["eta_error_p50_minutes"] == 3.0
        assert every["to_assign_p50_minutes"] is not None
        by = doc["recommendations_by_assigner"]
        assert sum(r["assignments"] for r in by) == 2

        # Analysts: the aggregate, as CSV too; not who assigned.
        async with as_role(s, Role.analyst) as analyst:
            doc = (await analyst.get("/v1/metrics", params=DAY)).json()
            assert doc["recommendations"][0]["taken"] == 1
            assert doc["recommendations_by_assigner"] is None
            res = await analyst.get("/v1/metrics/recommendations.csv", params=DAY)
            assert res.status_code == 200
            got = {r["group"]: r for r in csv.DictReader(io.StringIO(res.text))}
            assert (got["all"]["taken"], got["all"]["taken_share"]) == ("1", "0.5")
            res = await analyst.get("/v1/metrics/recommendations_by_assigner.csv",
                                    params=DAY)
            assert res.status_code == 403
            page = await analyst.get("/metrics", params=DAY)
            assert "Unit recommendation" in page.text and "By who assigned" not in page.text


async def test_without_the_calls_location_the_least_loaded_unit(database_url: str,
                                                                 tmp_path: Path) -> None:
    """A homelessness call without coordinates asks nothing: the least loaded available
    unit, by id among equals. CALL-1 takes one call and clears it: it has one call today,
    the others none, so the next goes to CALL-2 and CALL-1 is not named (it has more)."""
    async with roster(database_url, tmp_path) as s:
        no_place = {"address": "Williams Park", "district": "D2"}

        async def vag() -> str:
            r = await s.client.post("/v1/cad/events", json=event(
                nature_code="VAG", nature_text="Vagrant sleeping", narrative=None,
                location=no_place))
            assert r.json()["decision"]["destination"] == "call_team", r.text
            return str(r.json()["call_id"])

        first = await vag()
        got = (await recommendation(s, first))["recommendation"]
        assert (got["unit_id"], got["basis"]) == ("CALL-1", "load")
        assert got["reason"] == ("CALL-1: least loaded (0 calls today), the call's location "
                                 "unknown")
        for step in ({"status": "assigned", "unit": "CALL-1"},
                     {"status": "cleared", "disposition": "resolved_on_scene"}):
            r = await s.client.post(f"/v1/calls/{first}/status", json=step)
            assert r.status_code == 200, r.text
        got = (await recommendation(s, await vag()))["recommendation"]
        assert (got["unit_id"], got["basis"]) == ("CALL-2", "load")
        assert got["passed_over"] == []
