"""Calls alike share a decision in the what-if (routing/queue_sim.py, routing/whatif.py):
the report must be the one deciding every call in full gives. Each run here is made twice,
sharing and not (every key given the call's time, so no two calls are alike), and the two
reports compared whole: figures, changed calls with their explanations, every call."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import routing.whatif as whatif
from routing.schedule import DutyDays, on_duty
from routing.whatif import ServiceTimes, SimCall, WhatIfReport, simulate
from rules.evaluate import CompiledPolicy
from rules.models import Condition
from rules.programs import parse_shift
from tests.factories import (
    busy_weeks,
    compiled,
    facts,
    one_team_doc,
    programs_doc,
    shipped_doc,
    shipped_with,
)

ZONE = ZoneInfo("America/New_York")


def _fields_read_with_time(node: Any, out: set[str]) -> set[str]:
    return _PLAIN_FIELDS_READ(node, out) | {"occurred_at"}


_PLAIN_FIELDS_READ = whatif._fields_read


def both(calls: list[SimCall], candidate: CompiledPolicy, baseline: CompiledPolicy,
         monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[WhatIfReport, WhatIfReport]:
    shared = simulate(calls, candidate, baseline, keep_calls=True, **kw)
    with monkeypatch.context() as m:
        m.setattr(whatif, "_fields_read", _fields_read_with_time)
        plain = simulate(calls, candidate, baseline, keep_calls=True, **kw)
    return shared, plain


def assert_same(shared: WhatIfReport, plain: WhatIfReport) -> None:
    assert shared.model_dump() == plain.model_dump()
    assert shared.changed_calls == plain.changed_calls
    assert shared.decided == plain.decided


@pytest.mark.parametrize("seed", [1, 2])
def test_programs_shared_and_plain_give_the_same_report(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = busy_weeks(seed)
    candidate = shipped_with(1, "one-pair", max_queued=2)
    baseline = shipped_with(3, "three-pairs")
    shared, plain = both(calls, candidate, baseline, monkeypatch, seed=seed)
    assert shared.changed > 0 and shared.candidate.queue is not None
    assert shared.candidate.queue.queued and shared.candidate.queue.deferred
    assert_same(shared, plain)


def test_without_waiting_and_against_one_team_the_same_report(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = busy_weeks(3)
    one_team = one_team_doc()
    one_team["program"]["units"] = 1
    shared, plain = both(calls, shipped_with(2, "two-pairs"), compiled(one_team), monkeypatch,
                         may_wait=False, service_times=ServiceTimes(distribution="exponential"))
    assert shared.changed > 0
    assert_same(shared, plain)


def test_a_policy_that_reads_the_time_is_decided_call_by_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    doc = shipped_doc()
    doc["policy"]["version"] = "nights"
    doc["rules"].insert(0, {"id": "nights", "category": "mental_health", "action": "police",
                            "when": {"all": [{"nature_code": ["MNTL"]},
                                             {"time_of_day": {"start": "20:00",
                                                              "end": "06:00"}}]}})
    shared, plain = both(busy_weeks(4, 1500), compiled(doc), shipped_with(4, "day"), monkeypatch)
    assert shared.changed > 0
    assert_same(shared, plain)


def scattered(seed: int, n: int = 2500) -> list[SimCall]:
    """Calls as a real CAD gives them: nearly every one at its own coordinates, in and
    around downtown's polygon, some with a district only, some with neither."""
    rng = random.Random(seed)
    at = datetime(2026, 3, 9, 7, 0, tzinfo=ZONE)  # a Monday: the field team's shifts
    calls = []
    for i in range(n):
        at += timedelta(seconds=rng.choice([0, 60, 300, 600, 1200]))
        place: dict[str, Any] = rng.choice([
            {"lat": rng.uniform(27.75, 27.79), "lon": rng.uniform(-82.67, -82.62)},
            {"lat": rng.uniform(27.75, 27.79), "lon": rng.uniform(-82.67, -82.62),
             "district": "D2"},
            {"district": rng.choice(["D1", "D2", "D3"])}, {}])
        calls.append(SimCall(f"c{i}", facts(
            nature_code=rng.choice(["MNTL", "VAG", "WELFARE", "THEFT"]),
            channel=rng.choice(["911"] * 6 + ["officer_referral"]),
            priority=rng.choice([None, 2, 4]), occurred_at=at.isoformat(), **place)))
    return calls


def test_calls_at_their_own_coordinates_share_by_the_areas_they_fall_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A decision reads of a call's place only the programs' areas it falls in: calls at
    different points of the same areas share one (a real year's coordinates differ on
    nearly every call), and the report is still the one deciding each in full gives."""
    one_unit = programs_doc()
    one_unit["policy"]["version"] = "one-unit"
    one_unit["programs"][0]["units"] = 1
    shared, plain = both(scattered(5), compiled(one_unit), compiled(programs_doc()),
                         monkeypatch, seed=5)
    assert shared.changed > 0 and shared.candidate.queue is not None
    assert shared.candidate.queue.queued
    assert shared.candidate.coverage.not_served.get("outside_area")
    assert_same(shared, plain)


def test_two_points_in_the_same_area_are_decided_once() -> None:
    from routing.queue_sim import ProgramsRun

    policy = compiled(programs_doc())
    run = ProgramsRun(policy, lambda i, category: 60.0,
                      key_fields=("channel", "nature_code", "priority", "purpose"))

    def at(clock: str, lat: float, lon: float) -> Any:
        return facts(nature_code="WELFARE", lat=lat, lon=lon,
                     occurred_at=f"2026-03-09T{clock}:00-04:00")

    first = run.arrive(0, at("14:00", 27.770, -82.640))
    assert first.final.destination.value == "call_team"
    # Another point downtown, once the first call's unit is free: the same areas, state
    # and shifts, so the same result.
    assert run.arrive(1, at("15:05", 27.775, -82.650)) is first
    # Out of town, at the same state: another area, decided in full (the field team
    # refuses it; the co-response unit does not take welfare calls).
    out = run.arrive(2, at("15:10", 27.900, -82.700))
    assert out is not first and out.final.not_served_reason == "outside_area"


def test_every_kind_of_condition_names_the_fields_it_reads() -> None:
    """A condition the key of calls alike left out would let two calls share a decision
    the rules tell apart."""
    kinds = set(Condition.model_fields) - {"any", "all", "not_"}
    assert kinds == set(whatif._FIELDS_BY_CONDITION)


def test_duty_days_answer_as_on_duty() -> None:
    """Shifts past midnight, dates off, a change of clocks each way: every 7 minutes of
    two months, and times around each shift's edges."""
    week = tuple(tuple(parse_shift(s) for s in shifts) for shifts in (
        ["08:00-16:00"], ["22:00-06:00"], ["00:00-00:00"], [], ["01:30-02:30", "20:00-02:00"],
        ["08:00-24:00"], ["02:00-03:00"]))
    days_off = frozenset({date(2024, 11, 5), date(2024, 3, 12)})
    for start in (datetime(2024, 3, 1, tzinfo=ZONE), datetime(2024, 10, 20, tzinfo=ZONE)):
        duty = DutyDays(week, days_off, ZONE)
        t = start
        while t < start + timedelta(days=40):
            for at in (t, t + timedelta(microseconds=1), t - timedelta(microseconds=1)):
                assert duty(at) == on_duty(week, days_off, at, ZONE), at
            t += timedelta(minutes=7)
    assert DutyDays(None, frozenset(), ZONE)(start)
