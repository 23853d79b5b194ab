"""The compiled fast path agrees with the traced interpreter, on generated policies and calls.

`classify_fast` must give `classify`'s category, action, rule, field-unit need,
exclusions and matched rules; `route` over `classify_for_routing` (the fast verdict plus
the trace of the entries that held) must give `decide_call`'s decision byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.cases import case_facts
from routing.decide import decide_call, route
from routing.models import Availability
from rules.call import CallFacts
from rules.conditions import LOOKALIKES
from rules.evaluate import (
    CompiledPolicy,
    classify,
    classify_fast,
    classify_for_routing,
    compile_policy,
)
from rules.load import load_default_policy
from tests.factories import compiled, facts, policy_doc, single_rule
from tests.rules.strategies import BOUNDED, calls, rule_lists, shipped_variants

CATEGORIES = ["cat_a", "cat_b", "cat_c"]


def verdict(c: Any) -> tuple[Any, ...]:
    return (c.category, c.action, c.rule_id, c.needs_field_unit, list(c.exclusions),
            list(c.matched_rules))


def assert_same(policy: CompiledPolicy, call: CallFacts, units_busy: int = 0) -> None:
    assert verdict(classify_fast(call, policy)) == verdict(classify(call, policy))
    availability = Availability(units_total=policy.policy.program.units, units_busy=units_busy)
    reference = decide_call(call, policy, availability)
    fast = route(call, classify_for_routing(call, policy), policy, availability)
    assert fast.model_dump_json() == reference.model_dump_json()


@st.composite
def generated_policies(draw: st.DrawFn) -> dict[str, Any]:
    exclusions = [{"id": r["id"], "when": r["when"]}
                  for r in draw(rule_lists(CATEGORIES, prefix="x", min_size=0, max_size=3))]
    return policy_doc(rules=draw(rule_lists(CATEGORIES)), exclusions=exclusions,
                      phase=draw(st.sampled_from([1, 2, 3])), units=draw(st.integers(0, 3)))


@BOUNDED
@given(doc=generated_policies(), batch=st.lists(calls(), min_size=1, max_size=4),
       units_busy=st.integers(0, 3))
def test_fast_path_equals_traced_classify_on_generated_policies(
        doc: dict[str, Any], batch: list[dict[str, Any]], units_busy: int) -> None:
    policy = compiled(doc)
    for call in batch:
        assert_same(policy, CallFacts.model_validate(call), units_busy)


@BOUNDED
@given(doc=shipped_variants(), batch=st.lists(calls(), min_size=1, max_size=4),
       units_busy=st.integers(0, 5))
def test_fast_path_equals_traced_classify_on_shipped_variants(
        doc: dict[str, Any], batch: list[dict[str, Any]], units_busy: int) -> None:
    policy = compiled(doc)
    for call in batch:
        assert_same(policy, CallFacts.model_validate(call), units_busy)


# --- examples that pin the index and the word look-up ---------------------------------------


@pytest.mark.parametrize(("when", "fields"), [
    ({"text_any": ["mental health"]}, {"narrative": "MENTAL \n health"}),
    ({"text_any": ["health crisis"]}, {"narrative": "mental health crisis"}),  # overlap
    ({"text_any": ["mental"]}, {"narrative": "mental health"}),  # shares a start
    ({"text_any": ["a.b"]}, {"narrative": "code a.b seen"}),
    ({"text_any": ["a"]}, {"narrative": "code a.b seen"}),
    ({"text_any": ["(x)"]}, {"narrative": "see (x) here"}),
    ({"text_any": ["!!"]}, {"narrative": "stop !!"}),
    ({"text_any": ["gun"]}, {"narrative": "gun-shaped"}),
    ({"text_any": ["stop"]}, {"narrative": "ſtop"}),  # long s folds to s in re, not lower()
    ({"text_any": ["\u212aey"]}, {"narrative": "KEY"}),  # Kelvin sign
    ({"text_any": ["café"]}, {"narrative": "CAFÉ au lait"}),
    ({"text_none": ["calm"]}, {"narrative": "calmer"}),
    ({"nature_code": [" edp "]}, {"nature_code": "EDP "}),
    ({"channel": ["crisis_line"]}, {"channel": "crisis_line"}),
    ({"all": [{"nature_code": ["DISORD"]}, {"text_any": ["drunk"]}]},
     {"nature_code": "DISORD", "narrative": "very DRUNK"}),
    ({"not": {"nature_code": ["X"]}}, {"nature_code": "Y"}),
    ({"time_of_day": {"start": "22:00", "end": "06:00"}},
     {"occurred_at": "2026-03-10T23:30:00-04:00"}),
    ({"day_of_week": ["tue"]}, {}),
])
def test_fast_path_examples(when: dict[str, Any], fields: dict[str, Any]) -> None:
    policy = single_rule(when)
    call = facts(**fields)
    assert classify(call, policy).rule_id == "r"
    assert_same(policy, call)


@pytest.mark.parametrize(("when", "fields"), [
    ({"text_any": ["!!"]}, {"narrative": "stop!!"}),
    ({"text_any": ["gun"]}, {"narrative": "gun_shop"}),
    ({"text_any": ["mental health"]}, {"narrative": "mental-health"}),
    ({"text_any": ["a"]}, {"narrative": "ab a_"}),
    ({"text_any": ["café"]}, {"narrative": "cafés"}),
])
def test_fast_path_non_matching_examples(when: dict[str, Any], fields: dict[str, Any]) -> None:
    policy = single_rule(when)
    call = facts(**fields)
    assert classify(call, policy).rule_id is None
    assert_same(policy, call)


def test_shipped_policy_test_cases_agree() -> None:
    policy = compile_policy(load_default_policy())
    for case in policy.policy.tests:
        call = case_facts(case, policy.zone)  # a case's local time is read in the zone
        assert_same(policy, call, case.availability.units_busy)


def test_first_match_order_is_kept_across_index_buckets() -> None:
    # r0 is indexed by word, r1 by code, r2 by nothing: policy order decides, not the index.
    policy = compiled(policy_doc(rules=[
        {"id": "r0", "category": "cat_a", "action": "team", "when": {"text_any": ["drunk"]}},
        {"id": "r1", "category": "cat_b", "action": "police", "when": {"nature_code": ["X"]}},
        {"id": "r2", "category": "cat_c", "action": "joint", "when": {"priority": {"max": 9}}},
    ]))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"nature_code": "X", "narrative": "drunk"}, "r0"),
        ({"nature_code": "X", "priority": 1}, "r1"),
        ({"nature_code": "Y", "priority": 1}, "r2"),
    ]
    for fields, rule in cases:
        assert classify_fast(facts(**fields), policy).rule_id == rule
        assert_same(policy, facts(**fields))


def test_a_hand_assembled_policy_falls_back_to_the_interpreter() -> None:
    # Without a fast path, classify_fast *is* classify: comparing the two would compare
    # the interpreter with itself. The fallback is held to the answers written here and
    # to the compiled fast path of the same policy instead.
    policy = compiled(policy_doc(exclusions=[{"id": "x", "when": {"flags_any": ["weapon"]}}]))
    bare = CompiledPolicy(policy=policy.policy, zone=policy.zone, exclusions=policy.exclusions,
                          rules=policy.rules)
    assert bare.fast is None and policy.fast is not None
    expected = {
        # (nature code, flags): (category, action, rule, exclusions, matched rules)
        ("X", ()): ("cat_a", "team", "r", [], ["r"]),
        ("Y", ()): (None, None, None, [], []),
        ("X", ("weapon",)): ("cat_a", "team", "r", ["x"], ["x", "r"]),
    }
    for (code, flags), want in expected.items():
        call = facts(nature_code=code, flags=list(flags))
        got = classify_fast(call, bare)
        assert (got.category, got.action, got.rule_id, list(got.exclusions),
                list(got.matched_rules)) == want, (code, flags)
        assert verdict(got) == verdict(classify_fast(call, policy))
        availability = Availability(units_total=2, units_busy=0)
        assert route(call, classify_for_routing(call, bare), bare, availability
                     ).model_dump_json() == route(call, classify_for_routing(call, policy),
                                                  policy, availability).model_dump_json()


def test_routing_trace_keeps_only_the_entries_that_held() -> None:
    policy = compile_policy(load_default_policy())
    call = facts(nature_code="EDP", nature_text="Man in crisis", flags=["weapon"])
    c = classify_for_routing(call, policy)
    assert [t.rule_id for t in c.trace] == ["weapon", "mental-health"]
    assert all(t.matched for t in c.trace)
    full = classify(call, policy)
    for rid in c.matched_rules:
        assert c.reason_for(rid) == full.reason_for(rid)


def test_lookalikes_are_every_non_ascii_character_the_engine_folds_to_ascii() -> None:
    ascii_any = re.compile(r"[\x00-\x7f]", re.IGNORECASE)
    found = {chr(i) for i in range(128, 0x110000) if ascii_any.fullmatch(chr(i))}
    assert found == LOOKALIKES
    # and str.lower keeps every other character one character, \w or not as it was
    word = re.compile(r"\w")
    for i in range(0x110000):
        c = chr(i)
        if c not in LOOKALIKES:
            low = c.lower()
            assert len(low) == 1 and bool(word.match(c)) == bool(word.match(low)), hex(i)
            assert not (low.isascii() and not c.isascii()), hex(i)


def test_the_traced_and_the_fast_classifier_walk_one_compiled_form() -> None:
    policy = compile_policy(load_default_policy())
    assert policy.fast is not None
    entries = (*policy.exclusions, *policy.rules)
    assert len(policy.fast.entries) == len(entries)
    for fast, entry in zip(policy.fast.entries, entries, strict=True):
        assert fast.id == entry.id
        assert fast.pred is entry.when.pred
