"""Which response program takes an eligible call, or keeps it waiting, and why. Pure.

Programs are tried in policy order. One takes the call when the call's category is
one it takes, the call is inside its area, it is on duty and (for work that holds a unit)
a unit is free. When none does, and the caller can keep a queue (`state` given), the
first program that could serve the call later keeps it: a unit's wait when every unit
is busy and the category (at the call's priority) has a wait limit, or its next shift
for a deferrable intake channel. The wording of the explanation is routing/decide.py's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from routing.models import Availability, ProgramContext, ProgramState, Queued
from routing.schedule import next_shift_start, on_duty
from rules.call import CallFacts
from rules.evaluate import CompiledPolicy
from rules.programs import ResponseProgram

Refusal = Literal["off_hours", "units_busy", "outside_area"]


@dataclass(frozen=True)
class Trial:
    """One program considered for the call: its context, and why it could not take it
    (`reason` None: it takes the call)."""

    index: int
    program: ResponseProgram
    ctx: ProgramContext
    reason: Refusal | None
    holds_unit: bool  # taking the call would hold one of its units
    checked_hours: bool
    units_free: int | None  # None: not limited by units (or not counted for this call)


@dataclass
class Placement:
    taken: Trial | None = None
    tried: list[Trial] = field(default_factory=list)  # could not take it, in order
    queued: tuple[Trial, Queued] | None = None
    deferred: tuple[Trial, datetime] | None = None

    @property
    def first(self) -> Trial | None:
        """The program named on the decision: the one that took or keeps the call, else
        the first one tried."""
        if self.taken:
            return self.taken
        if self.queued:
            return self.queued[0]
        if self.deferred:
            return self.deferred[0]
        return self.tried[0] if self.tried else None

    def refusal(self) -> Refusal | None:
        """Why no program took the call: the reason of the first whose area holds it;
        outside_area only when it is outside every one."""
        for t in self.tried:
            if t.reason != "outside_area":
                return t.reason
        return "outside_area" if self.tried else None


def program_states(policy: CompiledPolicy, availability: Availability,
                   state: Mapping[str, ProgramState] | None) -> list[ProgramState]:
    """Each program's state. Without `state` (a caller that knows one team), the busy
    units of `availability` fill the programs' units in policy order."""
    programs = policy.programs.programs
    if state is not None:
        return [state.get(p.id, ProgramState()) for p in programs]
    busy = availability.units_busy
    out = []
    for p in programs:
        mine = min(busy, p.units or 0)
        busy -= mine
        out.append(ProgramState(units_busy=mine))
    if busy and out:  # more busy than the programs hold: the first program is full
        out[0] = ProgramState(units_busy=out[0].units_busy + busy)
    return out


def _hours_text(policy: CompiledPolicy, i: int) -> str:
    if not policy.programs.named:  # the one-team format says its hours as it always did
        h = policy.policy.program.hours
        return f"{h.start}-{h.end} {','.join(h.days)}"
    return policy.programs.hours_texts[i]


def place(call: CallFacts, category: str | None, needs_unit: bool, policy: CompiledPolicy,
          availability: Availability, state: Mapping[str, ProgramState] | None, *,
          at: datetime | None = None, after: str | None = None, may_wait: bool = True,
          refused: Collection[str] = (), only: str | None = None,
          anywhere: bool = False) -> Placement:
    """Try the programs in order for an eligible call at `at` (default: when it came in).

    `after`: only programs after this one are tried (a fall-back). `may_wait`: whether a
    queue or a deferral may keep the call (only with `state`, which a caller that keeps
    queues gives). `refused`: crisis centres that declined or returned the call, not
    tried again.

    A transfer program (a crisis centre) takes a call within its hours while one of its
    counsellors (`units`) is free; it holds no field unit, and nothing waits for it.

    `only`: only this program is tried; `anywhere`: its service area is not asked (both
    for mutual aid, routing/mutual_aid.py)."""
    at = at or call.occurred_at
    ps = policy.programs
    local_time = at.astimezone(policy.zone).strftime("%a %H:%M")
    states = program_states(policy, availability, state)
    where = ps.in_area(call.lat, call.lon, call.district)
    live = call.purpose == "live"
    out = Placement()
    skipping = after is not None
    for i, p in enumerate(ps.programs):
        if skipping:
            skipping = p.id != after
            continue
        if not p.takes(category) or p.id in refused or (only is not None and p.id != only):
            continue
        phone = p.mode == "phone"
        transfer = p.mode == "transfer"
        # Its units: those on duty on its roster when it keeps one, else the policy's
        # (one team without `state`: the caller's availability says, and whence).
        limit = p.units if state is None else states[i].capacity(p.units)
        one_team = not ps.named and state is None
        total = availability.units_total if one_team else limit or 0
        units_from = (availability.units_from if one_team
                      else "roster" if state is not None
                      and states[i].units_on_duty is not None else "policy")
        busy = states[i].units_busy
        duty = on_duty(ps.weeks[i], ps.days_off[i], at, policy.zone)
        ctx = ProgramContext(
            phase=policy.policy.program.phase, timezone=policy.policy.program.timezone,
            hours=_hours_text(policy, i), local_time=local_time,
            within_hours=duty, units_total=total, units_busy=busy, units_from=units_from,
            id=p.id, name=p.name)
        # A field team answers phone work at all hours; a crisis centre only in its own.
        checked_hours = phone or transfer or needs_unit
        counted = live and (needs_unit or phone or transfer) and limit is not None
        free = max(total - busy, 0) if counted else None
        reason: Refusal | None = None
        if where[i] is False and not anywhere:
            reason = "outside_area"
        elif checked_hours and not duty:
            reason = "off_hours"
        elif free is not None and free <= 0:
            reason = "units_busy"
        trial = Trial(i, p, ctx, reason,
                      holds_unit=needs_unit and not phone and not transfer and live,
                      checked_hours=checked_hours, units_free=free)
        if reason is None:
            out.taken = trial
            return out
        out.tried.append(trial)
    if state is None or not may_wait:
        return out
    for t in out.tried:
        p = t.program
        if p.mode == "transfer":
            continue  # nothing waits for a crisis centre
        if call.channel in p.deferrable and t.reason in ("off_hours", "units_busy"):
            # A deferrable intake (an officer's referral, a follow-up) is never sent to
            # police for hours or capacity, so it never joins a queue that falls back: off
            # hours it waits for the next shift; at capacity, from now, for the next free
            # unit, without a limit.
            start = (at if t.reason == "units_busy" else
                     next_shift_start(ps.weeks[t.index], ps.days_off[t.index], at,
                                      policy.zone))
            if start is not None:
                out.deferred = (t, start)
                return out
        if t.reason == "units_busy":
            limit = p.wait_limit_s(category, call.priority)
            queue = states[t.index].queued
            if limit and (p.max_queued is None or queue < p.max_queued):
                out.queued = (t, Queued(since=at, wait_limit_s=limit, position=queue + 1))
                return out
    return out


def wait_deadline(queued: Queued) -> datetime:
    """When a queued call falls back if no unit has cleared for it."""
    return queued.since + timedelta(seconds=queued.wait_limit_s)
