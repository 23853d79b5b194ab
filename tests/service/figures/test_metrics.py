"""Program figures (service/figures/metrics.py) against hand-computed values, on SQLite and
PostgreSQL, over a small seeded history across the end of daylight saving time.

The history (America/New_York; DST ends Sun 2026-11-01 at 02:00 EDT = 06:00 UTC):

call  local time           district  who       what
c1    Sat 10-31 10:00 EDT  D1        P1 adult  911 mental_health -> call_team, resolved
c2    Sun 11-01 01:30 EDT  D1        P2 adult  eligible, off hours -> police
c3    Sun 11-01 01:30 EST  D2        P3 youth  eligible, units busy -> police (c2's hour)
c4    Sun 11-01 10:00 EST  D2        P3 youth  joint, backup requested, safety incident
c5    Mon 11-02 09:00 EST  D1        P1 adult  call_team, overridden to police by disp-7
c6    Mon 11-02 12:00 EST  D2        P4 youth  officer referral (badge-1, U1) -> call_team
c7    Mon 11-02 13:00 EST  D1        -         no rule matched -> police
c11   Mon 11-02 15:00 EST  D1        P1 adult  follow-up of c1; police, then call_team
c8/9  in range             D1                  test and training calls: left out
c10   Tue 11-03 00:30 EST  D1                  after the range: left out
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import Column, MetaData, String, Table, insert

from service.figures.metrics import Scope, compute, heatmap_grid, my_referrals, offset_segments
from service.store.db import create_engine, migrate
from service.store.tables import CALL, UTCDateTime
from tests.factories import history, utc

# The field workflow's table (migration 0005), as far as these tests fill it.
FOLLOW_UP = Table("follow_up", MetaData(), Column("id", String), Column("call_id", String),
                  Column("due_at", UTCDateTime()), Column("created_at", UTCDateTime()),
                  Column("status", String), Column("completed_at", UTCDateTime()))
NY = ZoneInfo("America/New_York")
START = datetime(2026, 10, 31, tzinfo=NY)
END = datetime(2026, 11, 3, tzinfo=NY)


def follow_ups() -> list[dict[str, Any]]:
    """Scheduled in the range: f1, f2; completed in the range: f1, f4; f3 is a test call's."""
    def fu(fid: str, call_id: str, created: datetime, status: str,
           completed: datetime | None = None) -> dict[str, Any]:
        return {"id": fid, "call_id": call_id, "due_at": created + timedelta(days=2),
                "created_at": created, "status": status, "completed_at": completed}

    return [fu("f1", "c1", utc(2026, 10, 31, 15), "completed", utc(2026, 11, 2, 20)),
            fu("f2", "c4", utc(2026, 11, 1, 16), "scheduled"),
            fu("f3", "c8", utc(2026, 11, 2, 16), "completed", utc(2026, 11, 2, 17)),
            fu("f4", "c2", utc(2026, 10, 20), "completed", utc(2026, 11, 1, 12))]


async def seed(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(insert(CALL), history())
            await conn.execute(insert(FOLLOW_UP), follow_ups())
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def seeded(database_url: str) -> Any:
    await seed(database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def test_offset_segments_split_at_the_end_of_dst() -> None:
    segs = offset_segments(NY, START, END)
    assert segs == [(START.astimezone(UTC), -4 * 3600), (utc(2026, 11, 1, 6, 0), -5 * 3600)]
    assert len(offset_segments(NY, datetime(2026, 1, 1, tzinfo=NY),
                               datetime(2027, 1, 1, tzinfo=NY))) == 3


@pytest.mark.asyncio
async def test_figures_match_hand_computed_values(seeded: Any) -> None:
    m = await compute(seeded, Scope(START, END, zone=NY), min_calls=1)
    o = m.outcomes
    assert (o.calls, o.eligible, o.eligible_served, o.police_handled) == (8, 7, 4, 4)
    assert o.reach == round(4 / 7, 4) and o.police_share_of_eligible == round(3 / 7, 4)
    assert o.destination_changed == 2  # c5 (override), c11 (an update)
    assert (o.contacts, o.unique_clients, o.contacts_without_identity) == (4, 3, 0)
    assert (o.without_police, o.without_police_share) == (3, 0.75)
    assert (o.backup_requests, o.backup_rate, o.safety_incidents) == (1, 0.25, 1)
    assert o.follow_up_calls == 1
    assert (m.follow_ups.scheduled, m.follow_ups.completed) == (2, 2)

    by_dest = {(r.day.isoformat(), r.value): r.calls for r in m.volume_daily
               if r.dimension == "destination"}
    assert by_dest == {("2026-10-31", "call_team"): 1, ("2026-11-01", "police"): 2,
                       ("2026-11-01", "joint"): 1, ("2026-11-02", "police"): 2,
                       ("2026-11-02", "call_team"): 2}
    by_channel = {(r.day.isoformat(), r.value): r.calls for r in m.volume_daily
                  if r.dimension == "channel"}
    assert by_channel[("2026-11-02", "officer_referral")] == 1
    assert by_channel[("2026-11-02", "follow_up")] == 1
    assert sum(r.calls for r in m.volume_daily if r.dimension == "category") == 8
    hours = {(r.hour_of_week, r.value): r.calls for r in m.volume_hour_of_week
             if r.dimension == "destination"}
    # c2 (01:30 EDT) and c3 (01:30 EST) are both Sunday 01:00-02:00 local: hour 6*24+1.
    assert hours == {(5 * 24 + 10, "call_team"): 1, (145, "police"): 2,
                     (6 * 24 + 10, "joint"): 1, (9, "police"): 1, (12, "call_team"): 1,
                     (13, "police"): 1, (15, "call_team"): 1}
    assert {(r.hour_of_week, r.value): r.calls for r in m.volume_hour_of_week
            if r.dimension == "channel" and r.value != "911"} == {
        (12, "officer_referral"): 1, (15, "follow_up"): 1}
    assert sum(r.calls for r in m.volume_hour_of_week if r.dimension == "category") == 8

    t = {(x.measure, x.dimension, x.value): (x.calls, x.median_seconds, x.p90_seconds)
         for x in m.timeliness}
    assert t[("to_decision", "all", "all")] == (8, 3.5, 7.2)
    assert t[("to_en_route", "all", "all")] == (4, 80.0, 114.0)
    assert t[("to_on_scene", "all", "all")] == (4, 500.0, 810.0)
    assert t[("on_scene", "all", "all")] == (4, 900.0, 1620.0)
    assert t[("to_on_scene", "destination", "call_team")] == (3, 600.0, 840.0)
    assert t[("to_on_scene", "category", "disorderly_juvenile")] == (1, 300.0, 300.0)
    assert t[("to_decision", "category", "none")] == (1, 1.0, 1.0)

    assert {r.reason: r.calls for r in m.coverage_by_reason} == {
        "off_hours": 1, "units_busy": 1, "wait_exceeded": 0, "outside_area": 0, "override": 1,
        "no_rule": 1}
    cells = {(c.hour_of_week, c.reason): c.calls for c in m.coverage_heatmap}
    assert cells == {(145, "off_hours"): 1, (145, "units_busy"): 1, (9, "override"): 1,
                     (13, "no_rule"): 1}
    assert heatmap_grid(m.coverage_heatmap)[6][1] == 2
    assert {(d.district, d.reason): d.calls for d in m.coverage_by_district} == {
        ("D1", "off_hours"): 1, ("D1", "override"): 1, ("D1", "no_rule"): 1,
        ("D2", "units_busy"): 1}

    d = {f.group: f for f in m.equity_district}
    assert (d["D1"].calls, d["D1"].eligible, d["D1"].police_share_of_eligible) == (5, 4, 0.5)
    assert (d["D2"].calls, d["D2"].eligible, d["D2"].police_share_of_eligible) == (
        3, 3, 0.3333)
    assert (d["D1"].backup_rate, d["D2"].backup_rate) == (0.0, 0.5)
    a = {f.group: f for f in m.equity_age_group}
    assert set(a) == {"adult", "youth", "none"}
    assert (a["adult"].contacts, a["adult"].unique_clients) == (2, 1)
    assert (a["youth"].contacts, a["youth"].unique_clients) == (2, 2)
    flags = {(f.dimension, f.rate): f for f in m.equity_flags}
    assert flags[("district", "police_share_of_eligible")].highest_group == "D1"
    assert flags[("district", "police_share_of_eligible")].gap == round(0.5 - 0.3333, 4)
    assert flags[("age_group", "backup_rate")].highest_group == "youth"
    # With the default minimum group size, groups this small are not compared.
    assert (await compute(seeded, Scope(START, END, zone=NY))).equity_flags == []

    assert m.referrals_by_officer is not None
    [officer] = m.referrals_by_officer  # the training call's referral is left out
    assert (officer.group, officer.referrals, officer.to_team, officer.without_police,
            officer.cleared, officer.referred_to_services) == ("badge-1", 1, 1, 1, 1, 1)
    assert [(u.group, u.referrals) for u in m.referrals_by_unit] == [("U1", 1)]
    assert m.overrides_by_dispatcher is not None and m.overrides_by_reason is not None
    assert [(r.group, r.overrides, r.to_police) for r in m.overrides_by_dispatcher] == [
        ("disp-7", 1, 1)]
    assert [r.group for r in m.overrides_by_reason] == ["caller reports a knife"]
    assert [(r.group, r.overrides) for r in m.overrides_by_change] == [
        ("call_team -> police", 1)]


@pytest.mark.asyncio
async def test_district_filter_and_analyst_view(seeded: Any) -> None:
    m = await compute(seeded, Scope(START, END, district="D2", zone=NY), supervisor=False)
    assert (m.outcomes.calls, m.outcomes.contacts, m.outcomes.backup_requests) == (3, 2, 1)
    assert [f.group for f in m.equity_district] == ["D2"]
    assert m.referrals_by_officer is None and m.overrides_by_dispatcher is None
    assert m.overrides_by_reason is None
    assert [(u.group, u.referrals) for u in m.referrals_by_unit] == [("U1", 1)]
    assert "secret words" not in m.model_dump_json()


@pytest.mark.asyncio
async def test_an_officer_sees_their_own_referrals(seeded: Any) -> None:
    mine = await my_referrals(seeded, "badge-1")
    assert [(r.call_id, r.disposition, r.outcome) for r in mine] == [
        ("c6", "referred_to_services", "Connected to a shelter bed")]
    assert await my_referrals(seeded, "badge-2") == []
