"""Classify a call with a compiled policy: pure, no I/O, no clock.

`classify` walks every exclusion, then the rules in order until one holds, recording a
`Check` for each condition tested: dry-runs, explanations, `liaison policy check`.
`classify_fast` gives the same verdict from the indexed classifier (rules/classifier.py)
without a trace: live routing and the what-if; `classify_for_routing` adds the trace
of just the entries that held, all `route` needs to explain a decision. Both walk the
same compiled conditions (rules/conditions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from rules.call import CallFacts
from rules.classifier import Classifier, Entry, FastResult
from rules.conditions import CallView, Check, Conditions
from rules.models import Action, Policy
from rules.programs import ProgramSet, programs_of

__all__ = ["Check", "Classification", "CompiledPolicy", "RuleTrace", "classify",
           "classify_fast", "classify_for_routing", "compile_policy"]


class RuleTrace(BaseModel):
    rule_id: str
    kind: str  # "exclusion", "rule", or "disabled" (a rule switched off: not tested)
    matched: bool
    checks: list[Check]


class Classification(BaseModel):
    """What the rules say about a call, before program settings and availability."""

    category: str | None
    action: Action | None
    rule_id: str | None
    needs_field_unit: bool = True
    exclusions: list[str] = []
    matched_rules: list[str] = []
    trace: list[RuleTrace] = []
    error: str | None = None

    def reason_for(self, rule_id: str) -> str:
        """A one-line account of why a rule held, from its trace."""
        for t in self.trace:
            if t.rule_id == rule_id:
                held = [c for c in t.checks if c.held]
                return "; ".join(_describe(c) for c in held) or "no conditions"
        return ""


def _describe(c: Check) -> str:
    if c.field == "text":
        return f"text contains '{c.actual}'"
    if c.field == "flags":
        return f"flags include {', '.join(sorted(set(c.expected) & set(c.actual)))}"
    return f"{c.field} '{c.actual}' {c.op} {c.expected}"


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy ready to classify calls; build it with `compile_policy`."""

    policy: Policy
    zone: ZoneInfo
    exclusions: tuple[Entry, ...] = field(default=())
    rules: tuple[Entry, ...] = field(default=())
    # The fast path; None (a policy assembled by hand) falls back to `classify`.
    fast: Classifier | None = field(default=None, compare=False, repr=False)
    # Its response programs (rules/programs.py); None (assembled by hand): made when asked.
    compiled_programs: ProgramSet | None = field(default=None, compare=False, repr=False)
    # The agency whose policy it is (issue 17): its calls, units and queue are the ones
    # this policy decides and counts.
    agency: str = field(default="default", compare=False)

    @property
    def programs(self) -> ProgramSet:
        if self.compiled_programs is None:
            object.__setattr__(self, "compiled_programs", programs_of(self.policy))
        assert self.compiled_programs is not None
        return self.compiled_programs

    @property
    def version(self) -> str:
        return self.policy.version_label


def compile_policy(policy: Policy) -> CompiledPolicy:
    """Compile every condition once; the traced and the fast classifier share them."""
    zone = ZoneInfo(policy.program.timezone)
    conditions = Conditions()
    exclusions = tuple(Entry(e.id, "exclusion", conditions.compile(e.when))
                       for e in policy.exclusions)
    # A disabled rule's condition is compiled apart, so it adds nothing to the index.
    rules = tuple(Entry(r.id, "rule", (Conditions() if r.disabled else conditions)
                        .compile(r.when), r.category, r.action, r.needs_field_unit,
                        r.disabled) for r in policy.rules)
    return CompiledPolicy(policy=policy, zone=zone, exclusions=exclusions, rules=rules,
                          fast=Classifier(exclusions, rules, conditions, zone),
                          compiled_programs=programs_of(policy))


def classify(call: CallFacts, compiled: CompiledPolicy) -> Classification:
    """Classify a call: every exclusion is tested, then rules in order until one holds;
    a disabled rule is in the trace where it stands, as `disabled`, untested."""
    c = CallView(call, words_needed=False, zone=compiled.zone)
    trace: list[RuleTrace] = []
    exclusions: list[str] = []
    for entry in compiled.exclusions:
        checks: list[Check] = []
        held = entry.when.trace(c, checks)
        trace.append(RuleTrace(rule_id=entry.id, kind="exclusion", matched=held, checks=checks))
        if held:
            exclusions.append(entry.id)
    for entry in compiled.rules:
        if entry.disabled:
            trace.append(RuleTrace(rule_id=entry.id, kind="disabled", matched=False, checks=[]))
            continue
        checks = []
        held = entry.when.trace(c, checks)
        trace.append(RuleTrace(rule_id=entry.id, kind="rule", matched=held, checks=checks))
        if held:
            return Classification(category=entry.category, action=entry.action,
                                  rule_id=entry.id, needs_field_unit=entry.needs_field_unit,
                                  exclusions=exclusions, matched_rules=[*exclusions, entry.id],
                                  trace=trace)
    return Classification(category=None, action=None, rule_id=None, exclusions=exclusions,
                          matched_rules=list(exclusions), trace=trace)


def classify_fast(call: CallFacts, compiled: CompiledPolicy) -> FastResult:
    """`classify`'s verdict (category, action, rule, exclusions, matched rules), no trace."""
    if compiled.fast is None:
        c = classify(call, compiled)
        return FastResult(c.category, c.action, c.rule_id, c.needs_field_unit,
                          tuple(c.exclusions), tuple(c.matched_rules))
    return compiled.fast.classify(call)


def classify_for_routing(call: CallFacts, compiled: CompiledPolicy) -> Classification:
    """`classify` through the fast path, traced only where `route` explains: the
    exclusions and the rule that held (`reason_for` gives the same text as after
    `classify`; the trace of entries that did not hold is left out)."""
    if compiled.fast is None:
        return classify(call, compiled)
    r = compiled.fast.classify(call)
    trace: list[RuleTrace] = []
    if r.matched_rules:
        c = CallView(call, words_needed=False, zone=compiled.zone)
        wanted = set(r.matched_rules)
        for entry in (*compiled.exclusions, *compiled.rules):
            if entry.id in wanted:
                checks: list[Check] = []
                held = entry.when.trace(c, checks)
                trace.append(RuleTrace(rule_id=entry.id, kind=entry.kind, matched=held,
                                       checks=checks))
    return Classification(category=r.category, action=r.action, rule_id=r.rule_id,
                          needs_field_unit=r.needs_field_unit, exclusions=list(r.exclusions),
                          matched_rules=list(r.matched_rules), trace=trace)
