"""Static checks of a policy: shadowed rules, overlaps, unused categories, gaps.

Pure: each condition becomes a union of cubes of admitted call values, compared
exactly except for text; a warning is claimed only when proved or shown by an evaluated
example. The method and its soundness: docs/policy-analysis.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from rules.models import (
    WEEKDAYS,
    Action,
    Channel,
    Condition,
    Flag,
    Policy,
    Rule,
    parse_clock,
)

WarningKind = Literal[
    "shadowed", "excluded", "unreachable", "overlap", "unused_category", "gap", "too_complex",
    "test_time", "disabled",
]


class Warning(BaseModel):  # the name; shadows the builtin only in this module
    """One finding: what kind, the rule ids involved, why, and the evidence.

    Kinds: `shadowed` (earlier rules, with exclusions perhaps, take every call the rule
    admits; rules = [the rule, the ones that take them]); `excluded` (exclusions take
    every call: it never reaches the team); `unreachable` (one nature code or phrase of the
    rule is dead); `overlap` (rules of different actions share calls, with a verified
    example; rules = [the earlier, the later ones]); `unused_category`; `gap` (a history
    nature code named nowhere, with its count); `too_complex` (not analysed); `test_time`
    (a test case's time carries an offset the policy's zone does not have then);
    `disabled` (a rule switched off: the other checks see the policy without it)."""

    kind: WarningKind
    rules: list[str]
    message: str
    details: dict[str, Any] = {}


# Channels, flags and weekdays are closed sets in the language.
CHANNELS: tuple[str, ...] = get_args(Channel)
FLAGS: tuple[str, ...] = get_args(Flag)
# Channels on which CAD calls carrying a nature code arrive (used for gaps).
DISPATCH_CHANNELS: frozenset[str] = frozenset(
    {"911", "non_emergency", "officer_on_scene", "officer_referral"})

_ALL_FLAG_SETS = (1 << (1 << len(FLAGS))) - 1
_ALL_MINUTES = (1 << 1440) - 1
_ALL_DAYS = (1 << 7) - 1
_LO, _HI = -math.inf, math.inf  # priorities are unbounded integers
MAX_CUBES = 4000


class _TooComplex(Exception):
    pass


# --- dimensions -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Set:
    """A set of strings: `include` → exactly `values`; else everything except `values`."""

    include: bool
    values: frozenset[str]

    def meet(self, o: _Set) -> _Set:
        if self.include and o.include:
            return _Set(True, self.values & o.values)
        if self.include:
            return _Set(True, self.values - o.values)
        if o.include:
            return _Set(True, o.values - self.values)
        return _Set(False, self.values | o.values)

    def empty(self) -> bool:
        return self.include and not self.values

    def full(self) -> bool:
        return not self.include and not self.values

    def complement(self) -> _Set:
        return _Set(not self.include, self.values)

    def has(self, v: str) -> bool:
        return (v in self.values) == self.include


_ANY = _Set(False, frozenset())


@dataclass(frozen=True)
class _Prio:
    """Priorities admitted: `none_ok` for a call without one, plus inclusive intervals."""

    none_ok: bool
    spans: tuple[tuple[float, float], ...]  # inclusive integer bounds, or ±inf

    def meet(self, o: _Prio) -> _Prio:
        spans = []
        for a, b in self.spans:
            for c, d in o.spans:
                lo, hi = max(a, c), min(b, d)
                if lo <= hi:
                    spans.append((lo, hi))
        return _Prio(self.none_ok and o.none_ok, tuple(sorted(spans)))

    def empty(self) -> bool:
        return not self.none_ok and not self.spans

    def full(self) -> bool:
        return self.none_ok and self.spans == ((_LO, _HI),)

    def complement(self) -> _Prio:
        gaps: list[tuple[float, float]] = []
        cur = _LO
        for a, b in sorted(self.spans):
            if a > cur:
                gaps.append((cur, a - 1))
            cur = max(cur, b + 1)
        if cur != _HI:  # b + 1 of an open end stays +inf
            gaps.append((cur, _HI))
        return _Prio(not self.none_ok, tuple(gaps))


_PRIO_ANY = _Prio(True, ((_LO, _HI),))


def _norm_phrase(p: str) -> str:
    return " ".join(p.lower().split())


_WORD = re.compile(r"\w+")


def _implies(p: str, q: str) -> bool:
    """Does a text containing phrase p (whole words) surely contain phrase q?"""
    if p == q:
        return True
    pt, qt = p.split(), q.split()
    if not all(_WORD.fullmatch(t) for t in (*pt, *qt)):
        return False
    n = len(qt)
    return any(pt[i:i + n] == qt for i in range(len(pt) - n + 1))


@dataclass(frozen=True)
class _Text:
    """All `groups` (each: contains one of these phrases) and none of `forbidden`."""

    groups: frozenset[frozenset[str]] = frozenset()
    forbidden: frozenset[str] = frozenset()

    def meet(self, o: _Text) -> _Text:
        return _Text(self.groups | o.groups, self.forbidden | o.forbidden)

    def usable(self, group: frozenset[str]) -> list[str]:
        return sorted(p for p in group if not any(_implies(p, f) for f in self.forbidden))

    def empty(self) -> bool:  # only when provably so
        return any(not self.usable(g) for g in self.groups)

    def full(self) -> bool:
        return not self.groups and not self.forbidden

    def complement(self) -> list[_Text]:
        return ([_Text(forbidden=g) for g in self.groups]
                + [_Text(groups=frozenset({frozenset({f})})) for f in self.forbidden])


@dataclass(frozen=True)
class _Cube:
    code: _Set = _ANY
    channel: frozenset[str] = frozenset(CHANNELS)
    district: _Set = _ANY
    prio: _Prio = _PRIO_ANY
    flags: int = _ALL_FLAG_SETS  # bit i set: the flag combination with bitmask i is admitted
    minutes: int = _ALL_MINUTES
    days: int = _ALL_DAYS
    text: _Text = field(default_factory=_Text)

    def meet(self, o: _Cube) -> _Cube:
        return _Cube(self.code.meet(o.code), self.channel & o.channel,
                     self.district.meet(o.district), self.prio.meet(o.prio),
                     self.flags & o.flags, self.minutes & o.minutes, self.days & o.days,
                     self.text.meet(o.text))

    def empty(self) -> bool:
        return (self.code.empty() or not self.channel or self.district.empty()
                or self.prio.empty() or not self.flags or not self.minutes or not self.days
                or self.text.empty())

    def complement(self) -> list[_Cube]:
        """Cubes whose union is everything this cube does not admit."""
        out: list[_Cube] = []
        if not self.code.full():
            out.append(_Cube(code=self.code.complement()))
        if self.channel != frozenset(CHANNELS):
            out.append(_Cube(channel=frozenset(CHANNELS) - self.channel))
        if not self.district.full():
            out.append(_Cube(district=self.district.complement()))
        if not self.prio.full():
            out.append(_Cube(prio=self.prio.complement()))
        if self.flags != _ALL_FLAG_SETS:
            out.append(_Cube(flags=_ALL_FLAG_SETS & ~self.flags))
        if self.minutes != _ALL_MINUTES:
            out.append(_Cube(minutes=_ALL_MINUTES & ~self.minutes))
        if self.days != _ALL_DAYS:
            out.append(_Cube(days=_ALL_DAYS & ~self.days))
        out.extend(_Cube(text=t) for t in self.text.complement())
        return out

    def text_free(self) -> bool:
        return not self.text.groups


_FULL = _Cube()


# --- conditions to cubes --------------------------------------------------------------------

def _flag_mask(flags: Iterable[str], *, hit: bool) -> int:
    want = 0
    for f in flags:
        want |= 1 << FLAGS.index(f)
    mask = 0
    for combo in range(1 << len(FLAGS)):
        if bool(combo & want) == hit:
            mask |= 1 << combo
    return mask


def _minute_mask(start: str, end: str) -> int:
    s, e = parse_clock(start), parse_clock(end)
    if s == e:
        return _ALL_MINUTES
    if s < e:
        return ((1 << e) - 1) & ~((1 << s) - 1)
    return (_ALL_MINUTES & ~((1 << s) - 1)) | ((1 << e) - 1)


def _meet_all(a: list[_Cube], b: list[_Cube]) -> list[_Cube]:
    out = [m for x in a for y in b if not (m := x.meet(y)).empty()]
    if len(out) > MAX_CUBES:
        raise _TooComplex
    return out


def cubes(cond: Condition) -> list[_Cube]:
    """The condition as a union of cubes (raises _TooComplex past MAX_CUBES)."""
    acc = [_FULL]
    atoms: list[_Cube] = []
    if cond.nature_code is not None:
        atoms.append(_Cube(code=_Set(True, frozenset(c.strip().upper() for c in cond.nature_code))))
    if cond.text_any is not None:
        atoms.append(_Cube(text=_Text(groups=frozenset(
            {frozenset(_norm_phrase(p) for p in cond.text_any)}))))
    if cond.text_none is not None:
        atoms.append(_Cube(text=_Text(forbidden=frozenset(_norm_phrase(p)
                                                          for p in cond.text_none))))
    if cond.flags_any is not None:
        atoms.append(_Cube(flags=_flag_mask(cond.flags_any, hit=True)))
    if cond.flags_none is not None:
        atoms.append(_Cube(flags=_flag_mask(cond.flags_none, hit=False)))
    if cond.priority is not None:
        lo = _LO if cond.priority.min is None else cond.priority.min
        hi = _HI if cond.priority.max is None else cond.priority.max
        atoms.append(_Cube(prio=_Prio(False, ((lo, hi),) if lo <= hi else ())))
    if cond.channel is not None:
        atoms.append(_Cube(channel=frozenset(c.lower() for c in cond.channel)))
    if cond.district is not None:
        atoms.append(_Cube(district=_Set(True, frozenset(d.lower() for d in cond.district))))
    if cond.time_of_day is not None:
        atoms.append(_Cube(minutes=_minute_mask(cond.time_of_day.start, cond.time_of_day.end)))
    if cond.day_of_week is not None:
        days = 0
        for d in cond.day_of_week:
            days |= 1 << WEEKDAYS.index(d)
        atoms.append(_Cube(days=days))
    for atom in atoms:
        acc = _meet_all(acc, [atom])
    if cond.any is not None:
        alts = [c for sub in cond.any for c in cubes(sub)]
        acc = _meet_all(acc, alts)
    if cond.all is not None:
        for sub in cond.all:
            acc = _meet_all(acc, cubes(sub))
    if cond.not_ is not None:
        acc = _meet_all(acc, _negate(cubes(cond.not_)))
    return acc


def _negate(cs: list[_Cube]) -> list[_Cube]:
    acc = [_FULL]
    for c in cs:
        acc = _meet_all(acc, c.complement())
    return acc


def _subtract(a: list[_Cube], b: Sequence[_Cube]) -> list[_Cube]:
    """Cubes covering exactly what `a` admits and no cube of `b` does (up to emptiness)."""
    rest = a
    for y in b:
        nxt: list[_Cube] = []
        for x in rest:
            if x.meet(y).empty():
                nxt.append(x)
                continue
            nxt.extend(m for piece in y.complement() if not (m := x.meet(piece)).empty())
        rest = nxt
        if len(rest) > MAX_CUBES:
            raise _TooComplex
        if not rest:
            break
    return rest


def _contributors(target: list[_Cube], named: Sequence[tuple[str, list[_Cube]]]) -> list[str]:
    """A small set of the named entries whose union still covers `target` (which it must)."""
    keep = [(rid, cs) for rid, cs in named
            if any(not t.meet(c).empty() for t in target for c in cs)]
    for entry in reversed(list(keep)):  # keep the earliest: they take the calls first
        rest = [e for e in keep if e is not entry]
        if not _subtract(target, [c for _, cs in rest for c in cs]):
            keep = rest
    return [rid for rid, _ in keep]


# --- witnesses ------------------------------------------------------------------------------

_MONDAY = datetime(2026, 1, 5)  # a week with no DST change in either hemisphere's usual rules


def _witness(c: _Cube, tz: str) -> dict[str, Any] | None:
    """A concrete call (CallFacts fields) this cube admits, or None if none is found."""
    if c.empty():
        return None
    code: str
    if c.code.include:
        code = sorted(c.code.values)[0]
    else:
        code = next(f"ZZ{i}" for i in range(len(c.code.values) + 1)
                    if f"ZZ{i}" not in c.code.values)
    channel = "911" if "911" in c.channel else sorted(c.channel)[0]
    district = sorted(c.district.values)[0] if c.district.include else None
    if c.prio.none_ok:
        priority = None
    else:
        lo, hi = c.prio.spans[0]
        priority = int(lo) if lo != _LO else (int(hi) if hi != _HI else 1)
    combo = min((i for i in range(1 << len(FLAGS)) if c.flags >> i & 1),
                key=lambda i: (bin(i).count("1"), i))
    flags = [f for i, f in enumerate(FLAGS) if combo >> i & 1]
    day = 1 if c.days >> 1 & 1 else next(i for i in range(7) if c.days >> i & 1)
    minute = 14 * 60 if c.minutes >> (14 * 60) & 1 else next(
        m for m in range(1440) if c.minutes >> m & 1)
    local = (_MONDAY + timedelta(days=day, minutes=minute)).replace(tzinfo=ZoneInfo(tz))
    phrases = [c.text.usable(g)[0] for g in sorted(c.text.groups, key=sorted)]
    call: dict[str, Any] = {"channel": channel, "nature_code": code,
                            "nature_text": " ; ".join(phrases),
                            "flags": flags, "occurred_at": local.isoformat()}
    if district is not None:
        call["district"] = district
    if priority is not None:
        call["priority"] = priority
    return call


def _classify(policy: Policy, rules: list[Rule], exclusions: bool,
              call: dict[str, Any]) -> tuple[str | None, list[str]]:
    from rules.call import CallFacts
    from rules.evaluate import classify, compile_policy

    sub = Policy(policy=policy.policy, program=policy.program,
                 categories=sorted({r.category for r in rules}),
                 exclusions=list(policy.exclusions) if exclusions else [], rules=rules)
    result = classify(CallFacts.model_validate(call), compile_policy(sub))
    return result.rule_id, list(result.exclusions)


# --- the checks -----------------------------------------------------------------------------

@dataclass
class _Analysed:
    rule: Rule
    cubes: list[_Cube] | None  # None: too complex to analyse


def _label(rule: Rule) -> str:
    return f"rule '{rule.id}' ({rule.action.value}, {rule.category})"


def check_policy(policy: Policy, *,
                 history_codes: Mapping[str, int] | None = None) -> list[Warning]:
    """Every warning about the policy, in rule order, then categories, then gaps."""
    tz = policy.program.timezone
    warnings: list[Warning] = []
    # A disabled rule is never tested: said once, then the rest is analysed without it.
    off = [r for r in policy.rules if r.disabled]
    for r in off:
        warnings.append(Warning(kind="disabled", rules=[r.id],
                                message=f"{_label(r)} is disabled: no call is tested "
                                        "against it"))
    if off:
        policy = policy.model_copy(update={"rules": [r for r in policy.rules
                                                     if not r.disabled]})

    exclusions: list[tuple[str, list[_Cube]]] = []
    for e in policy.exclusions:
        try:
            exclusions.append((e.id, cubes(e.when)))
        except _TooComplex:
            warnings.append(Warning(kind="too_complex", rules=[e.id],
                                    message=f"exclusion '{e.id}' is too complex to analyse; "
                                            "checks that rely on it are skipped"))
    excl_cubes = [c for _, cs in exclusions for c in cs]

    analysed: list[_Analysed] = []
    for r in policy.rules:
        try:
            analysed.append(_Analysed(r, cubes(r.when)))
        except _TooComplex:
            analysed.append(_Analysed(r, None))
            warnings.append(Warning(kind="too_complex", rules=[r.id],
                                    message=f"{_label(r)} is too complex to analyse; "
                                            "it is not checked for shadowing or overlap"))

    for j, b in enumerate(analysed):
        if b.cubes is None:
            continue
        earlier = [(a.rule.id, a.cubes) for a in analysed[:j] if a.cubes is not None]
        earlier_cubes = [c for _, cs in earlier for c in cs]
        try:
            warnings.extend(_reachability(b.rule, b.cubes, earlier, earlier_cubes,
                                          exclusions, excl_cubes))
        except _TooComplex:
            continue

    dead = {w.rules[0] for w in warnings if w.kind in ("shadowed", "excluded")}
    for i, a in enumerate(analysed):
        by_words: dict[str, dict[str, Any]] = {}
        before = [c for x in analysed[:i] if x.cubes is not None for c in x.cubes]
        for b in analysed[i + 1:]:
            if (a.cubes is None or b.cubes is None or a.rule.action == b.rule.action
                    or b.rule.id in dead or a.rule.id in dead):
                continue
            try:
                found = _overlap(policy, a.rule, b.rule, a.cubes, b.cubes, before, excl_cubes, tz)
            except _TooComplex:
                continue
            if found is None:
                continue
            call, needs_words = found
            if needs_words:
                by_words[b.rule.id] = call
                continue
            warnings.append(Warning(
                kind="overlap", rules=[a.rule.id, b.rule.id],
                message=f"{_label(a.rule)} and {_label(b.rule)} both match some calls, e.g. "
                        f"{_describe_call(call)}; rules are tried in order, so such calls go "
                        f"{a.rule.action.value} by '{a.rule.id}' and '{b.rule.id}' never sees "
                        "them",
                details={"example_call": call, "decided_by": a.rule.id,
                         "never_sees": b.rule.id, "by_words": False}))
        if by_words:
            later = ", ".join(f"'{rid}'" for rid in by_words)
            first = next(iter(by_words.values()))
            warnings.append(Warning(
                kind="overlap", rules=[a.rule.id, *by_words],
                message=f"{_label(a.rule)} shares calls with later rule(s) {later} of another "
                        f"action only through the words of a call, e.g. {_describe_call(first)}; "
                        f"such calls go {a.rule.action.value} by '{a.rule.id}' and the later "
                        "rule(s) never see them",
                details={"example_calls": by_words, "decided_by": a.rule.id,
                         "never_sees": list(by_words), "by_words": True}))

    used = {r.category for r in policy.rules}
    for cat in policy.categories:
        if cat not in used:
            only_off = [r.id for r in off if r.category == cat]
            warnings.append(Warning(kind="unused_category", rules=only_off,
                                    message=f"category '{cat}' has no rule"
                                            + (" but disabled ones" if only_off else ""),
                                    details={"category": cat}))

    if history_codes:
        warnings.extend(_gaps(policy, analysed, exclusions, history_codes))
    warnings.extend(_test_times(policy))
    return warnings


def _test_times(policy: Policy) -> list[Warning]:
    """Test cases whose time has an offset other than the zone's at that moment: written
    for another zone (or season), they test another hour than the one they show."""
    zone = ZoneInfo(policy.program.timezone)
    out = []
    for i, case in enumerate(policy.tests):
        raw = case.call.get("occurred_at")
        try:
            at = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            continue  # run as a test, where it fails with its reason
        if at is None or at.utcoffset() is None:
            continue  # local time: read in the zone
        local = at.astimezone(zone)
        if local.utcoffset() != at.utcoffset():
            out.append(Warning(
                kind="test_time", rules=[],
                message=f"test {i} '{case.name}': {raw} is {local:%Y-%m-%d %H:%M} in "
                        f"{policy.program.timezone} (offset {local:%z}); write the time "
                        "without an offset to read it in the policy's zone",
                details={"test": i, "occurred_at": raw,
                         "local": local.isoformat(timespec="minutes")}))
    return out


def _reachability(rule: Rule, mine: list[_Cube], earlier: list[tuple[str, list[_Cube]]],
                  earlier_cubes: list[_Cube], exclusions: list[tuple[str, list[_Cube]]],
                  excl_cubes: list[_Cube]) -> list[Warning]:
    """Shadowed (by earlier rules), excluded (by exclusions), or dead codes and phrases."""
    if not _subtract(mine, earlier_cubes):
        who = _contributors(mine, earlier)
        return [Warning(kind="shadowed", rules=[rule.id, *who],
                        message=f"{_label(rule)} can never match: every call it admits is "
                                f"taken first by earlier rule(s) {', '.join(who)}",
                        details={"shadowed_by": who})]
    if not _subtract(mine, excl_cubes):
        who = _contributors(mine, exclusions)
        where = "never reaches the team" if rule.action != Action.police else "never decides"
        return [Warning(kind="excluded", rules=[rule.id, *who],
                        message=f"{_label(rule)} {where}: every call it admits is caught by "
                                f"exclusion(s) {', '.join(who)} and goes to police",
                        details={"excluded_by": who})]
    if not _subtract(_subtract(mine, excl_cubes), earlier_cubes):
        who = _contributors(mine, [*exclusions, *earlier])
        return [Warning(kind="shadowed", rules=[rule.id, *who],
                        message=f"{_label(rule)} can never decide a call: every call it "
                                f"admits is caught by an exclusion or taken first by an earlier "
                                f"rule ({', '.join(who)})",
                        details={"shadowed_by": who})]

    out: list[Warning] = []
    covering = [*earlier_cubes, *excl_cubes]
    named = [*exclusions, *earlier]
    codes = sorted({v for c in mine if c.code.include for v in c.code.values})
    for code in codes:
        part = [m for c in mine if not (m := c.meet(_Cube(code=_Set(True, frozenset({code})))))
                .empty()]
        if part and not _subtract(part, covering):
            who = _contributors(part, named)
            out.append(Warning(kind="unreachable", rules=[rule.id, *who],
                               message=f"{_label(rule)} lists nature code {code}, but every "
                                       f"such call it admits is taken by {', '.join(who)} first",
                               details={"nature_code": code, "taken_by": who}))
    phrases = sorted({p for c in mine for g in c.text.groups for p in g})
    for phrase in phrases:
        part = []
        for c in mine:
            for g in c.text.groups:
                if phrase in g:
                    narrowed = replace(c, text=_Text(c.text.groups - {g} | {frozenset({phrase})},
                                                     c.text.forbidden))
                    if not narrowed.empty():
                        part.append(narrowed)
        if part and not _subtract(part, covering):
            who = _contributors(part, named)
            out.append(Warning(kind="unreachable", rules=[rule.id, *who],
                               message=f"{_label(rule)} matches the words '{phrase}', but every "
                                       f"such call it admits is taken by {', '.join(who)} first",
                               details={"text": phrase, "taken_by": who}))
    return out


def _describe_call(call: Mapping[str, Any]) -> str:
    out = f"a {call['channel']} call with nature code {call['nature_code']!r}"
    extras = [f"{k} {call[k]}" for k in ("priority", "district") if k in call]
    if call["flags"]:
        extras.append(f"flags {', '.join(call['flags'])}")
    extras.append(f"at {call['occurred_at']}")
    if call["nature_text"]:
        extras.append(f"the words '{call['nature_text']}'")
    return out + ", " + ", ".join(extras)


def _overlap(policy: Policy, a: Rule, b: Rule, ca: list[_Cube], cb: list[_Cube],
             before: list[_Cube], excl_cubes: list[_Cube],
             tz: str) -> tuple[dict[str, Any], bool] | None:
    """A verified call both rules accept that reaches `a` (so `b` never sees it), and
    whether every such call found needs particular words."""
    both = _meet_all(ca, cb)
    if not both:
        return None
    regions = _subtract(_subtract(both, excl_cubes), before)
    regions.sort(key=lambda c: not c.text_free())  # prefer a witness that needs no words
    for cube in regions[:50]:
        call = _witness(cube, tz)
        if call is None:
            continue
        try:
            if _classify(policy, [a], False, call)[0] != a.id:
                continue
            if _classify(policy, [b], False, call)[0] != b.id:
                continue
            decided, excluded = _classify(policy, list(policy.rules), True, call)
        except Exception:  # noqa: BLE001 - a witness we cannot evaluate is no witness
            continue
        if decided != a.id or excluded:
            continue
        return call, not cube.text_free()
    return None


def _gaps(policy: Policy, analysed: list[_Analysed], exclusions: list[tuple[str, list[_Cube]]],
          history_codes: Mapping[str, int]) -> list[Warning]:
    """History codes that no rule or exclusion names and no text-free rule could take.

    An exclusion counts only when it names the code: its flag tests catch some calls of
    every code, which handles none of them. A rule without a code test counts when it
    can take a dispatch-channel call of that code whatever its words."""
    handlers: list[tuple[str, list[_Cube]]] = [*exclusions]
    handlers += [(a.rule.id, a.cubes) for a in analysed if a.cubes is not None]
    dispatch = _Cube(channel=DISPATCH_CHANNELS)
    totals: dict[str, int] = {}
    for raw, n in history_codes.items():
        code = raw.strip().upper()
        totals[code] = totals.get(code, 0) + n
    out: list[tuple[int, str, list[str], list[str]]] = []
    for code, n in totals.items():
        probe = dispatch.meet(_Cube(code=_Set(True, frozenset({code}))))
        named = any(c.code.include and code in c.code.values for _, cs in handlers for c in cs)
        agnostic = any(c.text_free() and not probe.meet(c).empty()
                       for a in analysed if a.cubes is not None for c in a.cubes)
        if named or agnostic:
            continue
        by_words = [a.rule.id for a in analysed if a.cubes is not None
                    and any(not probe.meet(c).empty() for c in a.cubes)]
        anywhere = _Cube(code=_Set(True, frozenset({code})))
        by_channel = [a.rule.id for a in analysed if a.cubes is not None
                      and any(c.text_free() and not anywhere.meet(c).empty() for c in a.cubes)]
        out.append((n, code, by_words, by_channel))
    out.sort(key=lambda t: (-t[0], t[1]))
    total = sum(totals.values())
    return [Warning(
        kind="gap", rules=[],
        message=f"nature code {code or '(blank)'} ({n} of {total} stored calls) is named by no "
                "rule or exclusion"
                + (f"; only words matching rule(s) {', '.join(by_words)} could take such a call"
                   if by_words else "; no rule can take such a call")
                + (f" (or {', '.join(by_channel)} on their own channels)" if by_channel else ""),
        details={"nature_code": code, "count": n, "only_by_words": by_words,
                 "only_on_other_channels": by_channel})
        for n, code, by_words, by_channel in out]
