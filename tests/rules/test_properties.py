"""Properties of the evaluator under generated policies and calls (hypothesis).

- A call with a safety flag is never sent to the team, alone or jointly, under any
  policy that keeps the shipped exclusions, whatever its rules, phase, hours or units:
  police respond on the basis of the flag's exclusion, through `decide_call` (traced)
  and through the compiled fast path alike.

- Without a flag, a call reaches the team only through a rule, never past an exclusion.

The strategies here are shared with test_compiled_equivalence.py. Keywords, codes and
texts are drawn from small shared vocabularies so generated conditions actually hold on
generated calls; they include phrases, punctuation, mixed case, odd whitespace and
non-ASCII letters whose case folding differs from `str.lower` (long s, Kelvin sign,
dotless i).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.models import Availability, Destination, Mode
from routing.service import decide_call, route
from rules.call import CallFacts
from rules.evaluate import classify_fast, classify_for_routing
from rules.models import WEEKDAYS
from tests.rules.helpers import compiled, shipped_doc

_SHIPPED = shipped_doc()  # parsed once; each example mutates a deep copy

FLAGS = ["weapon", "violence", "injury", "medical", "crime_in_progress"]
CHANNELS = ["911", "non_emergency", "officer_on_scene", "officer_referral", "follow_up",
            "crisis_line"]
CODES = ["EDP", "MNTL", "VAG", "DISORD", "TRESPASS", "OD", "ASSAULT", "X1", "WELFARE",
         "DVNA", "INTOX", "CDX", "NOISE", "JUV"]
WORDS = ["gun", "knife", "mental", "health", "mental health", "homeless", "high", "drunk",
         "welfare check", "check", "a.b", "(x)", "9-1-1", "gun_shop", "Gun", "MENTAL  Health",
         "sleeping", "health crisis", "café", "ſtop", "stop", "\u212aey", "key", "ıce",
         "hearing voices", "voices", "x", "!!"]
SEPARATORS = [" ", "  ", "\t", "\n", "-", ".", ",", "_", "", " (", ") ", "é", "s"]
DISTRICTS = ["north", "South", "EAST"]


def _case(s: str) -> st.SearchStrategy[str]:
    return st.sampled_from([s, s.lower(), s.upper(), s.title()])


codes = st.sampled_from(CODES).flatmap(
    lambda c: st.sampled_from([c, c.lower(), f" {c} ", c.title()]))
words = st.sampled_from(WORDS)
clock = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23),
                  st.sampled_from([0, 15, 30, 59])) | st.just("24:00")


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.lists(codes, min_size=1, max_size=4).map(lambda v: {"nature_code": v}),
        st.lists(words, min_size=1, max_size=4).map(lambda v: {"text_any": v}),
        st.lists(words, min_size=1, max_size=3).map(lambda v: {"text_none": v}),
        st.lists(st.sampled_from(FLAGS), min_size=1, max_size=3).map(
            lambda v: {"flags_any": v}),
        st.lists(st.sampled_from(FLAGS), min_size=1, max_size=3).map(
            lambda v: {"flags_none": v}),
        st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3).map(
            lambda v: {"channel": v}),
        st.lists(st.sampled_from(DISTRICTS), min_size=1, max_size=2).map(
            lambda v: {"district": v}),
        st.tuples(st.none() | st.integers(1, 5), st.none() | st.integers(1, 5)).map(
            lambda t: {"priority": {k: v for k, v in zip(("min", "max"), t, strict=True)
                                    if v is not None}}),
        st.tuples(clock, clock).map(lambda t: {"time_of_day": {"start": t[0], "end": t[1]}}),
        st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=4).map(
            lambda v: {"day_of_week": v}),
    )


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parts:
        out.update(p)
    return out


conditions: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.lists(_leaf(), min_size=1, max_size=3).map(_merge),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda v: {"any": v}),
        st.lists(inner, min_size=1, max_size=3).map(lambda v: {"all": v}),
        inner.map(lambda v: {"not": v}),
        st.tuples(inner, _leaf()).map(lambda t: {**t[1], "any": [t[0]]}),
    ),
    max_leaves=4,
)


@st.composite
def rule_lists(draw: st.DrawFn, categories: list[str], prefix: str = "r",
               min_size: int = 1, max_size: int = 8) -> list[dict[str, Any]]:
    n = draw(st.integers(min_size, max_size))
    return [{"id": f"{prefix}{i}", "category": draw(st.sampled_from(categories)),
             "action": draw(st.sampled_from(["team", "police", "joint"])),
             "needs_field_unit": draw(st.booleans()),
             "when": draw(conditions)} for i in range(n)]


@st.composite
def texts(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.one_of(words.flatmap(_case), st.sampled_from(SEPARATORS),
                                     st.text(max_size=3)), max_size=6))
    return "".join(pieces)


@st.composite
def calls(draw: st.DrawFn, flags: st.SearchStrategy[list[str]] | None = None) -> dict[str, Any]:
    day = draw(st.integers(8, 21))
    hour, minute = draw(st.integers(0, 23)), draw(st.sampled_from([0, 1, 29, 59]))
    offset = draw(st.sampled_from(["-04:00", "-05:00", "Z", "+05:30"]))
    return {
        "channel": draw(st.sampled_from(CHANNELS)),
        "nature_code": draw(codes | st.sampled_from(["", "UNKNOWN", "INFO"])),
        "nature_text": draw(texts()),
        "narrative": draw(st.none() | texts()),
        "priority": draw(st.none() | st.integers(0, 6)),
        "district": draw(st.none() | st.sampled_from(DISTRICTS + ["north", "west"])),
        "flags": draw(flags if flags is not None
                      else st.lists(st.sampled_from(FLAGS), max_size=2, unique=True)),
        "occurred_at": f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00{offset}",
    }


BOUNDED = settings(max_examples=200, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# The shipped exclusion each safety flag triggers.
FLAG_EXCLUSION = {"weapon": "weapon", "violence": "violence", "injury": "injury",
                  "medical": "medical", "crime_in_progress": "crime-in-progress"}


@st.composite
def shipped_variants(draw: st.DrawFn) -> dict[str, Any]:
    """The shipped policy with its exclusions kept and its rules mutated: some removed,
    some given random conditions and actions, random rules added anywhere, a random
    phase and unit count and hours."""
    doc = copy.deepcopy(_SHIPPED)
    categories: list[str] = doc["categories"]
    # Per shipped rule: keep, drop, new condition, new action, no field unit.
    fates = draw(st.lists(st.sampled_from(["keep", "keep", "drop", "when", "action", "phone"]),
                          min_size=len(doc["rules"]), max_size=len(doc["rules"])))
    rules: list[dict[str, Any]] = []
    for r, fate in zip(doc["rules"], fates, strict=True):
        if fate == "drop":
            continue
        if fate == "when":
            r["when"] = draw(conditions)
        elif fate == "action":
            r["action"] = "joint"
        elif fate == "phone":
            r["needs_field_unit"] = False
        rules.append(r)
    for extra in draw(rule_lists(categories, prefix="gen-", min_size=0, max_size=6)):
        extra["action"] = draw(st.sampled_from(["team", "team", "joint", "police"]))
        rules.insert(draw(st.integers(0, len(rules))), extra)
    if not rules:
        rules = draw(rule_lists(categories, prefix="gen-"))
    doc["rules"] = rules
    doc["tests"] = []
    doc["program"]["phase"] = draw(st.sampled_from([1, 2, 3]))
    doc["program"]["units"] = draw(st.integers(0, 4))
    if draw(st.booleans()):
        doc["program"]["hours"] = {"start": draw(clock), "end": draw(clock)}
    return doc


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
