"""The compiled fast path: classify a call without building a trace.

`rules.evaluate.classify` interprets every exclusion and rule in order and records a
`Check` for each condition it tests: right for dry-runs and explanations, slow for live
routing and simulation. `Classifier` is built once per policy version and answers the
same question (category, action, rule, exclusions, matched rules) with:

- an index of candidates: each exclusion and rule gets a set of *triggers*, facts of
  the call without which its condition cannot hold (a nature code, a channel, a flag,
  a whole word of the text). A call only evaluates the entries one of its facts
  triggers, plus those with no trigger (e.g. a bare `text_none`); candidates are
  evaluated in policy order, so the first rule that holds is the one `classify` finds;
- one tokenisation of the call's text (`\\w+` over the lower-cased text) that decides
  every single-word keyword of the policy by a set look-up and rules out every phrase
  none of whose words is present; only phrases (and keywords the look-up cannot
  decide exactly) are confirmed with their own whole-word regex, once per call;
- conditions compiled to closures over precomputed frozen sets and minute ranges.

Exactness. A keyword `k` matches at position p when `(?<!\\w)k(?!\\w)` matches there
(case-insensitive; a space in a phrase is any run of whitespace). Every maximal `\\w`
run inside such a match is a maximal `\\w` run of the text, so for an ASCII keyword, "the
keyword's longest word is among the words of the lower-cased text" is necessary, and
for a keyword that is one `\\w` run it is also sufficient, provided `str.lower` folds
the text as the regex engine does for ASCII letters. It does for every character but
four (`LOOKALIKES`: İ, ı, ſ and the Kelvin sign, which re.IGNORECASE matches to
ASCII letters and `str.lower` does not, or not alone); a text holding one of them,
and every non-ASCII keyword, skips the look-up and goes to the regexes.
tests/rules/test_compiled_equivalence.py checks, on generated policies and calls, that
the fast path and `classify` always agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from rules.call import CallFacts
from rules.models import WEEKDAYS, Action, Condition, Policy, parse_clock

_WORD = re.compile(r"\w+")
_PURE_WORD = re.compile(r"\w+\Z")
# The non-ASCII characters re.IGNORECASE matches to an ASCII one (İ, ı, ſ, Kelvin K);
# tests/rules/test_compiled_equivalence.py re-derives this set from the engine.
LOOKALIKES = frozenset("\u0130\u0131\u017f\u212a")


def words_alternative(word: str) -> str:
    """The regex for one keyword: escaped, a space matching any run of whitespace."""
    return r"\s+".join(map(re.escape, word.split()))


def words_regex(words: Iterable[str]) -> re.Pattern[str]:
    # Whole words, case-insensitive; a phrase's spaces match any run of whitespace.
    alts = sorted({words_alternative(w) for w in words}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


class FastResult(NamedTuple):
    """What `classify` decides, without its trace."""

    category: str | None
    action: Action | None
    rule_id: str | None
    needs_field_unit: bool
    exclusions: tuple[str, ...]
    matched_rules: tuple[str, ...]


class _Keyword:
    """One distinct keyword of the policy and how a call's text is tested for it."""

    __slots__ = ("index", "key", "runs", "exact_by_key", "rx")

    def __init__(self, index: int, word: str) -> None:
        self.index = index
        self.rx = words_regex([word])
        # Its words (maximal \w runs); none for a non-ASCII keyword: no look-up for it.
        self.runs = frozenset(_WORD.findall(word.lower()) if word.isascii() else ())
        self.key: str | None = None  # the word it is indexed by; see `choose_key`
        self.exact_by_key = len(self.runs) == 1 and bool(_PURE_WORD.match(word.strip()))

    def choose_key(self, shared: dict[str, int]) -> None:
        # The word fewest keywords of the policy share (then the longest): the best filter.
        if self.runs:
            self.key = min(self.runs, key=lambda r: (shared[r], -len(r), r))


class _Call:
    """The facts of one call, normalised once; text hits are computed on demand."""

    __slots__ = ("call", "code", "channel", "flags", "text", "words", "hits", "minute", "day")

    def __init__(self, call: CallFacts, words_needed: bool, zone_needed: object) -> None:
        self.call = call
        self.code = call.nature_code.strip().upper()
        self.channel = call.channel.lower()
        self.flags = call.flags
        self.text = text = f"{call.nature_text}\n{call.narrative or ''}"
        # None: word look-ups would not be exact for this text; go to the regexes.
        self.words: set[str] | None = (
            set(_WORD.findall(text.lower()))
            if words_needed and (text.isascii() or LOOKALIKES.isdisjoint(text)) else None)
        self.hits: dict[int, bool] = {}
        self.minute = -1
        self.day = ""
        if zone_needed is not None:
            local = call.occurred_at.astimezone(zone_needed)  # type: ignore[arg-type]
            self.minute = local.hour * 60 + local.minute
            self.day = WEEKDAYS[local.weekday()]

    def hit(self, kw: _Keyword) -> bool:
        words = self.words
        if words is not None and kw.key is not None:
            if kw.exact_by_key:
                return kw.key in words
            if not kw.runs <= words:
                return False
        found = self.hits.get(kw.index)
        if found is None:
            found = self.hits[kw.index] = kw.rx.search(self.text) is not None
        return found


Pred = Callable[[_Call], bool]
Trigger = tuple[str, str]


def _text_pred(kws: tuple[_Keyword, ...], negate: bool) -> Pred:
    if negate:
        return lambda c: not any(c.hit(k) for k in kws)
    return lambda c: any(c.hit(k) for k in kws)


def _flags_pred(fset: frozenset[str], negate: bool) -> Pred:
    if negate:
        return lambda c: fset.isdisjoint(c.flags)
    return lambda c: not fset.isdisjoint(c.flags)


class _Builder:
    def __init__(self) -> None:
        self.keywords: dict[str, _Keyword] = {}
        self.uses_time = False
        self.uses_words = False

    def choose_keys(self) -> None:
        shared: dict[str, int] = {}
        for kw in self.keywords.values():
            for r in kw.runs:
                shared[r] = shared.get(r, 0) + 1
        for kw in self.keywords.values():
            kw.choose_key(shared)

    def keyword(self, word: str) -> _Keyword:
        alt = words_alternative(word)
        kw = self.keywords.get(alt)
        if kw is None:
            kw = self.keywords[alt] = _Keyword(len(self.keywords), word)
        return kw

    def pred(self, cond: Condition) -> Pred:  # noqa: C901 - one branch per operator
        parts: list[Pred] = []
        if cond.nature_code is not None:
            codes = frozenset(c.strip().upper() for c in cond.nature_code)
            parts.append(lambda c: c.code in codes)
        for key, negate in (("text_any", False), ("text_none", True)):
            words = getattr(cond, key)
            if words is None:
                continue
            self.uses_words = True
            parts.append(_text_pred(
                tuple({id(k): k for k in map(self.keyword, words)}.values()), negate))
        for key, negate in (("flags_any", False), ("flags_none", True)):
            flags = getattr(cond, key)
            if flags is not None:
                parts.append(_flags_pred(frozenset(flags), negate))
        if cond.priority is not None:
            lo, hi = cond.priority.min, cond.priority.max

            def m_prio(c: _Call) -> bool:
                p = c.call.priority
                return p is not None and (lo is None or p >= lo) and (hi is None or p <= hi)

            parts.append(m_prio)
        if cond.channel is not None:
            channels = frozenset(v.lower() for v in cond.channel)
            parts.append(lambda c: c.channel in channels)
        if cond.district is not None:
            districts = frozenset(v.lower() for v in cond.district)

            def m_district(c: _Call) -> bool:
                d = c.call.district
                return d is not None and d.lower() in districts

            parts.append(m_district)
        if cond.time_of_day is not None:
            self.uses_time = True
            start, end = parse_clock(cond.time_of_day.start), parse_clock(cond.time_of_day.end)
            if start == end:
                parts.append(lambda c: True)
            elif start < end:
                parts.append(lambda c: start <= c.minute < end)
            else:
                parts.append(lambda c: c.minute >= start or c.minute < end)
        if cond.day_of_week is not None:
            self.uses_time = True
            days = frozenset(cond.day_of_week)
            parts.append(lambda c: c.day in days)
        if cond.any is not None:
            subs = tuple(self.pred(s) for s in cond.any)
            parts.append(lambda c: any(s(c) for s in subs))
        if cond.all is not None:
            subs_all = tuple(self.pred(s) for s in cond.all)
            parts.append(lambda c: all(s(c) for s in subs_all))
        if cond.not_ is not None:
            inner = self.pred(cond.not_)
            parts.append(lambda c: not inner(c))
        if len(parts) == 1:
            return parts[0]
        if len(parts) == 2:
            a, b = parts
            return lambda c: a(c) and b(c)
        tparts = tuple(parts)
        return lambda c: all(p(c) for p in tparts)

    def triggers(self, cond: Condition) -> frozenset[Trigger] | None:
        """Facts at least one of which a call needs for `cond` to hold; None: no such set."""
        options: list[frozenset[Trigger]] = []
        if cond.nature_code is not None:
            options.append(frozenset(("code", c.strip().upper()) for c in cond.nature_code))
        if cond.channel is not None:
            options.append(frozenset(("channel", v.lower()) for v in cond.channel))
        if cond.text_any is not None:
            keys = [self.keyword(w).key for w in cond.text_any]
            if all(k is not None for k in keys):
                options.append(frozenset(("word", k) for k in keys if k is not None))
        if cond.flags_any is not None:
            options.append(frozenset(("flag", f) for f in cond.flags_any))
        if cond.any is not None:
            subs = [self.triggers(s) for s in cond.any]
            if all(s is not None for s in subs):
                options.append(frozenset().union(*(s for s in subs if s is not None)))
        if cond.all is not None:
            options.extend(t for t in map(self.triggers, cond.all) if t is not None)
        if not options:
            return None
        # All parts must hold, so any one part's triggers will do: take the narrowest,
        # preferring those that need no text (they hold without tokenising).
        return min(options, key=lambda t: (any(k == "word" for k, _ in t), len(t)))


class _Entry(NamedTuple):
    id: str
    pred: Pred
    category: str | None
    action: Action | None
    needs_field_unit: bool


class Classifier:
    """A policy compiled for speed; `classify(call)` gives `FastResult`s."""

    def __init__(self, policy: Policy, zone: object) -> None:
        b = _Builder()
        entries: list[_Entry] = [_Entry(e.id, b.pred(e.when), None, None, True)
                                 for e in policy.exclusions]
        entries += [_Entry(r.id, b.pred(r.when), r.category, r.action, r.needs_field_unit)
                    for r in policy.rules]
        conditions = [e.when for e in policy.exclusions] + [r.when for r in policy.rules]
        b.choose_keys()
        self.entries = tuple(entries)
        self.n_exclusions = len(policy.exclusions)
        always: list[int] = []
        by: dict[str, dict[str, list[int]]] = {"code": {}, "channel": {}, "flag": {}, "word": {}}
        worded: list[int] = []
        for i, cond in enumerate(conditions):
            trig = b.triggers(cond)
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
        self.words_needed = b.uses_words
        self.zone = zone if b.uses_time else None
        self.keywords = len(b.keywords)

    def candidates(self, c: _Call) -> list[int]:
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
        c = _Call(call, self.words_needed, self.zone)
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
