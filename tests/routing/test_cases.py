"""A policy's own test cases, run through classify and route (routing/cases.py)."""

from __future__ import annotations

from routing.cases import run_tests
from rules.load import load_default_policy, parse_policy
from tests.factories import shipped_doc


def test_shipped_policy_test_cases_all_pass() -> None:
    policy = load_default_policy()
    results = run_tests(policy)
    assert len(results) == len(policy.tests) >= 10
    failed = {r.name: r.failures for r in results if not r.passed}
    assert failed == {}
    assert all(r.decision is not None for r in results)


def test_run_tests_reports_a_wrong_expectation_as_a_failure() -> None:
    doc = shipped_doc()
    doc["tests"] = [doc["tests"][0]]
    doc["tests"][0]["expect"] = {"destination": "police", "category": "truancy"}
    [result] = run_tests(parse_policy(doc))
    assert not result.passed
    assert result.failures == [
        "destination: expected 'police', got 'call_team'",
        "category: expected 'truancy', got 'mental_health'",
    ]


def test_run_tests_reports_a_malformed_test_call_without_crashing() -> None:
    doc = shipped_doc()
    doc["tests"] = [{"name": "bad call", "call": {"nature_code": "MNTL"},  # no occurred_at
                     "expect": {"destination": "police"}}]
    [result] = run_tests(parse_policy(doc))
    assert not result.passed
    assert result.decision is None
    assert len(result.failures) == 1
    assert result.failures[0].startswith("tests[0].call.occurred_at: ")
