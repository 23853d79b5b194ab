"""classify: each operator, nesting, exclusions, rule order, and the trace it leaves."""

from __future__ import annotations

from typing import Any

import pytest

from rules.evaluate import Check, classify
from rules.models import Action
from tests.factories import compiled, facts, matches, policy_doc, run, single_rule

# --- text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "gun", "GUN", "Gun", "a gun.", "gun!", "(gun)", "man with gun", "gun, knife",
    "said \"gun\"", "gun-shaped", "x\ngun\n",
])
def test_text_any_matches_a_whole_word_whatever_the_case(text: str) -> None:
    assert matches({"text_any": ["gun"]}, nature_text=text)


@pytest.mark.parametrize("text", ["begun", "gunther", "Gunther", "shotgun", "guns", "g un",
                                  "g_u_n", "gun_shop", "2gun", ""])
def test_text_any_does_not_match_inside_another_word(text: str) -> None:
    assert not matches({"text_any": ["gun"]}, nature_text=text)


def test_text_any_searches_the_narrative_too() -> None:
    assert matches({"text_any": ["knife"]}, nature_text="Disturbance", narrative="has a KNIFE")
    assert not matches({"text_any": ["knife"]}, nature_text="Disturbance", narrative="knifes")
    assert not matches({"text_any": ["knife"]}, nature_text="Disturbance", narrative=None)


@pytest.mark.parametrize("text", [
    "mental health", "MENTAL HEALTH crisis", "mental   health", "mental\thealth",
    "caller reports mental\nhealth episode", "mental \n  health",
])
def test_phrase_matches_across_any_run_of_whitespace(text: str) -> None:
    assert matches({"text_any": ["mental health"]}, narrative=text)


@pytest.mark.parametrize("text", ["mentalhealth", "mental-health", "mental healthy",
                                  "environmental health", "health mental"])
def test_phrase_does_not_match_partial_or_joined_words(text: str) -> None:
    assert not matches({"text_any": ["mental health"]}, narrative=text)


def test_phrase_written_with_extra_spaces_in_the_policy_still_matches() -> None:
    assert matches({"text_any": ["hearing   voices"]}, narrative="he is hearing voices")


def test_regex_metacharacters_in_words_are_literal() -> None:
    assert matches({"text_any": ["a.b"]}, nature_text="code a.b seen")
    assert not matches({"text_any": ["a.b"]}, nature_text="code axb seen")
    assert matches({"text_any": ["(x)"]}, nature_text="see (x) here")


def test_text_any_records_the_matched_text_as_actual() -> None:
    result = run(single_rule({"text_any": ["knife", "gun"]}), nature_text="Has a GUN now")
    [check] = result.trace[-1].checks
    assert check == Check(field="text", op="contains", expected=["knife", "gun"],
                          actual="GUN", held=True)


def test_text_none() -> None:
    when = {"text_none": ["no weapons", "calm"]}
    assert matches(when, nature_text="Man shouting")
    assert not matches(when, nature_text="Man shouting", narrative="caller says NO  weapons")
    assert matches(when, nature_text="caller is calmer now")  # 'calmer' is not 'calm'
    result = run(single_rule(when), nature_text="calm")
    [check] = result.trace[-1].checks
    assert (check.field, check.op, check.actual, check.held) == (
        "text", "contains none of", "calm", False)


# --- codes, flags, priority, channel, district ---------------------------------------------


@pytest.mark.parametrize("code", ["EDP", "edp", "Edp", " edp ", "MNTL", "mntl"])
def test_nature_code_is_case_insensitive(code: str) -> None:
    assert matches({"nature_code": ["edp", "MNTL"]}, nature_code=code)


@pytest.mark.parametrize("code", ["ED", "EDPX", "", "MNT L"])
def test_nature_code_must_match_exactly(code: str) -> None:
    assert not matches({"nature_code": ["EDP"]}, nature_code=code)


def test_nature_code_trace_shows_the_original_code() -> None:
    result = run(single_rule({"nature_code": ["mntl", "EDP"]}), nature_code="mntl")
    [check] = result.trace[-1].checks
    assert check == Check(field="nature_code", op="in", expected=["EDP", "MNTL"],
                          actual="mntl", held=True)


def test_flags_any() -> None:
    when = {"flags_any": ["weapon", "injury"]}
    assert matches(when, flags=["injury"])
    assert matches(when, flags=["medical", "weapon"])
    assert not matches(when, flags=["medical"])
    assert not matches(when, flags=[])


def test_flags_none() -> None:
    when = {"flags_none": ["weapon", "violence"]}
    assert matches(when, flags=[])
    assert matches(when, flags=["medical"])
    assert not matches(when, flags=["violence"])
    assert not matches(when, flags=["medical", "weapon"])


def test_flags_check_records_expected_and_actual_sorted() -> None:
    result = run(single_rule({"flags_none": ["weapon", "injury"]}),
                 flags=["weapon", "medical"])
    [check] = result.trace[-1].checks
    assert check == Check(field="flags", op="include none of", expected=["injury", "weapon"],
                          actual=["medical", "weapon"], held=False)


@pytest.mark.parametrize(("bounds", "priority", "held"), [
    ({"min": 2, "max": 4}, 1, False),
    ({"min": 2, "max": 4}, 2, True),
    ({"min": 2, "max": 4}, 3, True),
    ({"min": 2, "max": 4}, 4, True),
    ({"min": 2, "max": 4}, 5, False),
    ({"min": 2, "max": 4}, None, False),
    ({"min": 3}, 99, True),
    ({"min": 3}, 2, False),
    ({"max": 3}, 0, True),
    ({"max": 3}, 4, False),
    ({}, 1, True),
    ({}, None, False),
])
def test_priority_range(bounds: dict[str, int], priority: int | None, held: bool) -> None:
    result = run(single_rule({"priority": bounds}), priority=priority)
    assert (result.rule_id == "r") is held
    [check] = result.trace[-1].checks
    assert check.expected == [bounds.get("min"), bounds.get("max")]
    assert check.actual == priority
    assert check.held is held


def test_channel() -> None:
    when = {"channel": ["non_emergency", "officer_referral"]}
    assert matches(when, channel="officer_referral")
    assert matches(when, channel="non_emergency")
    assert not matches(when, channel="911")
    assert not matches(when, channel="crisis_line")


def test_district_is_case_insensitive_and_needs_a_district() -> None:
    when = {"district": ["D2", "north"]}
    assert matches(when, district="d2")
    assert matches(when, district="NORTH")
    assert not matches(when, district="D3")
    assert not matches(when, district=None)
    result = run(single_rule(when), district="d2")
    [check] = result.trace[-1].checks
    assert check == Check(field="district", op="in", expected=["D2", "north"], actual="d2",
                          held=True)


# --- time of day and day of week, in the policy's zone -------------------------------------


NIGHT = {"time_of_day": {"start": "22:00", "end": "06:00"}}


@pytest.mark.parametrize(("occurred_at", "held"), [
    # New York is UTC-4 here (EDT from 2026-03-08).
    ("2026-03-10T22:00:00-04:00", True),   # start is inside
    ("2026-03-10T23:59:00-04:00", True),
    ("2026-03-11T00:00:00-04:00", True),
    ("2026-03-11T05:59:00-04:00", True),
    ("2026-03-11T06:00:00-04:00", False),  # end is outside
    ("2026-03-10T21:59:00-04:00", False),
    ("2026-03-10T12:00:00-04:00", False),
    # Given in UTC: must be converted before the window is applied.
    ("2026-03-11T09:00:00Z", True),    # 05:00 local, though 09:00 UTC is outside
    ("2026-03-10T23:00:00Z", False),   # 19:00 local, though 23:00 UTC is inside
    ("2026-03-11T02:30:00Z", True),    # 22:30 local
    ("2026-03-11T10:00:00Z", False),   # 06:00 local
    # Another offset entirely: 05:30 in Kolkata is 20:00 the day before in New York.
    ("2026-03-11T05:30:00+05:30", False),
])
def test_time_of_day_window_wrapping_midnight_in_policy_zone(occurred_at: str,
                                                              held: bool) -> None:
    assert matches(NIGHT, occurred_at=occurred_at) is held


def test_time_of_day_trace_shows_local_time() -> None:
    result = run(single_rule(NIGHT), occurred_at="2026-03-11T09:15:00Z")
    [check] = result.trace[-1].checks
    assert check == Check(field="local_time", op="within", expected="22:00-06:00",
                          actual="05:15", held=True)


@pytest.mark.parametrize(("occurred_at", "held"), [
    ("2026-03-10T08:59:00-04:00", False),
    ("2026-03-10T09:00:00-04:00", True),
    ("2026-03-10T16:59:00-04:00", True),
    ("2026-03-10T17:00:00-04:00", False),
    ("2026-03-10T13:30:00Z", True),    # 09:30 local
    ("2026-03-10T21:30:00Z", False),   # 17:30 local
])
def test_time_of_day_daytime_window(occurred_at: str, held: bool) -> None:
    assert matches({"time_of_day": {"start": "09:00", "end": "17:00"}},
                   occurred_at=occurred_at) is held


def test_time_of_day_equal_start_and_end_is_all_day() -> None:
    for t in ("2026-03-10T00:00:00-04:00", "2026-03-10T12:00:00-04:00",
              "2026-03-10T23:59:00-04:00"):
        assert matches({"time_of_day": {"start": "07:00", "end": "07:00"}}, occurred_at=t)


def test_time_of_day_uses_the_policy_time_zone_not_new_york() -> None:
    tokyo = single_rule({"time_of_day": {"start": "09:00", "end": "17:00"}},
                        timezone="Asia/Tokyo")
    # 01:00 UTC is 10:00 in Tokyo, 21:00 the day before in New York.
    assert run(tokyo, occurred_at="2026-03-10T01:00:00Z").rule_id == "r"
    assert run(tokyo, occurred_at="2026-03-10T10:00:00Z").rule_id is None  # 19:00 Tokyo


@pytest.mark.parametrize(("occurred_at", "day", "held"), [
    ("2026-03-10T14:00:00-04:00", "tue", True),
    ("2026-03-11T14:00:00-04:00", "wed", False),
    # 02:00 UTC Wednesday is 22:00 Tuesday in New York.
    ("2026-03-11T02:00:00Z", "tue", True),
    ("2026-03-15T03:30:00Z", "sat", False),  # Sat 23:30 local: weekend, not listed
    ("2026-03-16T12:00:00Z", "mon", True),
])
def test_day_of_week_in_policy_zone(occurred_at: str, day: str, held: bool) -> None:
    result = run(single_rule({"day_of_week": ["mon", "tue", "thu"]}), occurred_at=occurred_at)
    assert (result.rule_id == "r") is held
    [check] = result.trace[-1].checks
    assert check.field == "day_of_week"
    assert check.actual == day
    assert check.expected == ["mon", "thu", "tue"]


# --- combining conditions --------------------------------------------------------------------


def test_keys_in_one_condition_must_all_hold() -> None:
    when = {"nature_code": ["DISORD"], "text_any": ["drunk"], "priority": {"max": 3}}
    assert matches(when, nature_code="DISORD", nature_text="drunk man", priority=3)
    assert not matches(when, nature_code="DISORD", nature_text="drunk man", priority=4)
    assert not matches(when, nature_code="DISORD", nature_text="loud man", priority=3)
    assert not matches(when, nature_code="NOISE", nature_text="drunk man", priority=3)


NESTED: dict[str, Any] = {
    "any": [
        {"nature_code": ["EDP"]},
        {"all": [
            {"nature_code": ["DISORD"]},
            {"any": [{"text_any": ["drunk"]}, {"priority": {"min": 5}}]},
        ]},
    ],
    "not": {"any": [{"flags_any": ["weapon"]}, {"district": ["D9"]}]},
}


@pytest.mark.parametrize(("call", "held"), [
    ({"nature_code": "EDP"}, True),
    ({"nature_code": "EDP", "flags": ["weapon"]}, False),
    ({"nature_code": "EDP", "district": "d9"}, False),
    ({"nature_code": "EDP", "district": "D1", "flags": ["medical"]}, True),
    ({"nature_code": "DISORD", "nature_text": "drunk"}, True),
    ({"nature_code": "DISORD", "priority": 6}, True),
    ({"nature_code": "DISORD", "priority": 4}, False),
    ({"nature_code": "DISORD", "nature_text": "drunk", "flags": ["weapon"]}, False),
    ({"nature_code": "NOISE", "nature_text": "drunk"}, False),
])
def test_any_all_not_nesting(call: dict[str, Any], held: bool) -> None:
    assert matches(NESTED, **call) is held


def test_not_inverts_each_check_in_the_trace() -> None:
    result = run(single_rule({"not": {"nature_code": ["EDP"]}}), nature_code="MNTL")
    assert result.rule_id == "r"
    [check] = result.trace[-1].checks
    assert (check.field, check.op, check.held) == ("nature_code", "not in", True)


def test_any_stops_at_the_first_alternative_that_holds() -> None:
    result = run(single_rule({"any": [{"nature_code": ["A"]}, {"nature_code": ["B"]},
                                      {"nature_code": ["C"]}]}), nature_code="B")
    assert result.rule_id == "r"
    assert [(c.expected, c.held) for c in result.trace[-1].checks] == [
        (["A"], False), (["B"], True)]


# --- exclusions, rule order and the trace --------------------------------------------------


EXCLUSIONS = [
    {"id": "weapon", "when": {"flags_any": ["weapon"]}},
    {"id": "violent-code", "when": {"nature_code": ["ASSAULT"]}},
    {"id": "knife-text", "when": {"text_any": ["knife"]}},
]
RULES = [
    {"id": "first", "category": "cat_a", "action": "team", "when": {"nature_code": ["EDP"]}},
    {"id": "second", "category": "cat_b", "action": "joint",
     "when": {"nature_code": ["EDP", "ASSAULT"]}},
    {"id": "third", "category": "cat_c", "action": "police", "when": {"priority": {"min": 0}}},
]


def ordered() -> Any:
    return compiled(policy_doc(exclusions=EXCLUSIONS, rules=RULES))


def test_every_exclusion_is_tested_and_listed_before_the_deciding_rule() -> None:
    result = run(ordered(), nature_code="ASSAULT", flags=["weapon"], narrative="a knife")
    assert result.exclusions == ["weapon", "violent-code", "knife-text"]
    assert result.rule_id == "second"
    assert result.matched_rules == ["weapon", "violent-code", "knife-text", "second"]
    assert [(t.rule_id, t.kind, t.matched) for t in result.trace] == [
        ("weapon", "exclusion", True), ("violent-code", "exclusion", True),
        ("knife-text", "exclusion", True), ("first", "rule", False), ("second", "rule", True)]


def test_exclusions_that_do_not_hold_are_traced_but_not_listed() -> None:
    result = run(ordered(), nature_code="EDP", narrative="a knife")
    assert result.exclusions == ["knife-text"]
    assert result.matched_rules == ["knife-text", "first"]
    assert [t.matched for t in result.trace if t.kind == "exclusion"] == [False, False, True]


def test_first_matching_rule_wins_and_later_rules_are_not_evaluated() -> None:
    result = run(ordered(), nature_code="edp", priority=2)
    assert (result.rule_id, result.category, result.action) == ("first", "cat_a", Action.team)
    assert result.exclusions == []
    assert result.matched_rules == ["first"]
    assert [t.rule_id for t in result.trace if t.kind == "rule"] == ["first"]


def test_rule_order_decides_not_specificity() -> None:
    reordered = compiled(policy_doc(exclusions=EXCLUSIONS, rules=[RULES[1], RULES[0]]))
    result = run(reordered, nature_code="EDP")
    assert (result.rule_id, result.action) == ("second", Action.joint)


def test_falls_through_to_a_later_rule() -> None:
    result = run(ordered(), nature_code="NOISE", priority=5)
    assert (result.rule_id, result.category, result.action) == ("third", "cat_c", Action.police)
    assert [t.matched for t in result.trace] == [False, False, False, False, False, True]


def test_no_rule_matches() -> None:
    result = run(ordered(), nature_code="NOISE", flags=["weapon"])  # no priority: third fails
    assert (result.rule_id, result.category, result.action) == (None, None, None)
    assert result.exclusions == ["weapon"]
    assert result.matched_rules == ["weapon"]
    assert [t.rule_id for t in result.trace] == [
        "weapon", "violent-code", "knife-text", "first", "second", "third"]
    assert result.error is None


def test_needs_field_unit_is_carried_from_the_rule() -> None:
    policy = compiled(policy_doc(rules=[
        {"id": "phone", "category": "cat_a", "action": "team", "needs_field_unit": False,
         "when": {"channel": ["crisis_line"]}},
        {"id": "field", "category": "cat_b", "action": "team", "when": {"nature_code": ["X"]}},
    ]))
    assert run(policy, channel="crisis_line").needs_field_unit is False
    assert run(policy, nature_code="X").needs_field_unit is True


def test_trace_records_each_check_with_field_expected_actual_and_held() -> None:
    policy = single_rule({"nature_code": ["MNTL"], "priority": {"min": 2, "max": 4},
                          "flags_none": ["weapon"], "channel": ["911"]})
    result = run(policy, nature_code="MNTL", priority=3, channel="911")
    [rule] = result.trace
    assert (rule.rule_id, rule.kind, rule.matched) == ("r", "rule", True)
    assert rule.checks == [
        Check(field="nature_code", op="in", expected=["MNTL"], actual="MNTL", held=True),
        Check(field="flags", op="include none of", expected=["weapon"], actual=[], held=True),
        Check(field="priority", op="between", expected=[2, 4], actual=3, held=True),
        Check(field="channel", op="in", expected=["911"], actual="911", held=True),
    ]


def test_trace_stops_at_the_first_failing_check_of_a_rule() -> None:
    policy = single_rule({"nature_code": ["MNTL"], "priority": {"min": 2}})
    [rule] = run(policy, nature_code="EDP", priority=3).trace
    assert rule.matched is False
    assert [(c.field, c.actual, c.held) for c in rule.checks] == [("nature_code", "EDP", False)]


def test_reason_for_describes_the_checks_that_held() -> None:
    policy = compiled(policy_doc(
        exclusions=[{"id": "armed", "when": {"any": [{"flags_any": ["weapon", "violence"]},
                                                      {"text_any": ["gun"]}]}}],
        rules=[{"id": "r", "category": "cat_a", "action": "team",
                "when": {"nature_code": ["EDP"]}}]))
    result = run(policy, nature_code="edp", flags=["violence"])
    assert result.reason_for("armed") == "flags include violence"
    assert result.reason_for("r") == "nature_code 'edp' in ['EDP']"
    assert result.reason_for("missing") == ""
    by_text = run(policy, nature_code="EDP", narrative="has a Gun")
    assert by_text.reason_for("armed") == "text contains 'Gun'"


def test_classify_is_pure_and_repeatable() -> None:
    policy = ordered()
    call = facts(nature_code="ASSAULT", flags=["weapon"], narrative="knife", priority=1)
    first = classify(call, policy)
    assert classify(call, policy).model_dump() == first.model_dump()
