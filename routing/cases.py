"""Run a policy's own test cases: each call through classify and route, compared."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from routing.decide import decide_call
from routing.models import Availability, Decision
from rules.call import CallFacts
from rules.evaluate import CompiledPolicy, compile_policy
from rules.models import Policy


class TestResult(BaseModel):
    __test__ = False  # not a pytest class

    name: str
    passed: bool
    failures: list[str]
    decision: Decision | None = None


def run_tests(policy: Policy, compiled: CompiledPolicy | None = None) -> list[TestResult]:
    """Run every test case of the policy; a malformed test case is a failure, not a crash."""
    compiled = compiled or compile_policy(policy)
    results: list[TestResult] = []
    for i, case in enumerate(policy.tests):
        try:
            call = CallFacts.model_validate(case.call)
        except ValidationError as exc:
            problems = [f"tests[{i}].call.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                        for e in exc.errors()]
            results.append(TestResult(name=case.name, passed=False, failures=problems))
            continue
        availability = Availability(units_total=policy.program.units,
                                    units_busy=case.availability.units_busy)
        decision = decide_call(call, compiled, availability)
        failures = []
        for key, expected in case.expect.model_dump(exclude_unset=True).items():
            actual = getattr(decision, key)
            actual = getattr(actual, "value", actual)
            if actual != expected:
                failures.append(f"{key}: expected {expected!r}, got {actual!r}")
        results.append(TestResult(name=case.name, passed=not failures, failures=failures,
                                  decision=decision))
    return results
