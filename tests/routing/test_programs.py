"""Routing over several response programs: order, areas, queues, deferral, fall-back.

The policy is tests/routing/helpers.py `programs_doc`: a field team, a co-response unit
and a phone line. Times are New York's (EST -05:00 until 8 March 2026, EDT -04:00 after).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from routing.decide import Shaping, decide_call, fall_back, redecide, route
from routing.models import Availability, Decision, Destination, Mode, ProgramState
from routing.whatif import SimCall, simulate
from rules.evaluate import CompiledPolicy, classify_for_routing
from tests.factories import IN_DOWNTOWN, OUT_OF_TOWN, compiled, facts, programs_doc

TUESDAY_2PM = "2026-03-10T14:00:00-04:00"
NOBODY = Availability(units_total=3, units_busy=0)


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return compiled(programs_doc())


def state(field: int = 0, co: int = 0, queued: int = 0) -> dict[str, ProgramState]:
    return {"field": ProgramState(units_busy=field, queued=queued),
            "co-response": ProgramState(units_busy=co)}


def decide(policy: CompiledPolicy, st: dict[str, ProgramState] | None = None,
           **fields: Any) -> Decision:
    fields.setdefault("occurred_at", TUESDAY_2PM)
    return decide_call(facts(**fields), policy, NOBODY, state=st)


def test_the_first_program_that_can_takes_the_call_and_is_named(policy: CompiledPolicy
                                                                ) -> None:
    d = decide(policy, state(), nature_code="MNTL", district="D1")
    assert (d.destination, d.mode) == (Destination.call_team, Mode.call_with_police_standby)
    assert (d.program.id, d.program.name) == ("field", "Field team")
    assert (d.program.units_total, d.program.units_busy) == (2, 0)
    assert "Program 'field' (Field team) takes the call" in d.explanation
    assert d.needs_field_unit and d.queued is None and d.deferred_until is None


def test_a_busy_program_passes_the_call_to_the_next_and_the_decision_says_why(
        policy: CompiledPolicy) -> None:
    d = decide(policy, state(field=2), nature_code="MNTL", priority=1, district="D1")
    assert (d.destination, d.mode) == (Destination.joint, Mode.co_response)
    assert d.program.id == "co-response"
    assert "Program 'field' (Field team) cannot take it now: all 2 of its units are busy." \
        in d.factors
    assert d.factors.index(next(f for f in d.factors if "'field'" in f)) < \
        d.factors.index(next(f for f in d.factors if "'co-response'" in f))


def test_a_phone_program_takes_its_calls_at_any_hour_without_a_unit(policy: CompiledPolicy
                                                                    ) -> None:
    d = decide(policy, state(field=2, co=1), channel="crisis_line", nature_code="X",
               occurred_at="2026-03-11T03:00:00-04:00")
    assert (d.destination, d.mode, d.program.id) == (Destination.call_team, Mode.call_direct,
                                                     "line")
    assert not d.needs_field_unit


def test_a_call_outside_every_area_goes_to_police_as_outside_area(policy: CompiledPolicy
                                                                  ) -> None:
    by_point = decide(policy, state(), nature_code="MNTL", district="D1", **OUT_OF_TOWN)
    outside = decide(policy, state(), nature_code="VAG", district="D1", **OUT_OF_TOWN)
    # Coordinates inside the polygon count even when the district is not listed.
    inside = decide(policy, state(), nature_code="VAG", district="D9", **IN_DOWNTOWN)
    # Without coordinates the district decides: D2 is the co-response unit's only.
    by_district = decide(policy, state(), nature_code="VAG", district="D2")
    co = decide(policy, state(), nature_code="MNTL", district="D2")
    assert inside.program.id == "field" and inside.destination is Destination.call_team
    assert co.program.id == "co-response" and co.destination is Destination.joint
    for d in (by_district, outside):
        assert d.destination is Destination.police and d.eligible
        assert d.not_served_reason == "outside_area"
        assert "outside its service area" in d.explanation
    # Coordinates decide where an area has polygons (the field team: outside), the
    # district where it has only districts (the co-response unit: D1, inside).
    assert by_point.program.id == "co-response"


def test_a_call_giving_no_location_is_not_refused_for_area(policy: CompiledPolicy) -> None:
    d = decide(policy, state(), nature_code="VAG")
    assert d.destination is Destination.call_team and d.program.id == "field"


def test_an_eligible_call_waits_for_a_unit_instead_of_going_to_police(
        policy: CompiledPolicy) -> None:
    d = decide(policy, state(field=2, co=1, queued=1), nature_code="MNTL", priority=3,
               district="D1")
    assert d.destination is Destination.call_team and d.eligible
    assert d.not_served_reason is None
    assert d.queued is not None and d.program.id == "field"
    assert d.queued.since == datetime.fromisoformat(TUESDAY_2PM)
    assert (d.queued.wait_limit_s, d.queued.position) == (20 * 60, 2)
    assert not d.needs_field_unit  # waiting holds no unit
    assert "Queued for program 'field' (Field team): position 2, waiting at most 20 min " \
           "(until Tue 14:20 local)" in d.explanation


def test_no_wait_limit_at_its_priority_a_full_queue_or_no_queue_kept_means_police(
        policy: CompiledPolicy) -> None:
    urgent = decide(policy, state(field=2, co=1), nature_code="MNTL", priority=2,
                    district="D1")
    full = decide(policy, state(field=2, co=1, queued=3), nature_code="MNTL", priority=3,
                  district="D1")
    # A caller that keeps no queue (no state): police at once, as before programs.
    no_queue = decide_call(facts(nature_code="MNTL", priority=3, district="D1",
                                 occurred_at=TUESDAY_2PM), policy,
                           Availability(units_total=3, units_busy=3))
    for d in (urgent, full, no_queue):
        assert d.destination is Destination.police and d.queued is None
        assert d.not_served_reason == "units_busy"
    assert "No program can take it now" in urgent.explanation


def test_a_limit_of_zero_keeps_calls_from_waiting_and_one_without_category_is_for_all(
) -> None:
    doc = programs_doc()
    doc["programs"][0]["queue"] = [{"priority": {"max": 1}, "max_wait_minutes": 0},
                                   {"max_wait_minutes": 25}]
    p = compiled(doc)
    busy = state(field=2, co=1)
    for code, priority in (("MNTL", 3), ("VAG", None), ("WELFARE", 5)):
        d = decide(p, busy, nature_code=code, priority=priority, district="D1")
        assert d.queued is not None and d.queued.wait_limit_s == 25 * 60, (code, priority)
    for priority in (0, 1):
        d = decide(p, busy, nature_code="VAG", priority=priority, district="D1")
        assert d.queued is None and d.destination is Destination.police
        assert d.not_served_reason == "units_busy"


def test_a_caller_counting_units_but_keeping_no_queue_has_nothing_wait(
        policy: CompiledPolicy) -> None:
    """`may_wait=False` (the live service until it keeps queues and timers): each
    program's units count, but a call that would queue or be deferred goes to police."""
    full = decide_call(facts(nature_code="MNTL", priority=3, district="D1",
                             occurred_at=TUESDAY_2PM), policy, NOBODY,
                       state=state(field=2, co=1), may_wait=False)
    night = redecide(facts(channel="officer_referral", nature_code="VAG",
                           occurred_at="2026-03-11T03:00:00-04:00"), policy, NOBODY,
                     None, closed=False, state=state(), may_wait=False)
    for d in (full, night):
        assert d.destination is Destination.police and d.eligible
        assert d.queued is None and d.deferred_until is None
    assert (full.not_served_reason, night.not_served_reason) == ("units_busy", "off_hours")
    # The same calls with the units counted the same, when they may wait.
    assert decide(policy, state(field=2, co=1), nature_code="MNTL", priority=3,
                  district="D1").queued is not None
    assert decide(policy, state(), channel="officer_referral", nature_code="VAG",
                  occurred_at="2026-03-11T03:00:00-04:00").deferred_until is not None


def test_a_deferrable_intake_outside_hours_is_scheduled_for_the_next_shift(
        policy: CompiledPolicy) -> None:
    # Friday 22:00 → Saturday's shift at 10:00.
    d = decide(policy, state(), channel="officer_referral", nature_code="VAG",
               occurred_at="2026-03-06T22:00:00-05:00")
    assert d.destination is Destination.call_team and d.not_served_reason is None
    assert d.deferred_until == datetime.fromisoformat("2026-03-07T10:00:00-05:00")
    assert d.program.id == "field" and not d.needs_field_unit
    assert "scheduled for the start of its next shift, Sat 07 Mar 10:00 local" \
        in d.explanation
    # The same call through the 911 channel is not deferrable: police, off hours.
    live = decide(policy, state(), channel="911", nature_code="VAG",
                  occurred_at="2026-03-06T22:00:00-05:00")
    assert live.destination is Destination.police and live.not_served_reason == "off_hours"


def test_deferral_crosses_a_change_of_clocks_and_skips_dates_off(policy: CompiledPolicy
                                                                 ) -> None:
    # Saturday 7 March after 18:00 EST; no Sunday shift; Monday 08:00 is EDT.
    d = decide(policy, state(), channel="follow_up", nature_code="WELFARE",
               occurred_at="2026-03-07T19:00:00-05:00")
    assert d.deferred_until is not None
    assert d.deferred_until.isoformat() == "2026-03-09T08:00:00-04:00"
    # Christmas Eve (Thursday) at night: Friday the 25th is off, Saturday's shift is next.
    x = decide(policy, state(), channel="officer_referral", nature_code="WELFARE",
               occurred_at="2026-12-24T21:00:00-05:00")
    assert x.deferred_until is not None
    assert x.deferred_until.isoformat() == "2026-12-26T10:00:00-05:00"


def test_a_deferrable_intake_at_capacity_waits_for_the_next_free_unit_without_a_limit(
        policy: CompiledPolicy) -> None:
    # Tuesday 14:00 at capacity: from now, for the next free unit, never falling back.
    d = decide(policy, state(field=2), channel="follow_up", nature_code="WELFARE")
    assert d.deferred_until is not None and d.queued is None
    assert d.deferred_until.isoformat() == "2026-03-10T14:00:00-04:00"
    assert "waits for the next free unit, without a limit" in d.explanation
    # Even where its category has a wait limit: a queue would send it to police later.
    q = decide(policy, state(field=2), channel="follow_up", nature_code="VAG")
    assert q.queued is None and q.deferred_until == d.deferred_until
    # The same call from a 911 caller queues, limit and all.
    caller = decide(policy, state(field=2), nature_code="VAG")
    assert caller.queued is not None and caller.deferred_until is None


def test_a_safety_exclusion_never_waits_and_is_never_deferred(policy: CompiledPolicy) -> None:
    for fields in ({"channel": "officer_referral", "occurred_at": "2026-03-06T22:00:00-05:00"},
                   {"priority": 4}):
        d = decide(policy, state(field=2, co=1), nature_code="MNTL", flags=["weapon"],
                   district="D1", **fields)
        assert (d.destination, d.basis) == (Destination.police, "exclusion")
        assert d.queued is None and d.deferred_until is None


def test_test_and_training_calls_hold_no_unit_and_never_wait(policy: CompiledPolicy) -> None:
    for purpose in ("test", "training"):
        d = decide(policy, state(field=2, co=1), nature_code="MNTL", priority=3,
                   district="D1", purpose=purpose)
        assert d.destination is Destination.call_team and d.program.id == "field"
        assert d.queued is None and not d.needs_field_unit
        assert "it holds no unit" in d.explanation
    live = decide(policy, state(field=1), nature_code="MNTL", district="D1")
    assert live.needs_field_unit


def _queued(policy: CompiledPolicy) -> tuple[Any, Decision]:
    call = facts(nature_code="MNTL", priority=3, district="D1", occurred_at=TUESDAY_2PM)
    d = decide_call(call, policy, NOBODY, state=state(field=2, co=1))
    assert d.queued is not None
    return call, d


def test_fall_back_when_the_wait_limit_passes(policy: CompiledPolicy) -> None:
    call, queued = _queued(policy)
    later = queued.decided_at + timedelta(minutes=21)
    to_co = fall_back(call, policy, queued, later, "wait_limit", state=state(field=2))
    assert (to_co.destination, to_co.program.id) == (Destination.joint, "co-response")
    assert to_co.queued is None and to_co.decided_at == later
    assert "its wait limit (20 min) passed" in to_co.explanation
    police = fall_back(call, policy, queued, later, "wait_limit", state=state(field=2, co=1))
    assert police.destination is Destination.police
    assert police.not_served_reason == "wait_exceeded" and police.queued is None
    assert police.eligible and police.basis == "rule"


def test_an_update_making_a_queued_call_urgent_falls_back(policy: CompiledPolicy) -> None:
    call, queued = _queued(policy)
    busy = state(field=2, co=1, queued=0)
    urgent = call.model_copy(update={"priority": 1})
    d = redecide(urgent, policy, NOBODY, queued, closed=False, state=busy,
                 now=queued.decided_at + timedelta(minutes=5))
    assert d.destination is Destination.police and d.not_served_reason == "wait_exceeded"
    assert "an update made it urgent" in d.explanation
    # An update that lets it wait keeps its place and the time it began waiting.
    calmer = call.model_copy(update={"priority": 4, "narrative": "calmer now"})
    kept = redecide(calmer, policy, NOBODY, queued, closed=False, state=busy)
    assert kept.queued == queued.queued
    # A weapon reported while it waits: police on the exclusion, not a fall-back.
    armed = call.model_copy(update={"flags": frozenset({"weapon"})})
    x = redecide(armed, policy, NOBODY, queued, closed=False, state=busy)
    assert x.basis == "exclusion" and x.not_served_reason is None


def test_policy_order_is_the_order_tried() -> None:
    doc = programs_doc()
    doc["programs"][0], doc["programs"][1] = doc["programs"][1], doc["programs"][0]
    d = decide(compiled(doc), state(), nature_code="MNTL", district="D1")
    assert d.program.id == "co-response" and d.destination is Destination.joint


def test_the_what_if_decides_each_call_of_a_policy_of_programs_by_its_own_place() -> None:
    policy = compiled(programs_doc())
    calls = [SimCall(call_id=f"c{i}", facts=facts(nature_code="VAG", district=d,
                                                  occurred_at=TUESDAY_2PM))
             for i, d in enumerate(["D1", "D9", "D1", "D9"])]
    report = simulate(calls, policy, policy, keep_calls=True)
    # Alike in every field the rules read, the calls differ in district: the area decides.
    assert [c.not_served_reason for c in report.decided] == [None, "outside_area", None,
                                                             "outside_area"]


def test_the_dry_run_account_names_each_program_consulted(policy: CompiledPolicy) -> None:
    call = facts(nature_code="MNTL", priority=1, district="D1", occurred_at=TUESDAY_2PM)
    shaped: list[Shaping] = []
    d = route(call, classify_for_routing(call, policy), policy, NOBODY, shaped=shaped,
              state=state(field=2))
    assert d.program.id == "co-response"
    assert [(s["program"], s["setting"], s["effect"]) for s in shaped] == [
        ("field", "hours", "allowed"), ("field", "capacity", "police respond (units busy)"),
        ("co-response", "hours", "allowed"), ("co-response", "capacity", "allowed")]
