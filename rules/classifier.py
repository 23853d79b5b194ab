"""The fast classifier: a policy's verdict on a call without a trace.

Built once per policy version over its compiled conditions (rules/conditions.py), indexed
by the facts that can make each hold, so a call only tests the entries its nature code,
channel, flags and words could satisfy. The method and why it gives `classify`'s verdict
exactly: docs/classifier.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import NamedTuple

from rules.call import CallFacts
from rules.conditions import CallView, Conditions, Part, Pred
from rules.models import Action


@dataclass(frozen=True)
class Entry:
    """An exclusion or a rule of a policy, its condition compiled."""

    id: str
    kind: str  # "exclusion" or "rule"
    when: Part
    category: str | None = None
    action: Action | None = None
    needs_field_unit: bool = True
    disabled: bool = False  # a rule switched off: never tested


class FastResult(NamedTuple):
    """What `classify` decides, without its trace."""

    category: str | None
    action: Action | None
    rule_id: str | None
    needs_field_unit: bool
    exclusions: tuple[str, ...]
    matched_rules: tuple[str, ...]


class _Fast(NamedTuple):
    id: str
    pred: Pred
    category: str | None
    action: Action | None
    needs_field_unit: bool


class Classifier:
    """A policy compiled for speed; `classify(call)` gives `FastResult`s."""

    def __init__(self, exclusions: tuple[Entry, ...], rules: tuple[Entry, ...],
                 conditions: Conditions, zone: tzinfo) -> None:
        conditions.choose_keys()
        entries = (*exclusions, *(r for r in rules if not r.disabled))
        self.entries = tuple(_Fast(e.id, e.when.pred, e.category, e.action,
                                   e.needs_field_unit) for e in entries)
        self.n_exclusions = len(exclusions)
        always: list[int] = []
        by: dict[str, dict[str, list[int]]] = {"code": {}, "channel": {}, "flag": {}, "word": {}}
        worded: list[int] = []
        for i, entry in enumerate(entries):
            trig = entry.when.triggers()
            if trig is None:
                always.append(i)
                continue
            for kind, value in trig:
                by[kind].setdefault(value, []).append(i)
            if any(kind == "word" for kind, _ in trig):
                worded.append(i)
        self.always = frozenset(always)
        self.by_code = {k: frozenset(v) for k, v in by["code"].items()}
        self.by_channel = {k: frozenset(v) for k, v in by["channel"].items()}
        self.by_flag = {k: frozenset(v) for k, v in by["flag"].items()}
        self.by_word = {k: frozenset(v) for k, v in by["word"].items()}
        self.word_keys = frozenset(self.by_word)
        self.worded = frozenset(worded)  # candidates whenever words cannot be looked up
        self.words_needed = conditions.uses_words
        self.zone = zone if conditions.uses_time else None
        self.keywords = len(conditions.keywords)

    def candidates(self, c: CallView) -> list[int]:
        cand = set(self.always)
        found = self.by_code.get(c.code)
        if found:
            cand |= found
        found = self.by_channel.get(c.channel)
        if found:
            cand |= found
        for f in c.flags:
            found = self.by_flag.get(f)
            if found:
                cand |= found
        if self.word_keys:
            if c.words is None:
                cand |= self.worded
            else:
                for w in self.word_keys.intersection(c.words):
                    cand |= self.by_word[w]
        return sorted(cand)

    def classify(self, call: CallFacts) -> FastResult:
        c = CallView(call, self.words_needed, self.zone)
        entries = self.entries
        n_excl = self.n_exclusions
        exclusions: list[str] = []
        for i in self.candidates(c):
            e = entries[i]
            if i < n_excl:
                if e.pred(c):
                    exclusions.append(e.id)
            elif e.pred(c):
                ex = tuple(exclusions)
                return FastResult(e.category, e.action, e.id, e.needs_field_unit, ex,
                                  (*ex, e.id))
        ex = tuple(exclusions)
        return FastResult(None, None, None, True, ex, ex)
