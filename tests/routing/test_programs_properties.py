"""Properties of routing over response programs (hypothesis; strategies in
tests/rules/strategies.py).

- A call a safety exclusion holds is never queued, deferred or sent to any team, whatever
  the programs, their queues and deferrable channels, their units and the state given.
- A test or training call is never refused for busy units, never queued, and never
  holds a unit.
- A one-team policy decides as before when a caller that keeps queues gives its state
  (it has no wait limits nor deferrable channels), and as the same policy written as one
  explicit program (`programs:`) decides: same destination, mode, category, eligibility,
  reason and unit held.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from routing.decide import decide_call
from routing.models import Availability, Destination, Mode, ProgramState
from rules.call import CallFacts
from rules.programs import programs_of
from tests.factories import compiled
from tests.rules.strategies import (
    BOUNDED,
    FLAGS,
    calls,
    program_variants,
    shipped_variants,
)

safety_flags = st.lists(st.sampled_from(FLAGS), min_size=1, max_size=3, unique=True)


@BOUNDED
@given(doc=program_variants(), call=calls(flags=safety_flags),
       busy=st.lists(st.integers(0, 4), min_size=3, max_size=3),
       queued=st.lists(st.integers(0, 3), min_size=3, max_size=3),
       purpose=st.sampled_from(["live", "live", "test"]))
def test_a_safety_exclusion_is_never_queued_deferred_or_sent_to_a_team(
        doc: dict[str, Any], call: dict[str, Any], busy: list[int], queued: list[int],
        purpose: str) -> None:
    policy = compiled(doc)
    facts = CallFacts.model_validate({**call, "purpose": purpose})
    state = {f"p{i}": ProgramState(units_busy=b, queued=q)
             for i, (b, q) in enumerate(zip(busy, queued, strict=True))}
    for given_state in (state, None):
        d = decide_call(facts, policy, Availability(units_total=policy.policy.program.units,
                                                    units_busy=sum(busy)),
                        state=given_state)
        assert (d.destination, d.mode, d.basis) == (Destination.police, Mode.police_only,
                                                    "exclusion")
        assert d.queued is None and d.deferred_until is None


def _explicit(doc: dict[str, Any]) -> dict[str, Any]:
    """The one-team policy written as one explicit program."""
    policy = compiled(doc).policy
    only = programs_of(policy).programs[0]
    return {**doc, "programs": [only.model_dump(mode="json", exclude_none=True)]}


KEPT = ("destination", "mode", "category", "eligible", "not_served_reason", "basis",
        "needs_field_unit", "matched_rules", "queued", "deferred_until")


@BOUNDED
@given(doc=shipped_variants(), call=calls(), busy=st.integers(0, 5))
def test_a_one_team_policy_decides_as_before_with_state_and_as_one_explicit_program(
        doc: dict[str, Any], call: dict[str, Any], busy: int) -> None:
    one_team = compiled(doc)
    explicit = compiled(_explicit(doc))
    assert explicit.programs.named and len(explicit.programs.programs) == 1
    units = one_team.policy.program.units
    facts = CallFacts.model_validate(call)
    availability = Availability(units_total=units, units_busy=busy)
    pid = one_team.programs.programs[0].id
    before = decide_call(facts, one_team, availability)
    with_state = decide_call(facts, one_team, availability,
                             state={pid: ProgramState(units_busy=busy)})
    as_program = decide_call(facts, explicit, availability,
                             state={pid: ProgramState(units_busy=busy)})
    assert with_state == before
    for key in KEPT:
        assert getattr(as_program, key) == getattr(before, key), key


@BOUNDED
@given(doc=program_variants(), call=calls(flags=st.just([])),
       busy=st.lists(st.integers(0, 4), min_size=3, max_size=3),
       purpose=st.sampled_from(["test", "training"]))
def test_a_test_or_training_call_never_holds_a_unit_nor_waits(
        doc: dict[str, Any], call: dict[str, Any], busy: list[int], purpose: str) -> None:
    policy = compiled(doc)
    facts = CallFacts.model_validate({**call, "purpose": purpose})
    state = {f"p{i}": ProgramState(units_busy=b, queued=0) for i, b in enumerate(busy)}
    d = decide_call(facts, policy, Availability(units_total=policy.policy.program.units,
                                                units_busy=sum(busy)), state=state)
    assert d.queued is None and d.not_served_reason != "units_busy"  # never counted
    if d.involves_team:
        assert not d.needs_field_unit  # never holds one
