"""Units' utilisation (issue 14) through a real uvicorn, on SQLite and PostgreSQL: duty
spells kept as units sign on and off (migration 0024), each unit's hours on duty, busy
and utilisation in the figures (JSON, CSV, page), and a rostered program's available
unit-hours from its units' duty instead of the policy's count."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from service.access.auth import Role
from service.settings import Settings
from service.store.db import create_engine
from service.store.tables import UNIT_DUTY
from tests.api.test_recommend import CALL_AT, as_role, youth_policy
from tests.conftest import Server, running_server
from tests.factories import event

pytestmark = pytest.mark.asyncio
H = timedelta(hours=1)


async def duty(s: Server, uid: str, on: bool, at: datetime | None = None,
               status: int = 200) -> dict[str, Any]:
    body: dict[str, Any] = {"on_duty": on}
    if at is not None:
        body["at"] = at.isoformat()
    r = await s.client.post(f"/v1/units/{uid}/duty", json=body)
    assert r.status_code == status, r.text
    return dict(r.json())


async def status(s: Server, call_id: str, **body: Any) -> None:
    if isinstance(body.get("at"), datetime):
        body["at"] = body["at"].isoformat()
    r = await s.client.post(f"/v1/calls/{call_id}/status", json=body)
    assert r.status_code == 200, r.text


async def spells(url: str) -> list[tuple[str, str, datetime, datetime | None]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            d = UNIT_DUTY.c
            rows = await conn.execute(select(d.unit_id, d.program_id, d.on_at, d.off_at)
                                      .order_by(d.unit_id, d.on_at))
            return [(r.unit_id, r.program_id, r.on_at, r.off_at) for r in rows]
    finally:
        await engine.dispose()


async def test_units_duty_busy_and_utilisation(database_url: str, tmp_path: Path) -> None:
    """CALL-1 signs on 3 h before T (told late, with `at`), is assigned a call at T-2h,
    clears it at T-1h and signs off at T: 3 h on duty, 1 h busy, 1 call, utilisation
    1/3. CALL-2 signs on at T-1h and stays on: about 1 h on duty so far (to now), none
    busy. CALL-3 never signs on. The program `call` keeps a roster, so its available
    unit-hours are its units' duty, about 4 h, not the policy's units times its shift."""
    settings = Settings(database_url=database_url, policy=youth_policy(tmp_path))
    async with running_server(settings) as s:
        for uid in ("CALL-1", "CALL-2", "CALL-3"):
            r = await s.client.put(f"/v1/units/{uid}", json={
                "program_id": "call", "call_sign": uid.replace("-", " "),
                "members": ["A. Rivera"], "capabilities": ["peer", "youth_trained"]})
            assert r.status_code in (200, 201), r.text
        t = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
        await duty(s, "CALL-1", True, t - 3 * H)
        await duty(s, "CALL-2", True, t - H)
        # Signing on again while on duty changes nothing (no second spell).
        await duty(s, "CALL-2", True)

        r = await s.client.post("/v1/cad/events", json=event(
            occurred_at=(t - 2.5 * H).isoformat(),
            location={"address": "1300 1st Ave N", "district": "D2", **CALL_AT}))
        assert r.status_code == 202, r.text
        assert r.json()["decision"]["destination"] == "call_team", r.json()
        cid = r.json()["call_id"]
        await status(s, cid, status="assigned", unit="CALL-1", at=t - 2 * H)
        await status(s, cid, status="cleared", disposition="resolved_on_scene", at=t - H)
        # Signing off before the spell began is refused, naming `at`.
        bad = await duty(s, "CALL-1", False, t - 4 * H, status=422)
        assert "at" in str(bad)
        await duty(s, "CALL-1", False, t)
        # Nor can it sign on again before its last spell ended.
        await duty(s, "CALL-1", True, t - H, status=422)

        kept = await spells(database_url)
        assert [(u, p, off is None) for u, p, _, off in kept] == [
            ("CALL-1", "call", False), ("CALL-2", "call", True)]

        span = {"from": (t - 4 * H).isoformat(), "to": (t + H).isoformat()}
        doc = (await s.client.get("/v1/metrics", params=span)).json()
        units = {u["unit"]: u for u in doc["units"]}
        assert set(units) == {"CALL-1", "CALL-2"}
        one = units["CALL-1"]
        assert (one["call_sign"], one["program"], one["duty_hours"], one["busy_hours"],
                one["calls"], one["utilisation"]) == ("CALL 1", "call", 3.0, 1.0, 1, 0.3333)
        two = units["CALL-2"]
        assert two["duty_hours"] == pytest.approx(1.0, abs=0.05)  # to now
        assert (two["busy_hours"], two["calls"], two["utilisation"]) == (0.0, 0, 0.0)
        [call] = [p for p in doc["programs"] if p["program"] == "call"]
        assert call["units_from"] == "roster"
        assert call["unit_hours_available"] == pytest.approx(4.0, abs=0.05)
        assert call["utilisation"] == pytest.approx(
            call["unit_hours_busy"] / call["unit_hours_available"], abs=1e-3)

        # Analysts read it too (JSON, CSV, page): unit ids and call signs, no members.
        async with as_role(s, Role.analyst) as analyst:
            res = await analyst.get("/v1/metrics", params=span)
            assert res.status_code == 200 and "A. Rivera" not in res.text
            assert {u["unit"] for u in res.json()["units"]} == {"CALL-1", "CALL-2"}
            res = await analyst.get("/v1/metrics/units.csv", params=span)
            assert res.status_code == 200, res.text
            got = {r["unit"]: r for r in csv.DictReader(io.StringIO(res.text))}
            assert (got["CALL-1"]["duty_hours"], got["CALL-1"]["busy_hours"],
                    got["CALL-1"]["utilisation"]) == ("3.0", "1.0", "0.3333")
            page = await analyst.get("/metrics", params=span)
            assert page.status_code == 200
            assert "Units: hours on duty, busy and utilisation" in page.text
            assert "CALL 1" in page.text and "A. Rivera" not in page.text

        # Retiring a unit on duty closes its spell.
        assert (await s.client.delete("/v1/units/CALL-2")).status_code == 200
        assert all(off is not None for _, _, _, off in await spells(database_url))


async def test_without_a_roster_available_hours_come_from_the_policy(
        database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, policy=youth_policy(tmp_path))
    async with running_server(settings) as s:
        r = await s.client.post("/v1/cad/events", json=event(
            location={"address": "1300 1st Ave N", "district": "D2", **CALL_AT}))
        assert r.status_code == 202, r.text
        doc = (await s.client.get("/v1/metrics", params={"from": "2026-03-10",
                                                          "to": "2026-03-11"})).json()
        [call] = [p for p in doc["programs"] if p["program"] == "call"]
        assert call["units_from"] == "policy" and call["unit_hours_available"] > 0
        assert doc["units"] == []


async def test_one_open_spell_per_unit(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, policy=youth_policy(tmp_path))
    async with running_server(settings) as s:
        r = await s.client.put("/v1/units/CALL-9", json={"program_id": "call",
                                                        "on_duty": True})
        assert r.status_code in (200, 201), r.text
    engine = create_engine(database_url)
    try:
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(insert(UNIT_DUTY), {
                    "unit_id": "CALL-9", "program_id": "call",
                    "on_at": datetime.now(UTC), "off_at": None})
    finally:
        await engine.dispose()
