"""Small builders shared by the rules and routing tests: policies as plain dicts."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rules.call import CallFacts
from rules.evaluate import Classification, CompiledPolicy, classify, compile_policy
from rules.load import default_policy_text, parse_policy
from rules.models import Policy

# A Tuesday afternoon in New York (EDT, UTC-4): inside the default team hours.
TUESDAY_AFTERNOON = "2026-03-10T14:00:00-04:00"


def policy_doc(
    *,
    rules: list[dict[str, Any]] | None = None,
    exclusions: list[dict[str, Any]] | None = None,
    categories: list[str] | None = None,
    phase: int = 2,
    timezone: str = "America/New_York",
    hours: dict[str, Any] | None = None,
    units: int = 2,
) -> dict[str, Any]:
    """A minimal valid policy document; override any part."""
    program: dict[str, Any] = {"phase": phase, "timezone": timezone, "units": units}
    if hours is not None:
        program["hours"] = hours
    return {
        "policy": {"id": "test-policy", "version": "7"},
        "program": program,
        "categories": categories or ["cat_a", "cat_b", "cat_c"],
        "exclusions": exclusions or [],
        "rules": rules or [{"id": "r", "category": "cat_a", "action": "team",
                            "when": {"nature_code": ["X"]}}],
    }


def compiled(doc: dict[str, Any]) -> CompiledPolicy:
    return compile_policy(parse_policy(doc))


def single_rule(when: dict[str, Any], **program: Any) -> CompiledPolicy:
    """A policy with one rule `r` (category cat_a, action team) holding `when`."""
    return compiled(policy_doc(rules=[{"id": "r", "category": "cat_a", "action": "team",
                                       "when": when}], **program))


def facts(**fields: Any) -> CallFacts:
    fields.setdefault("occurred_at", TUESDAY_AFTERNOON)
    return CallFacts.model_validate(fields)


def run(policy: CompiledPolicy, **fields: Any) -> Classification:
    return classify(facts(**fields), policy)


def matches(when: dict[str, Any], **fields: Any) -> bool:
    """Does a single rule with condition `when` hold for the call?"""
    return run(single_rule(when), **fields).rule_id == "r"


def shipped_doc() -> dict[str, Any]:
    """A fresh, mutable copy of the shipped policy document."""
    return copy.deepcopy(yaml.safe_load(default_policy_text()))


def shipped_policy() -> Policy:
    return parse_policy(shipped_doc())
