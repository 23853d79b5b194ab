"""Properties of routing decisions under generated policies and calls (hypothesis).

- A call with a safety flag is never sent to the team, alone or jointly, under any
  policy that keeps the shipped exclusions, whatever its rules, phase, hours or units:
  police respond on the basis of the flag's exclusion, through `decide_call` (traced)
  and through the compiled fast path alike.

- Without a flag, a call reaches the team only through a rule, never past an exclusion.

The strategies are in tests/rules/strategies.py.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.decide import decide_call, route
from routing.models import Availability, Destination, Mode
from rules.call import CallFacts
from rules.evaluate import classify_fast, classify_for_routing
from tests.factories import compiled
from tests.rules.strategies import BOUNDED, FLAGS, calls, shipped_variants

# The shipped exclusion each safety flag triggers.
FLAG_EXCLUSION = {"weapon": "weapon", "violence": "violence", "injury": "injury",
                  "medical": "medical", "crime_in_progress": "crime-in-progress"}


safety_flags = st.lists(st.sampled_from(FLAGS), min_size=1, max_size=3, unique=True)


@BOUNDED
@given(doc=shipped_variants(), call=calls(flags=safety_flags),
       units_busy=st.integers(0, 5))
def test_a_call_with_a_safety_flag_is_never_sent_to_the_team(
        doc: dict[str, Any], call: dict[str, Any], units_busy: int) -> None:
    policy = compiled(doc)
    facts = CallFacts.model_validate(call)
    availability = Availability(units_total=policy.policy.program.units, units_busy=units_busy)
    expected_exclusions = {FLAG_EXCLUSION[f] for f in call["flags"]}
    for decision in (decide_call(facts, policy, availability),
                     route(facts, classify_for_routing(facts, policy), policy, availability)):
        assert decision.destination is Destination.police
        assert decision.mode is Mode.police_only
        assert decision.basis == "exclusion"
        assert expected_exclusions <= set(decision.matched_rules)
        assert "wins over eligibility: police respond" in decision.explanation
    fast = classify_fast(facts, policy)
    assert expected_exclusions <= set(fast.exclusions)


def test_without_a_flag_only_a_team_or_joint_rule_sends_a_call_to_the_team() -> None:
    # The property speaks of calls sent to the team: the run must have made some, or it
    # checked nothing (every generated call could have gone to police).
    reached_the_team = 0

    @settings(BOUNDED, max_examples=100)
    @given(doc=shipped_variants(), call=calls(flags=st.just([])), units_busy=st.integers(0, 5))
    def check(doc: dict[str, Any], call: dict[str, Any], units_busy: int) -> None:
        nonlocal reached_the_team
        policy = compiled(doc)
        facts = CallFacts.model_validate(call)
        availability = Availability(units_total=policy.policy.program.units,
                                    units_busy=units_busy)
        decision = decide_call(facts, policy, availability)
        if decision.destination is not Destination.police:
            reached_the_team += 1
            assert decision.basis == "rule" and decision.eligible
            assert not any(e in decision.matched_rules for e in
                           (x["id"] for x in doc["exclusions"]))

    check()
    assert reached_the_team >= 5, f"only {reached_the_team} generated calls reached the team"
