"""Hypothesis strategies for policies and calls, shared by the rules and routing tests.

Keywords, codes and texts are drawn from small shared vocabularies so generated
conditions actually hold on generated calls; they include phrases, punctuation, mixed
case, odd whitespace and non-ASCII letters whose case folding differs from `str.lower`
(long s, Kelvin sign, dotless i).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from rules.models import WEEKDAYS
from tests.factories import one_team_doc

# The shipped rules with one team, parsed once; each example mutates a deep copy.
_SHIPPED = one_team_doc()

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

@st.composite
def shipped_variants(draw: st.DrawFn) -> dict[str, Any]:
    """The shipped policy in the one-team format with its exclusions kept and its rules
    mutated: some removed, some given random conditions and actions, random rules added
    anywhere, a random phase and unit count and hours."""
    doc = copy.deepcopy(_SHIPPED)
    categories: list[str] = doc["categories"]
    # Per shipped rule: keep, drop, new condition, new action, no field unit, disabled.
    fates = draw(st.lists(st.sampled_from(["keep", "keep", "drop", "when", "action", "phone",
                                           "disabled"]),
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
        elif fate == "disabled":
            r["disabled"] = True
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


@st.composite
def program_variants(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped variant whose categories are shared among one to three response programs
    of random modes, shifts, units, districts, wait limits and deferrable channels (every
    category a team rule names is taken by some program)."""
    doc = draw(shipped_variants())
    categories: list[str] = doc["categories"]
    n = draw(st.integers(1, 3))
    owners = [draw(st.integers(0, n - 1)) for _ in categories]
    programs = []
    for i in range(n):
        mine = [c for c, o in zip(categories, owners, strict=True) if o == i]
        mode = draw(st.sampled_from(["field", "field", "co_response", "phone"]))
        program: dict[str, Any] = {
            "id": f"p{i}", "name": f"Program {i}", "mode": mode,
            "categories": mine or None,  # a program with none listed takes every category
            "units": draw(st.integers(0, 3)) if mode != "phone" else draw(
                st.none() | st.integers(0, 2)),
            "queue": [{"category": c, "max_wait_minutes": draw(st.integers(1, 90)),
                       **({"priority": {"min": draw(st.integers(1, 5))}}
                          if draw(st.booleans()) else {})}
                      for c in mine if draw(st.booleans())],
            "deferrable": draw(st.lists(st.sampled_from(CHANNELS), max_size=3, unique=True)),
        }
        if draw(st.booleans()):
            program["hours"] = {"daily": [f"{draw(clock)}-{draw(clock)}"],
                                draw(st.sampled_from(WEEKDAYS)): []}
        if draw(st.booleans()):
            program["area"] = {"districts": draw(st.lists(st.sampled_from(DISTRICTS),
                                                          min_size=1, max_size=2))}
        programs.append(program)
    doc["programs"] = programs
    doc["program"].pop("units", None)
    return doc
