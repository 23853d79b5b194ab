"""Builders for the routing tests; policies and calls come from tests/rules/helpers.py."""

from __future__ import annotations

from typing import Any

from routing.decide import decide_call
from routing.models import Availability, Decision
from rules.evaluate import CompiledPolicy
from tests.rules.helpers import facts


def decide(policy: CompiledPolicy, *, units_busy: int = 0, **fields: Any) -> Decision:
    availability = Availability(units_total=policy.policy.program.units, units_busy=units_busy)
    return decide_call(facts(**fields), policy, availability)
