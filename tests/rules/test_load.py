"""Loading policies: the shipped one works, broken ones are refused with path and reason."""

from __future__ import annotations

from typing import Any

import pytest

from rules.load import (
    PolicyError,
    PolicyInvalid,
    default_policy_text,
    load_default_policy,
    load_policy_text,
    parse_policy,
)
from rules.models import Action
from tests.factories import one_team_doc, policy_doc, shipped_doc


def errors_of(document: Any) -> list[PolicyError]:
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(document, source="test.yaml")
    assert info.value.source == "test.yaml"
    assert info.value.errors, "a refused policy must say why"
    return info.value.errors


def paths_of(document: Any) -> list[str]:
    return [e.path for e in errors_of(document)]


# --- the shipped policy ------------------------------------------------------------------


def test_shipped_policy_loads_with_its_program_settings() -> None:
    policy = load_default_policy()
    assert policy.version_label == "st-petersburg-call@1"
    assert policy.program.phase == 2
    assert policy.program.timezone == "America/New_York"
    assert (policy.program.hours.start, policy.program.hours.end) == ("08:00", "24:00")
    assert {e.id for e in policy.exclusions} >= {
        "weapon", "violence", "injury", "medical", "crime-in-progress"}
    assert all(r.category in policy.categories for r in policy.rules)
    assert all(r.action is Action.team for r in policy.rules)
    crisis_line = next(r for r in policy.rules if r.id == "crisis-line")
    assert crisis_line.needs_field_unit is False
    # Two programs: the CALL field team in the city's districts, and the crisis line.
    assert policy.programs is not None
    field, line = policy.programs
    assert (field.id, field.mode, field.units, field.hours_text()) == (
        "call", "field", 4, "daily 08:00-24:00")
    assert field.area is not None and field.area.districts == ["D1", "D2", "D3", "D4"]
    assert field.deferrable == ["officer_referral", "follow_up", "crisis_line"]
    assert field.max_queued == 6 and field.queue
    assert set(field.categories or []) == set(policy.categories) - {"crisis_line"}
    assert (line.id, line.mode, line.categories, line.hours, line.units, line.area) == (
        "crisis-line", "phone", ["crisis_line"], None, None, None)
    assert policy.program.units == 4  # the programs' units in all


def test_load_policy_text_round_trips_the_minimal_document() -> None:
    policy = load_policy_text(
        "policy: {id: mini, version: '3'}\n"
        "program: {phase: 3, timezone: Europe/Oslo, units: 1}\n"
        "categories: [cat_a]\n"
        "rules:\n"
        "  - {id: r, category: cat_a, action: joint, when: {nature_code: [x]}}\n")
    assert policy.version_label == "mini@3"
    assert policy.rules[0].action is Action.joint
    assert policy.program.hours.days == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


# --- invalid policies --------------------------------------------------------------------


def test_unknown_key_in_a_rule_condition_names_its_path() -> None:
    doc = shipped_doc()
    doc["rules"][1]["when"]["nature_cod"] = ["EDP"]
    [err] = errors_of(doc)
    assert err.path == "rules[1].when.nature_cod"
    assert "not permitted" in err.reason.lower()
    assert str(err) == f"rules[1].when.nature_cod: {err.reason}"


def test_unknown_key_nested_under_not_and_any_names_the_full_path() -> None:
    doc = policy_doc(rules=[{"id": "r", "category": "cat_a", "action": "team",
                             "when": {"any": [{"nature_code": ["X"]},
                                              {"not": {"flag_any": ["weapon"]}}]}}])
    assert paths_of(doc) == ["rules[0].when.any[1].not.flag_any"]


def test_unknown_top_level_and_rule_keys_are_errors() -> None:
    doc = shipped_doc()
    doc["rulez"] = []
    doc["rules"][0]["needs_unit"] = False
    assert sorted(paths_of(doc)) == ["rules[0].needs_unit", "rulez"]


def test_rule_category_not_in_categories() -> None:
    doc = one_team_doc()
    doc["rules"][4]["category"] = "juvenile"
    [err] = errors_of(doc)
    assert err.path == "rules[4].category"
    assert "'juvenile'" in err.reason and "categories" in err.reason
    # With programs (the shipped policy), no program takes it either: both are said.
    doc = shipped_doc()
    doc["rules"][4]["category"] = "juvenile"
    undeclared, untaken = errors_of(doc)
    assert undeclared.path == untaken.path == "rules[4].category"
    assert "no program takes it" in untaken.reason


def test_duplicate_rule_ids() -> None:
    doc = shipped_doc()
    doc["rules"][5]["id"] = doc["rules"][2]["id"]
    [err] = errors_of(doc)
    assert err.path == "rules[5].id"
    assert f"'{doc['rules'][2]['id']}'" in err.reason
    assert "earlier" in err.reason


def test_exclusion_id_that_repeats_a_rule_id() -> None:
    doc = shipped_doc()
    doc["exclusions"][3]["id"] = "truancy"
    [err] = errors_of(doc)
    assert err.path == "exclusions[3].id"
    assert "'truancy'" in err.reason


def test_every_cross_field_error_is_reported_separately() -> None:
    doc = one_team_doc()
    doc["rules"][1]["category"] = "nope"
    doc["rules"][3]["id"] = doc["rules"][0]["id"]
    doc["rules"][6]["category"] = "also_nope"
    assert paths_of(doc) == ["rules[1].category", "rules[3].id", "rules[6].category"]


def test_every_field_error_is_reported_together() -> None:
    doc = shipped_doc()
    doc["program"]["phase"] = 4
    doc["program"]["timezone"] = "America/Nowhere"
    doc["rules"][1]["when"]["nature_cod"] = ["EDP"]
    doc["exclusions"][0]["when"]["any"][0]["flags_any"] = ["knife"]
    assert sorted(paths_of(doc)) == sorted([
        "program.phase", "program.timezone", "rules[1].when.nature_cod",
        "exclusions[0].when.any[0].flags_any[0]"])


def test_cross_field_errors_are_reported_alongside_field_errors() -> None:
    doc = one_team_doc()
    doc["program"]["phase"] = 4
    doc["rules"][2]["category"] = "nope"
    assert sorted(paths_of(doc)) == ["program.phase", "rules[2].category"]


def test_category_names_with_semicolons_do_not_corrupt_error_paths() -> None:
    doc = policy_doc(categories=["cat_a", "drugs; alcohol"],
                     rules=[{"id": "r", "category": "nope", "action": "team",
                             "when": {"nature_code": ["X"]}}])
    assert paths_of(doc) == ["rules[0].category"]


@pytest.mark.parametrize("zone", ["America/Nowhere", "Mars/Olympus_Mons", "", "../etc/passwd"])
def test_bad_time_zone(zone: str) -> None:
    doc = shipped_doc()
    doc["program"]["timezone"] = zone
    [err] = errors_of(doc)
    assert err.path == "program.timezone"
    assert "time zone" in err.reason


@pytest.mark.parametrize("clock", ["25:00", "24:30", "8:00", "08:60", "noon", "08:00:00"])
def test_bad_clock_in_hours(clock: str) -> None:
    doc = one_team_doc()
    doc["program"]["hours"]["end"] = clock
    [err] = errors_of(doc)
    assert err.path == "program.hours.end"
    assert f"'{clock}'" in err.reason and "HH:MM" in err.reason


def test_bad_clock_in_a_time_of_day_condition() -> None:
    doc = policy_doc(rules=[{"id": "r", "category": "cat_a", "action": "team",
                             "when": {"time_of_day": {"start": "22:00", "end": "25:00"}}}])
    [err] = errors_of(doc)
    assert err.path == "rules[0].when.time_of_day.end"


@pytest.mark.parametrize("clock", ["00:00", "23:59", "24:00"])
def test_valid_clock_edges_are_accepted(clock: str) -> None:
    doc = one_team_doc()
    doc["program"]["hours"]["end"] = clock
    assert parse_policy(doc).program.hours.end == clock


@pytest.mark.parametrize("phase", [0, 4, "two"])
def test_phase_outside_1_to_3(phase: object) -> None:
    doc = shipped_doc()
    doc["program"]["phase"] = phase
    [err] = errors_of(doc)
    assert err.path == "program.phase"
    assert "1, 2 or 3" in err.reason


def test_negative_units() -> None:
    doc = shipped_doc()
    doc["program"]["units"] = -1
    assert paths_of(doc) == ["program.units"]


def test_bad_weekday_in_hours() -> None:
    doc = one_team_doc()
    doc["program"]["hours"]["days"] = ["mon", "funday"]
    assert paths_of(doc) == ["program.hours.days[1]"]


def test_unknown_action_and_bad_rule_id() -> None:
    doc = shipped_doc()
    doc["rules"][0]["action"] = "fire"
    doc["rules"][2]["id"] = "Mental Health"
    assert sorted(paths_of(doc)) == ["rules[0].action", "rules[2].id"]


def test_empty_rules_list() -> None:
    doc = shipped_doc()
    doc["rules"] = []
    [err] = errors_of(doc)
    assert err.path == "rules"
    assert "at least 1" in err.reason


def test_missing_required_sections() -> None:
    doc = shipped_doc()
    del doc["program"]
    del doc["categories"]
    assert sorted(paths_of(doc)) == ["categories", "program"]


def test_empty_condition_is_refused() -> None:
    doc = policy_doc(rules=[{"id": "r", "category": "cat_a", "action": "team", "when": {}}])
    [err] = errors_of(doc)
    assert err.path == "rules[0].when"
    assert "at least one key" in err.reason


@pytest.mark.parametrize("values", [[], ["  "]])
def test_empty_or_blank_value_lists_are_refused(values: list[str]) -> None:
    doc = policy_doc(rules=[{"id": "r", "category": "cat_a", "action": "team",
                             "when": {"text_any": values}}])
    assert paths_of(doc) == ["rules[0].when.text_any"]


@pytest.mark.parametrize("document", [[1, 2], "just text", 42, None])
def test_top_level_not_a_mapping(document: Any) -> None:
    [err] = errors_of(document)
    assert err.path == ""
    assert "mapping" in err.reason
    assert str(err) == err.reason


def test_empty_yaml_text_is_not_a_mapping() -> None:
    with pytest.raises(PolicyInvalid) as info:
        load_policy_text("", "empty.yaml")
    assert [e.path for e in info.value.errors] == [""]
    assert "mapping" in info.value.errors[0].reason


def test_yaml_syntax_error_gives_the_line() -> None:
    text = ("policy: {id: x, version: '1'}\n"
            "program:\n"
            "  phase: 2\n"
            "   timezone: America/New_York\n")
    with pytest.raises(PolicyInvalid) as info:
        load_policy_text(text, "broken.yaml")
    [err] = info.value.errors
    assert err.path.startswith("line 4, column ")
    assert err.reason.startswith("not valid YAML")
    assert info.value.source == "broken.yaml"


def test_yaml_unclosed_bracket_in_shipped_text_gives_a_line_number() -> None:
    lines = default_policy_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("categories:"))
    lines[at] = "categories: [mental_health"
    with pytest.raises(PolicyInvalid) as info:
        load_policy_text("\n".join(lines))
    [err] = info.value.errors
    assert err.path.startswith("line ")
    line = int(err.path.split(",")[0].removeprefix("line "))
    assert line > at  # reported at or after the broken line, never before it


def test_policy_invalid_message_lists_every_error() -> None:
    doc = shipped_doc()
    doc["program"]["phase"] = 4
    doc["rules"][1]["when"]["nature_cod"] = ["EDP"]
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(doc, source="city.yaml")
    message = str(info.value)
    assert message.startswith("city.yaml is invalid:")
    for err in info.value.errors:
        assert f"  {err.path}: {err.reason}" in message


def test_an_exclusions_follow_up_names_a_program_the_policy_has() -> None:
    # The shipped policy: a follow-up by the field team after an overdose (issue 16).
    medical = next(e for e in load_default_policy().exclusions if e.id == "medical")
    assert medical.follow_up is not None
    assert (medical.follow_up.program, medical.follow_up.after_hours,
            medical.follow_up.nature_code) == ("call", 24, ["OD"])
    doc = shipped_doc()
    [excl] = [e for e in doc["exclusions"] if e["id"] == "medical"]
    excl["follow_up"] = {"program": "nobody"}
    [err] = errors_of(doc)
    assert err.path == f"exclusions[{doc['exclusions'].index(excl)}].follow_up.program"
    assert "'nobody'" in err.reason and "call" in err.reason
    excl["follow_up"] = {"program": "call", "after_hours": 0}
    assert paths_of(doc) == [
        f"exclusions[{doc['exclusions'].index(excl)}].follow_up.after_hours"]
    # A one-team policy's program is `team`.
    doc = one_team_doc()
    doc["exclusions"][0]["follow_up"] = {"program": "team"}
    parse_policy(doc, source="test.yaml")
    doc["exclusions"][0]["follow_up"] = {"program": "call"}
    assert paths_of(doc) == ["exclusions[0].follow_up.program"]
