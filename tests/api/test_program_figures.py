"""The program figures of the live queue (issue 13), on SQLite and PostgreSQL: calls
queued, deferred, taken and fallen back through the real routes of a real uvicorn, then
read back as JSON, CSV and (analysts too) per program: reach, waits and why calls were
not served."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.access.auth import Role
from tests.api.test_ingest_programs import field_program, located
from tests.api.test_queue import MH_20, at, causes, clear, post, serving
from tests.factories import DOWNTOWN, IN_DOWNTOWN, OUT_OF_TOWN

pytestmark = pytest.mark.asyncio
DAY = {"from": "2026-03-10", "to": "2026-03-11"}
INSIDE = located(IN_DOWNTOWN)


async def test_reach_and_queue_waits_per_program(database_url: str, tmp_path: Path) -> None:
    """One unit downtown, mental-health calls waiting up to 20 minutes, referrals
    deferred. By hand (CAD times, Tue 10 March):

    14:00 H takes the unit.  14:02 A, 14:04 B, 14:05 C queue behind it.
    14:10 H clears: A is taken (waited 8 min).  14:16 A clears: B is taken (12 min).
    14:25 C's limit passes: police, wait_exceeded (20 min); B clears at 14:30.
    14:31 O, outside the area: police, outside_area.
    14:33 D takes the unit; 14:34 the referral R waits for it; 14:40 D clears: R is taken
    (6 min, deferred).

    Program `field`: eligible H A B C D R (6), served H A B D R (5): reach 5/6 = 0.8333;
    queued 3 (A B C), deferred 1 (R), waited then served 3 (A B R), fell back 1 (C).
    Waits 6, 8, 12, 20 min: p50 at position 0.5*3 = 1.5: 8 + 0.5*(12-8) = 10.0;
    p90 at 0.9*3 = 2.7: 12 + 0.7*(20-12) = 17.6 (percentile_cont). O is eligible but no
    program's area holds it: counted under no program, and as outside_area; C as
    wait_exceeded. All seven are eligible, five served."""
    programs = [field_program("field", units=1, queue=MH_20, area={"polygons": DOWNTOWN},
                              deferrable=["officer_referral"])]
    async with serving(database_url, tmp_path, programs) as s:
        h = await post(s, occurred_at=at("14:00"), **INSIDE)
        a = await post(s, occurred_at=at("14:02"), **INSIDE)
        b = await post(s, occurred_at=at("14:04"), **INSIDE)
        c = await post(s, occurred_at=at("14:05"), **INSIDE)
        assert [x["decision"]["queued"]["position"] for x in (a, b, c)] == [1, 2, 3]
        await clear(s, h["call_id"], at=at("14:10"))
        await clear(s, a["call_id"], at=at("14:16"))
        await clear(s, b["call_id"], at=at("14:30"))
        assert await causes(s, a["call_id"]) == ["event", "unit_free"]
        assert await causes(s, b["call_id"]) == ["event", "unit_free"]
        assert await causes(s, c["call_id"]) == ["event", "wait_limit"]
        o = (await post(s, occurred_at=at("14:31"), **located(OUT_OF_TOWN)))["decision"]
        assert (o["destination"], o["not_served_reason"]) == ("police", "outside_area"), o
        d = await post(s, occurred_at=at("14:33"), **INSIDE)
        r = await post(s, occurred_at=at("14:34"), channel="officer_referral",
                       nature_code="VAG", **INSIDE)
        assert r["decision"]["deferred_until"] == at("14:34"), r["decision"]
        await clear(s, d["call_id"], at=at("14:40"))
        assert await causes(s, r["call_id"]) == ["event", "shift_start"]

        res = await s.client.get("/v1/metrics", params=DAY)
        assert res.status_code == 200, res.text
        doc = res.json()
        reasons = {x["reason"]: x["calls"] for x in doc["coverage_by_reason"]}
        assert (reasons["wait_exceeded"], reasons["outside_area"]) == (1, 1), reasons
        assert doc["outcomes"]["eligible"] == 7 and doc["outcomes"]["eligible_served"] == 5
        by_program = {p["program"]: p for p in doc["programs"]}
        assert by_program["field"] == {
            "program": "field", "eligible": 6, "served": 5, "reach": 0.8333, "queued": 3,
            "deferred": 1, "waited_served": 3, "fell_back": 1, "waits": 4,
            "wait_p50_minutes": 10.0, "wait_p90_minutes": 17.6,
            # The unit held: H 14:00-14:10, A -14:16, B -14:30, D 14:33-14:40, R from
            # 14:40 to the day's end (not cleared): 10+6+14+7+560 = 597 min = 9.95 h, of
            # the 24 unit-hours on shift (all day, one unit).
            "unit_hours_busy": 9.95, "unit_hours_available": 24.0, "utilisation": 0.4146,
            "units_from": "policy"}  # it keeps no roster
        # O is no program's (the decision names the first tried, whose area it is out of).
        assert by_program["none"] == {
            "program": "none", "eligible": 1, "served": 0, "reach": 0.0, "queued": 0,
            "deferred": 0, "waited_served": 0, "fell_back": 0, "waits": 0,
            "wait_p50_minutes": None, "wait_p90_minutes": None, "unit_hours_busy": 0.0,
            "unit_hours_available": None, "utilisation": None, "units_from": None}
        assert [p["program"] for p in doc["programs"]] == ["field", "none"]
        # Per category: A B C (8, 12, 20 min; p90 at 0.9*2 = 1.8: 12 + 0.8*8 = 18.4) and R.
        assert doc["queue_waits"] == [
            {"program": "field", "category": "homelessness", "waits": 1,
             "wait_p50_minutes": 6.0, "wait_p90_minutes": 6.0},
            {"program": "field", "category": "mental_health", "waits": 3,
             "wait_p50_minutes": 12.0, "wait_p90_minutes": 18.4}]

        # The CSV table, and analysts see the program figures as the other aggregates.
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30,
                                     headers=s.creds.bearer(Role.analyst)) as analyst:
            res = await analyst.get("/v1/metrics/programs.csv", params=DAY)
            assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
            rows: dict[str, Any] = {x["program"]: x
                                    for x in csv.DictReader(io.StringIO(res.text))}
            assert (rows["field"]["reach"], rows["field"]["wait_p90_minutes"]) \
                == ("0.8333", "17.6")
            res = await analyst.get("/v1/metrics/coverage_by_reason.csv", params=DAY)
            got = {x["reason"]: x["calls"] for x in csv.DictReader(io.StringIO(res.text))}
            assert (got["wait_exceeded"], got["outside_area"]) == ("1", "1")

        # A call still waiting (R holds the unit) is eligible, not served yet.
        e = await post(s, occurred_at=at("14:41"), **INSIDE)
        assert e["decision"]["queued"] is not None
        doc = (await s.client.get("/v1/metrics", params=DAY)).json()
        field = next(p for p in doc["programs"] if p["program"] == "field")
        assert (field["eligible"], field["served"], field["queued"]) == (7, 5, 4)


async def test_figures_for_a_month_past_2038(database_url: str, tmp_path: Path) -> None:
    """A range whose bounds in epoch seconds pass 2**31 (found by the fuzzer: PostgreSQL
    refused them as 32-bit integers in the unit-hours, a 500)."""
    programs = [field_program("field", units=1, queue=MH_20)]
    async with serving(database_url, tmp_path, programs) as s:
        await post(s, occurred_at=at("14:00"), **INSIDE)
        res = await s.client.get("/v1/metrics", params={"from": "2599-07-01",
                                                        "to": "2599-08-01"})
        assert res.status_code == 200, res.text
        assert res.json()["outcomes"]["calls"] == 0
