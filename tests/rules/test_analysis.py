"""Static checks of a policy: each warning kind, positive and negative, and no false claims."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from rules.analysis import Warning, check_policy
from rules.call import CallFacts
from rules.evaluate import classify, compile_policy
from rules.load import parse_policy
from rules.models import Policy
from tests.factories import policy_doc, shipped_policy


def rule(rid: str, when: dict[str, Any], *, action: str = "team",
         category: str = "cat_a") -> dict[str, Any]:
    return {"id": rid, "category": category, "action": action, "when": when}


def check(rules: list[dict[str, Any]], *, exclusions: list[dict[str, Any]] | None = None,
          categories: list[str] | None = None, **kw: Any) -> list[Warning]:
    doc = policy_doc(rules=rules, exclusions=exclusions,
                     categories=categories or sorted({r["category"] for r in rules}))
    return check_policy(parse_policy(doc), **kw)


def kinds(warnings: list[Warning], kind: str) -> list[Warning]:
    return [w for w in warnings if w.kind == kind]


# --- shadowed -------------------------------------------------------------------------------

@pytest.mark.parametrize("earlier, later", [
    ({"nature_code": ["A", "B"]}, {"nature_code": ["b"]}),                      # wider code set
    ({"nature_code": ["A"]}, {"nature_code": ["A"], "priority": {"min": 2}}),  # fewer constraints
    ({"channel": ["911", "non_emergency"]}, {"channel": ["911"], "nature_code": ["X"]}),
    ({"priority": {"max": 5}}, {"priority": {"min": 1, "max": 3}}),
    ({"text_any": ["drunk"]}, {"text_any": ["very  Drunk man"]}),               # contains the word
    ({"time_of_day": {"start": "22:00", "end": "06:00"}},
     {"time_of_day": {"start": "23:00", "end": "01:00"}}),                      # wraps midnight
    ({"not": {"priority": {"min": 5}}}, {"priority": {"max": 4}}),             # open ends
    ({"any": [{"priority": {"min": 5}}, {"priority": {"max": 4}}]}, {"priority": {"min": 0}}),
    ({"not": {"district": ["north"]}}, {"district": ["South"]}),
])
def test_a_rule_inside_an_earlier_one_is_shadowed(earlier: dict[str, Any],
                                                   later: dict[str, Any]) -> None:
    found = check([rule("wide", earlier), rule("narrow", later)])
    shadowed = kinds(found, "shadowed")
    assert [w.rules for w in shadowed] == [["narrow", "wide"]]
    assert "narrow" in shadowed[0].message and "wide" in shadowed[0].message


def test_a_union_of_earlier_rules_can_shadow() -> None:
    found = check([
        rule("day", {"time_of_day": {"start": "08:00", "end": "20:00"}}),
        rule("night", {"time_of_day": {"start": "20:00", "end": "08:00"}, "nature_code": ["A"]}),
        rule("a", {"nature_code": ["A"]}),
        rule("flags", {"flags_any": ["medical"]}),
        rule("no-flags", {"flags_none": ["medical"]}),
        rule("never", {"district": ["north"]}),
    ])
    assert [w.rules for w in kinds(found, "shadowed")] == [["a", "day", "night"],
                                                           ["never", "flags", "no-flags"]]


@pytest.mark.parametrize("earlier, later", [
    ({"nature_code": ["A"]}, {"nature_code": ["A", "B"]}),              # later is wider
    ({"nature_code": ["A"], "channel": ["911"]}, {"nature_code": ["A"]}),  # earlier narrower
    ({"text_any": ["drunk man"]}, {"text_any": ["drunk"]}),            # phrase is narrower
    ({"priority": {"min": 1, "max": 3}}, {"priority": {"max": 3}}),     # 0 and below remain
    ({"priority": {"max": 3}}, {"not": {"priority": {"min": 4}}}),      # no priority remains
    ({"text_any": ["high"]}, {"text_any": ["high-school"]}),            # not provable: no claim
    ({"district": ["north"]}, {"not": {"district": ["south"]}}),
    ({"priority": {"max": -1}}, {"not": {"priority": {"min": 0}}}),      # no priority remains
    ({"flags_none": ["weapon"]}, {"flags_none": ["medical"]}),
])
def test_no_shadow_claim_when_calls_remain(earlier: dict[str, Any], later: dict[str, Any]) -> None:
    assert kinds(check([rule("first", earlier), rule("second", later)]), "shadowed") == []


def test_not_is_understood() -> None:
    found = check([rule("some", {"not": {"nature_code": ["A"]}}),
                   rule("a", {"nature_code": ["A"]}),
                   rule("dead", {"nature_code": ["B"]})])
    assert [w.rules for w in kinds(found, "shadowed")] == [["dead", "some"]]


def test_a_condition_too_large_to_analyse_is_said_and_skipped() -> None:
    words = [{"text_any": [f"w{i}"]} for i in range(10)]
    found = check([rule("big", {"all": [{"any": words}] * 4}),
                   rule("after", {"text_any": ["w1"]})])
    assert [(w.kind, w.rules) for w in found] == [("too_complex", ["big"])]


# --- excluded and unreachable ---------------------------------------------------------------

WEAPON = {"id": "weapon", "when": {"any": [{"flags_any": ["weapon"]}, {"text_any": ["gun"]}]}}
ASSAULT = {"id": "assault", "when": {"nature_code": ["ASSAULT"]}}


def test_a_team_rule_caught_whole_by_exclusions_never_reaches_the_team() -> None:
    found = check([rule("ok", {"nature_code": ["A"]}),
                   rule("armed", {"flags_any": ["weapon"], "nature_code": ["EDP"]}),
                   rule("gunshots", {"text_any": ["gun shots", "gun"]})],
                  exclusions=[WEAPON, ASSAULT])
    excluded = kinds(found, "excluded")
    assert [w.rules for w in excluded] == [["armed", "weapon"], ["gunshots", "weapon"]]
    assert "never reaches the team" in excluded[0].message
    assert kinds(found, "shadowed") == []


def test_a_code_or_phrase_the_exclusions_take_is_unreachable() -> None:
    found = check([rule("mh", {"any": [{"nature_code": ["EDP", "ASSAULT"]},
                                       {"text_any": ["suicidal", "gun threat"]}]})],
                  exclusions=[WEAPON, ASSAULT])
    unreachable = kinds(found, "unreachable")
    assert [(w.rules, w.details.get("nature_code"), w.details.get("text"))
            for w in unreachable] == [(["mh", "assault"], "ASSAULT", None),
                                      (["mh", "weapon"], None, "gun threat")]
    assert kinds(found, "excluded") == []


def test_a_partly_excluded_rule_is_not_flagged() -> None:
    found = check([rule("mh", {"any": [{"nature_code": ["EDP"]}, {"text_any": ["suicidal"]}]})],
                  exclusions=[WEAPON, ASSAULT])
    assert found == []


# --- overlap --------------------------------------------------------------------------------

def test_rules_with_different_actions_that_share_calls_overlap_with_a_witness() -> None:
    p = parse_policy(policy_doc(categories=["cat_a", "cat_b"], rules=[
        rule("mh", {"any": [{"nature_code": ["EDP"]}, {"text_any": ["suicidal"]}]}),
        rule("disturbance", {"nature_code": ["DISTURB", "EDP"], "priority": {"max": 2}},
             action="police", category="cat_b"),
    ], exclusions=[WEAPON]))
    found = check_policy(p)
    # EDP is listed by both, so it is also dead in the later rule.
    assert [(w.kind, w.rules) for w in found] == [("unreachable", ["disturbance", "mh"]),
                                                   ("overlap", ["mh", "disturbance"])]
    w = found[1]
    assert "never sees" in w.message and "EDP" in w.message
    assert w.details["by_words"] is False
    call = CallFacts.model_validate(w.details["example_call"])
    assert classify(call, compile_policy(p)).rule_id == "mh"


def test_overlap_witness_needs_text_and_avoids_exclusions() -> None:
    found = check([rule("mh", {"text_any": ["suicidal"], "text_none": ["gun"]}),
                   rule("pd", {"flags_none": ["medical"], "channel": ["911"]},
                        action="police", category="cat_b")],
                  exclusions=[WEAPON])
    (w,) = kinds(found, "overlap")
    assert w.rules == ["mh", "pd"] and w.details["by_words"] is True
    call = w.details["example_calls"]["pd"]
    assert call["nature_text"] == "suicidal" and call["flags"] == []
    assert "only through the words" in w.message


@pytest.mark.parametrize("a, b", [
    ({"nature_code": ["A"]}, {"nature_code": ["B"]}),                      # disjoint codes
    ({"text_any": ["drunk"]}, {"text_none": ["drunk"]}),                    # disjoint text
    ({"time_of_day": {"start": "08:00", "end": "12:00"}},
     {"time_of_day": {"start": "12:00", "end": "08:00"}}),
    ({"flags_any": ["weapon"]}, {"nature_code": ["A"]}),                   # all excluded
])
def test_no_overlap_without_a_shared_call_that_reaches_a_rule(a: dict[str, Any],
                                                              b: dict[str, Any]) -> None:
    found = check([rule("a", a), rule("b", b, action="police", category="cat_b")],
                  exclusions=[WEAPON])
    assert kinds(found, "overlap") == []


def test_same_action_is_not_an_overlap() -> None:
    found = check([rule("a", {"nature_code": ["A"]}),
                   rule("b", {"nature_code": ["A", "B"]}, category="cat_b")])
    # Not an overlap, but A is dead in the second rule, and that is said.
    assert [(w.kind, w.rules, w.details) for w in found] == [
        ("unreachable", ["b", "a"], {"nature_code": "A", "taken_by": ["a"]})]


def test_no_overlap_reported_for_a_shadowed_rule() -> None:
    found = check([rule("a", {"nature_code": ["A", "B"]}),
                   rule("b", {"nature_code": ["A"]}, action="police", category="cat_b")])
    assert [w.kind for w in found] == ["shadowed"]


# --- unused categories and gaps -------------------------------------------------------------

def test_a_category_without_rule_is_reported() -> None:
    found = check([rule("a", {"nature_code": ["A"]})], categories=["cat_a", "cat_b"])
    assert [(w.kind, w.details) for w in found] == [("unused_category", {"category": "cat_b"})]


def test_gaps_are_codes_nobody_names_with_counts_most_first() -> None:
    found = check([rule("mh", {"any": [{"nature_code": ["EDP"]}, {"text_any": ["suicidal"]}]}),
                   rule("phone", {"channel": ["crisis_line"]}, category="cat_b")],
                  exclusions=[WEAPON, ASSAULT],
                  history_codes={"EDP": 40, "assault": 7, "ALARM": 3, "INFO": 12, "info ": 1})
    gaps = kinds(found, "gap")
    assert [(w.details["nature_code"], w.details["count"]) for w in gaps] == [("INFO", 13),
                                                                             ("ALARM", 3)]
    assert gaps[0].details["only_by_words"] == ["mh"]
    assert "INFO (13 of 63 stored calls)" in gaps[0].message


def test_a_code_agnostic_rule_leaves_no_gap() -> None:
    found = check([rule("mh", {"nature_code": ["EDP"]}),
                   rule("low", {"priority": {"min": 4}}, category="cat_b")],
                  history_codes={"INFO": 12})
    assert kinds(found, "gap") == []


# --- no false claims ------------------------------------------------------------------------

PROPERTY_POLICIES: list[list[dict[str, Any]]] = [
    [rule("a", {"nature_code": ["A", "B"], "channel": ["911"]}),
     rule("b", {"any": [{"nature_code": ["B"]}, {"text_any": ["drunk"]}]}, action="police"),
     rule("c", {"nature_code": ["B"], "channel": ["911"]}, action="joint"),
     rule("d", {"not": {"any": [{"nature_code": ["A"]}, {"flags_any": ["medical"]}]}})],
    [rule("night", {"time_of_day": {"start": "20:00", "end": "08:00"}}, action="police"),
     rule("weekday", {"day_of_week": ["mon", "tue"], "priority": {"max": 3}}),
     rule("rest", {"priority": {"min": 2}, "text_none": ["gun"]}, action="joint"),
     rule("late", {"all": [{"time_of_day": {"start": "22:00", "end": "23:00"}},
                           {"district": ["north", "south"]}]})],
    [rule("mh", {"any": [{"nature_code": ["EDP"]}, {"text_any": ["suicidal", "gun"]}]}),
     rule("north", {"district": ["north"], "flags_none": ["weapon"]}, action="police"),
     rule("edp", {"nature_code": ["EDP"], "district": ["north"]}, action="joint"),
     rule("south", {"not": {"district": ["north"]}, "text_any": ["drunk man"]}, action="police")],
]

VOCAB_CODES = ["A", "B", "EDP", "ASSAULT", "OTHER"]
VOCAB_TEXT = ["", "drunk", "drunk man", "suicidal", "gun", "a gun and a drunk man", "high"]


def _random_call(rng: random.Random) -> CallFacts:
    day = rng.randrange(7)
    return CallFacts.model_validate({
        "channel": rng.choice(["911", "non_emergency", "crisis_line"]),
        "nature_code": rng.choice(VOCAB_CODES),
        "nature_text": rng.choice(VOCAB_TEXT),
        "priority": rng.choice([None, 0, 1, 2, 3, 4, 5]),
        "district": rng.choice([None, "north", "south", "east"]),
        "flags": rng.sample(["weapon", "medical", "violence"], rng.randrange(3)),
        "occurred_at": f"2026-01-{5 + day:02d}T{rng.choice([0, 7, 8, 12, 20, 22, 23]):02d}:"
                       f"{rng.choice([0, 30, 59]):02d}:00-05:00",
    })


@pytest.mark.parametrize("index", range(len(PROPERTY_POLICIES)))
def test_no_false_positive(index: int) -> None:
    doc = policy_doc(rules=PROPERTY_POLICIES[index], exclusions=[WEAPON, ASSAULT],
                     categories=["cat_a"])
    policy = parse_policy(doc)
    warnings = check_policy(policy)
    compiled = compile_policy(policy)
    never_decides = {r for w in warnings if w.kind in ("shadowed", "excluded") for r in w.rules[:1]}
    rng = random.Random(index)
    seen: set[str | None] = set()
    for _ in range(1500):
        call = _random_call(rng)
        result = classify(call, compiled)
        decided = None if result.exclusions else result.rule_id
        seen.add(decided)
        assert decided not in never_decides, (decided, call)
        for w in warnings:
            if w.kind == "unreachable" and decided == w.rules[0]:
                assert call.nature_code.upper() != w.details.get("nature_code")
                # A dead phrase is dead in its alternative; here no other alternative of the
                # rule can take a call with it, so such a call never reaches the rule at all.
                phrase = w.details.get("text")
                assert phrase is None or not re.search(rf"(?<!\w){phrase}(?!\w)",
                                                       call.text, re.I), call
    assert len(seen) > 2  # the random calls reach several rules
    for w in kinds(warnings, "overlap"):
        examples = w.details.get("example_calls") or {w.rules[1]: w.details["example_call"]}
        for later, example in examples.items():
            call = CallFacts.model_validate(example)
            assert classify(call, compiled).rule_id == w.rules[0]
            assert not classify(call, compiled).exclusions
            only = policy_doc(rules=[r for r in PROPERTY_POLICIES[index] if r["id"] == later],
                              categories=["cat_a"])
            assert classify(call, compile_policy(parse_policy(only))).rule_id == later


def test_property_policies_say_something() -> None:
    # The property test above is only meaningful if the checks make claims there.
    found = [check_policy(parse_policy(policy_doc(rules=r, exclusions=[WEAPON, ASSAULT],
                                                  categories=["cat_a"])))
             for r in PROPERTY_POLICIES]
    assert [[(w.kind, w.rules) for w in ws] for ws in found] == [
        [("shadowed", ["c", "a"]), ("overlap", ["a", "b"]), ("overlap", ["b", "d"])],
        [("shadowed", ["late", "night"]),  # 22:00-23:00 is inside 20:00-08:00
         ("overlap", ["night", "weekday"]), ("overlap", ["night", "rest"]),
         ("overlap", ["weekday", "rest"])],
        [("unreachable", ["mh", "weapon"]), ("shadowed", ["edp", "mh"]),
         ("overlap", ["mh", "north"]), ("overlap", ["mh", "south"])],
    ]


# --- the shipped policy ---------------------------------------------------------------------

def test_shipped_policy_has_no_structural_warnings() -> None:
    # Every shipped rule is a team rule, so no two rules disagree on a destination; each
    # category has its rule; no rule's codes or words are all taken by an exclusion or an
    # earlier rule (mental-health lists SUICTHRT while the medical exclusion has SUICIDE,
    # substance-use lists DRUGPAR while drug-sales has DRUGS: different codes). Calls whose
    # words match both a team rule and an exclusion (a suicidal man with a knife) are the
    # exclusions doing their job and are not warnings.
    assert check_policy(shipped_policy()) == []


def test_shipped_policy_gaps() -> None:
    history = {"MNTL": 50, "ALRBA": 30, "INFO": 12, "ASSAULT": 9, "CRISIS": 3, "SUSP": 20}
    gaps = check_policy(shipped_policy(), history_codes=history)
    # ALRBA (alarms), SUSP (suspicious person) and INFO are named nowhere: a team rule takes
    # them only by their words, which is the policy's intent for a generic INFO code and
    # true for the others. CRISIS is reported as well: the crisis-line rule takes it only on
    # the crisis_line channel, and history codes carry no channel.
    assert [(w.kind, w.details["nature_code"], w.details["count"]) for w in gaps] == [
        ("gap", "ALRBA", 30), ("gap", "SUSP", 20), ("gap", "INFO", 12), ("gap", "CRISIS", 3)]
    assert "mental-health" in gaps[0].details["only_by_words"]
    assert "follow-up" not in gaps[0].details["only_by_words"]
    assert gaps[3].details["only_on_other_channels"] == ["follow-up", "crisis-line"]
    assert "crisis-line on their own channels" in gaps[3].message


def test_a_broken_copy_of_the_shipped_policy_is_caught() -> None:
    policy = shipped_policy()
    doc = policy.model_dump(by_alias=True, exclude_none=True)
    doc["rules"].append({"id": "welfare-again", "category": "call_for_assistance",
                         "action": "police", "when": {"nature_code": ["WELFARE"]}})
    doc["rules"].insert(0, {"id": "edp-joint", "category": "mental_health", "action": "joint",
                            "when": {"nature_code": ["EDP"], "priority": {"max": 1}}})
    doc["categories"].append("animal")
    found = check_policy(Policy.model_validate(doc))
    assert [(w.kind, w.rules) for w in found] == [
        ("shadowed", ["welfare-again", "call-for-assistance"]),
        # A priority-1 EDP call on the follow-up or crisis line goes joint: true, and said.
        ("overlap", ["edp-joint", "follow-up"]),
        ("overlap", ["edp-joint", "crisis-line"]),
        ("overlap", ["edp-joint", "mental-health"]),
        # EDP calls whose words match another team rule: grouped into one warning.
        ("overlap", ["edp-joint", "substance-use", "disorderly-juvenile", "truancy",
                     "neighbor-dispute", "homelessness", "call-for-assistance"]),
        ("unused_category", []),
    ]
    assert found[3].details["example_call"] == {
        "channel": "911", "nature_code": "EDP", "nature_text": "", "flags": [],
        "occurred_at": "2026-01-06T14:00:00-05:00", "priority": 1}
