"""Run a policy's own test cases: each call through classify and route, compared.

A case is decided as a service that keeps queues would decide it (each program's state
from the case's `availability`), so a case can expect a call queued or deferred. A case's
time may be local, without an offset: it is read in the policy's time zone, so the cases
move with the policy to another zone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from routing.decide import decide_call
from routing.models import Availability, Decision, ProgramState
from routing.programs import program_states
from rules.call import CallFacts
from rules.evaluate import CompiledPolicy, compile_policy
from rules.models import Policy, TestCase

# RFC 3339 date and time without an offset (a space may stand for the T).
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


class TestResult(BaseModel):
    __test__ = False  # not a pytest class

    name: str
    passed: bool
    failures: list[str]
    decision: Decision | None = None


def local_time(value: Any, zone: ZoneInfo) -> Any:
    """A time without an offset, read in `zone` (DST-correct); anything else unchanged."""
    if isinstance(value, str) and _LOCAL.match(value.strip()):
        return datetime.fromisoformat(value.strip()).replace(tzinfo=zone)
    return value


def case_facts(case: TestCase, zone: ZoneInfo) -> CallFacts:
    call = dict(case.call)
    if "occurred_at" in call:
        call["occurred_at"] = local_time(call["occurred_at"], zone)
    return CallFacts.model_validate(call)


def case_state(case: TestCase, compiled: CompiledPolicy) -> dict[str, ProgramState]:
    """Each program's state for a case: as the case gives it by program id, else its
    share of the case's `units_busy` (all of it, in the one-team format)."""
    given = case.availability.programs
    # The case's policy-wide `units_busy` fills the programs' units in order.
    filled = program_states(compiled, Availability(
        units_total=compiled.policy.program.units,
        units_busy=case.availability.units_busy), None)
    return {p.id: (ProgramState(units_busy=given[p.id].units_busy, queued=given[p.id].queued)
                   if p.id in given else filled[i])
            for i, p in enumerate(compiled.programs.programs)}


def _actual(decision: Decision, key: str) -> Any:
    if key == "program":
        return decision.program.id
    if key == "queued":
        return decision.queued is not None
    actual = getattr(decision, key)
    return getattr(actual, "value", actual)


def run_tests(policy: Policy, compiled: CompiledPolicy | None = None) -> list[TestResult]:
    """Run every test case of the policy; a malformed test case is a failure, not a crash."""
    compiled = compiled or compile_policy(policy)
    results: list[TestResult] = []
    for i, case in enumerate(policy.tests):
        try:
            call = case_facts(case, compiled.zone)
        except ValidationError as exc:
            problems = [f"tests[{i}].call.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                        for e in exc.errors()]
            results.append(TestResult(name=case.name, passed=False, failures=problems))
            continue
        availability = Availability(units_total=policy.program.units,
                                    units_busy=case.availability.units_busy)
        decision = decide_call(call, compiled, availability,
                               state=case_state(case, compiled))
        failures = []
        for key, expected in case.expect.model_dump(exclude_unset=True).items():
            actual = _actual(decision, key)
            if key == "deferred_until" and expected is not None:
                expected = local_time(expected, compiled.zone)
                expected = datetime.fromisoformat(expected) if isinstance(expected, str) \
                    else expected
            if isinstance(actual, datetime) and isinstance(expected, datetime):
                # The same instant (Python holds an ambiguous local time unequal to others).
                expected = expected.astimezone(actual.tzinfo).isoformat()
                actual = actual.isoformat()
            if actual != expected:
                failures.append(f"{key}: expected {expected!r}, got {actual!r}")
        results.append(TestResult(name=case.name, passed=not failures, failures=failures,
                                  decision=decision))
    return results
