"""`liaison profile check`: how an export's rows would map, without a server.

Each row is mapped, its events are validated against the CAD contract (the server's own
model, so a predicted rejection reads exactly as the server's 422 would), and each call
is classified with a policy (rules and exclusions only: hours and units are the server's
to judge at the time).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.exports.mapping import Mapped, Mapper
from adapters.exports.profile import looks_unsafe, rule_warnings, zone_warning
from adapters.exports.replay import NONE, reject_reason
from rules.evaluate import CompiledPolicy, classify
from service.calls.event import CallEvent
from service.calls.fold import fold
from service.errors import field_errors

EXAMPLES = 3


def contract_problem(events: list[dict[str, Any]]) -> tuple[str | None, list[CallEvent]]:
    """What the server would answer 422 for (None when it would take every event)."""
    parsed = []
    for event in events:
        try:
            parsed.append(CallEvent.model_validate(event))
        except ValidationError as exc:
            return reject_reason(field_errors(exc.errors())), parsed
    return None, parsed


def _uses_time(node: Any) -> bool:
    if isinstance(node, dict):
        return any((k in ("time_of_day", "day_of_week") and v is not None) or _uses_time(v)
                   for k, v in node.items())
    if isinstance(node, list):
        return any(_uses_time(v) for v in node)
    return False


class OfflineClassifier:
    """`classify` over many calls; calls alike in every field the rules read share one
    result unless the policy looks at the time."""

    def __init__(self, compiled: CompiledPolicy) -> None:
        self.compiled = compiled
        doc = compiled.policy.model_dump()
        self._by_time = _uses_time([doc.get("exclusions"), doc.get("rules")])
        self._cache: dict[tuple[Any, ...], tuple[str | None, tuple[str, ...]]] = {}

    def __call__(self, events: list[CallEvent]) -> tuple[str | None, tuple[str, ...]]:
        """(category, exclusions that held) for one call's events."""
        facts = fold(events).facts()
        key = (facts.channel, facts.nature_code, facts.nature_text, facts.narrative,
               facts.priority, facts.district, facts.flags,
               facts.occurred_at if self._by_time else None)
        hit = self._cache.get(key)
        if hit is None:
            c = classify(facts, self.compiled)
            hit = self._cache[key] = (c.category, tuple(c.exclusions))
        return hit


@dataclass
class CheckReport:
    profile: str
    sample: str
    policy: str | None
    rows: int = 0
    sendable: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    nature_codes: Counter[str] = field(default_factory=Counter)
    hints: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)
    missed_hints: Counter[tuple[str, str]] = field(default_factory=Counter)
    unhinted: Counter[tuple[str, str]] = field(default_factory=Counter)
    passed_through: Counter[str] = field(default_factory=Counter)
    dispositions: Counter[str] = field(default_factory=Counter)
    # (city code, what it says, category) -> calls: a safety-looking code given to the team
    unsafe: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    code_text: dict[str, str] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    first_call: datetime | None = None

    @property
    def accounted(self) -> int:
        return self.sendable + self.skipped.total() + self.failed.total() + \
            self.invalid.total()

    def _example(self, key: str, line: str) -> None:
        got = self.examples.setdefault(key, [])
        if len(got) < EXAMPLES:
            got.append(line)

    def add(self, m: Mapped, classifier: OfflineClassifier | None) -> None:
        self.rows += 1
        if m.outcome != "skip":
            self.dispositions[m.disposition or NONE] += 1
        if m.code and m.text:
            self.code_text.setdefault(m.code, m.text)
        where = (f"row {m.row}: incident {m.incident_id or '?'}, code {m.code or '?'}"
                 f"{f' ({m.text})' if m.text else ''}")
        if m.outcome == "skip":
            self.skipped[m.reason or "?"] += 1
            self._example(f"skipped, {m.reason}", where)
            return
        if m.outcome == "fail":
            # One line per reason, however many rows: the rows' values are the examples.
            self.failed[m.reason or "?"] += 1
            self._example(f"fails to map, {m.reason}",
                          f"{where}: '{m.value}'" if m.value is not None else where)
            return
        problem, events = contract_problem(m.events)
        if problem is not None:
            self.invalid[problem] += 1
            self._example(f"would be rejected, {problem}", where)
            return
        self.sendable += 1
        self.events += len(events)
        if m.at is not None and (self.first_call is None or m.at < self.first_call):
            self.first_call = m.at
        self.channels[m.channel or NONE] += 1
        self.nature_codes[m.nature_code or NONE] += 1
        if m.code_rule is None and m.code:
            self.passed_through[m.code] += 1
        if m.category:
            self.hints[m.category] += 1
            if not self.examples.get(f"sent, hint {m.category}"):
                self._example(f"sent, hint {m.category}",
                              f"{where} -> {json.dumps(m.events[0])}")
        team = m.category
        if classifier is not None:
            category, exclusions = classifier(events)
            team = team or (category if not exclusions else None)
            self.categories[category or NONE] += 1
            for e in exclusions:
                self.excluded[e] += 1
            if m.category and m.category != category:
                self.missed_hints[(m.category, category or NONE)] += 1
                self._example(f"hint {m.category} not reached", where)
            elif category and not m.category:
                self.unhinted[(m.code or NONE, category)] += 1
        word = looks_unsafe(m.code) or looks_unsafe(m.text)
        if team and word:
            self.unsafe[(m.code or NONE, word, team)] += 1
            self._example(f"WARNING: looks like {word} but goes to the team as {team}", where)

    def render(self) -> str:
        w = 8
        out = [f"profile {self.profile}", f"  {self.rows:>{w},}  rows read from {self.sample}",
               f"  {self.sendable:>{w},}  would be sent ({self.events:,} events)"]

        def counts(title: str, c: Counter[Any]) -> None:
            out.append(f"  {c.total():>{w},}  {title}")
            out.extend(f"  {'':>{w}}  {n:>{w},}  {key}" for key, n in c.most_common())

        def section(title: str, c: Counter[Any], limit: int | None = None,
                    label: Any = str) -> None:
            if not c:
                return
            out.append(f"  {title}")
            out.extend(f"  {n:>{w},}  {label(key)}" for key, n in c.most_common(limit))
            if limit is not None and len(c) > limit:
                rest = sum(n for _, n in c.most_common()[limit:])
                out.append(f"  {rest:>{w},}  ({len(c) - limit} more)")

        def coded(code: str) -> str:
            text = self.code_text.get(code, "")
            return code if text.strip().upper() == code.strip().upper() else \
                f"{code}  {text}".rstrip()

        counts("skipped", self.skipped)
        counts("fail to map (not sent)", self.failed)
        counts("would be rejected by the server (422)", self.invalid)
        section("channels:", self.channels)
        section("nature codes sent, most frequent:", self.nature_codes, 25, coded)
        section("category hints (the profile's code rules):", self.hints)
        if self.policy:
            out.append(f"  policy {self.policy}, offline: rules and exclusions only "
                       "(hours and units are the server's to judge)")
            section("categories the policy reaches:", self.categories)
            section("safety exclusions that hold:", self.excluded)
            section("hints the policy does not reach (hint -> policy category):",
                    self.missed_hints, None, lambda k: f"{k[0]} -> {k[1]}")
            section("categories reached with no hint (city code -> category):",
                    self.unhinted, None, lambda k: f"{coded(k[0])} -> {k[1]}")
        section("city codes sent as they are (no code rule), most frequent:",
                self.passed_through, 15, coded)
        section("dispositions of the rows not skipped, most frequent:", self.dispositions, 10)
        section("WARNING: codes that look like a safety exclusion reach a team category "
                "(city code, the word, category):", self.unsafe, None,
                lambda k: f"{coded(k[0])}  ({k[1]}) -> {k[2]}")
        out.extend(f"  WARNING: {w}" for w in self.warnings)
        if self.examples:
            out.append("  examples:")
            for key, lines in self.examples.items():
                out.append(f"    {key}:")
                out.extend(f"      {line}" for line in lines)
        return "\n".join(out)


def check_export(mapper: Mapper, path: Path, *, rows: int | None = None,
                 policy: CompiledPolicy | None = None) -> CheckReport:
    """Map the first `rows` rows (all by default) of an export and count what happens."""
    report = CheckReport(profile=mapper.profile.label, sample=str(path),
                         policy=policy.version if policy else None)
    classifier = OfflineClassifier(policy) if policy else None
    for m in mapper.map_file(path, limit=rows):
        report.add(m, classifier)
    report.warnings = rule_warnings(mapper.profile)
    if policy is not None:
        zone = zone_warning(mapper.profile, policy.policy.program.timezone, policy.version,
                            report.first_call)
        report.warnings += [zone] if zone else []
    return report
