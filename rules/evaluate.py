"""Classify a call with a policy: pure, no I/O, no clock; every step is traced.

The policy is compiled once when it is loaded (regexes built, code sets
normalised) so each call costs a walk over prepared matchers.

`classify` is the traced interpreter: dry-runs, explanations, `liaison policy check`.
Live routing and simulation use the compiled fast path built beside it
(`rules.compile.Classifier`, indexed by nature code, channel, flag and word, no trace):
`classify_fast` gives the verdict alone, `classify_for_routing` the verdict plus the
trace of just the exclusions and rule that held, all `route` needs to explain it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from rules.call import CallFacts
from rules.compile import Classifier, FastResult, words_regex
from rules.models import WEEKDAYS, Action, Condition, Policy


class Check(BaseModel):
    """One condition tested against one call: what was expected, what was there."""

    field: str
    op: str
    expected: Any
    actual: Any
    held: bool


class RuleTrace(BaseModel):
    rule_id: str
    kind: str  # "exclusion" or "rule"
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


@dataclass
class _Ctx:
    call: CallFacts
    local: datetime
    text: str
    nature_code: str


Matcher = Callable[[_Ctx, list[Check]], bool]


def _words_regex(words: list[str]) -> re.Pattern[str]:
    # Whole words, case-insensitive; a phrase's spaces match any run of whitespace.
    # One definition for the traced and the compiled path.
    return words_regex(words)


def _compile(cond: Condition) -> Matcher:
    parts: list[Matcher] = []

    if cond.nature_code is not None:
        codes = frozenset(c.strip().upper() for c in cond.nature_code)
        expected = sorted(codes)

        def m_code(ctx: _Ctx, out: list[Check]) -> bool:
            held = ctx.nature_code in codes
            out.append(Check(field="nature_code", op="in", expected=expected,
                             actual=ctx.call.nature_code, held=held))
            return held

        parts.append(m_code)

    for key, negate in (("text_any", False), ("text_none", True)):
        words = getattr(cond, key)
        if words is None:
            continue
        rx = _words_regex(words)

        def m_text(ctx: _Ctx, out: list[Check], rx: re.Pattern[str] = rx,
                   words: list[str] = words, negate: bool = negate) -> bool:
            found = rx.search(ctx.text)
            held = (found is None) if negate else (found is not None)
            out.append(Check(field="text", op="contains none of" if negate else "contains",
                             expected=words, actual=found.group(0) if found else None, held=held))
            return held

        parts.append(m_text)

    for key, negate in (("flags_any", False), ("flags_none", True)):
        flags = getattr(cond, key)
        if flags is None:
            continue
        fset = frozenset(flags)

        def m_flags(ctx: _Ctx, out: list[Check], fset: frozenset[str] = fset,
                    negate: bool = negate) -> bool:
            hit = fset & ctx.call.flags
            held = not hit if negate else bool(hit)
            out.append(Check(field="flags", op="include none of" if negate else "include any of",
                             expected=sorted(fset), actual=sorted(ctx.call.flags), held=held))
            return held

        parts.append(m_flags)

    if cond.priority is not None:
        lo, hi = cond.priority.min, cond.priority.max

        def m_prio(ctx: _Ctx, out: list[Check]) -> bool:
            p = ctx.call.priority
            held = p is not None and (lo is None or p >= lo) and (hi is None or p <= hi)
            out.append(Check(field="priority", op="between", expected=[lo, hi], actual=p,
                             held=held))
            return held

        parts.append(m_prio)

    for key in ("channel", "district"):
        values = getattr(cond, key)
        if values is None:
            continue
        vset = frozenset(v.lower() for v in values)

        def m_in(ctx: _Ctx, out: list[Check], key: str = key, vset: frozenset[str] = vset,
                 values: list[str] = values) -> bool:
            actual = getattr(ctx.call, key)
            held = actual is not None and actual.lower() in vset
            out.append(Check(field=key, op="in", expected=values, actual=actual, held=held))
            return held

        parts.append(m_in)

    if cond.time_of_day is not None:
        window = cond.time_of_day

        def m_time(ctx: _Ctx, out: list[Check]) -> bool:
            held = window.contains(ctx.local.time())
            out.append(Check(field="local_time", op="within",
                             expected=f"{window.start}-{window.end}",
                             actual=ctx.local.strftime("%H:%M"), held=held))
            return held

        parts.append(m_time)

    if cond.day_of_week is not None:
        days = frozenset(cond.day_of_week)

        def m_day(ctx: _Ctx, out: list[Check]) -> bool:
            day = WEEKDAYS[ctx.local.weekday()]
            held = day in days
            out.append(Check(field="day_of_week", op="in", expected=sorted(days), actual=day,
                             held=held))
            return held

        parts.append(m_day)

    if cond.any is not None:
        subs = [_compile(c) for c in cond.any]

        def m_any(ctx: _Ctx, out: list[Check]) -> bool:
            # Stops at the first that holds; the trace shows what was tried.
            return any(s(ctx, out) for s in subs)

        parts.append(m_any)

    if cond.all is not None:
        subs_all = [_compile(c) for c in cond.all]

        def m_all(ctx: _Ctx, out: list[Check]) -> bool:
            return all(s(ctx, out) for s in subs_all)

        parts.append(m_all)

    if cond.not_ is not None:
        inner = _compile(cond.not_)

        def m_not(ctx: _Ctx, out: list[Check]) -> bool:
            sub: list[Check] = []
            held = not inner(ctx, sub)
            out.extend(c.model_copy(update={"op": f"not {c.op}", "held": not c.held})
                       for c in sub)
            return held

        parts.append(m_not)

    def m_and(ctx: _Ctx, out: list[Check]) -> bool:
        return all(p(ctx, out) for p in parts)

    return m_and


@dataclass(frozen=True)
class _CompiledEntry:
    id: str
    kind: str
    match: Matcher
    category: str | None = None
    action: Action | None = None
    needs_field_unit: bool = True


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy ready to classify calls; build it with `compile_policy`."""

    policy: Policy
    zone: ZoneInfo
    exclusions: tuple[_CompiledEntry, ...] = field(default=())
    rules: tuple[_CompiledEntry, ...] = field(default=())
    # The fast path; None (a policy assembled by hand) falls back to `classify`.
    fast: Classifier | None = field(default=None, compare=False, repr=False)

    @property
    def version(self) -> str:
        return self.policy.version_label


def compile_policy(policy: Policy) -> CompiledPolicy:
    zone = ZoneInfo(policy.program.timezone)
    return CompiledPolicy(
        policy=policy,
        zone=zone,
        fast=Classifier(policy, zone),
        exclusions=tuple(_CompiledEntry(e.id, "exclusion", _compile(e.when))
                         for e in policy.exclusions),
        rules=tuple(_CompiledEntry(r.id, "rule", _compile(r.when), r.category, r.action,
                                   r.needs_field_unit) for r in policy.rules),
    )


def classify(call: CallFacts, compiled: CompiledPolicy) -> Classification:
    """Classify a call: every exclusion is tested, then rules in order until one holds."""
    ctx = _Ctx(call=call, local=call.occurred_at.astimezone(compiled.zone), text=call.text,
               nature_code=call.nature_code.strip().upper())
    trace: list[RuleTrace] = []
    exclusions: list[str] = []
    for entry in compiled.exclusions:
        checks: list[Check] = []
        held = entry.match(ctx, checks)
        trace.append(RuleTrace(rule_id=entry.id, kind="exclusion", matched=held, checks=checks))
        if held:
            exclusions.append(entry.id)
    for entry in compiled.rules:
        checks = []
        held = entry.match(ctx, checks)
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
        ctx = _Ctx(call=call, local=call.occurred_at.astimezone(compiled.zone),
                   text=call.text, nature_code=call.nature_code.strip().upper())
        wanted = set(r.matched_rules)
        for entry in (*compiled.exclusions, *compiled.rules):
            if entry.id in wanted:
                checks: list[Check] = []
                held = entry.match(ctx, checks)
                trace.append(RuleTrace(rule_id=entry.id, kind=entry.kind, matched=held,
                                       checks=checks))
    return Classification(category=r.category, action=r.action, rule_id=r.rule_id,
                          needs_field_unit=r.needs_field_unit, exclusions=list(r.exclusions),
                          matched_rules=list(r.matched_rules), trace=trace)
