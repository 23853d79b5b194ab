"""A rule switched off (`disabled: true`, the editor's disable): never tested, by the traced
classifier nor the fast path, so its calls fall to the next rule that holds or to police;
the trace shows it where it stands; static analysis says so once and analyses the rest
without it. An exclusion cannot be switched off: exclusions always win."""

from __future__ import annotations

from typing import Any

import pytest

from rules.analysis import check_policy
from rules.evaluate import classify, classify_fast
from rules.load import PolicyInvalid, load_policy_text
from tests.factories import as_yaml, compiled, decide, facts, policy_doc, shipped_doc

TWO = [{"id": "first", "category": "cat_a", "action": "team", "when": {"nature_code": ["X"]}},
       {"id": "second", "category": "cat_b", "action": "joint",
        "when": {"nature_code": ["X", "Y"]}}]


def two(disabled: bool) -> dict[str, Any]:
    rules = [dict(r) for r in TWO]
    rules[0]["disabled"] = disabled
    return policy_doc(rules=rules)


def test_a_disabled_rules_call_falls_to_the_next_rule() -> None:
    on, off = compiled(two(False)), compiled(two(True))
    call = facts(nature_code="X")
    assert classify(call, on).rule_id == "first"
    got = classify(call, off)
    assert (got.rule_id, got.category, got.matched_rules) == ("second", "cat_b", ["second"])
    assert classify_fast(call, off).rule_id == "second"
    assert [(t.rule_id, t.kind, t.matched, t.checks) for t in got.trace] == [
        ("first", "disabled", False, []), ("second", "rule", True, got.trace[1].checks)]
    assert got.trace[1].checks


def test_a_disabled_rules_call_falls_to_police() -> None:
    doc = shipped_doc()
    call: dict[str, Any] = {"nature_code": "MNTL", "nature_text": "Mental person",
                            "district": "D2", "occurred_at": "2026-03-10T14:00:00-04:00"}
    assert decide(compiled(doc), **call).destination.value == "call_team"
    next(r for r in doc["rules"] if r["id"] == "mental-health")["disabled"] = True
    policy = compiled(doc)
    decision = decide(policy, **call)
    assert decision.destination.value == "police"
    assert classify_fast(facts(**call), policy).rule_id is None
    trace = classify(facts(**call), policy).trace
    assert ("mental-health", "disabled") in [(t.rule_id, t.kind) for t in trace]
    # Every rule is in the trace: none held.
    assert [t.rule_id for t in trace if t.kind != "exclusion"] == [r["id"] for r in doc["rules"]]


def test_rules_after_the_one_that_held_are_not_in_the_trace_disabled_or_not() -> None:
    rules = [*TWO, {"id": "third", "category": "cat_c", "action": "team", "disabled": True,
                    "when": {"nature_code": ["X"]}}]
    got = classify(facts(nature_code="X"), compiled(policy_doc(rules=rules)))
    assert [t.rule_id for t in got.trace] == ["first"]


def test_an_exclusion_cannot_be_disabled() -> None:
    doc = shipped_doc()
    doc["exclusions"][0]["disabled"] = True
    with pytest.raises(PolicyInvalid) as err:
        load_policy_text(as_yaml(doc), "test")
    assert [(e.path, "cannot be disabled" in e.reason) for e in err.value.errors] == \
        [("exclusions[0]", True)]
    doc["exclusions"][0]["disabled"] = False  # not even switched on explicitly
    with pytest.raises(PolicyInvalid):
        load_policy_text(as_yaml(doc), "test")


def test_analysis_reports_a_disabled_rule_once_and_checks_the_rest_without_it() -> None:
    doc = shipped_doc()
    doc["rules"].append({"id": "late-mental", "category": "mental_health", "action": "team",
                         "when": {"nature_code": ["MNTL"]}})
    policy = load_policy_text(as_yaml(doc), "test")
    assert any(w.kind == "shadowed" and w.rules[0] == "late-mental"
               for w in check_policy(policy))
    # The rule that shadowed it switched off: no longer shadowed; one finding says why.
    next(r for r in doc["rules"] if r["id"] == "mental-health")["disabled"] = True
    warnings = check_policy(load_policy_text(as_yaml(doc), "test"))
    assert not [w for w in warnings if w.kind == "shadowed" and w.rules[0] == "late-mental"]
    off = [w for w in warnings if w.kind == "disabled"]
    assert [w.rules for w in off] == [["mental-health"]]
    assert not [w for w in warnings if w.kind != "disabled" and "mental-health" in w.rules]


def test_a_category_whose_rules_are_all_disabled_is_unused() -> None:
    doc = shipped_doc()
    next(r for r in doc["rules"] if r["id"] == "truancy")["disabled"] = True
    warnings = check_policy(load_policy_text(as_yaml(doc), "test"))
    unused = [w for w in warnings if w.kind == "unused_category"]
    assert [(w.details["category"], w.rules) for w in unused] == [("truancy", ["truancy"])]
    assert "but disabled ones" in unused[0].message
