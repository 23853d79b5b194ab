"""Capacity from the roster (issue 14), pure: a program that keeps a roster has as many
units as are on duty (`ProgramState.units_on_duty`), whatever its policy says; one that
keeps none has the policy's `units`. The decision says which (`program.units_from`)."""

from __future__ import annotations

from typing import Any

import pytest

from routing.decide import decide_call
from routing.models import Availability, Decision, Destination, ProgramState
from routing.programs import place
from rules.evaluate import CompiledPolicy, classify_for_routing
from tests.factories import compiled, facts, one_team_doc, programs_doc

TUESDAY_2PM = "2026-03-10T14:00:00-04:00"
NOBODY = Availability(units_total=3, units_busy=0)
MH = {"nature_code": "MNTL", "district": "D1", "priority": 3, "occurred_at": TUESDAY_2PM}


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return compiled(programs_doc())  # the field team's policy says 2 units


def decide(policy: CompiledPolicy, field: ProgramState, co: ProgramState | None = None,
           **fields: Any) -> Decision:
    return decide_call(facts(**{**MH, **fields}), policy, NOBODY,
                       state={"field": field, "co-response": co or ProgramState()})


def test_a_roster_of_one_on_duty_is_full_with_one_call(policy: CompiledPolicy) -> None:
    first = decide(policy, ProgramState(units_on_duty=1))
    assert (first.program.id, first.program.units_total) == ("field", 1)
    assert first.program.units_from == "roster"
    assert "1 of 1 units free" in first.explanation
    second = decide(policy, ProgramState(units_busy=1, units_on_duty=1))
    # The policy's 2 would have taken it; the roster's 1 is busy: the next program does.
    assert second.program.id == "co-response", second.explanation
    assert "Program 'field' (Field team) cannot take it now: all 1 of its units are " \
        "busy." in second.factors
    # The next one busy too: it waits for the roster's unit.
    alone = decide(policy, ProgramState(units_busy=1, units_on_duty=1),
                   ProgramState(units_busy=1))
    assert alone.queued is not None and alone.program.id == "field", alone.explanation
    assert (alone.program.units_total, alone.program.units_from) == (1, "roster")


def test_without_a_roster_the_policy_counts(policy: CompiledPolicy) -> None:
    d = decide(policy, ProgramState(units_busy=1))
    assert (d.program.units_total, d.program.units_from) == (2, "policy")
    assert d.queued is None and d.destination is Destination.call_team


def test_a_roster_with_nobody_on_duty_has_no_capacity(policy: CompiledPolicy) -> None:
    call = facts(**{**MH, "priority": 1})  # may not wait: the next program is tried
    classification = classify_for_routing(call, policy)
    placed = place(call, classification.category, True, policy, NOBODY,
                   {"field": ProgramState(units_on_duty=0), "co-response": ProgramState()})
    [tried] = placed.tried
    assert (tried.program.id, tried.reason, tried.units_free) == ("field", "units_busy", 0)
    assert placed.taken is not None and placed.taken.program.id == "co-response"


def test_a_roster_larger_than_the_policy_takes_more(policy: CompiledPolicy) -> None:
    d = decide(policy, ProgramState(units_busy=2, units_on_duty=3))
    assert d.queued is None and d.program.id == "field"
    assert "1 of 3 units free" in d.explanation


def test_one_team_policy_capacity_comes_from_the_availability_given() -> None:
    policy = compiled(one_team_doc())
    call = facts(**MH)
    roster = decide_call(call, policy, Availability(units_total=1, units_busy=1,
                                                    units_from="roster"))
    assert roster.not_served_reason == "units_busy"
    assert (roster.program.units_total, roster.program.units_from) == (1, "roster")
    policy_count = decide_call(call, policy, Availability(units_total=4, units_busy=1))
    assert policy_count.destination is Destination.call_team
    assert policy_count.program.units_from == "policy"
