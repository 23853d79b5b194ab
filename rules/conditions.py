"""The condition language, compiled once into the one form both classifiers use.

Each kind of condition is one `Part` class: `pred` tests a call without a trace (the fast
classifier), `trace` tests it and records a `Check` (dry-runs, explanations), `triggers`
names facts a call needs for it to hold (the fast classifier's index). A new kind is one
class and one line in `_KINDS`. How the fast path stays exact: docs/classifier.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import tzinfo
from typing import Any

from pydantic import BaseModel

from rules.call import CallFacts
from rules.models import WEEKDAYS, Condition, PriorityRange, TimeWindow, parse_clock

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


class Check(BaseModel):
    """One condition tested against one call: what was expected, what was there."""

    field: str
    op: str
    expected: Any
    actual: Any
    held: bool


class Keyword:
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


class CallView:
    """The facts of one call as conditions read them, normalised once; text hits are
    computed on demand. `words_needed`: tokenise the text for keyword look-ups;
    `zone`: the policy's zone, when a condition reads the local time."""

    __slots__ = ("call", "code", "channel", "flags", "text", "words", "hits", "minute", "day")

    def __init__(self, call: CallFacts, words_needed: bool, zone: tzinfo | None) -> None:
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
        if zone is not None:
            local = call.occurred_at.astimezone(zone)
            self.minute = local.hour * 60 + local.minute
            self.day = WEEKDAYS[local.weekday()]

    def hit(self, kw: Keyword) -> bool:
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


Pred = Callable[[CallView], bool]
Trigger = tuple[str, str]  # ("code" | "channel" | "flag" | "word", value)


def _narrowest(options: Iterable[frozenset[Trigger] | None]) -> frozenset[Trigger] | None:
    # All parts must hold, so any one part's triggers will do: take the narrowest,
    # preferring those that need no text (they hold without tokenising).
    found = [t for t in options if t is not None]
    if not found:
        return None
    return min(found, key=lambda t: (any(k == "word" for k, _ in t), len(t)))


class Part:
    """One compiled condition. A leaf sets `pred` and says what it tested in `check`."""

    pred: Pred

    def trace(self, c: CallView, out: list[Check]) -> bool:
        held = self.pred(c)
        out.append(self.check(c, held))
        return held

    def check(self, c: CallView, held: bool) -> Check:
        raise NotImplementedError

    def triggers(self) -> frozenset[Trigger] | None:
        """Facts at least one of which a call needs for this to hold; None: no such set."""
        return None


class NatureCode(Part):
    def __init__(self, codes: list[str]) -> None:
        self.codes = found = frozenset(c.strip().upper() for c in codes)
        self.expected = sorted(found)
        self.pred = lambda c: c.code in found

    def check(self, c: CallView, held: bool) -> Check:
        return Check(field="nature_code", op="in", expected=self.expected,
                     actual=c.call.nature_code, held=held)

    def triggers(self) -> frozenset[Trigger]:
        return frozenset(("code", code) for code in self.codes)


class Text(Part):
    def __init__(self, words: list[str], keywords: Sequence[Keyword], negate: bool) -> None:
        self.words, self.negate = words, negate
        self.keywords = kws = tuple({id(k): k for k in keywords}.values())
        self.rx = words_regex(words)
        if negate:
            self.pred = lambda c: not any(c.hit(k) for k in kws)
        else:
            self.pred = lambda c: any(c.hit(k) for k in kws)

    def trace(self, c: CallView, out: list[Check]) -> bool:
        # The trace names the word found, which only the regex over all the words tells;
        # `pred` looks words up instead (the equivalence tests hold the two together).
        found = self.rx.search(c.text)
        held = (found is None) if self.negate else (found is not None)
        out.append(Check(field="text", op="contains none of" if self.negate else "contains",
                         expected=self.words, actual=found.group(0) if found else None,
                         held=held))
        return held

    def triggers(self) -> frozenset[Trigger] | None:
        keys = [k.key for k in self.keywords]
        if self.negate or any(k is None for k in keys):
            return None
        return frozenset(("word", k) for k in keys if k is not None)


class Flags(Part):
    def __init__(self, flags: list[str], negate: bool) -> None:
        self.flags = fset = frozenset(flags)
        self.negate = negate
        if negate:
            self.pred = lambda c: fset.isdisjoint(c.flags)
        else:
            self.pred = lambda c: not fset.isdisjoint(c.flags)

    def check(self, c: CallView, held: bool) -> Check:
        return Check(field="flags", op="include none of" if self.negate else "include any of",
                     expected=sorted(self.flags), actual=sorted(c.flags), held=held)

    def triggers(self) -> frozenset[Trigger] | None:
        return None if self.negate else frozenset(("flag", f) for f in self.flags)


class Priority(Part):
    def __init__(self, bounds: PriorityRange) -> None:
        self.lo, self.hi = lo, hi = bounds.min, bounds.max

        def pred(c: CallView) -> bool:
            p = c.call.priority
            return p is not None and (lo is None or p >= lo) and (hi is None or p <= hi)

        self.pred = pred

    def check(self, c: CallView, held: bool) -> Check:
        return Check(field="priority", op="between", expected=[self.lo, self.hi],
                     actual=c.call.priority, held=held)


class Channel(Part):
    def __init__(self, values: list[str]) -> None:
        self.values = values
        self.channels = found = frozenset(v.lower() for v in values)
        self.pred = lambda c: c.channel in found

    def check(self, c: CallView, held: bool) -> Check:
        return Check(field="channel", op="in", expected=self.values, actual=c.call.channel,
                     held=held)

    def triggers(self) -> frozenset[Trigger]:
        return frozenset(("channel", v) for v in self.channels)


class District(Part):
    def __init__(self, values: list[str]) -> None:
        self.values = values
        districts = frozenset(v.lower() for v in values)

        def pred(c: CallView) -> bool:
            d = c.call.district
            return d is not None and d.lower() in districts

        self.pred = pred

    def check(self, c: CallView, held: bool) -> Check:
        return Check(field="district", op="in", expected=self.values, actual=c.call.district,
                     held=held)


class TimeOfDay(Part):
    def __init__(self, window: TimeWindow) -> None:
        self.window = f"{window.start}-{window.end}"
        start, end = parse_clock(window.start), parse_clock(window.end)
        if start == end:
            self.pred = lambda c: True
        elif start < end:
            self.pred = lambda c: start <= c.minute < end
        else:  # wraps past midnight
            self.pred = lambda c: c.minute >= start or c.minute < end

    def check(self, c: CallView, held: bool) -> Check:
        return Check(field="local_time", op="within", expected=self.window,
                     actual=f"{c.minute // 60:02d}:{c.minute % 60:02d}", held=held)


class DayOfWeek(Part):
    def __init__(self, days: list[str]) -> None:
        self.days = found = frozenset(days)
        self.pred = lambda c: c.day in found

    def check(self, c: CallView, held: bool) -> Check:
        return Check(field="day_of_week", op="in", expected=sorted(self.days), actual=c.day,
                     held=held)


class AnyOf(Part):
    def __init__(self, subs: list[Part]) -> None:
        self.subs = subs
        preds = tuple(s.pred for s in subs)
        self.pred = lambda c: any(p(c) for p in preds)

    def trace(self, c: CallView, out: list[Check]) -> bool:
        # Stops at the first that holds; the trace shows what was tried.
        return any(s.trace(c, out) for s in self.subs)

    def triggers(self) -> frozenset[Trigger] | None:
        subs = [s.triggers() for s in self.subs]
        if any(t is None for t in subs):
            return None
        return frozenset().union(*(t for t in subs if t is not None))


class AllOf(Part):
    """Every part holds: the keys of one condition, or its `all`."""

    def __init__(self, parts: list[Part]) -> None:
        self.parts = parts
        if len(parts) == 1:
            self.pred = parts[0].pred
        elif len(parts) == 2:
            a, b = parts[0].pred, parts[1].pred
            self.pred = lambda c: a(c) and b(c)
        else:
            preds = tuple(p.pred for p in parts)
            self.pred = lambda c: all(p(c) for p in preds)

    def trace(self, c: CallView, out: list[Check]) -> bool:
        return all(p.trace(c, out) for p in self.parts)

    def triggers(self) -> frozenset[Trigger] | None:
        return _narrowest(p.triggers() for p in self.parts)


class Not(Part):
    def __init__(self, inner: Part) -> None:
        self.inner = inner
        pred = inner.pred
        self.pred = lambda c: not pred(c)

    def trace(self, c: CallView, out: list[Check]) -> bool:
        sub: list[Check] = []
        held = not self.inner.trace(c, sub)
        out.extend(k.model_copy(update={"op": f"not {k.op}", "held": not k.held}) for k in sub)
        return held


class Conditions:
    """Compiles one policy's conditions over one keyword table, so each distinct keyword
    is tested once per call. `choose_keys` once every condition is compiled, before any
    `triggers` are read."""

    def __init__(self) -> None:
        self.keywords: dict[str, Keyword] = {}
        self.uses_time = False  # some condition reads the local time
        self.uses_words = False  # some condition reads the text

    def compile(self, cond: Condition) -> Part:
        # In the order the keys are tested (and traced); all must hold.
        parts = [make(self, value) for key, make in _KINDS
                 if (value := getattr(cond, key)) is not None]
        return parts[0] if len(parts) == 1 else AllOf(parts)

    def text(self, words: list[str], negate: bool) -> Text:
        self.uses_words = True
        return Text(words, [self.keyword(w) for w in words], negate)

    def clock(self, part: Part) -> Part:
        self.uses_time = True
        return part

    def keyword(self, word: str) -> Keyword:
        alt = words_alternative(word)
        kw = self.keywords.get(alt)
        if kw is None:
            kw = self.keywords[alt] = Keyword(len(self.keywords), word)
        return kw

    def choose_keys(self) -> None:
        shared: dict[str, int] = {}
        for kw in self.keywords.values():
            for r in kw.runs:
                shared[r] = shared.get(r, 0) + 1
        for kw in self.keywords.values():
            kw.choose_key(shared)


# Each key of a `Condition` and the part it compiles to, in the order they are tested.
_KINDS: tuple[tuple[str, Callable[[Conditions, Any], Part]], ...] = (
    ("nature_code", lambda b, v: NatureCode(v)),
    ("text_any", lambda b, v: b.text(v, negate=False)),
    ("text_none", lambda b, v: b.text(v, negate=True)),
    ("flags_any", lambda b, v: Flags(v, negate=False)),
    ("flags_none", lambda b, v: Flags(v, negate=True)),
    ("priority", lambda b, v: Priority(v)),
    ("channel", lambda b, v: Channel(v)),
    ("district", lambda b, v: District(v)),
    ("time_of_day", lambda b, v: b.clock(TimeOfDay(v))),
    ("day_of_week", lambda b, v: b.clock(DayOfWeek(v))),
    ("any", lambda b, v: AnyOf([b.compile(s) for s in v])),
    ("all", lambda b, v: AllOf([b.compile(s) for s in v])),
    ("not_", lambda b, v: Not(b.compile(v))),
)
