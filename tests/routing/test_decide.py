"""Routing: phases, safety exclusions, hours (with DST), capacity, errors, overrides,
re-deciding a changed call, and the program settings a decision consulted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

import routing.decide
from routing.decide import Shaping, apply_backup, apply_override, decide_call, redecide, route
from routing.models import Availability, Decision, Destination, Mode, ProgramState
from rules.call import CallFacts
from rules.conditions import CallView, Check, Part
from rules.evaluate import CompiledPolicy, classify, compile_policy
from rules.models import Policy
from tests.factories import (
    compiled,
    decide,
    facts,
    one_team_policy,
    policy_doc,
    shipped_policy,
)

MENTAL_HEALTH: dict[str, Any] = {"channel": "911", "nature_code": "MNTL",
                                 "nature_text": "Mental person non-violent"}


def with_program(policy: Policy, **changes: Any) -> CompiledPolicy:
    program = policy.program.model_copy(update=changes)
    return compile_policy(policy.model_copy(update={"program": program}))


@pytest.fixture(scope="module")
def one_team() -> CompiledPolicy:
    """The shipped rules with one team (the one-team format, 08:00-24:00, 4 units): these
    tests are about what a single team decides and how it says so. The shipped policy's
    own programs: test_a_follow_up_… below and its cases (tests/routing/test_cases.py)."""
    return compile_policy(one_team_policy())


# --- phases ------------------------------------------------------------------------------


@pytest.mark.parametrize(("phase", "destination", "mode"), [
    (1, Destination.joint, Mode.co_response),
    (2, Destination.call_team, Mode.call_with_police_standby),
    (3, Destination.call_team, Mode.call_direct),
])
def test_phase_decides_the_mode_of_an_eligible_call(phase: int, destination: Destination,
                                                    mode: Mode) -> None:
    policy = with_program(one_team_policy(), phase=phase)
    decision = decide(policy, **MENTAL_HEALTH)
    assert (decision.destination, decision.mode) == (destination, mode)
    assert decision.eligible is True
    assert decision.not_served_reason is None
    assert decision.basis == "rule"
    assert decision.category == "mental_health"
    assert decision.program.phase == phase
    assert f"phase {phase}" in decision.explanation
    assert decision.involves_team


def test_phase_change_through_the_document_dict_too() -> None:
    doc = policy_doc(phase=3)
    decision = decide(compiled(doc), nature_code="X")
    assert (decision.destination, decision.mode) == (Destination.call_team, Mode.call_direct)


# --- safety exclusions under the shipped rules -----------------------------------------------


@pytest.mark.parametrize(("flag", "exclusion"), [
    ("weapon", "weapon"),
    ("violence", "violence"),
    ("injury", "injury"),
    ("medical", "medical"),
    ("crime_in_progress", "crime-in-progress"),
])
def test_each_safety_flag_sends_an_eligible_call_to_police(one_team: CompiledPolicy, flag: str,
                                                           exclusion: str) -> None:
    assert decide(one_team, **MENTAL_HEALTH).destination is Destination.call_team
    decision = decide(one_team, **MENTAL_HEALTH, flags=[flag])
    assert (decision.destination, decision.mode) == (Destination.police, Mode.police_only)
    assert decision.basis == "exclusion"
    assert decision.eligible is False
    assert decision.not_served_reason is None
    assert decision.category == "mental_health"
    assert decision.matched_rules == [exclusion, "mental-health"]
    assert f"'{exclusion}'" in decision.explanation
    assert "Safety exclusion" in decision.explanation


def test_several_flags_list_every_exclusion_in_policy_order(one_team: CompiledPolicy) -> None:
    decision = decide(one_team, **MENTAL_HEALTH, flags=["medical", "weapon"])
    assert decision.matched_rules == ["weapon", "medical", "mental-health"]
    assert "'weapon'" in decision.explanation and "'medical'" in decision.explanation


@pytest.mark.parametrize(("fields", "exclusion"), [
    ({"narrative": "He is waving a MACHETE"}, "weapon"),
    ({"nature_code": "ASSAULT"}, "violence"),
    ({"nature_code": "od"}, "medical"),
    ({"nature_code": "SHOPLIFT"}, "crime-in-progress"),
    ({"narrative": "neighbours mention domestic  violence"}, "domestic-violence"),
    ({"narrative": "possible drug deal"}, "drug-sales"),
])
def test_exclusions_from_codes_and_text(one_team: CompiledPolicy, fields: dict[str, Any],
                                        exclusion: str) -> None:
    decision = decide(one_team, **{**MENTAL_HEALTH, **fields})
    assert decision.destination is Destination.police
    assert decision.basis == "exclusion"
    assert exclusion in decision.matched_rules


def test_exclusions_win_even_out_of_hours_and_with_no_units(one_team: CompiledPolicy) -> None:
    decision = decide(one_team, **MENTAL_HEALTH, flags=["weapon"], units_busy=4,
                      occurred_at="2026-03-11T03:00:00-04:00")
    assert decision.basis == "exclusion"
    assert decision.not_served_reason is None


def test_word_inside_another_word_is_not_an_exclusion(one_team: CompiledPolicy) -> None:
    decision = decide(one_team, **MENTAL_HEALTH, narrative="episode begun after Gunther left")
    assert decision.destination is Destination.call_team


# --- hours --------------------------------------------------------------------------------


def test_off_hours_eligible_call_goes_to_police(one_team: CompiledPolicy) -> None:
    decision = decide(one_team, **MENTAL_HEALTH, occurred_at="2026-03-11T03:00:00-04:00")
    assert (decision.destination, decision.mode) == (Destination.police, Mode.police_only)
    assert decision.eligible is True
    assert decision.not_served_reason == "off_hours"
    assert decision.basis == "rule"
    assert decision.category == "mental_health"
    assert decision.program.within_hours is False
    assert decision.program.local_time == "Wed 03:00"
    assert "Outside team hours" in decision.explanation
    assert "08:00-24:00" in decision.explanation
    assert "America/New_York" in decision.explanation
    assert "mental-health" in decision.explanation


def test_a_follow_up_under_the_shipped_policy() -> None:
    """What the README says of an opened follow-up under the shipped policy: the CALL
    field team's within its hours with a pair free; outside them, or with every pair
    busy, police for a service that keeps no queue (`may_wait` False); for one that does,
    scheduled for the next 08:00 shift off hours, and waiting for the next free pair,
    without a limit, when every pair is out."""
    shipped = compile_policy(shipped_policy())
    follow_up = facts(channel="follow_up", nature_code="FOLLOWUP",
                      nature_text="Follow-up visit", occurred_at="2026-03-11T10:00:00-04:00")
    night = follow_up.model_copy(update={"occurred_at": datetime.fromisoformat(
        "2026-03-11T03:00:00-04:00")})
    free = Availability(units_total=4, units_busy=0)
    busy = {"call": ProgramState(units_busy=4)}
    day = decide_call(follow_up, shipped, free, state={}, may_wait=False)
    assert (day.destination, day.category, day.program.id) == (
        Destination.call_team, "follow_up", "call")
    for call, state in ((night, {}), (follow_up, busy)):
        now = decide_call(call, shipped, free, state=state, may_wait=False)
        assert (now.destination, now.eligible, now.not_served_reason) == (
            Destination.police, True, "off_hours" if call is night else "units_busy")
        later = decide_call(call, shipped, free, state=state)
        assert (later.destination, later.program.id, later.not_served_reason) == (
            Destination.call_team, "call", None)
        assert later.deferred_until == (call.occurred_at if call is follow_up else
                                        datetime.fromisoformat("2026-03-11T08:00:00-04:00"))
        assert later.needs_field_unit is False and "deferrable" in later.explanation


def test_off_hours_given_in_utc_is_converted(one_team: CompiledPolicy) -> None:
    # 07:00 UTC is 03:00 in New York: off hours (though 07:00 is not late at night in UTC
    # and 13:00 UTC is inside hours either way).
    assert decide(one_team, **MENTAL_HEALTH,
                  occurred_at="2026-03-11T07:00:00Z").not_served_reason == "off_hours"
    # 03:30 UTC is 23:30 in New York: inside hours although 03:30 is not.
    decision = decide(one_team, **MENTAL_HEALTH, occurred_at="2026-03-11T03:30:00Z")
    assert decision.destination is Destination.call_team
    assert decision.program.local_time == "Tue 23:30"


@pytest.mark.parametrize(("occurred_at", "local", "in_hours"), [
    # Spring forward, Sunday 2026-03-08: 08:00 EDT is 12:00 UTC (it was 13:00 the day before).
    ("2026-03-08T11:59:00Z", "Sun 07:59", False),
    ("2026-03-08T12:00:00Z", "Sun 08:00", True),
    ("2026-03-07T12:59:00Z", "Sat 07:59", False),
    ("2026-03-07T13:00:00Z", "Sat 08:00", True),
    # Fall back, Sunday 2026-11-01: 08:00 EST is 13:00 UTC.
    ("2026-11-01T12:59:00Z", "Sun 07:59", False),
    ("2026-11-01T13:00:00Z", "Sun 08:00", True),
    ("2026-10-31T11:59:00Z", "Sat 07:59", False),
    ("2026-10-31T12:00:00Z", "Sat 08:00", True),
])
def test_hours_across_dst_changes(one_team: CompiledPolicy, occurred_at: str, local: str,
                                  in_hours: bool) -> None:
    decision = decide(one_team, **MENTAL_HEALTH, occurred_at=occurred_at)
    assert decision.program.local_time == local
    assert decision.program.within_hours is in_hours
    if in_hours:
        assert decision.destination is Destination.call_team
        assert decision.not_served_reason is None
    else:
        assert decision.destination is Destination.police
        assert decision.not_served_reason == "off_hours"


@pytest.mark.parametrize(("occurred_at", "in_hours"), [
    ("2026-03-13T19:59:00-04:00", False),  # Fri before the window
    ("2026-03-13T20:00:00-04:00", True),   # Fri night
    ("2026-03-14T03:59:00-04:00", True),   # Sat early morning: Friday's shift
    ("2026-03-14T04:00:00-04:00", False),
    ("2026-03-14T22:00:00-04:00", False),  # Sat night: no Saturday shift
    ("2026-03-13T02:00:00-04:00", False),  # Fri early morning: Thursday's shift, none
])
def test_hours_wrapping_midnight_belong_to_the_starting_day(occurred_at: str,
                                                           in_hours: bool) -> None:
    policy = compiled(policy_doc(hours={"start": "20:00", "end": "04:00", "days": ["fri"]}))
    decision = decide(policy, nature_code="X", occurred_at=occurred_at)
    assert decision.program.within_hours is in_hours
    assert (decision.not_served_reason is None) is in_hours


def test_hours_days_exclude_weekends() -> None:
    weekdays = ["mon", "tue", "wed", "thu", "fri"]
    policy = compiled(policy_doc(hours={"start": "08:00", "end": "17:00", "days": weekdays}))
    assert decide(policy, nature_code="X",
                  occurred_at="2026-03-13T10:00:00-04:00").destination is Destination.call_team
    saturday = decide(policy, nature_code="X", occurred_at="2026-03-14T10:00:00-04:00")
    assert saturday.not_served_reason == "off_hours"
    assert "mon,tue,wed,thu,fri" in saturday.explanation


# --- capacity -----------------------------------------------------------------------------


def test_all_units_busy(one_team: CompiledPolicy) -> None:
    decision = decide(one_team, **MENTAL_HEALTH, units_busy=4)
    assert (decision.destination, decision.mode) == (Destination.police, Mode.police_only)
    assert decision.eligible is True
    assert decision.not_served_reason == "units_busy"
    assert "All 4 team units are busy" in decision.explanation
    assert decision.program.units_busy == 4


def test_one_free_unit_is_enough(one_team: CompiledPolicy) -> None:
    decision = decide(one_team, **MENTAL_HEALTH, units_busy=3)
    assert decision.destination is Destination.call_team
    assert "1 of 4 units free" in decision.explanation


def test_more_busy_than_total_counts_as_none_free(one_team: CompiledPolicy) -> None:
    decision = decide_call(facts(**MENTAL_HEALTH), one_team,
                           Availability(units_total=2, units_busy=5))
    assert decision.not_served_reason == "units_busy"


def test_off_hours_is_reported_before_units_busy(one_team: CompiledPolicy) -> None:
    decision = decide(one_team, **MENTAL_HEALTH, units_busy=4,
                      occurred_at="2026-03-11T03:00:00-04:00")
    assert decision.not_served_reason == "off_hours"


@pytest.mark.parametrize("units_busy", [0, 4])
@pytest.mark.parametrize("occurred_at", ["2026-03-10T14:00:00-04:00", "2026-03-11T03:00:00-04:00"])
def test_rule_without_field_unit_ignores_hours_and_capacity(one_team: CompiledPolicy,
                                                           occurred_at: str,
                                                           units_busy: int) -> None:
    decision = decide(one_team, channel="crisis_line", nature_code="CRISIS",
                      nature_text="Caller in distress", occurred_at=occurred_at,
                      units_busy=units_busy)
    assert (decision.destination, decision.mode) == (Destination.call_team, Mode.call_direct)
    assert decision.eligible is True
    assert decision.not_served_reason is None
    assert decision.needs_field_unit is False
    assert decision.category == "crisis_line"
    assert "No field unit needed" in decision.explanation


@pytest.mark.parametrize(("occurred_at", "units_busy", "reason"), [
    ("2026-03-11T03:00:00-04:00", 0, "off_hours"),
    ("2026-03-10T14:00:00-04:00", 2, "units_busy"),
])
def test_joint_rule_needing_a_field_unit_respects_hours_and_capacity(
        occurred_at: str, units_busy: int, reason: str) -> None:
    policy = compiled(policy_doc(rules=[{"id": "j", "category": "cat_a", "action": "joint",
                                         "when": {"nature_code": ["J"]}}], units=2))
    decision = decide(policy, nature_code="J", occurred_at=occurred_at, units_busy=units_busy)
    assert decision.destination is Destination.police
    assert decision.eligible is True
    assert decision.not_served_reason == reason


def test_joint_rule_in_hours_gives_co_response() -> None:
    policy = compiled(policy_doc(rules=[{"id": "j", "category": "cat_a", "action": "joint",
                                         "when": {"nature_code": ["J"]}}], phase=3))
    decision = decide(policy, nature_code="J")
    assert (decision.destination, decision.mode) == (Destination.joint, Mode.co_response)
    assert decision.eligible is True
    assert decision.basis == "rule"
    assert "joint response" in decision.explanation


def test_police_rule_is_not_eligible() -> None:
    policy = compiled(policy_doc(rules=[{"id": "p", "category": "cat_a", "action": "police",
                                         "when": {"nature_code": ["P"]}}]))
    decision = decide(policy, nature_code="P")
    assert (decision.destination, decision.mode) == (Destination.police, Mode.police_only)
    assert decision.eligible is False
    assert decision.not_served_reason is None
    assert decision.basis == "rule"
    assert decision.matched_rules == ["p"]
    assert "'p'" in decision.explanation


# --- no rule, errors --------------------------------------------------------------------------


def test_no_rule_goes_to_police(one_team: CompiledPolicy) -> None:
    decision = decide(one_team, nature_code="ALRBA", nature_text="Burglar alarm audible")
    assert (decision.destination, decision.mode) == (Destination.police, Mode.police_only)
    assert decision.basis == "no_rule"
    assert decision.eligible is False
    assert decision.category is None
    assert decision.matched_rules == []
    assert "No rule matched" in decision.explanation


def test_error_in_classification_goes_to_police(one_team: CompiledPolicy,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("regex exploded")

    monkeypatch.setattr(routing.decide, "classify_for_routing", broken)
    decision = decide(one_team, **MENTAL_HEALTH)
    assert (decision.destination, decision.mode) == (Destination.police, Mode.police_only)
    assert decision.basis == "evaluation_error"
    assert decision.eligible is False
    assert decision.category is None
    assert decision.matched_rules == []
    assert "RuntimeError: regex exploded" in decision.explanation
    assert decision.policy_version == "st-petersburg-call@1"


def test_error_inside_a_compiled_matcher_is_caught() -> None:
    policy = compiled(policy_doc())

    class Explodes(Part):
        def trace(self, c: CallView, out: list[Check]) -> bool:
            raise ValueError("bad matcher")

    broken = CompiledPolicy(policy=policy.policy, zone=policy.zone, exclusions=(),
                            rules=(replace(policy.rules[0], when=Explodes()),))
    decision = decide(broken, nature_code="X")
    assert decision.basis == "evaluation_error"
    assert "ValueError: bad matcher" in decision.explanation


# --- every decision explains itself; determinism -----------------------------------------------


CASES: list[dict[str, Any]] = [
    MENTAL_HEALTH,
    {**MENTAL_HEALTH, "flags": ["weapon"]},
    {**MENTAL_HEALTH, "occurred_at": "2026-03-11T03:00:00-04:00"},
    {"nature_code": "ALRBA", "nature_text": "Burglar alarm"},
    {"channel": "crisis_line", "nature_code": "CRISIS"},
    {"channel": "follow_up", "nature_code": "FU", "occurred_at": "2026-03-14T09:00:00Z"},
    {"nature_code": "VAG", "nature_text": "Homeless man sleeping", "priority": 4},
]


@pytest.mark.parametrize("call", CASES)
def test_every_decision_is_explained_and_versioned(one_team: CompiledPolicy,
                                                   call: dict[str, Any]) -> None:
    decision = decide(one_team, **call)
    assert decision.policy_version == "st-petersburg-call@1"
    assert decision.explanation.strip()
    assert decision.explanation == " ".join(decision.factors)
    assert isinstance(decision.matched_rules, list)
    for rule_id in decision.matched_rules:
        assert f"'{rule_id}'" in decision.explanation
    if decision.basis == "rule":
        assert decision.matched_rules
    assert decision.decided_at == facts(**call).occurred_at


@pytest.mark.parametrize("call", CASES)
def test_same_inputs_give_the_same_decision(one_team: CompiledPolicy,
                                            call: dict[str, Any]) -> None:
    first = decide(one_team, **call, units_busy=1)
    again = decide(compile_policy(one_team_policy()), **call, units_busy=1)
    assert again.model_dump() == first.model_dump()
    assert again.model_dump_json() == first.model_dump_json()


def test_decisions_use_occurred_at_not_the_clock(one_team: CompiledPolicy) -> None:
    # A call from long ago is judged at its own time: 02:00 local was off hours then.
    old = decide(one_team, **MENTAL_HEALTH, occurred_at="2001-06-05T02:00:00-04:00")
    assert old.not_served_reason == "off_hours"
    assert old.program.local_time == "Tue 02:00"
    assert old.decided_at == datetime(2001, 6, 5, 6, 0, tzinfo=UTC)


def test_the_same_instant_in_any_offset_decides_alike(one_team: CompiledPolicy) -> None:
    a = decide(one_team, **MENTAL_HEALTH, occurred_at="2026-03-10T23:30:00-04:00")
    b = decide(one_team, **MENTAL_HEALTH, occurred_at="2026-03-11T03:30:00Z")
    c = decide(one_team, **MENTAL_HEALTH, occurred_at="2026-03-11T12:30:00+09:00")
    assert a.model_dump(exclude={"decided_at"}) == b.model_dump(exclude={"decided_at"})
    assert b.model_dump(exclude={"decided_at"}) == c.model_dump(exclude={"decided_at"})
    assert a.decided_at == b.decided_at == c.decided_at


def test_route_takes_a_given_classification(one_team: CompiledPolicy) -> None:
    call = CallFacts.model_validate({**MENTAL_HEALTH, "occurred_at": "2026-03-10T18:00:00Z"})
    classification = classify(call, one_team)
    decision = route(call, classification, one_team, Availability(units_total=4, units_busy=0))
    assert decision == decide_call(call, one_team, Availability(units_total=4, units_busy=0))


# --- overrides -------------------------------------------------------------------------------


AT = datetime(2026, 3, 10, 18, 5, tzinfo=UTC)


def test_override_police_to_team_keeps_the_recommendation(one_team: CompiledPolicy) -> None:
    original = decide(one_team, nature_code="ALRBA", nature_text="Alarm")
    assert original.destination is Destination.police
    overridden = apply_override(original, destination=Destination.call_team, by="disp-12",
                                reason="caller known to the team", at=AT)
    assert overridden.destination is Destination.call_team
    assert overridden.mode is Mode.call_with_police_standby
    assert overridden.not_served_reason is None
    assert overridden.override is not None
    assert overridden.override.from_destination is Destination.police
    assert overridden.override.from_mode is Mode.police_only
    assert (overridden.override.by, overridden.override.reason) == (
        "disp-12", "caller known to the team")
    assert overridden.override.at == AT
    assert "caller known to the team" in overridden.explanation
    assert "disp-12" in overridden.explanation
    assert overridden.explanation.startswith(original.explanation)
    assert overridden.factors[:-1] == original.factors
    # The recommendation's own facts are unchanged.
    assert (overridden.basis, overridden.matched_rules, overridden.policy_version) == (
        original.basis, original.matched_rules, original.policy_version)
    assert original.override is None and original.destination is Destination.police


def test_override_team_to_police(one_team: CompiledPolicy) -> None:
    original = decide(one_team, **MENTAL_HEALTH)
    assert original.destination is Destination.call_team and original.eligible
    overridden = apply_override(original, destination=Destination.police, by="disp-3",
                                reason="caller heard shouting in background", at=AT)
    assert (overridden.destination, overridden.mode) == (Destination.police, Mode.police_only)
    assert overridden.not_served_reason == "override"
    assert overridden.eligible is True
    assert overridden.override is not None
    assert overridden.override.from_destination is Destination.call_team
    assert overridden.override.from_mode is Mode.call_with_police_standby
    assert "caller heard shouting in background" in overridden.explanation


def test_override_of_an_ineligible_call_to_police_has_no_not_served_reason(
        one_team: CompiledPolicy) -> None:
    original = decide(one_team, **MENTAL_HEALTH, flags=["weapon"])
    overridden = apply_override(original, destination=Destination.police, by="d",
                                reason="confirming", at=AT)
    assert overridden.not_served_reason is None


def test_override_of_an_off_hours_call_to_the_team_clears_not_served(
        one_team: CompiledPolicy) -> None:
    original = decide(one_team, **MENTAL_HEALTH, occurred_at="2026-03-11T03:00:00-04:00")
    assert original.not_served_reason == "off_hours"
    overridden = apply_override(original, destination=Destination.joint, by="d",
                                reason="on-call team member available", at=AT)
    assert (overridden.destination, overridden.mode) == (Destination.joint, Mode.co_response)
    assert overridden.not_served_reason is None
    assert overridden.override is not None
    assert overridden.override.from_destination is Destination.police


def test_override_to_team_keeps_a_team_mode() -> None:
    phase3 = compiled(policy_doc(phase=3))
    original = decide(phase3, nature_code="X")
    assert original.mode is Mode.call_direct
    same = apply_override(original, destination=Destination.call_team, by="d", reason="r",
                          at=AT)
    assert same.mode is Mode.call_direct


def test_override_round_trips_as_json(one_team: CompiledPolicy) -> None:
    overridden = apply_override(decide(one_team, **MENTAL_HEALTH),
                                destination=Destination.police, by="d", reason="why", at=AT)
    assert Decision.model_validate_json(overridden.model_dump_json()) == overridden


# --- re-deciding a call a CAD event changed ---------------------------------------------------


def redecide_with(policy: CompiledPolicy, previous: Decision | None, *, closed: bool = False,
                  units_busy: int = 0, **fields: Any) -> Decision:
    availability = Availability(units_total=policy.policy.program.units, units_busy=units_busy)
    return redecide(facts(**fields), policy, availability, previous, closed=closed)


def test_redecide_a_new_call_is_decide_call(one_team: CompiledPolicy) -> None:
    assert redecide_with(one_team, None, **MENTAL_HEALTH) == decide(one_team, **MENTAL_HEALTH)


def test_redecide_a_closed_call_keeps_its_decision(one_team: CompiledPolicy) -> None:
    previous = decide(one_team, nature_code="ALRBA", nature_text="Alarm")
    assert previous.destination is Destination.police
    kept = redecide_with(one_team, previous, closed=True, **MENTAL_HEALTH)
    assert kept == previous
    # Open, the same facts decide afresh.
    assert redecide_with(one_team, previous, **MENTAL_HEALTH).destination is Destination.call_team


def test_redecide_a_call_that_arrives_closed_is_decided(one_team: CompiledPolicy) -> None:
    decision = redecide_with(one_team, None, closed=True, **MENTAL_HEALTH)
    assert decision == decide(one_team, **MENTAL_HEALTH)


def test_redecide_keeps_the_dispatchers_override(one_team: CompiledPolicy) -> None:
    previous = apply_override(decide(one_team, **MENTAL_HEALTH), destination=Destination.police,
                              by="disp-3", reason="known to be armed before", at=AT)
    decision = redecide_with(one_team, previous, **{**MENTAL_HEALTH, "priority": 2})
    assert decision.destination is Destination.police
    assert decision.override == previous.override
    assert decision.factors[-1] == previous.factors[-1]
    assert decision.not_served_reason == "override"


def test_redecide_keeps_the_teams_backup_request(one_team: CompiledPolicy) -> None:
    previous = apply_backup(decide(one_team, **MENTAL_HEALTH), by="t-1", reason="crowd", at=AT)
    decision = redecide_with(one_team, previous, **{**MENTAL_HEALTH, "priority": 2})
    assert (decision.destination, decision.mode) == (Destination.joint, Mode.co_response)
    assert decision.backup == previous.backup


def test_redecide_keeps_an_override_and_a_backup_together(one_team: CompiledPolicy) -> None:
    overridden = apply_override(decide(one_team, nature_code="ALRBA", nature_text="Alarm"),
                                destination=Destination.call_team, by="d", reason="known",
                                at=AT)
    previous = apply_backup(overridden, by=None, reason=None, at=AT)
    decision = redecide_with(one_team, previous, nature_code="ALRBA", nature_text="Alarm again")
    assert decision.override is not None and decision.backup is not None
    assert (decision.override.by, decision.override.reason) == ("d", "known")
    assert decision.destination is Destination.joint


@pytest.mark.parametrize("earlier", ["override", "backup"])
def test_redecide_a_safety_exclusion_wins_over_an_earlier_choice(
        one_team: CompiledPolicy, earlier: str) -> None:
    first = decide(one_team, **MENTAL_HEALTH)
    previous = (apply_override(first, destination=Destination.call_team, by="d", reason="r",
                               at=AT) if earlier == "override"
                else apply_backup(first, by="t", reason="r", at=AT))
    decision = redecide_with(one_team, previous, **MENTAL_HEALTH, flags=["weapon"])
    assert (decision.destination, decision.basis) == (Destination.police, "exclusion")
    assert decision.override is None and decision.backup is None


# --- what shaped a decision (the dry-run's shaped_by) ------------------------------------------


SHAPES = compiled(policy_doc(units=2, phase=2, exclusions=[
    {"id": "weapon", "when": {"flags_any": ["weapon"]}}], rules=[
    {"id": "t", "category": "cat_a", "action": "team", "when": {"nature_code": ["T"]}},
    {"id": "j", "category": "cat_a", "action": "joint", "when": {"nature_code": ["J"]}},
    {"id": "p", "category": "cat_a", "action": "police", "when": {"nature_code": ["P"]}},
    {"id": "ph", "category": "cat_a", "action": "team", "needs_field_unit": False,
     "when": {"nature_code": ["PH"]}},
]))
HOURS = "08:00-24:00 mon,tue,wed,thu,fri,sat,sun"
IN_HOURS: Shaping = {"setting": "hours", "value": HOURS, "local_time": "Tue 14:00",
                     "within_hours": True, "effect": "allowed"}
FREE: Shaping = {"setting": "capacity", "units_total": 2, "units_busy": 1, "effect": "allowed"}


@pytest.mark.parametrize(("fields", "units_busy", "expected"), [
    ({"nature_code": "T"}, 1, [IN_HOURS, FREE, {"setting": "phase", "value": 2,
                                                "effect": "mode call_with_police_standby"}]),
    ({"nature_code": "T", "occurred_at": "2026-03-11T03:00:00-04:00"}, 1,
     [{"setting": "hours", "value": HOURS, "local_time": "Wed 03:00", "within_hours": False,
       "effect": "police respond (off hours)"}]),
    ({"nature_code": "T"}, 2, [IN_HOURS, {"setting": "capacity", "units_total": 2,
                                          "units_busy": 2,
                                          "effect": "police respond (units busy)"}]),
    ({"nature_code": "J"}, 1, [IN_HOURS, FREE]),  # a joint rule: the phase is not asked
    ({"nature_code": "PH"}, 2, []),  # phone work: neither hours nor units
    ({"nature_code": "P"}, 0, []),
    ({"nature_code": "T", "flags": ["weapon"]}, 0, []),
    ({"nature_code": "NONE"}, 0, []),
])
def test_route_records_the_program_settings_it_consulted(
        fields: dict[str, Any], units_busy: int, expected: list[Shaping]) -> None:
    call = facts(**fields)
    availability = Availability(units_total=2, units_busy=units_busy)
    shaped: list[Shaping] = []
    decision = route(call, classify(call, SHAPES), SHAPES, availability, shaped=shaped)
    assert shaped == expected
    assert decision == decide_call(call, SHAPES, availability)
