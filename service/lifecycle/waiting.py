"""Calls waiting for a response program in the live service (issue 13): queued for a
program's next free unit, or deferred to its next shift. docs/programs.md and
QUEUE-CONTRACT (the contract the simulation keeps too) say how they behave.

What waits is stored on the call (`wait_program`, `wait_since`, `wait_deadline`, columns
that follow its decision: service/lifecycle/recorded.py), so several instances on one
database keep one queue. Everything here runs inside a writer command, under the writer's
lock: a queued call is taken or falls back once, whichever instance does it.

- `settle(until)`: before anything happens at a time, what happened since the last
  settling (a mark kept in `queue_settled`) up to it, once, in time order: a queued call
  past its deadline falls back at the deadline (`wait_limit`); a deferred call whose
  shift began is taken then if a unit of its program is free (`shift_start`), else it
  keeps waiting; at each start of a program's shift its free units take its calls.
- `offer(program, at)`: a unit of the program came free at `at`: the most urgent, oldest
  waiting call it may take is taken (`unit_free`; a deferred one: `shift_start`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from routing.decide import fall_back, take_waiting
from routing.models import Decision, ProgramState
from routing.queue import Waiting, next_to_offer, overdue
from routing.schedule import on_duty, shift_starts
from rules.evaluate import CompiledPolicy
from service.calls.records import CallRow, DecisionRecord
from service.lifecycle.mutual_aid import aid_offers
from service.lifecycle.program_states import program_states as program_states
from service.lifecycle.recorded import decision_columns, record_decision, state_of
from service.lifecycle.transfer_record import follow_decision
from service.store.tables import as_utc, utcnow
from service.units.commands import roster_counts
from service.writing.batch import Batch, held_program, unit_agency


def entry(call: Mapping[str, Any]) -> Waiting:
    """A stored waiting call as the queue sees it."""
    since = as_utc(call["wait_since"])
    deadline = call["wait_deadline"]
    return Waiting(call_id=call["id"], program_id=call["wait_program"],
                   priority=call["priority"], since=since,
                   wait_limit_s=(None if deadline is None
                                 else int((as_utc(deadline) - since).total_seconds())))


def _unit_free(policy: CompiledPolicy, states: Mapping[str, ProgramState],
               program_id: str) -> bool:
    i = policy.programs.position(program_id)
    if i is None:
        return False  # no longer in the policy: nobody takes it (it falls back, if queued)
    p = policy.programs.programs[i]
    units = states[p.id].capacity(p.units)
    return units is None or states[p.id].units_busy < units


def _decide_anew(ctx: Batch, call: CallRow, decision: Decision, cause: str) -> None:
    previous = Decision.model_validate_json(call["decision"])
    doc = cast(DecisionRecord, decision.model_dump(mode="json"))
    call.update({**decision_columns(doc, call), "updated_at": utcnow()})  # type: ignore[typeddict-item]
    ctx.save_call(call)
    record_decision(ctx, call, doc, cause=cause, event_id=None)
    follow_decision(ctx, call, previous, decision)  # a fall-back to a crisis centre


async def _take(ctx: Batch, policy: CompiledPolicy, call: CallRow, w: Waiting,
                at: datetime, cause: str) -> bool:
    """A unit of its program takes the waiting call at `at`, if one is free."""
    states = await program_states(ctx, policy, exclude_call=w.call_id)
    if not _unit_free(policy, states, w.program_id):
        return False
    decision = Decision.model_validate_json(call["decision"])
    taken = take_waiting(policy, decision, at,
                         units_busy=states[w.program_id].units_busy + 1)
    _decide_anew(ctx, call, taken, cause)
    return True


async def settle(ctx: Batch, policy: CompiledPolicy, until: datetime) -> int:
    """What happened after the last settling up to `until`, once, in time order and at one
    instant deadlines, then deferred calls' times, then programs' shift starts: the
    number of calls that fell back or were taken. Every action settles up to its own time
    before it changes anything, so the units free at each moment are those free now."""
    if not policy.programs.named:
        return 0
    since = await ctx.settled_until(policy.agency)
    if since is not None and until <= since:
        return 0
    entries = [entry(c) for c in await ctx.waiting(policy.agency)]
    if not entries:
        # Nothing waits: nothing to work through, and the mark stays where calls last
        # waited (a sweep before the first event, on the wall clock, would otherwise put
        # it past a replay's CAD times).
        return 0
    steps: list[tuple[datetime, int, str]] = [
        (d, 0, w.call_id) for w in overdue(entries, until) if (d := w.deadline) is not None]
    # A deferred call's time: taken then by a free unit of its program on duty. One that
    # came in after this time was settled (a late event) was decided with today's units.
    steps += [(w.since, 1, w.call_id) for w in entries
              if w.deferred and w.since <= until and (since is None or w.since > since)]
    # A program's shift starting: its free units take its waiting calls (units freed off
    # duty take the morning's deferred calls at 08:00).
    ps = policy.programs
    roster = await roster_counts(ctx, policy.agency)
    for i, p in enumerate(ps.programs):
        mine = [w.since for w in entries if w.program_id == p.id]
        if mine and (p.units is not None or p.id in roster):
            # (none before the earliest call waiting for it matters)
            start = min(mine) if since is None else max(since, min(mine))
            steps += [(s, 2, p.id) for s in shift_starts(ps.weeks[i], ps.days_off[i], start,
                                                         until, policy.zone)]
    done = 0
    for at, kind, key in sorted(steps):
        if kind == 2:
            while await offer(ctx, policy, key, at) is not None:
                done += 1
            continue
        call = await ctx.call_by_id(key)
        if call is None or not call["wait_program"]:
            continue  # taken or fallen back earlier in this settling
        w = entry(call)
        if kind == 0:
            states = await program_states(ctx, policy, exclude_call=w.call_id)
            decision = Decision.model_validate_json(call["decision"])
            after = fall_back(state_of(call).facts(), policy, decision, at, "wait_limit",
                              state=states, aid=await aid_offers(ctx, policy, ctx.region,
                                                                 exclude_call=w.call_id))
            _decide_anew(ctx, call, after, "wait_limit")
            done += 1
        elif _on_duty(policy, w.program_id, at) and await _take(ctx, policy, call, w, at,
                                                                 "shift_start"):
            done += 1
    await ctx.set_settled_until(until, policy.agency)
    return done


def _on_duty(policy: CompiledPolicy, program_id: str, at: datetime) -> bool:
    ps = policy.programs
    i = ps.position(program_id)
    return i is not None and on_duty(ps.weeks[i], ps.days_off[i], at, policy.zone)


async def offer(ctx: Batch, policy: CompiledPolicy, program_id: str, at: datetime
                ) -> str | None:
    """A unit of `program_id` came free at `at`: the call it takes, if any (nothing
    outside the program's hours)."""
    if not policy.programs.named or not _on_duty(policy, program_id, at):
        return None
    # A call that began to wait after `at` (a status change told late) is not taken then.
    waiting = [w for c in await ctx.waiting(policy.agency) if (w := entry(c)).since <= at]
    head = next_to_offer(waiting, program_id, at)
    if head is None:
        return None
    call = await ctx.call_by_id(head.call_id)
    assert call is not None
    cause = "shift_start" if head.deferred else "unit_free"
    return head.call_id if await _take(ctx, policy, call, head, at, cause) else None


async def offer_freed(ctx: Batch, policy: CompiledPolicy | None,
                      before: CallRow | None, after: CallRow, at: datetime) -> str | None:
    """Offer the unit a command released (the call held one of a program's units and
    holds it no more), at `at`, to the queue of `policy` (the call's agency's; None: it
    keeps none), or of the agency that lent the unit by mutual aid (its policy in force,
    as the writer knows the region)."""
    was = held_program(before)
    if before is None or not was or (held_program(after) == was
                                      and unit_agency(after) == unit_agency(before)):
        return None
    lender = unit_agency(before)
    if policy is None or lender != policy.agency:
        policy = ctx.region.policies.get(lender or "") if ctx.region else None
        if policy is not None:  # its queue, settled up to now first, as any action does
            await settle(ctx, policy, at)
    if policy is None:
        return None
    return await offer(ctx, policy, was, at)


# The step routing.decide.fall_back adds when an update made a queued call urgent.
_URGENT = "an update made it urgent"


def after_event(previous: Decision | None, decision: Decision, *, holding: bool
                ) -> tuple[Decision, str]:
    """The decision a CAD event leaves a call with, and the cause to record it under.

    A call a unit took from the queue keeps it: an update decided afresh (at the call's
    CAD time, when it waited) does not put it back. A dispatcher's override takes a call
    out of the queue for good. A queued call an update made urgent fell back: `urgent`."""
    waits = decision.queued is not None or decision.deferred_until is not None
    if previous is not None and holding and waits \
            and decision.program.id == previous.program.id:
        return previous, "event"
    if decision.override is not None and waits:
        decision = not_waiting(decision)
    if previous is not None and previous.queued is not None and decision.queued is None \
            and any(_URGENT in f for f in decision.factors):
        return decision, "urgent"
    return decision, "event"


def not_waiting(decision: Decision) -> Decision:
    """An overridden call waits no more: the dispatcher decided."""
    return decision.model_copy(update={"queued": None, "deferred_until": None})
