"""What-if replay over small hand-built call lists whose outcomes are known."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from routing.whatif import (
    ServiceTimes,
    ServiceTimesInvalid,
    SimCall,
    WhatIfReport,
    changed_rows,
    parse_service_times,
    render,
    simulate,
)
from rules.evaluate import CompiledPolicy
from tests.factories import compiled, facts, policy_doc

# Tuesday 10 March 2026 in New York (EDT, UTC-4); team hours default to 08:00-24:00.
DAY = "2026-03-10"
HOUR = 60.0
ONE_HOUR = ServiceTimes(distribution="fixed", default_minutes=HOUR, by_category={})


def team_policy(*, units: int = 1, action: str = "team", version: str = "7",
                **program: Any) -> CompiledPolicy:
    doc = policy_doc(units=units, rules=[
        {"id": "x-team", "category": "cat_a", "action": action, "when": {"nature_code": ["X"]}},
        {"id": "y-team", "category": "cat_b", "action": "team", "when": {"nature_code": ["Y"]}},
    ], **program)
    doc["policy"]["version"] = version
    return compiled(doc)


def call(call_id: str, clock: str, code: str = "X", **fields: Any) -> SimCall:
    return SimCall(call_id, facts(nature_code=code, occurred_at=f"{DAY}T{clock}:00-04:00",
                                  **fields))


def run(calls: list[SimCall], candidate: CompiledPolicy, baseline: CompiledPolicy | None = None,
        *, times: ServiceTimes = ONE_HOUR, seed: int = 0) -> WhatIfReport:
    return simulate(calls, candidate, baseline or candidate, service_times=times, seed=seed)


def test_one_unit_two_overlapping_calls_the_second_finds_it_busy() -> None:
    # the unit is out 14:00-15:00: 14:30 finds it busy, 15:10 finds it free again
    calls = [call("c3", "15:10"), call("c1", "14:00"), call("c2", "14:30")]  # any order in
    r = run(calls, team_policy(units=1)).candidate
    assert r.destinations == {"call_team": 2, "police": 1}
    cov = r.coverage
    assert cov.eligible == 3 and cov.team_responses == 2
    assert cov.not_served == {"units_busy": 1}
    tuesday_14 = 1 * 24 + 14
    assert cov.not_served_by_hour_of_week[tuesday_14] == 1 and sum(
        cov.not_served_by_hour_of_week) == 1
    # span 14:00-15:10 (all in team hours): 70 min on 1 unit; busy up to the last call:
    # 14:00-15:00 and 15:10-15:10
    assert cov.team_hours == pytest.approx(70 / 60, abs=1e-3)
    assert cov.unit_hours_busy == pytest.approx(1.0, abs=1e-3)
    assert cov.utilisation == pytest.approx(60 / 70, abs=1e-5)


def test_two_units_serve_both_overlapping_calls() -> None:
    r = run([call("c1", "14:00"), call("c2", "14:30")], team_policy(units=2)).candidate
    assert r.destinations == {"call_team": 2}
    assert r.coverage.not_served == {}


def test_off_hours_and_phone_only_work() -> None:
    doc = policy_doc(units=1, rules=[
        {"id": "x-team", "category": "cat_a", "action": "team", "when": {"nature_code": ["X"]}},
        {"id": "line", "category": "cat_b", "action": "team", "needs_field_unit": False,
         "when": {"channel": ["crisis_line"]}},
    ])
    p = compiled(doc)
    calls = [call("night", "03:15"), call("line", "03:20", code="Q", channel="crisis_line"),
             call("day", "09:00")]
    r = run(calls, p).candidate
    assert r.coverage.not_served == {"off_hours": 1}
    assert r.coverage.not_served_by_hour_of_week[1 * 24 + 3] == 1
    # the crisis line goes to the team at night and takes no field unit
    assert r.destinations == {"call_team": 2, "police": 1}
    assert r.coverage.team_responses == 1
    assert r.by_category == {"cat_a": {"call_team": 1, "police": 1}, "cat_b": {"call_team": 1}}


def test_calls_that_change_destination_are_counted_by_rule_with_examples() -> None:
    baseline = team_policy(units=4, version="1")
    candidate = team_policy(units=4, action="police", version="2")
    calls = [call(f"x{i}", f"1{i}:00") for i in range(5)] + [call("y1", "14:05", code="Y"),
                                                              call("z1", "14:06", code="Z")]
    r = simulate(calls, candidate, baseline, service_times=ONE_HOUR, seed=1, examples=2)
    assert r.calls == 7
    assert r.baseline.destinations == {"call_team": 6, "police": 1}
    assert r.candidate.destinations == {"call_team": 1, "police": 6}
    assert r.baseline.team_share == pytest.approx(6 / 7, abs=1e-5)
    assert r.candidate.team_share == pytest.approx(1 / 7, abs=1e-5)
    assert r.changed == 5
    [group] = r.changes
    assert (group.from_destination, group.to_destination, group.candidate_rule,
            group.candidate_why, group.count) == ("call_team", "police", "x-team", "rule", 5)
    assert [e.call_id for e in group.examples] == ["x0", "x1"]
    e = group.examples[0]
    assert e.baseline_rule == e.candidate_rule == "x-team" and e.nature_code == "X"
    assert "Eligible for the CALL team" in e.baseline_explanation
    assert "The rule sends this call to police." in e.candidate_explanation
    assert [c.call_id for c in r.changed_calls] == ["x0", "x1", "x2", "x3", "x4"]
    # the JSON report carries the groups with examples, not every changed call
    assert "changed_calls" not in r.model_dump(mode="json")
    text = render(r)
    assert "5 calls change destination" in text and "call_team -> police" in text


def test_capacity_changes_are_told_apart_from_rule_changes() -> None:
    # one more unit: the 14:30 call is served by the candidate and not by the baseline
    r = simulate([call("c1", "14:00"), call("c2", "14:30")], team_policy(units=2, version="2"),
                 team_policy(units=1, version="1"), service_times=ONE_HOUR)
    assert r.baseline.coverage.not_served == {"units_busy": 1}
    assert r.candidate.coverage.not_served == {}
    [group] = r.changes
    assert (group.from_destination, group.to_destination, group.count) == (
        "police", "call_team", 1)
    [row] = changed_rows(r)
    assert row["call_id"] == "c2" and row["baseline_why"] == "units_busy"
    assert row["occurred_at"] == "2026-03-10T14:30:00-04:00"
    assert "All 1 team units are busy" in row["baseline_explanation"]
    assert "1 of 2 units free" in row["candidate_explanation"]


def test_same_seed_same_report_and_the_seed_matters() -> None:
    times = ServiceTimes()  # lognormal by default
    calls = [call(f"c{i:02d}", f"{8 + i // 4:02d}:{(i % 4) * 15:02d}", code="XY"[i % 2])
             for i in range(48)]
    a = run(calls, team_policy(units=2), times=times, seed=7)
    b = run(list(reversed(calls)), team_policy(units=2), times=times, seed=7)
    assert a.model_dump() == b.model_dump()
    assert render(a) == render(b)
    c = run(calls, team_policy(units=2), times=times, seed=8)
    assert c.candidate.coverage.unit_hours_busy != a.candidate.coverage.unit_hours_busy


def test_identical_versions_see_identical_capacity() -> None:
    calls = [call(f"c{i}", f"{8 + i // 6:02d}:{(i % 6) * 10:02d}") for i in range(60)]
    r = simulate(calls, team_policy(units=2), team_policy(units=2),
                 service_times=ServiceTimes(distribution="exponential"), seed=3)
    assert r.changed == 0 and r.changes == []
    assert r.candidate.model_dump() == r.baseline.model_dump()
    assert r.candidate.coverage.not_served.get("units_busy", 0) > 0


def test_team_hours_across_a_week_in_the_policy_zone() -> None:
    zone = ZoneInfo("America/New_York")
    monday = datetime(2026, 3, 2, 0, 0, tzinfo=zone)
    sunday_end = datetime(2026, 3, 8, 23, 59, tzinfo=zone)
    # two calls, a week apart in local time; the default hours are 16 a day
    week = [SimCall("a", facts(nature_code="Q", occurred_at=monday)),
            SimCall("b", facts(nature_code="Q", occurred_at=sunday_end))]
    r = run(week, team_policy(units=3)).candidate
    # Sunday 8 March 2026 is the night clocks go forward: 08:00-24:00 is still 16 hours;
    # the span ends at 23:59
    assert r.coverage.team_hours == pytest.approx(7 * 16 - 1 / 60, abs=1e-3)
    assert r.coverage.unit_hours_available == pytest.approx(3 * (7 * 16 - 1 / 60), abs=1e-2)
    night = team_policy(units=1, hours={"start": "22:00", "end": "06:00", "days": ["mon"]})
    assert run(week, night).candidate.coverage.team_hours == pytest.approx(8, abs=1e-3)
    # all day on Sunday, the night clocks go forward: 23 hours
    sunday = team_policy(units=1, hours={"start": "00:00", "end": "24:00", "days": ["sun"]})
    assert run(week, sunday).candidate.coverage.team_hours == pytest.approx(23 - 1 / 60,
                                                                            abs=1e-3)


def test_service_times_by_category_and_distribution() -> None:
    t = parse_service_times({"distribution": "exponential", "default_minutes": 30,
                             "by_category": {"cat_a": 90}})
    assert t.mean_minutes("cat_a") == 90 and t.mean_minutes("other") == 30
    assert t.mean_minutes(None) == 30
    # the same draw is the same quantile whatever the category
    assert t.minutes("cat_a", 0.5) == pytest.approx(3 * t.minutes("other", 0.5))
    lognormal = ServiceTimes(default_minutes=40, by_category={})
    draws = [lognormal.minutes(None, (i + 0.5) / 4000) for i in range(4000)]
    assert sum(draws) / len(draws) == pytest.approx(40, rel=0.02)
    with pytest.raises(ServiceTimesInvalid) as err:
        parse_service_times({"distribution": "weibull", "by_category": {"a": -1}, "x": 1})
    paths = {e.path for e in err.value.errors}
    assert {"distribution", "x"} <= paths


def test_no_calls() -> None:
    r = run([], team_policy())
    assert r.calls == 0 and r.first_call is None and r.candidate.team_share == 0.0
    assert r.candidate.coverage.utilisation == 0.0
    assert "0 calls" in render(r)


def test_shared_values_give_equal_facts_and_the_same_report() -> None:
    """SharedValues (a year of calls in memory): each call's facts equal as they were,
    equal values one object, and the simulation's report unchanged."""
    from routing.whatif import SharedValues

    shared = SharedValues()
    made = [facts(nature_code=code, nature_text=f"Nature {code}".lower(), district="D2",
                  flags=flags, narrative="talking to himself",
                  occurred_at=f"{DAY}T{hour:02d}:{minute:02d}:00-04:00")
            for hour in (9, 13, 22) for minute in (0, 31)
            for code, flags in (("MNTL", []), ("MNTL", ["weapon"]), ("LARC", []))]
    kept = [shared(f) for f in made]
    assert kept == made
    assert [k.model_fields_set for k in kept] == [f.model_fields_set for f in made]
    assert kept[0].nature_text is kept[6].nature_text
    assert kept[0].district is kept[1].district
    assert kept[0].occurred_at.tzinfo is kept[6].occurred_at.tzinfo
    assert made[0].nature_text is not made[6].nature_text  # not so before
    policy = team_policy()
    plain = simulate([SimCall(f"c{i}", f) for i, f in enumerate(made)], policy, policy,
                     service_times=ONE_HOUR, keep_calls=True)
    lean = simulate([SimCall(f"c{i}", f) for i, f in enumerate(kept)], policy, policy,
                    service_times=ONE_HOUR, keep_calls=True)
    assert lean == plain
