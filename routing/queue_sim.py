"""A policy of programs over a day of calls, in CAD time, as the live service runs it. Pure.

A discrete-event simulation that follows the queue contract (QUEUE-CONTRACT.md, issue
13): each program has its own units (a heap of the times they free); a call is decided at
its CAD time with every program's state (`units_busy`, `queued`) and may be taken,
queued, deferred or sent to police. Before anything happens at time x the run settles up
to x, in time order and, at one instant, in this order: queued calls whose wait limit
passes fall back (`routing.decide.fall_back`), units free and each takes the head of its
program's `offer_order` when the program is on duty (`take_waiting`), deferred calls are
taken at their shift's start when a unit is free (else they wait for one to free), and
only then are new calls decided. At the start of each of a program's shifts its free
units take the calls waiting for it (units freed off duty take the morning's deferred
calls at 08:00). Test and training calls never hold a unit.

`routing.whatif` turns the per-call results into its report.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Literal

from routing.decide import classify_call, decide_call, fall_back, take_waiting
from routing.models import Availability, Decision, Destination, ProgramState
from routing.queue import Waiting, offer_order
from routing.schedule import DutyDays, next_shift_start, on_duty
from rules.call import CallFacts
from rules.evaluate import Classification, CompiledPolicy

WaitKind = Literal["queued", "deferred"]

# At one instant: deadlines, then units freeing, then shift starts (new calls come last).
_DEADLINE, _FREE, _SHIFT = 0, 1, 2
# Classifications kept for calls alike in what the rules read (see ProgramsRun._classify).
CLASSIFIED_MAX = 50_000


@dataclass
class CallResult:
    """What became of one call: its decision on arrival and its last one."""

    first: Decision
    final: Decision
    waited: WaitKind | None = None  # it was queued or deferred on arrival
    wait_s: float | None = None  # from arrival to taken or fallen back (None: not waited)
    served_after_wait: bool = False
    fell_back: bool = False  # its wait limit passed
    still_waiting: bool = False  # a deferred call no unit took before the run ended
    holds_unit: bool = False  # a unit served it (its final program's)


def holds_unit(decision: Decision, facts: CallFacts, policy: CompiledPolicy) -> bool:
    """The decision keeps one of its program's units busy: a team response in the field
    for a live call (a phone program's work holds none), or a transfer: one of the crisis
    centre's counsellors for as long."""
    if decision.destination is Destination.crisis_center:
        return facts.purpose == "live"
    if not (decision.involves_team and decision.needs_field_unit) or facts.purpose != "live":
        return False
    i = policy.programs.position(decision.program.id)
    return i is None or policy.programs.programs[i].mode != "phone"


class ProgramsRun:
    """One version's programs over calls given in CAD-time order (`arrive`), then `finish`.

    `service_s(index, category)`: how long a unit serving call `index` is busy, seconds.
    `may_wait` False: nothing is queued or deferred (each program still counts its units).
    `key_fields`: the call's fields a decision reads but its time and coordinates;
    `rule_fields`: those the policy's conditions read (default: `key_fields`),
    `occurred_at` among them when a condition reads the time.

    Calls alike share a decision that did not wait (the same `CallResult`: its decision's
    time and wording are the first such call's; `state_key` and `decide_afresh` give a
    call's own): a call the rules do not make eligible, with any call alike in
    `rule_fields` (nothing else shapes such a decision but its time, which only its
    wording says); an eligible one, with a call alike in `key_fields` and in the
    programs' service areas it falls in (all a decision reads of its place: a real
    CAD's coordinates differ on nearly every call), at the same state of every program
    (units busy, queued) and on duty in the same programs, unless its channel is one a
    program defers (when its next shift starts decides). A call that waits is always
    decided in full, at its own time.
    """

    def __init__(self, policy: CompiledPolicy, service_s: Callable[[int, str | None], float],
                 *, key_fields: tuple[str, ...], rule_fields: tuple[str, ...] | None = None,
                 may_wait: bool = True, span_end: float | None = None) -> None:
        self.policy = policy
        self.service_s = service_s
        self.may_wait = may_wait
        self.span_end = span_end
        ps = policy.programs
        self.ids = [p.id for p in ps.programs]
        self.index = {pid: i for i, pid in enumerate(self.ids)}
        self.busy = dict.fromkeys(self.ids, 0)
        self.queued = dict.fromkeys(self.ids, 0)  # queued (not deferred) calls per program
        self.busy_seconds = dict.fromkeys(self.ids, 0.0)
        self.waiting: dict[int, Waiting] = {}
        self.facts: dict[int, CallFacts] = {}  # of waiting calls
        self.results: dict[int, CallResult] = {}
        self._events: list[tuple[Any, ...]] = []
        self._seq = itertools.count()
        # The results calls alike share (see the class); a tuple of one field is made a
        # tuple too, so every key is one.
        self._fields = _getter(key_fields)
        self._rule_fields = _getter(rule_fields if rule_fields is not None else key_fields)
        self._ineligible: dict[tuple[Any, ...], CallResult] = {}
        self._eligible: dict[tuple[Any, ...], CallResult] = {}
        self._classified: dict[tuple[Any, ...], Classification] = {}
        self._duty = [DutyDays(ps.weeks[k], ps.days_off[k], policy.zone)
                      for k in range(len(self.ids))]
        self._deferring = frozenset(c for p in ps.programs for c in p.deferrable)
        self._state_key: tuple[tuple[int, int], ...] | None = None  # None: changed since
        # The state the last call to arrive was decided at (`decide_afresh`).
        self.arrival_state: tuple[tuple[int, int], ...] = ()
        # Programs with a shift start scheduled: one is, while calls wait for it.
        self._armed: set[str] = set()
        # Calls whose wait ended (taken or fallen back) since `release_settled` last ran.
        self._settled: list[int] = []

    # --- the state a decision sees ----------------------------------------------------

    def state(self) -> dict[str, ProgramState]:
        return {pid: ProgramState(units_busy=self.busy[pid], queued=self.queued[pid])
                for pid in self.ids}

    def _availability(self) -> Availability:
        total = sum(p.units or 0 for p in self.policy.programs.programs)
        return Availability(units_total=total, units_busy=sum(self.busy.values()))

    def state_key(self) -> tuple[tuple[int, int], ...]:
        """Every program's (units busy, queued), in policy order: all of the state a
        decision on arrival sees (one tuple while it stays the same)."""
        if self._state_key is None:
            self._state_key = tuple((self.busy[p], self.queued[p]) for p in self.ids)
        return self._state_key

    def known_ineligible(self, facts: CallFacts) -> CallResult | None:
        """The result of a call the rules do not make eligible, once a call alike has
        arrived. No program's state shapes it, and it neither waits nor holds a unit, so
        a caller may take it without the call arriving: the run goes on the same."""
        return self._ineligible.get(self._rule_fields(facts))

    def decide_afresh(self, facts: CallFacts, state: tuple[tuple[int, int], ...]
                      ) -> Decision:
        """The decision a call arriving at `state` (a `state_key`) was given, made again
        from the same inputs: its own time and wording."""
        total = sum(p.units or 0 for p in self.policy.programs.programs)
        return decide_call(
            facts, self.policy, Availability(units_total=total,
                                             units_busy=sum(b for b, _ in state)),
            state={pid: ProgramState(units_busy=b, queued=q)
                   for pid, (b, q) in zip(self.ids, state, strict=True)},
            may_wait=self.may_wait)

    def _classify(self, rule_key: tuple[Any, ...], facts: CallFacts) -> Classification:
        """What the rules say of calls alike in `rule_fields` (all they read): made once
        (emptied past CLASSIFIED_MAX: free text that differs on every call)."""
        found = self._classified.get(rule_key)
        if found is None:
            if len(self._classified) >= CLASSIFIED_MAX:
                self._classified.clear()
            found = self._classified[rule_key] = classify_call(facts, self.policy)
        return found

    def _push(self, t: float, kind: int, sub: tuple[Any, ...], payload: Any) -> None:
        heapq.heappush(self._events, (t, kind, sub, next(self._seq), payload))

    # --- calls ------------------------------------------------------------------------

    def arrive(self, i: int, facts: CallFacts, t: float | None = None) -> CallResult:
        """Call i at its time (`t`: its epoch seconds, when the caller has them)."""
        if t is None:
            t = facts.occurred_at.timestamp()
        self.settle(t)
        self.arrival_state = self.state_key()
        rule_key = self._rule_fields(facts)
        alike = self._ineligible.get(rule_key)
        key = None
        if alike is None and facts.channel not in self._deferring:
            key = (self._fields(facts),
                   self.policy.programs.in_area(facts.lat, facts.lon, facts.district),
                   self.state_key(), tuple(duty(facts.occurred_at) for duty in self._duty))
            alike = self._eligible.get(key)
        if alike is not None:
            self.results[i] = alike
            if alike.holds_unit:
                self._occupy(i, alike.final, t)
            return alike
        d = decide_call(facts, self.policy, self._availability(), state=self.state(),
                        may_wait=self.may_wait, classification=self._classify(rule_key, facts))
        result = self._arrived(i, facts, d, t)
        if result.waited is None:
            if not d.eligible:
                self._ineligible[rule_key] = result
            elif key is not None:
                self._eligible[key] = result
        return result

    def _arrived(self, i: int, facts: CallFacts, d: Decision, t: float) -> CallResult:
        """Call i decided on arrival: queued, deferred, holding a unit or final."""
        result = self.results[i] = CallResult(first=d, final=d)
        pid = d.program.id
        if d.queued is not None and pid is not None:
            result.waited = "queued"
            w = Waiting.of(_cid(i), facts.priority, d)
            self.waiting[i], self.facts[i] = w, facts
            self.queued[pid] += 1
            self._state_key = None
            deadline = w.deadline
            assert deadline is not None
            self._push(deadline.timestamp(), _DEADLINE, (w.call_id,), i)
            self._arm(pid, t)
        elif d.deferred_until is not None and pid is not None:
            result.waited = "deferred"
            w = Waiting.of(_cid(i), facts.priority, d)
            self.waiting[i], self.facts[i] = w, facts
            self._push(w.since.timestamp(), _SHIFT, _urgency(w), i)
            self._arm(pid, t)
        elif holds_unit(d, facts, self.policy):
            self._occupy(i, d, t)
        return result

    def release(self, i: int) -> CallResult | None:
        """Call i's result, forgotten here, when nothing can change it any more (it did
        not wait: only a waiting call's decision changes later); None while it may.
        A long run keeps only the waiting calls' results so."""
        if i in self.waiting or self.results[i].waited is not None:
            return None
        return self.results.pop(i)

    def release_settled(self) -> list[tuple[int, CallResult]]:
        """The results of the calls whose wait ended since the last time (taken or
        fallen back: nothing changes them any more), forgotten here."""
        if not self._settled:  # as for most calls
            return []
        out = [(i, self.results.pop(i)) for i in self._settled]
        self._settled = []
        return out

    def finish(self) -> dict[int, CallResult]:
        """Settle everything still pending (waits, units, shifts) and give the results."""
        self.settle(float("inf"))
        for i in self.waiting:
            self.results[i].still_waiting = True
        return self.results

    # --- events -----------------------------------------------------------------------

    def settle(self, x: float) -> None:
        """Everything that happens up to and at `x`, before a call arriving at `x`."""
        while self._events and self._events[0][0] <= x:
            t, kind, _, _, payload = heapq.heappop(self._events)
            if kind == _DEADLINE:
                self._deadline(payload, t)
            elif kind == _FREE:
                self._free(payload, t)
            elif isinstance(payload, str):
                self._program_shift(payload, t)
            else:
                self._shift_start(payload, t)

    def _deadline(self, i: int, t: float) -> None:
        w = self.waiting.get(i)
        if w is None:  # a unit took it before its limit passed
            return
        self._unwait(i)
        result = self.results[i]
        facts = self.facts.pop(i)
        d = fall_back(facts, self.policy, result.first, _dt(t), "wait_limit",
                      availability=self._availability(), state=self.state(),
                      classification=self._classify(self._rule_fields(facts), facts))
        result.final, result.fell_back = d, True
        result.wait_s = t - result.first.decided_at.timestamp()
        if holds_unit(d, facts, self.policy):
            self._occupy(i, d, t)
        self._settled.append(i)

    def _free(self, pid: str, t: float) -> None:
        self.busy[pid] -= 1
        self._state_key = None
        i = self.index[pid]
        ps = self.policy.programs
        at = _dt(t)
        if not on_duty(ps.weeks[i], ps.days_off[i], at, self.policy.zone):
            return  # outside its hours nothing is offered
        order = offer_order(self.waiting.values(), pid, at)
        if order:
            self._take(int(order[0].call_id), t)

    def _arm(self, pid: str, t: float) -> None:
        """Schedule the program's next shift start after `t`, if none is."""
        if pid in self._armed:
            return
        k = self.index[pid]
        ps = self.policy.programs
        start = next_shift_start(ps.weeks[k], ps.days_off[k], _dt(t), self.policy.zone)
        if start is not None:
            self._armed.add(pid)
            # After the waiting calls' own shift starts at the same instant (_urgency
            # sorts tuples of (bool, int, str) before this one's (True, inf, "")).
            self._push(start.timestamp(), _SHIFT, (True, float("inf"), ""), pid)

    def _program_shift(self, pid: str, t: float) -> None:
        """A shift of `pid` begins: each free unit takes the head of its queue."""
        self._armed.discard(pid)
        p = self.policy.programs.programs[self.index[pid]]
        at = _dt(t)
        while p.units is None or self.busy[pid] < p.units:
            order = offer_order(self.waiting.values(), pid, at)
            if not order:
                break
            self._take(int(order[0].call_id), t)
        if any(w.program_id == pid for w in self.waiting.values()):
            self._arm(pid, t)

    def _shift_start(self, i: int, t: float) -> None:
        w = self.waiting.get(i)
        if w is None:
            return
        p = self.policy.programs.programs[self.index[w.program_id]]
        facts = self.facts[i]
        if (p.units is None or p.mode == "phone" or facts.purpose != "live"
                or self.busy[w.program_id] < p.units):
            self._take(i, t)

    def _take(self, i: int, t: float) -> None:
        w = self.waiting[i]
        self._unwait(i)
        facts = self.facts.pop(i)
        result = self.results[i]
        d = take_waiting(self.policy, result.first, _dt(t),
                         units_busy=self.busy[w.program_id])
        if not holds_unit(d, facts, self.policy):
            d = d.model_copy(update={"needs_field_unit": False})
        result.final, result.served_after_wait = d, True
        result.wait_s = t - result.first.decided_at.timestamp()
        if d.needs_field_unit:
            self._occupy(i, d, t)
        self._settled.append(i)

    def _unwait(self, i: int) -> None:
        w = self.waiting.pop(i)
        if not w.deferred:
            self.queued[w.program_id] -= 1
            self._state_key = None

    def _occupy(self, i: int, d: Decision, t: float) -> None:
        pid = d.program.id
        assert pid is not None
        seconds = self.service_s(i, d.category)
        self.busy[pid] += 1
        self._state_key = None
        self._push(t + seconds, _FREE, (next(self._seq),), pid)
        end = t + seconds if self.span_end is None else min(t + seconds, self.span_end)
        self.busy_seconds[pid] += max(end - t, 0.0)
        self.results[i].holds_unit = True


def _getter(fields: tuple[str, ...]) -> Callable[[CallFacts], tuple[Any, ...]]:
    """The call's values of `fields`, as one tuple (attrgetter gives a lone value bare)."""
    if len(fields) == 1:
        get = attrgetter(fields[0])
        return lambda facts: (get(facts),)
    if not fields:
        return lambda facts: ()
    return attrgetter(*fields)


def _cid(i: int) -> str:
    return f"{i:09d}"  # so ties in the offer order go to the earlier call


def _urgency(w: Waiting) -> tuple[Any, ...]:
    return (w.priority is None, w.priority or 0, w.call_id)


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)

