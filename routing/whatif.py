"""What-if replay: a candidate policy against a baseline over the same calls. Pure.

Each version is run over the calls in CAD-time order with its own model of the team's
capacity: a call the version sends to the team (on a field unit) keeps one unit busy for
a service time drawn per call from a seeded distribution by category, so later calls see
the units busy at their moment. Both versions use the same draw for a call (the same
uniform number, turned into a time by the category each version gives it), so the
comparison is fair and the same inputs with the same seed give the same report.

Decisions come from `routing.decide.decide_call`, the function live traffic uses. Calls
alike in every field a policy's conditions read share one outcome for the same hours and
capacity state; the explanations in the changed calls are decided afresh for each call.

A version whose policy lists programs (`programs:`) is simulated in CAD time as the live
service runs it (routing/queue_sim.py, the queue contract of issue 13): each program its
own units, calls queued when a program is full and taken when a unit frees, falling back
at their wait limit, deferred intake taken at its shift's start. The report gives, per
version, reach (eligible calls served by a team, of eligible calls) overall and per
program, the queue's waits (p50/p90 by category and program), calls that waited and were
then served, why eligible calls fell back to police, deferred calls and their waits, and
each program's utilisation.
"""

from __future__ import annotations

import csv
import heapq
import math
import random
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal, NamedTuple, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import SkipJsonSchema

from routing.availability import within_hours
from routing.decide import decide_call
from routing.models import Availability, Decision, Destination
from routing.queue_sim import CallResult, ProgramsRun, WaitKind
from routing.schedule import duty_seconds
from rules.call import CallFacts
from rules.evaluate import CompiledPolicy
from rules.load import PolicyError, errors_from_validation
from rules.models import WEEKDAYS, Program, parse_clock

NO_CATEGORY = "(none)"
NO_RULE = "(no rule)"
EXAMPLES_PER_CHANGE = 3
HOURS_OF_WEEK = 168
_NORMAL = NormalDist()


# --- service times -------------------------------------------------------------------


class ServiceTimes(BaseModel):
    """How long a team response keeps a unit busy: a distribution with a mean by category.

    `lognormal` (the default; `sigma` is the spread of the log), `exponential` or `fixed`.
    A category not listed takes `default_minutes`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    distribution: Literal["lognormal", "exponential", "fixed"] = "lognormal"
    sigma: float = Field(default=0.6, gt=0, le=3)
    default_minutes: float = Field(default=45.0, gt=0, le=24 * 60)
    by_category: dict[str, float] = Field(default_factory=lambda: {
        "mental_health": 60.0, "substance_use": 45.0, "disorderly_juvenile": 40.0,
        "truancy": 30.0, "neighbor_dispute": 45.0, "homelessness": 40.0,
        "call_for_assistance": 40.0, "follow_up": 30.0,
    })

    def mean_minutes(self, category: str | None) -> float:
        if category is None:
            return self.default_minutes
        return self.by_category.get(category, self.default_minutes)

    def minutes(self, category: str | None, u: float) -> float:
        """The service time for a uniform draw `u` in (0, 1): the same `u` gives the same
        quantile of each category's distribution."""
        mean = self.mean_minutes(category)
        if self.distribution == "fixed":
            return mean
        if self.distribution == "exponential":
            return -mean * math.log1p(-u)
        mu = math.log(mean) - self.sigma ** 2 / 2  # so the mean is `mean`
        return math.exp(mu + self.sigma * _NORMAL.inv_cdf(u))


class ServiceTimesInvalid(Exception):
    def __init__(self, errors: list[PolicyError], source: str) -> None:
        self.errors, self.source = errors, source
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  {e}" for e in errors))


def parse_service_times(document: Any, source: str = "service times") -> ServiceTimes:
    if not isinstance(document, Mapping):
        raise ServiceTimesInvalid([PolicyError("", "service times must be a mapping")], source)
    try:
        times = ServiceTimes.model_validate(document)
    except ValidationError as exc:
        raise ServiceTimesInvalid(errors_from_validation(exc), source) from None
    bad = [PolicyError(f"by_category.{c}", "must be above 0 and at most 1440 minutes")
           for c, m in times.by_category.items() if not 0 < m <= 24 * 60]
    if bad:
        raise ServiceTimesInvalid(bad, source)
    return times


def load_service_times(path: str | Path) -> ServiceTimes:
    p = Path(path)
    try:
        document = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ServiceTimesInvalid([PolicyError("", f"cannot read {p}: {exc.strerror}")],
                                  str(p)) from None
    except yaml.YAMLError as exc:
        raise ServiceTimesInvalid([PolicyError("", f"not valid YAML: {exc}")], str(p)) from None
    return parse_service_times(document, str(p))


# --- input and report ----------------------------------------------------------------


@dataclass(frozen=True)
class SimCall:
    """One call to replay: an id to report it by, and what the rules see."""

    call_id: str
    facts: CallFacts


class SharedValues:
    """The same facts with one object per distinct value (call types, districts, flags,
    time zones, which fields were set): a year of a city's calls repeats a few hundred of
    each, and a million calls each with its own copies would not fit in memory."""

    FIELDS = ("channel", "nature_code", "nature_text", "narrative", "district", "flags",
              "purpose")

    def __init__(self) -> None:
        self._values: dict[Any, Any] = {}
        self._last_zone: Any = None  # a shared zone: a time in it needs no other

    def __call__(self, facts: CallFacts) -> CallFacts:
        values = facts.__dict__.copy()
        one = self._values.setdefault
        for name in self.FIELDS:
            values[name] = one(values[name], values[name])
        at = values["occurred_at"]
        # Keyed by the offset, not the zone: equal offsets, equal instants and local times.
        values["occurred_at"] = at.replace(tzinfo=one(("tz", at.utcoffset()), at.tzinfo))
        fields_set = one(frozenset(facts.model_fields_set), set(facts.model_fields_set))
        # Already validated: the same values, shared.
        return CallFacts.model_construct(_fields_set=fields_set, **values)

    def at(self, facts: CallFacts, at: datetime) -> CallFacts | None:
        """`facts` (made by this) at another time, as `self(facts with occurred_at=at)`
        would be, without a second validation: `at` with the shared zone of its offset
        (as read from its ISO text: fold 0). None when no call had that offset yet."""
        zone = at.tzinfo
        if zone is not self._last_zone or at.fold:  # most calls: the last one's zone
            zone = self._values.get(("tz", at.utcoffset()))
            if zone is None:
                return None
            at = at.replace(tzinfo=zone, fold=0)
            # A fixed offset only (a stored call's UTC): a zone of rules has two offsets.
            self._last_zone = zone if isinstance(zone, timezone) else None
        # What model_construct makes, without its walk over every field (a million calls):
        # the values of `facts` but the time, its fields set (occurred_at is always set)
        # shared, nothing extra or private (CallFacts has neither).
        moved = _new_facts(CallFacts)
        _set(moved, "__dict__", {**facts.__dict__, "occurred_at": at})
        _set(moved, "__pydantic_fields_set__", facts.__pydantic_fields_set__)
        _set(moved, "__pydantic_extra__", None)
        _set(moved, "__pydantic_private__", None)
        return moved


_new_facts = CallFacts.__new__
_set = object.__setattr__


class Coverage(BaseModel):
    """The team under this version's hours and units, calls taken in time order."""

    units: int
    timezone: str = Field(description="the policy's zone: hours of week are counted in it")
    team_responses: int = Field(description="calls that took a field unit")
    eligible: int
    not_served: dict[str, int] = Field(description="eligible calls not served, by reason")
    not_served_by_hour_of_week: list[int] = Field(
        description="168 counts, Monday 00:00-01:00 first, in the policy's time zone")
    team_hours: float = Field(description="hours within team hours over the calls' span")
    unit_hours_available: float
    unit_hours_busy: float = Field(description="service time of the team's responses, "
                                               "up to the last call")
    utilisation: float = Field(description="busy unit-hours / available unit-hours")


FALL_BACK_REASONS = ("off_hours", "units_busy", "wait_exceeded", "outside_area", "override")


class Waits(BaseModel):
    """How long calls waited, in minutes (p50 and p90 by nearest rank; null: none)."""

    calls: int
    p50_minutes: float | None
    p90_minutes: float | None


class ProgramFigures(BaseModel):
    """One response program over the calls."""

    id: str
    name: str
    mode: str
    units: int | None
    eligible: int = Field(description="eligible calls of a category it takes, not outside "
                                      "its area")
    served: int = Field(description="eligible calls it served (its own decision, at once "
                                    "or after a wait)")
    reach: float = Field(description="served / eligible")
    queued: int = Field(description="calls queued for it on arrival")
    deferred: int = Field(description="calls deferred to its next shift")
    waited_served: int = Field(description="queued or deferred calls one of its units "
                                           "then took")
    fell_back: int = Field(description="calls queued for it whose wait limit passed")
    waits: Waits = Field(description="queued calls: from queued to taken or fallen back")
    unit_hours_available: float
    unit_hours_busy: float
    utilisation: float = Field(description="busy unit-hours / available unit-hours, "
                                           "within the calls' span")


class QueueFigures(BaseModel):
    """Waiting calls: queued for a free unit or deferred to a shift (issue 13)."""

    queued: int = Field(description="calls queued on arrival (every unit of a program "
                                    "busy, a wait limit applying)")
    queued_served: int = Field(description="queued calls a unit then took")
    fell_back: int = Field(description="queued calls whose wait limit passed")
    fell_back_to_program: int = Field(description="of those, taken by a later program")
    deferred: int = Field(description="calls deferred to a program's next shift")
    deferred_served: int
    waited_served: int = Field(description="calls that waited (queued or deferred) and "
                                           "were then served")
    still_waiting: int = Field(description="deferred calls no unit took before the run "
                                           "ended")
    waits: Waits = Field(description="queued calls: from queued to taken or fallen back")
    waits_by_category: dict[str, Waits]
    waits_by_program: dict[str, Waits]
    deferred_waits: Waits = Field(description="deferred calls: from the call to a unit "
                                              "taking it")
    not_served: dict[str, int] = Field(description="eligible calls a team did not serve, "
                                       "by why they fell back to police (every reason "
                                       "listed)")


class VersionReport(BaseModel):
    version: str
    calls: int
    destinations: dict[str, int]
    by_category: dict[str, dict[str, int]] = Field(description="category -> destination -> n")
    team_share: float = Field(description="share of calls going to the team (call_team "
                                          "or joint)")
    coverage: Coverage
    eligible_served: int = Field(default=0, description="eligible calls served by a team")
    reach: float = Field(default=0.0, description="eligible calls served by a team / "
                                                  "eligible calls")
    safety_exclusions_to_team: int = Field(default=0, description="calls a safety "
                                           "exclusion matched that a team took (must be 0)")
    programs: list[ProgramFigures] = Field(default_factory=list)
    queue: QueueFigures | None = None


class ChangedCall(BaseModel):
    call_id: str
    occurred_at: datetime
    nature_code: str
    nature_text: str
    baseline_destination: str
    candidate_destination: str
    baseline_category: str | None
    candidate_category: str | None
    baseline_rule: str
    candidate_rule: str
    baseline_why: str
    candidate_why: str
    baseline_explanation: str
    candidate_explanation: str


class DecidedCall(BaseModel):
    """One call as the candidate decided it."""

    call_id: str
    occurred_at: datetime
    destination: str
    category: str | None
    not_served_reason: str | None
    program_id: str | None = Field(default=None, description="the program that served it, "
                                   "kept it or was tried first")
    waited: bool = Field(default=False, description="queued or deferred before its final "
                                                    "decision")
    wait_minutes: float | None = None


class ChangeGroup(BaseModel):
    from_destination: str
    to_destination: str
    candidate_rule: str
    candidate_why: str = Field(description="the candidate's basis, or why an eligible call "
                                           "was not served")
    count: int
    examples: list[ChangedCall]


class WhatIfReport(BaseModel):
    candidate: VersionReport
    baseline: VersionReport
    calls: int
    first_call: datetime | None
    last_call: datetime | None
    seed: int
    service_times: ServiceTimes
    changed: int = Field(description="calls whose destination differs between the versions")
    changes: list[ChangeGroup] = Field(description="by (from, to, candidate rule, why), "
                                                   "most first, with examples")
    # Never sent (exclude), so not in the API's description of the report either.
    changed_calls: SkipJsonSchema[list[ChangedCall]] = Field(
        default_factory=list, exclude=True, description="every changed call (the CSV)")
    decided: SkipJsonSchema[list[DecidedCall]] = Field(default_factory=list, exclude=True,
                                       description="every call as the candidate decided it, "
                                                   "in time order (kept when asked)")


# --- the simulation ------------------------------------------------------------------

_FIELDS_BY_CONDITION = {
    "nature_code": ("nature_code",), "text_any": ("nature_text", "narrative"),
    "text_none": ("nature_text", "narrative"), "flags_any": ("flags",),
    "flags_none": ("flags",), "priority": ("priority",), "channel": ("channel",),
    "district": ("district",), "time_of_day": ("occurred_at",),
    "day_of_week": ("occurred_at",),
}


def _fields_read(node: Any, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if v is not None:
                out.update(_FIELDS_BY_CONDITION.get(k, ()))
                _fields_read(v, out)
    elif isinstance(node, list):
        for v in node:
            _fields_read(v, out)
    return out


def _rule_of(d: Decision) -> str:
    if d.basis == "exclusion":
        return d.matched_rules[0]
    return d.matched_rules[-1] if d.matched_rules and d.basis == "rule" else NO_RULE


def _why(d: Decision) -> str:
    return d.not_served_reason or d.basis


@dataclass(frozen=True)
class _Outcome:
    """What a decision says that the report counts."""

    destination: str
    category: str | None
    eligible: bool
    not_served: str | None
    takes_unit: bool
    rule: str
    why: str
    program: str | None = None
    basis: str = "rule"
    # A policy of programs (routing.queue_sim): how the call waited, its last explanation.
    waited: WaitKind | None = None
    waited_for: str | None = None  # the program it was queued or deferred for
    wait_s: float | None = None
    served_after_wait: bool = False
    fell_back: bool = False
    still_waiting: bool = False
    explanation: str | None = None


def _team_hours(program: Program, zone: Any, start: datetime, end: datetime) -> float:
    """Hours of [start, end] inside the team's hours (windows belong to their start day)."""
    if end <= start:
        return 0.0
    a, b = parse_clock(program.hours.start), parse_clock(program.hours.end)
    length = 24 * 60 if a == b else b - a if b > a else b - a + 24 * 60  # may wrap
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    total = 0.0
    while day <= last:
        if WEEKDAYS[day.weekday()] in program.hours.days:
            # Wall-clock arithmetic in the zone, then real time: a window across a change
            # of clocks is an hour shorter or longer.
            w0 = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=a)
            w1 = w0 + timedelta(minutes=length)
            lo, hi = max(w0.astimezone(UTC), start), min(w1.astimezone(UTC), end)
            if hi > lo:
                total += (hi - lo).total_seconds() / 3600
        day += timedelta(days=1)
    return total


class _Run:
    """A one-team version over the calls, with its own units (nothing waits)."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        self.program = policy.policy.program
        self.units = self.program.units
        doc = policy.policy.model_dump(include={"exclusions", "rules"}, by_alias=True)
        # With the call's purpose: a test or training call holds no unit.
        read = _fields_read(doc, set()) | {"purpose"}
        self._key_fields = tuple(sorted(read))
        self._cache: dict[tuple[Any, ...], _Outcome] = {}
        self.busy: list[float] = []  # heap of the times (epoch s) units become free
        self.busy_seconds = 0.0
        self.outcomes: list[_Outcome] = []
        self.units_busy: list[int] = []
        self.not_served_by_how: list[int] = [0] * HOURS_OF_WEEK

    def decide(self, call: CallFacts, t: float, local: datetime) -> _Outcome:
        while self.busy and self.busy[0] <= t:
            heapq.heappop(self.busy)
        busy = len(self.busy)
        self.units_busy.append(busy)
        on_duty = within_hours(self.program, local)
        key = (tuple(getattr(call, f) for f in self._key_fields), on_duty, busy < self.units)
        out = self._cache.get(key)
        if out is None:
            d = decide_call(call, self.policy, Availability(units_total=self.units,
                                                            units_busy=busy))
            out = self._cache[key] = _Outcome(
                destination=d.destination.value, category=d.category, eligible=d.eligible,
                not_served=d.not_served_reason,
                takes_unit=d.involves_team and d.needs_field_unit,
                rule=_rule_of(d), why=_why(d), program=d.program.id, basis=d.basis)
        self.outcomes.append(out)
        if out.not_served is not None:
            self.not_served_by_how[local.weekday() * 24 + local.hour] += 1
        return out

    def occupy(self, t: float, seconds: float, span_end: float) -> None:
        heapq.heappush(self.busy, t + seconds)
        # Counted within the calls' span only, as the available hours are.
        self.busy_seconds += max(min(t + seconds, span_end) - t, 0.0)

    def report(self, facts: list[CallFacts], first: datetime | None, last: datetime | None
               ) -> VersionReport:
        calls = len(facts)
        destinations, by_category, not_served, eligible, responses = _counts(self.outcomes)
        team = destinations[Destination.call_team.value] + destinations[Destination.joint.value]
        hours = (_team_hours(self.program, self.policy.zone, first, last)
                 if first and last else 0.0)
        available = hours * self.units
        busy_hours = self.busy_seconds / 3600
        return _with_figures(self.policy, self.outcomes, facts, {
            self.policy.programs.programs[0].id: (available, busy_hours)}, VersionReport(
            version=self.policy.version, calls=calls,
            destinations=dict(sorted(destinations.items())),
            by_category=_by_category(by_category),
            team_share=round(team / calls, 6) if calls else 0.0,
            coverage=Coverage(
                units=self.units, timezone=self.program.timezone,
                team_responses=responses, eligible=eligible,
                not_served=dict(sorted(not_served.items())),
                not_served_by_hour_of_week=list(self.not_served_by_how),
                team_hours=round(hours, 3), unit_hours_available=round(available, 3),
                unit_hours_busy=round(busy_hours, 3),
                utilisation=round(busy_hours / available, 6) if available else 0.0)))

    def explanation(self, i: int, call: CallFacts) -> str:
        """Decided afresh for the explanation, with the capacity that call saw."""
        return decide_call(call, self.policy, Availability(
            units_total=self.units, units_busy=self.units_busy[i])).explanation


class _ProgramsRun:
    """A version whose policy lists programs: each its own units, queue and shifts,
    simulated in CAD time (routing.queue_sim)."""

    def __init__(self, policy: CompiledPolicy, service_s: Callable[[int, str | None], float],
                 *, may_wait: bool, span_end: float) -> None:
        self.policy = policy
        programs = policy.programs.programs
        self.units = sum(p.units or 0 for p in programs)
        rules = _fields_read(policy.policy.model_dump(include={"exclusions", "rules"},
                                                      by_alias=True), set())
        # Channels (deferral), priorities (wait limits) and purpose shape the outcome
        # too; the place, through the areas it falls in, and the time, through the
        # programs' hours (queue_sim says how).
        read = rules | {"channel", "priority", "purpose"}
        self.sim = ProgramsRun(policy, service_s, key_fields=tuple(sorted(read)),
                               rule_fields=tuple(sorted(rules)), may_wait=may_wait,
                               span_end=span_end)
        self.outcomes: list[_Outcome] = []
        # The outcomes of calls already final (they did not wait), by index: their
        # decisions are not kept to the end (a year of them would not fit in memory).
        self._final: dict[int, _Outcome] = {}
        # The state each call arrived at, to decide again the explanation of a call that
        # did not wait (few are asked for: the changed calls).
        self._states: list[tuple[tuple[int, int], ...]] = []
        self._idle = tuple((0, 0) for _ in programs)  # no unit busy, nothing queued
        # One outcome per result calls alike share (the result kept, so its id is its own).
        self._shared: dict[int, tuple[CallResult, _Outcome]] = {}
        # Explanations repeat (calls alike, decided alike): one string for each.
        self._texts: dict[str, str] = {}

    def arrive(self, i: int, call: CallFacts, t: float) -> None:
        known = self.sim.known_ineligible(call)
        if known is not None:  # most calls: the run need not see them
            # Its decision reads no program's state (routing.decide.route decides it
            # before any program is tried): any state decides its explanation again.
            self._states.append(self._idle)
            self._final[i] = self._outcome(known)
            return
        self.sim.arrive(i, call, t)
        self._states.append(self.sim.arrival_state)
        r = self.sim.release(i)
        if r is not None:
            self._final[i] = self._outcome(r)
        for j, done in self.sim.release_settled():
            self._final[j] = _outcome_of(done, self._texts)

    def _outcome(self, r: CallResult) -> _Outcome:
        """The outcome of a result final on arrival: one per result calls alike share."""
        shared = self._shared.get(id(r))
        if shared is None:
            shared = self._shared[id(r)] = (r, _outcome_of(r, self._texts))
        return shared[1]

    def finish(self, calls: list[SimCall]) -> None:
        results = self.sim.finish()
        final = self._final
        for i in range(len(calls)):
            o = final.pop(i, None)
            self.outcomes.append(o if o is not None else _outcome_of(results[i], self._texts))

    def explanation(self, i: int, call: CallFacts) -> str:
        """A waiting call's last explanation, kept; another's, decided afresh with the
        state it arrived at."""
        kept = self.outcomes[i].explanation
        if kept is not None:
            return kept
        return self.sim.decide_afresh(call, self._states[i]).explanation

    def report(self, facts: list[CallFacts], first: datetime | None, last: datetime | None
               ) -> VersionReport:
        ps, zone = self.policy.programs, self.policy.zone
        destinations, by_category, not_served, eligible, responses = _counts(self.outcomes)
        how = [0] * HOURS_OF_WEEK
        for o, f in zip(self.outcomes, facts, strict=True):
            if o.not_served is not None:
                local = f.occurred_at.astimezone(zone)
                how[local.weekday() * 24 + local.hour] += 1
        hours: dict[str, tuple[float, float]] = {}
        for i, p in enumerate(ps.programs):
            duty = (duty_seconds(ps.weeks[i], ps.days_off[i], first, last, zone) / 3600
                    if first and last else 0.0)
            hours[p.id] = (duty * (p.units or 0), self.sim.busy_seconds[p.id] / 3600)
        available = sum(a for a, _ in hours.values())
        busy = sum(b for _, b in hours.values())
        team = destinations[Destination.call_team.value] + destinations[Destination.joint.value]
        n = len(facts)
        return _with_figures(self.policy, self.outcomes, facts, hours, VersionReport(
            version=self.policy.version, calls=n,
            destinations=dict(sorted(destinations.items())),
            by_category=_by_category(by_category),
            team_share=round(team / n, 6) if n else 0.0,
            coverage=Coverage(
                units=self.units, timezone=self.policy.policy.program.timezone,
                team_responses=responses, eligible=eligible,
                not_served=dict(sorted(not_served.items())),
                not_served_by_hour_of_week=how,
                # the programs' hours weighted by their units
                team_hours=round(available / self.units, 3) if self.units else 0.0,
                unit_hours_available=round(available, 3), unit_hours_busy=round(busy, 3),
                utilisation=round(busy / available, 6) if available else 0.0)))


def _outcome_of(r: CallResult, texts: dict[str, str]) -> _Outcome:
    """The outcome of a call's result; the explanation kept only for a call that waited
    (another's is decided again when asked: its result may be an earlier call's)."""
    d = r.final
    explanation = None
    if r.waited is not None:
        explanation = texts.setdefault(d.explanation, d.explanation)
    return _Outcome(
        destination=d.destination.value, category=d.category, eligible=d.eligible,
        not_served=d.not_served_reason, takes_unit=r.holds_unit,
        rule=_rule_of(d), why=_why(d), program=d.program.id, basis=d.basis,
        waited=r.waited, waited_for=r.first.program.id if r.waited else None,
        wait_s=r.wait_s, served_after_wait=r.served_after_wait,
        fell_back=r.fell_back, still_waiting=r.still_waiting,
        explanation=explanation)


def _counts(outcomes: list[_Outcome]
            ) -> tuple[Counter[str], dict[str, Counter[str]], Counter[str], int, int]:
    destinations: Counter[str] = Counter()
    by_category: dict[str, Counter[str]] = {}
    not_served: Counter[str] = Counter()
    eligible = responses = 0
    # Calls alike share one outcome object: each distinct one counted once, times its calls.
    times = Counter(map(id, outcomes))
    for key, o in dict(zip(map(id, outcomes), outcomes, strict=True)).items():
        n = times[key]
        destinations[o.destination] += n
        by_category.setdefault(o.category or NO_CATEGORY, Counter())[o.destination] += n
        eligible += o.eligible * n
        responses += o.takes_unit * n
        if o.not_served:
            not_served[o.not_served] += n
    return destinations, by_category, not_served, eligible, responses


def _by_category(by_category: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    return {c: dict(sorted(n.items()))
            for c, n in sorted(by_category.items(),
                               key=lambda kv: (kv[0] == NO_CATEGORY, kv[0]))}


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def waits(seconds: list[float]) -> Waits:
    """p50 and p90 (nearest rank) of waits given in seconds, in minutes."""
    if not seconds:
        return Waits(calls=0, p50_minutes=None, p90_minutes=None)
    return Waits(calls=len(seconds),
                 p50_minutes=round(_nearest_rank(seconds, 0.5) / 60, 3),
                 p90_minutes=round(_nearest_rank(seconds, 0.9) / 60, 3))


def _team(o: _Outcome) -> bool:
    return o.destination in (Destination.call_team.value, Destination.joint.value)


def _with_figures(policy: CompiledPolicy, outcomes: list[_Outcome], facts: list[CallFacts],
                  hours: Mapping[str, tuple[float, float]], report: VersionReport
                  ) -> VersionReport:
    """The report with reach, the programs' figures and the queue's (issue 13).
    `hours`: per program id, (unit-hours available, unit-hours busy)."""
    ps = policy.programs
    queued_s: list[float] = []
    by_cat: dict[str, list[float]] = {}
    by_prog: dict[str, list[float]] = {}
    deferred_s: list[float] = []
    q = Counter[str]()
    per: dict[str, Counter[str]] = {p.id: Counter() for p in ps.programs}
    eligible = served = excluded_to_team = 0
    for o, f in zip(outcomes, facts, strict=True):
        if o.basis == "exclusion" and _team(o):
            excluded_to_team += 1
        if not o.eligible:  # most calls: asked no more (nor which team took them)
            continue
        team = _team(o)
        eligible += 1
        served += team
        where = ps.in_area(f.lat, f.lon, f.district)
        for i, p in enumerate(ps.programs):
            if p.takes(o.category) and where[i] is not False:
                per[p.id]["eligible"] += 1
        if team and o.program in per:
            per[o.program]["served"] += 1
        if o.waited is None or o.waited_for not in per:
            continue
        mine = per[o.waited_for]
        mine[o.waited] += 1
        if o.waited == "queued":
            q["queued"] += 1
            wait = o.wait_s or 0.0
            queued_s.append(wait)
            by_cat.setdefault(o.category or NO_CATEGORY, []).append(wait)
            by_prog.setdefault(o.waited_for, []).append(wait)
            if o.fell_back:
                q["fell_back"] += 1
                q["fell_back_to_program"] += team
                mine["fell_back"] += 1
            else:
                q["queued_served"] += 1
                mine["waited_served"] += 1
        else:
            q["deferred"] += 1
            if o.still_waiting:
                q["still_waiting"] += 1
            else:
                q["deferred_served"] += 1
                mine["waited_served"] += 1
                deferred_s.append(o.wait_s or 0.0)
    not_served = dict.fromkeys(FALL_BACK_REASONS, 0)
    for r, n in report.coverage.not_served.items():
        not_served[r] = n
    programs = []
    for p in ps.programs:
        c = per[p.id]
        available, busy = hours.get(p.id, (0.0, 0.0))
        programs.append(ProgramFigures(
            id=p.id, name=p.name, mode=p.mode, units=p.units, eligible=c["eligible"],
            served=c["served"], reach=round(c["served"] / c["eligible"], 6)
            if c["eligible"] else 0.0, queued=c["queued"], deferred=c["deferred"],
            waited_served=c["waited_served"], fell_back=c["fell_back"],
            waits=waits(by_prog.get(p.id, [])),
            unit_hours_available=round(available, 3), unit_hours_busy=round(busy, 3),
            utilisation=round(busy / available, 6) if available else 0.0))
    return report.model_copy(update={
        "eligible_served": served, "reach": round(served / eligible, 6) if eligible else 0.0,
        "safety_exclusions_to_team": excluded_to_team, "programs": programs,
        "queue": QueueFigures(
            queued=q["queued"], queued_served=q["queued_served"], fell_back=q["fell_back"],
            fell_back_to_program=q["fell_back_to_program"], deferred=q["deferred"],
            deferred_served=q["deferred_served"],
            waited_served=q["queued_served"] + q["deferred_served"],
            still_waiting=q["still_waiting"], waits=waits(queued_s),
            waits_by_category={c: waits(v) for c, v in sorted(by_cat.items())},
            waits_by_program={pid: waits(v) for pid, v in sorted(by_prog.items())},
            deferred_waits=waits(deferred_s), not_served=not_served)})


@dataclass(frozen=True)
class Replay:
    """The calls in CAD-time order, each with its one service-time draw: what each version
    is run over (`run_version`), alone or beside the other."""

    calls: list[SimCall]
    draws: list[float]
    seed: int
    times: ServiceTimes

    @property
    def first(self) -> datetime | None:
        return self.calls[0].facts.occurred_at if self.calls else None

    @property
    def last(self) -> datetime | None:
        return self.calls[-1].facts.occurred_at if self.calls else None

    @property
    def span_end(self) -> float:
        return self.calls[-1].facts.occurred_at.timestamp() if self.calls else 0.0

    def service_s(self, i: int, category: str | None) -> float:
        """How long call i keeps a unit busy in a version giving it `category`."""
        return self.times.minutes(category, self.draws[i]) * 60


def replay_of(calls: Iterable[SimCall], *, service_times: ServiceTimes | None = None,
              seed: int = 0) -> Replay:
    # Stable for equal times; by the instant as a number (distinct microseconds stay
    # distinct and in order): quicker to compare than times in two offsets.
    ordered = sorted(calls, key=lambda c: c.facts.occurred_at.timestamp())
    rng = random.Random(seed)
    # One draw per call, whatever either version does with it: fair and repeatable.
    return Replay(calls=ordered, draws=[rng.random() or 0.5 for _ in ordered], seed=seed,
                  times=service_times or ServiceTimes())


VersionRun = _Run | _ProgramsRun


def run_version(replay: Replay, policy: CompiledPolicy, *, may_wait: bool = True,
                progress: Callable[[int], None] | None = None) -> VersionRun:
    """One version over every call of `replay`, in CAD-time order, with its own units:
    each call's outcome (`outcomes`), its figures (`report`) and explanations
    (`explanation`). Versions are independent of each other (the same draws, read only),
    so two may run at once. `progress(n)`: n more calls decided."""
    span_end = replay.span_end
    if policy.programs.named:
        programs = _ProgramsRun(policy, replay.service_s, may_wait=may_wait,
                                span_end=span_end)
        for i, call in enumerate(replay.calls):
            programs.arrive(i, call.facts, call.facts.occurred_at.timestamp())
            if progress is not None and (i + 1) % 500 == 0:
                progress(500)
        programs.finish(replay.calls)
        run: VersionRun = programs
    else:
        one = _Run(policy)
        zone = policy.zone
        for i, call in enumerate(replay.calls):
            at = call.facts.occurred_at
            t = at.timestamp()
            out = one.decide(call.facts, t, at.astimezone(zone))
            if out.takes_unit:
                one.occupy(t, replay.service_s(i, out.category), span_end)
            if progress is not None and (i + 1) % 500 == 0:
                progress(500)
        run = one
    if progress is not None and len(replay.calls) % 500:
        progress(len(replay.calls) % 500)
    return run


class Brief(NamedTuple):
    """What the comparison reads of a call's outcome in one version."""

    destination: str
    category: str | None
    rule: str
    why: str


def briefs(outcomes: Sequence[_Outcome]) -> tuple[list[Brief], array[int]]:
    """The outcomes, small to send to another process: the distinct briefs, and each
    call's index among them (a year's calls make a few hundred distinct ones)."""
    table: dict[Brief, int] = {}
    index: dict[int, int] = {}  # calls alike share one outcome object: looked up by id
    codes = array("I")
    for o in outcomes:
        code = index.get(id(o))
        if code is None:
            b = Brief(o.destination, o.category, o.rule, o.why)
            code = index[id(o)] = table.setdefault(b, len(table))
        codes.append(code)
    return list(table), codes


def changed_at(candidate: Sequence[Any], baseline: Sequence[Any]) -> list[int]:
    """The indices of the calls whose destination differs between two versions'
    outcomes (anything with a `destination`: an outcome or a `Brief`)."""
    return [i for i, (c, b) in enumerate(zip(candidate, baseline, strict=True))
            if c.destination != b.destination]


def compare(replay: Replay, candidate: VersionReport, baseline: VersionReport, *,
            candidate_outcomes: Sequence[Any], baseline_outcomes: Sequence[Any],
            changed: list[int], candidate_why: list[str], baseline_why: list[str],
            examples: int = EXAMPLES_PER_CHANGE,
            decided: list[DecidedCall] | None = None) -> WhatIfReport:
    """The report of two versions run over `replay`: their figures, and the calls
    `changed` (indices, in order) with each version's explanation of them (in the same
    order). Outcomes: anything with a destination, category, rule and why."""
    rows: list[ChangedCall] = []
    groups: dict[tuple[str, str, str, str], list[ChangedCall]] = {}
    for i, c_text, b_text in zip(changed, candidate_why, baseline_why, strict=True):
        call = replay.calls[i]
        c, b = candidate_outcomes[i], baseline_outcomes[i]
        row = ChangedCall(
            call_id=call.call_id, occurred_at=call.facts.occurred_at,
            nature_code=call.facts.nature_code, nature_text=call.facts.nature_text,
            baseline_destination=b.destination, candidate_destination=c.destination,
            baseline_category=b.category, candidate_category=c.category,
            baseline_rule=b.rule, candidate_rule=c.rule, baseline_why=b.why,
            candidate_why=c.why, baseline_explanation=b_text,
            candidate_explanation=c_text)
        rows.append(row)
        groups.setdefault((b.destination, c.destination, c.rule, c.why), []).append(row)
    changes = [ChangeGroup(from_destination=k[0], to_destination=k[1], candidate_rule=k[2],
                           candidate_why=k[3], count=len(group), examples=group[:examples])
               for k, group in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    return WhatIfReport(
        candidate=candidate, baseline=baseline, calls=len(replay.calls),
        first_call=replay.first, last_call=replay.last, seed=replay.seed,
        service_times=replay.times, changed=len(rows), changes=changes,
        changed_calls=rows, decided=decided or [])


def explanations(run: VersionRun, replay: Replay, indices: list[int]) -> list[str]:
    """The run's explanation of each of these calls, decided afresh where not kept."""
    return [run.explanation(i, replay.calls[i].facts) for i in indices]


def version_report(run: VersionRun, replay: Replay) -> VersionReport:
    return run.report([c.facts for c in replay.calls], replay.first, replay.last)


def decided_calls(run: VersionRun, replay: Replay) -> list[DecidedCall]:
    """Every call as the run decided it, in time order."""
    # Every field given, of its type already: made without validation, one fields set
    # shared (a set of eight names was most of each of a year's 600,000 records).
    every_field = set(DecidedCall.model_fields)
    return [DecidedCall.model_construct(
        every_field, call_id=call.call_id, occurred_at=call.facts.occurred_at,
        destination=o.destination, category=o.category, not_served_reason=o.not_served,
        program_id=o.program, waited=o.waited is not None,
        wait_minutes=None if o.wait_s is None else round(o.wait_s / 60, 3))
        for call, o in zip(replay.calls, run.outcomes, strict=True)]


def simulate(calls: Iterable[SimCall], candidate: CompiledPolicy, baseline: CompiledPolicy,
             *, service_times: ServiceTimes | None = None, seed: int = 0,
             progress: Callable[[int], None] | None = None,
             examples: int = EXAMPLES_PER_CHANGE, keep_calls: bool = False,
             may_wait: bool = True) -> WhatIfReport:
    """Replay `calls` through both versions in CAD-time order, one after the other in
    this process; see the module docstring.

    `may_wait` False: a policy of programs queues and defers nothing (as a service that
    keeps no queue would decide); its programs still count their own units.

    `progress(n)` is called as calls are decided (n more calls decided by both versions);
    `keep_calls`: the report keeps every call's candidate decision (`decided`)."""
    replay = replay_of(calls, service_times=service_times, seed=seed)
    halves = [0]

    def half(n: int) -> None:  # each version decides every call: a call is two halves
        halves[0] += n
        if progress is not None and halves[0] >= 2:
            progress(halves[0] // 2)
            halves[0] %= 2

    step = half if progress is not None else None
    cand = run_version(replay, candidate, may_wait=may_wait, progress=step)
    base = run_version(replay, baseline, may_wait=may_wait, progress=step)
    changed = changed_at(cand.outcomes, base.outcomes)
    return compare(replay, version_report(cand, replay), version_report(base, replay),
                   candidate_outcomes=cand.outcomes, baseline_outcomes=base.outcomes,
                   changed=changed, candidate_why=explanations(cand, replay, changed),
                   baseline_why=explanations(base, replay, changed), examples=examples,
                   decided=decided_calls(cand, replay) if keep_calls else None)


# --- rendering -----------------------------------------------------------------------


def _minutes_text(waits: Waits) -> str:
    if not waits.calls:
        return "-"
    return f"{waits.p50_minutes:,.1f} / {waits.p90_minutes:,.1f}"


def _render_queue(base: VersionReport, cand: VersionReport, w: int) -> list[str]:
    """Waiting calls and each program's figures, for versions that list programs."""
    bq, cq = base.queue, cand.queue
    lines: list[str] = []
    if bq is None or cq is None or not (bq.queued or cq.queued or bq.deferred
                                        or cq.deferred or len(base.programs) > 1
                                        or len(cand.programs) > 1):
        return lines
    lines.append("")
    for label, attr in (("queued", "queued"), ("queued, then served", "queued_served"),
                        ("fell back at the wait limit", "fell_back"),
                        ("  to a later program", "fell_back_to_program"),
                        ("deferred", "deferred"), ("deferred, then served", "deferred_served"),
                        ("waited, then served", "waited_served"),
                        ("still waiting at the end", "still_waiting")):
        b, c = getattr(bq, attr), getattr(cq, attr)
        lines.append(f"  {label:<28}{b:>{w},}  {c:>{w},}  {c - b:>+8,}")
    for label, bw, cw in (("queue wait p50/p90 min", bq.waits, cq.waits),
                          ("deferred wait p50/p90 min", bq.deferred_waits, cq.deferred_waits)):
        lines.append(f"  {label:<28}{_minutes_text(bw):>{w}}  {_minutes_text(cw):>{w}}")
    for version in (base, cand):
        q = version.queue
        assert q is not None
        pw = max([len("program"), *(len(p.id) for p in version.programs)])
        lines += ["", f"  {version.version}, by program:",
                  f"    {'program':<{pw}}  eligible    served   reach  queued  deferred"
                  "  fell back  wait p50/p90 min  utilisation"]
        for p in version.programs:
            lines.append(f"    {p.id:<{pw}}  {p.eligible:>8,}  {p.served:>8,}  {p.reach:>6.1%}"
                         f"  {p.queued:>6,}  {p.deferred:>8,}  {p.fell_back:>9,}"
                         f"  {_minutes_text(p.waits):>16}  {p.utilisation:>11.1%}")
        if q.waits_by_category:
            lines.append("    queue wait p50/p90 min by category: " + ", ".join(
                f"{c} {_minutes_text(v)} ({v.calls:,})"
                for c, v in q.waits_by_category.items()))
    return lines

CSV_COLUMNS = tuple(ChangedCall.model_fields)


def changed_rows(report: WhatIfReport) -> list[dict[str, str]]:
    """The changed calls as CSV rows (every column text)."""
    out = []
    for c in report.changed_calls:
        values = c.model_dump(mode="json")
        out.append({k: "" if values[k] is None else str(values[k]) for k in CSV_COLUMNS})
    return out


def write_changed_csv(report: WhatIfReport, out: TextIO) -> int:
    """Write the changed calls as CSV (a header, then one row each); return how many."""
    rows = changed_rows(report)
    w = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS))
    w.writeheader()
    w.writerows(rows)
    return len(rows)


def render(report: WhatIfReport) -> str:
    """A readable table for a terminal."""
    cand, base = report.candidate, report.baseline
    w = max(len(base.version), len(cand.version), 10)
    lines = [f"what-if: candidate {cand.version} against baseline {base.version}",
             f"  {report.calls:,} calls"
             + (f", {report.first_call:%Y-%m-%d %H:%M} to {report.last_call:%Y-%m-%d %H:%M}"
                if report.first_call and report.last_call else "")
             + f"; seed {report.seed}; service times {report.service_times.distribution}, "
               f"default mean {report.service_times.default_minutes:g} min",
             "", f"  {'':<28}{base.version:>{w}}  {cand.version:>{w}}  {'change':>8}"]

    def row(label: str, b: float, c: float, fmt: str = ",") -> None:
        if fmt == "%":
            lines.append(f"  {label:<28}{b:>{w}.1%}  {c:>{w}.1%}  {(c - b) * 100:>+7.1f}pt")
        elif fmt == "f":
            lines.append(f"  {label:<28}{b:>{w},.1f}  {c:>{w},.1f}  {c - b:>+8,.1f}")
        else:
            lines.append(f"  {label:<28}{int(b):>{w},}  {int(c):>{w},}  {int(c - b):>+8,}")

    for d in sorted(set(base.destinations) | set(cand.destinations)):
        row(f"to {d}", base.destinations.get(d, 0), cand.destinations.get(d, 0))
    row("team share", base.team_share, cand.team_share, "%")
    bc, cc = base.coverage, cand.coverage
    row("units", bc.units, cc.units)
    row("eligible", bc.eligible, cc.eligible)
    for r in sorted(set(bc.not_served) | set(cc.not_served) | {"off_hours", "units_busy"}):
        row(f"not served: {r}", bc.not_served.get(r, 0), cc.not_served.get(r, 0))
    row("team responses", bc.team_responses, cc.team_responses)
    row("unit-hours available", bc.unit_hours_available, cc.unit_hours_available, "f")
    row("unit-hours busy", bc.unit_hours_busy, cc.unit_hours_busy, "f")
    row("unit utilisation", bc.utilisation, cc.utilisation, "%")
    row("eligible served by a team", base.eligible_served, cand.eligible_served)
    row("reach", base.reach, cand.reach, "%")
    row("safety exclusions to a team", base.safety_exclusions_to_team,
        cand.safety_exclusions_to_team)
    lines += _render_queue(base, cand, w)

    dests = sorted({d for v in (base, cand) for m in v.by_category.values() for d in m})
    cats = sorted(set(base.by_category) | set(cand.by_category),
                  key=lambda c: (c == NO_CATEGORY, c))
    cw = max([len("category"), *map(len, cats)])
    cells = {(cat, d): f"{base.by_category.get(cat, {}).get(d, 0):,} -> "
                       f"{cand.by_category.get(cat, {}).get(d, 0):,}"
             for cat in cats for d in dests}
    dw = {d: max([len(d), *(len(cells[(cat, d)]) for cat in cats)]) for d in dests}
    lines += ["", "  decisions by category (baseline -> candidate):",
              f"    {'category':<{cw}}" + "".join(f"  {d:>{dw[d]}}" for d in dests)]
    for cat in cats:
        lines.append(f"    {cat:<{cw}}" + "".join(f"  {cells[(cat, d)]:>{dw[d]}}"
                                                    for d in dests))

    lines += ["", f"  {report.changed:,} calls change destination"]
    for g in report.changes:
        lines.append(f"    {g.count:>7,}  {g.from_destination} -> {g.to_destination}  "
                     f"(candidate: {g.candidate_rule}, {g.candidate_why})")
        for e in g.examples:
            lines.append(f"             e.g. {e.call_id} {e.occurred_at:%Y-%m-%d %H:%M} "
                         f"{e.nature_code} {e.nature_text[:40]}")

    hw = cc.not_served_by_hour_of_week
    if any(hw):
        lines += ["", f"  candidate: eligible but not served by hour of week "
                      f"({cc.units} units; {cand.version}; {cc.timezone} time):",
                  "    day " + "".join(f"{h:>4}" for h in range(24))]
        for i, name in enumerate(WEEKDAYS):
            lines.append(f"    {name} " + "".join(f"{n:>4}" for n in hw[i * 24:i * 24 + 24]))
    return "\n".join(lines)
