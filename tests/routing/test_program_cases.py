"""A policy's own test cases: local times read in the policy's zone, the analysis warning
for a time written in another zone's offset, and cases about programs (which program,
queued, deferred until when)."""

from __future__ import annotations

import re
from typing import Any

from routing.cases import run_tests
from routing.decide import decide_call
from routing.models import Availability, Destination
from rules.analysis import check_policy
from rules.evaluate import compile_policy
from rules.load import parse_policy
from tests.factories import facts, programs_doc, shipped_doc

_OFFSET = re.compile(r"(Z|[+-]\d{2}:\d{2})$")


def _local(doc: dict[str, Any]) -> dict[str, Any]:
    for case in doc["tests"]:
        case["call"]["occurred_at"] = _OFFSET.sub("", case["call"]["occurred_at"])
    return doc


def test_local_times_move_with_the_policy_to_another_zone() -> None:
    for zone in ("America/New_York", "America/Los_Angeles", "Europe/Berlin"):
        doc = _local(shipped_doc())
        doc["program"]["timezone"] = zone
        results = run_tests(parse_policy(doc))
        assert results and all(r.passed for r in results), (zone, [
            (r.name, r.failures) for r in results if not r.passed])
    # Written with New York's offsets, the same cases test other hours elsewhere.
    doc = shipped_doc()
    doc["program"]["timezone"] = "America/Los_Angeles"
    assert not all(r.passed for r in run_tests(parse_policy(doc)))


def test_the_analysis_warns_when_a_case_time_disagrees_with_the_zone() -> None:
    assert not [w for w in check_policy(parse_policy(shipped_doc())) if w.kind == "test_time"]
    assert not [w for w in check_policy(parse_policy(_local(shipped_doc())))
                if w.kind == "test_time"]
    doc = shipped_doc()
    # January in New York is EST (-05:00): 14:00-04:00 is 13:00 there, not 14:00.
    doc["tests"][0]["call"]["occurred_at"] = "2026-01-13T14:00:00-04:00"
    found = [w for w in check_policy(parse_policy(doc)) if w.kind == "test_time"]
    assert len(found) == 1
    assert found[0].details == {"test": 0, "occurred_at": "2026-01-13T14:00:00-04:00",
                                "local": "2026-01-13T13:00-05:00"}
    assert "is 2026-01-13 13:00 in America/New_York (offset -0500)" in found[0].message
    doc["program"]["timezone"] = "America/Chicago"
    # Every case written with New York's offset warns; a local time (no offset) never does.
    offsets = [t for t in doc["tests"] if _OFFSET.search(t["call"]["occurred_at"])]
    assert 0 < len(offsets) < len(doc["tests"])
    assert len([w for w in check_policy(parse_policy(doc)) if w.kind == "test_time"]) == \
        len(offsets)


def test_cases_can_expect_the_program_a_queue_and_a_deferral() -> None:
    doc = programs_doc(tests=[
        {"name": "queued behind two busy units",
         "call": {"nature_code": "MNTL", "priority": 3, "district": "D1",
                  "occurred_at": "2026-03-10T14:00:00"},
         "availability": {"programs": {"field": {"units_busy": 2, "queued": 1},
                                       "co-response": {"units_busy": 1}}},
         "expect": {"destination": "call_team", "program": "field", "queued": True}},
        {"name": "a referral on Friday night waits for Saturday",
         "call": {"channel": "officer_referral", "nature_code": "VAG",
                  "occurred_at": "2026-03-06T22:00:00"},
         "expect": {"destination": "call_team", "deferred_until": "2026-03-07T10:00:00"}},
        {"name": "outside every area",
         "call": {"nature_code": "VAG", "district": "D7",
                  "occurred_at": "2026-03-10T14:00:00"},
         "expect": {"destination": "police", "not_served_reason": "outside_area",
                    "program": "field", "queued": False}},
        {"name": "a wrong expectation fails",
         "call": {"nature_code": "MNTL", "district": "D2",
                  "occurred_at": "2026-03-10T14:00:00"},
         "expect": {"destination": "joint", "program": "field",
                    "deferred_until": "2026-03-11T08:00:00-04:00"}},
    ])
    results = run_tests(parse_policy(doc))
    assert [r.passed for r in results] == [True, True, True, False]
    assert results[3].failures == ["program: expected 'field', got 'co-response'",
                                   "deferred_until: expected datetime.datetime(2026, 3, 11, 8, "
                                   "0, tzinfo=datetime.timezone(datetime.timedelta(days=-1, "
                                   "seconds=72000))), got None"]


def test_a_cases_units_busy_fills_the_programs_in_order() -> None:
    doc = programs_doc(tests=[
        {"name": "three busy: the field team's two and the co-response unit",
         "call": {"nature_code": "MNTL", "priority": 1, "district": "D1",
                  "occurred_at": "2026-03-10T14:00:00"},
         "availability": {"units_busy": 3},
         "expect": {"destination": "police", "not_served_reason": "units_busy"}},
        {"name": "two busy: the co-response unit is free",
         "call": {"nature_code": "MNTL", "priority": 1, "district": "D1",
                  "occurred_at": "2026-03-10T14:00:00"},
         "availability": {"units_busy": 2},
         "expect": {"destination": "joint", "program": "co-response"}},
    ])
    results = run_tests(parse_policy(doc))
    assert all(r.passed for r in results), [(r.name, r.failures) for r in results]


def test_a_program_setting_that_fails_sends_police_visibly() -> None:
    policy = compile_policy(parse_policy(programs_doc()))

    class Broken(dict):  # type: ignore[type-arg]
        def get(self, *_: object) -> object:
            raise RuntimeError("state store unreadable")

    d = decide_call(facts(nature_code="MNTL", district="D1"), policy,
                    Availability(units_total=3, units_busy=0), state=Broken())
    assert (d.destination, d.basis, d.eligible) == (Destination.police, "evaluation_error",
                                                    True)
    assert "Choosing a program failed (RuntimeError: state store unreadable)" in d.explanation
