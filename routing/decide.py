"""Who responds to a call, and why: every routing decision is made here. Pure.

`route` turns a classification, the program settings and the team's availability into
a `Decision`; `decide_call` classifies then routes; `redecide` decides a call again when
a CAD event changes it, keeping what a close, an override or a backup request settled;
`apply_override` and `apply_backup` are those two changes; `after_transfer` decides a
call again when the crisis centre it was transferred to declined or returned it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, TypedDict

from routing.availability import within_hours
from routing.models import (
    Aid,
    Availability,
    Backup,
    Decision,
    Destination,
    Mode,
    Override,
    ProgramContext,
    ProgramState,
    Queued,
)
from routing.mutual_aid import AidOffer, ask
from routing.mutual_aid import label as aid_label
from routing.programs import Trial, place, wait_deadline
from rules.call import CallFacts
from rules.evaluate import Classification, CompiledPolicy, classify_for_routing
from rules.models import Action, Program

_PHASE_MODE: dict[int, tuple[Destination, Mode, str]] = {
    1: (Destination.joint, Mode.co_response,
        "phase 1: the team is embedded with a police unit, so live calls get a joint response"),
    2: (Destination.call_team, Mode.call_with_police_standby,
        "phase 2: team-led response with an officer in the vicinity"),
    3: (Destination.call_team, Mode.call_direct,
        "phase 3: the team responds directly and requests police only as needed"),
}


class Shaping(TypedDict, total=False):
    """A program setting `route` consulted and what it did (the dry-run's `shaped_by`)."""

    setting: Literal["hours", "capacity", "phase"]
    value: str | int
    local_time: str
    within_hours: bool
    units_total: int
    units_busy: int
    effect: str
    program: str  # the program's id, in a policy of programs


def _context(program: Program, local: datetime, availability: Availability) -> ProgramContext:
    return ProgramContext(
        phase=program.phase,
        timezone=program.timezone,
        hours=f"{program.hours.start}-{program.hours.end} {','.join(program.hours.days)}",
        local_time=local.strftime("%a %H:%M"),
        within_hours=within_hours(program, local),
        units_total=availability.units_total,
        units_busy=availability.units_busy,
        units_from=availability.units_from,
    )


def route(
    call: CallFacts,
    classification: Classification,
    policy: CompiledPolicy,
    availability: Availability,
    *,
    shaped: list[Shaping] | None = None,
    state: Mapping[str, ProgramState] | None = None,
    at: datetime | None = None,
    after: str | None = None,
    may_wait: bool = True,
    refused: Sequence[str] = (),
    aid: Mapping[str, AidOffer] | None = None,
) -> Decision:
    """Decide who responds and say why, step by step. `shaped`, when given, receives
    the program settings consulted, in the order they were (hours, capacity, phase).

    `state`: each response program's units busy and queue (by program id). Give it only
    when the caller keeps queues and timers: then an eligible call may be queued or
    deferred instead of sent to police. Without it `availability` is the team's, as
    always. `at` (default: when the call came in), `after` and `may_wait` are for
    `fall_back`: the time programs are judged at, try only programs after this one,
    and whether the call may wait again. `refused`: crisis centres (transfer programs)
    that declined or returned the call: not tried again, and kept on the decision.
    `aid`: the helping agencies the policy's `mutual_aid` names, as the caller knows them
    now (routing/mutual_aid.py); asked when no program of the policy can take the call
    and it may not wait for one. Without it (a caller that knows one agency) the policy's
    mutual aid is said to be not asked."""
    program = policy.policy.program
    at = at or call.occurred_at
    # The program settings the decision records: those of the program that took (or was
    # first to refuse) the call when one was tried, else the policy's, made only then.
    ctx: ProgramContext | None = None

    def settings() -> ProgramContext:
        return ctx or _context(program, at.astimezone(policy.zone), availability)

    factors: list[str] = []

    def decide(destination: Destination, mode: Mode, basis: str, *, eligible: bool = False,
               not_served: str | None = None, holds_unit: bool | None = None,
               queued: Queued | None = None, deferred_until: datetime | None = None,
               helped: Aid | None = None) -> Decision:
        return Decision(
            destination=destination, mode=mode, category=classification.category,
            policy_version=policy.version, matched_rules=classification.matched_rules,
            explanation=explain(factors), basis=basis,  # type: ignore[arg-type]
            eligible=eligible, not_served_reason=not_served,  # type: ignore[arg-type]
            factors=list(factors), program=settings(), decided_at=at,
            needs_field_unit=(classification.needs_field_unit if holds_unit is None
                              else holds_unit),
            queued=queued, deferred_until=deferred_until, refused_programs=list(refused),
            aid=helped,
        )

    if classification.error:
        factors.append(f"Rule evaluation failed ({classification.error}); "
                       "sent to police, the safe default.")
        return decide(Destination.police, Mode.police_only, "evaluation_error")

    if classification.rule_id:
        factors.append(f"Rule '{classification.rule_id}' matched "
                       f"({classification.reason_for(classification.rule_id)}): "
                       f"category {classification.category}.")

    if classification.exclusions:
        reasons = "; ".join(f"'{e}' ({classification.reason_for(e)})"
                            for e in classification.exclusions)
        factors.append(f"Safety exclusion {reasons} wins over eligibility: police respond.")
        return decide(Destination.police, Mode.police_only, "exclusion")

    if classification.action is None:
        factors.append("No rule matched this call; sent to police, the safe default.")
        return decide(Destination.police, Mode.police_only, "no_rule")

    if classification.action is Action.police:
        factors.append("The rule sends this call to police.")
        return decide(Destination.police, Mode.police_only, "rule")

    joint = classification.action is Action.joint
    factors.append("Eligible for the CALL team" + (
        ", and the rule asks for a joint response with police." if joint else "."))
    needs_unit = classification.needs_field_unit
    named = policy.programs.named
    for p in policy.programs.programs:
        if p.id in refused and p.takes(classification.category):
            factors.append(f"Program '{p.id}' ({p.name}) is not tried again: it declined or "
                           "returned this call's transfer.")
    try:
        placed = place(call, classification.category, needs_unit, policy, availability,
                       state, at=at, after=after, may_wait=may_wait, refused=refused)
    except Exception as exc:  # a broken program setting must never drop a call
        factors.append(f"Choosing a program failed ({type(exc).__name__}: {exc}); sent to "
                       "police, the safe default.")
        return decide(Destination.police, Mode.police_only, "evaluation_error", eligible=True)
    if shaped is not None:
        trials = [*placed.tried, *([placed.taken] if placed.taken else [])]
        for t in trials[:1] if not named else trials:
            _shape(shaped, t, named)
    for t in placed.tried:
        if named:
            factors.append(f"{_cap(_label(t, named))} cannot take it now: "
                           f"{_refusal_text(t)}.")
    if placed.taken:
        t = placed.taken
        ctx = t.ctx
        destination, mode, why = _team_mode(policy, t, joint, needs_unit)
        if named:
            factors.append(f"{_cap(_label(t, named))} takes the call: "
                           f"{_taken_text(t)}.")
        elif not t.checked_hours:
            factors.append("No field unit needed: the team answers this by phone at all hours.")
        elif t.units_free is None:
            factors.append(f"Within team hours ({ctx.local_time} local); a {call.purpose} "
                           "call holds no unit.")
        else:
            factors.append(f"Within team hours ({ctx.local_time} local); "
                           f"{t.units_free} of {ctx.units_total} units free.")
        if why:
            if shaped is not None:
                shaped.append({"setting": "phase", "value": program.phase,
                               "effect": f"mode {mode.value}"})
            factors.append(f"Program {why}.")
        return decide(destination, mode, "rule", eligible=True, holds_unit=t.holds_unit)
    if placed.queued:
        t, queued = placed.queued
        ctx = t.ctx
        destination, mode, _ = _team_mode(policy, t, joint, needs_unit)
        until = wait_deadline(queued).astimezone(policy.zone)
        factors.append(f"Queued for {_label(t, named)}: position {queued.position}, "
                       f"waiting at most {_minutes(queued.wait_limit_s)} (until "
                       f"{until:%a %H:%M} local) for the next free unit; then the next "
                       "program or police.")
        return decide(destination, mode, "rule", eligible=True, holds_unit=False,
                      queued=queued)
    if placed.deferred:
        t, start = placed.deferred
        ctx = t.ctx
        destination, mode, _ = _team_mode(policy, t, joint, needs_unit)
        if start == at:
            factors.append(f"A {call.channel} intake is deferrable for {_label(t, named)}: "
                           "it waits for the next free unit, without a limit, not sent to "
                           "police.")
        else:
            factors.append(f"A {call.channel} intake is deferrable for {_label(t, named)}: "
                           f"scheduled for the start of its next shift, "
                           f"{start.astimezone(policy.zone):%a %d %b %H:%M} local, not sent "
                           "to police.")
        return decide(destination, mode, "rule", eligible=True, holds_unit=False,
                      deferred_until=start)
    reason = placed.refusal()
    first = placed.first
    if first is not None:
        ctx = first.ctx
    if policy.policy.mutual_aid:
        # The one team's refusal, said before the other agencies are asked.
        if not named and first is not None:
            factors.append(f"The team cannot take it now: {_refusal_text(first)}.")
        asked = ask(call, classification.category, needs_unit, policy.policy.mutual_aid,
                    aid or {}, at)
        factors.extend(asked.factors)
        offer = asked.offer
        if asked.taken is not None and offer is not None and offer.policy is not None:
            t = asked.taken
            ctx = t.ctx
            destination, mode, why = _team_mode(offer.policy, t, joint, needs_unit)
            factors.append(f"Mutual aid: {aid_label(offer, t)} takes the call: "
                           f"{_taken_text(t)}.")
            if why:
                factors.append(f"Its program {why}.")
            return decide(destination, mode, "rule", eligible=True, holds_unit=t.holds_unit,
                          helped=Aid(agency=offer.agency, program=t.program.id))
        factors.append("No program, nor mutual aid, can take it now: eligible but not "
                       "served, police respond.")
    elif not named and first is not None and reason == "off_hours":
        factors.append(f"Outside team hours ({first.ctx.hours}, {program.timezone}; "
                       f"call at {first.ctx.local_time} local): eligible but not served, "
                       "police respond.")
    elif not named and reason == "units_busy":
        factors.append(f"All {settings().units_total} team units are busy: eligible but "
                       "not served, police respond.")
    elif first is None and after is not None:
        factors.append(f"No program after '{after}' can take it: eligible but not served, "
                       "police respond.")
    elif first is None:
        factors.append(f"No program takes category {classification.category}: police "
                       "respond.")
    else:
        factors.append("No program can take it now: eligible but not served, police respond.")
    return decide(Destination.police, Mode.police_only, "rule", eligible=True,
                  not_served=reason)


def _label(t: Trial, named: bool) -> str:
    """How the explanation names a program: by id and name, or (one team) as it did."""
    return f"program '{t.program.id}' ({t.program.name})" if named else "the team"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _refusal_text(t: Trial) -> str:
    if t.reason == "outside_area":
        return "the call is outside its service area"
    if t.reason == "off_hours":
        return f"outside its hours ({t.ctx.hours}; call at {t.ctx.local_time} local)"
    return f"all {t.ctx.units_total} of its {_units_word(t)} are busy"


def _units_word(t: Trial) -> str:
    return "counsellors" if t.program.mode == "transfer" else "units"


def _taken_text(t: Trial) -> str:
    hours = (f"within its hours ({t.ctx.local_time} local)" if t.checked_hours
             else "work by phone at all hours")
    units = (f"; {t.units_free} of {t.ctx.units_total} {_units_word(t)} free"
             if t.units_free
             else "" if t.holds_unit or t.program.mode == "phone" else "; it holds no unit")
    return hours + units


def _minutes(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _team_mode(policy: CompiledPolicy, t: Trial, joint: bool, needs_unit: bool
               ) -> tuple[Destination, Mode, str]:
    """Who goes for a program that takes the call, and the phase's reason if it decided."""
    if t.program.mode == "transfer":  # a crisis centre: the call is transferred to it
        return Destination.crisis_center, Mode.transfer, ""
    if t.program.mode == "phone" or not needs_unit:  # phone work: the team alone
        return Destination.call_team, Mode.call_direct, ""
    if t.program.mode == "co_response" or joint:
        return Destination.joint, Mode.co_response, ""
    return _PHASE_MODE[policy.policy.program.phase]


def _shape(shaped: list[Shaping], t: Trial, named: bool) -> None:
    """The dry-run's account of a program's hours and capacity (the one team's as it
    always was; in a policy of programs, each program tried, named by `program`; one
    the call is outside of consulted neither)."""
    if not t.checked_hours or t.reason == "outside_area":
        return
    ctx = t.ctx
    hours: Shaping = {"setting": "hours", "value": ctx.hours, "local_time": ctx.local_time,
                      "within_hours": ctx.within_hours,
                      "effect": ("allowed" if ctx.within_hours
                                 else "police respond (off hours)")}
    capacity: Shaping = {"setting": "capacity", "units_total": ctx.units_total,
                         "units_busy": ctx.units_busy,
                         "effect": ("allowed" if t.reason != "units_busy"
                                    else "police respond (units busy)")}
    for entry in (hours, capacity) if ctx.within_hours else (hours,):
        if named:
            entry["program"] = t.program.id
        shaped.append(entry)


def decide_call(call: CallFacts, policy: CompiledPolicy, availability: Availability, *,
                state: Mapping[str, ProgramState] | None = None,
                may_wait: bool = True, refused: Sequence[str] = (),
                at: datetime | None = None,
                aid: Mapping[str, AidOffer] | None = None,
                classification: Classification | None = None) -> Decision:
    """Classify then route; a failure in the rules still yields a police decision.
    `state`: the programs' state, given by a caller that keeps queues (see `route`), or
    (`may_wait` False) by one that counts each program's units but keeps no queue yet.
    `refused`, `at` and `aid`: see `route`. `classification`: this call's, as
    `classify_call` gave it (a caller deciding many calls alike in what the rules read
    makes it once)."""
    return route(call, classification or classify_call(call, policy), policy, availability,
                 state=state, may_wait=may_wait, refused=refused, at=at, aid=aid)


def classify_call(call: CallFacts, policy: CompiledPolicy) -> Classification:
    """What the rules say of a call, as `route` needs it; a rule that fails is said so
    (`error`), never raised: the call still gets a decision."""
    try:
        return classify_for_routing(call, policy)
    except Exception as exc:  # a broken rule must never drop a call
        return Classification(category=None, action=None, rule_id=None,
                              error=f"{type(exc).__name__}: {exc}")


def redecide(facts: CallFacts, policy: CompiledPolicy, availability: Availability,
             previous: Decision | None, *, closed: bool,
             state: Mapping[str, ProgramState] | None = None,
             now: datetime | None = None, may_wait: bool = True,
             aid: Mapping[str, AidOffer] | None = None) -> Decision:
    """A call's decision after a CAD event changed it (`previous`: its decision so far).

    A closed call keeps its decision. Otherwise the call is decided afresh, and a
    dispatcher's override and the team's backup request carried over onto the new
    decision, unless a safety exclusion now applies: then police respond, as for any call.
    With `state` (the programs' state, this call left out of it) a queued call that may
    still wait keeps its place and the time it began waiting; one that may no longer (an
    update made it urgent) falls back at `now` (default: its previous decision's time).
    `may_wait` False: the call is neither queued nor deferred (a caller without timers).
    A call another agency's program took (mutual aid, `aid`: see `route`) keeps that
    program while it stays a call for the team: its unit is on the way.
    """
    if closed and previous is not None:
        return previous
    decision = decide_call(facts, policy, availability, state=state, may_wait=may_wait,
                           refused=previous.refused_programs if previous else (), aid=aid)
    if previous is None or decision.basis == "exclusion":
        return decision
    if previous.aid is not None and decision.aid != previous.aid \
            and decision.destination is not Destination.police:
        return previous  # with its override and backup, if any, as they were
    if previous.queued is not None and state is not None:
        if decision.queued is not None and decision.program.id == previous.program.id:
            decision = decision.model_copy(update={"queued": previous.queued})
        elif decision.eligible and decision.destination is Destination.police \
                and decision.not_served_reason == "units_busy":
            decision = fall_back(facts, policy, previous, now or previous.decided_at,
                                 "urgent", availability=availability, state=state, aid=aid)
    if previous.override:
        decision = apply_override(decision, destination=previous.destination,
                                  by=previous.override.by, reason=previous.override.reason,
                                  at=previous.override.at)
    if previous.backup:
        decision = apply_backup(decision, by=previous.backup.by,
                                reason=previous.backup.reason, at=previous.backup.at)
    return decision


def fall_back(call: CallFacts, policy: CompiledPolicy, decision: Decision, now: datetime,
              reason: Literal["wait_limit", "urgent"], *,
              availability: Availability | None = None,
              state: Mapping[str, ProgramState] | None = None,
              aid: Mapping[str, AidOffer] | None = None,
              classification: Classification | None = None) -> Decision:
    """A queued call that may wait no longer, at `now`: its wait limit passed, or an
    update made it urgent. The programs after the one it waited for are tried at `now`
    (one with a free unit takes it; none keeps it waiting again), else police respond
    with `wait_exceeded`; mutual aid (`aid`, see `route`) is asked before police. A call
    no longer eligible is simply decided afresh. `classification`: see `decide_call`."""
    classification = classification or classify_call(call, policy)
    fresh = decide_call(call, policy, availability or Availability(units_total=0,
                                                                   units_busy=0),
                        state=state, refused=decision.refused_programs, aid=aid,
                        classification=classification)
    if not fresh.eligible or decision.queued is None:
        return fresh
    q = decision.queued
    waited = f"{_minutes(max(int((now - q.since).total_seconds()), 0))}"
    why = (f"its wait limit ({_minutes(q.wait_limit_s)}) passed" if reason == "wait_limit"
           else "an update made it urgent: it may not wait")
    step = (f"Queued for program '{decision.program.id}' since "
            f"{q.since.astimezone(policy.zone):%a %H:%M} local ({waited}); {why}.")
    after = route(call, classification, policy, availability or Availability(
        units_total=0, units_busy=0), state=state or {}, at=now,
        after=decision.program.id, may_wait=False, refused=decision.refused_programs, aid=aid)
    factors = [*after.factors]
    factors.insert(_eligible_step(factors), step)
    update: dict[str, object] = {"factors": factors, "explanation": explain(factors)}
    if after.destination is Destination.police and after.basis == "rule":
        update["not_served_reason"] = "wait_exceeded"
        if after.program.id is None:  # no later program takes the category
            update["program"] = decision.program
    return after.model_copy(update=update)


def after_transfer(call: CallFacts, policy: CompiledPolicy, availability: Availability,
                   previous: Decision, *, program_id: str, outcome: Literal["declined",
                                                                            "returned"],
                   by: str, reason: str, at: datetime,
                   state: Mapping[str, ProgramState] | None = None) -> Decision:
    """The crisis centre (`program_id`) the call was transferred to declined or returned
    it at `at`: the call is decided again at that time, that centre not tried again
    (typically the field team takes it, else police), with who and why in the
    explanation. A call no program can take goes to police, as always."""
    refused = [*previous.refused_programs,
               *([program_id] if program_id not in previous.refused_programs else [])]
    decision = route(call, classify_call(call, policy), policy, availability, state=state,
                     at=at, refused=refused)
    step = (f"Transferred to program '{program_id}' at "
            f"{previous.decided_at.astimezone(policy.zone):%a %H:%M} local; {outcome} by "
            f"{by} at {at.astimezone(policy.zone):%a %H:%M}: {reason}.")
    factors = [*decision.factors]
    factors.insert(_eligible_step(factors), step)
    return decision.model_copy(update={"factors": factors, "explanation": explain(factors)})


def take_waiting(policy: CompiledPolicy, decision: Decision, now: datetime, *,
                 units_busy: int | None = None) -> Decision:
    """A unit of the program a queued or deferred call waits for takes it at `now` (the
    caller chose it with routing.queue.offer_order). The call keeps its destination and
    mode and now holds the unit; the wait is said in the explanation."""
    if decision.program.id is None or (decision.queued is None
                                       and decision.deferred_until is None):
        raise ValueError("the decision is neither queued nor deferred for a program")
    zone = policy.zone
    if decision.queued is not None:
        q = decision.queued
        waited = _minutes(max(int((now - q.since).total_seconds()), 0))
        step = (f"Queued for program '{decision.program.id}' since "
                f"{q.since.astimezone(zone):%a %H:%M} local ({waited}); a unit came free at "
                f"{now.astimezone(zone):%a %H:%M} and takes it.")
    else:
        assert decision.deferred_until is not None
        step = (f"Scheduled for program '{decision.program.id}''s shift from "
                f"{decision.deferred_until.astimezone(zone):%a %d %b %H:%M} local; a unit "
                f"takes it at {now.astimezone(zone):%a %H:%M}.")
    factors = [*decision.factors, step]
    program = decision.program
    if units_busy is not None:
        program = program.model_copy(update={"units_busy": units_busy})
    # A phone program's call is answered by phone: it holds no field unit, waiting or not.
    i = policy.programs.position(program.id)
    phone = i is not None and policy.programs.programs[i].mode == "phone"
    return decision.model_copy(update={
        "queued": None, "deferred_until": None, "needs_field_unit": not phone,
        "decided_at": now, "factors": factors, "explanation": explain(factors),
        "program": program})


def _eligible_step(factors: list[str]) -> int:
    """Where a fall-back's step goes: after 'Eligible for the CALL team…'."""
    for i, f in enumerate(factors):
        if f.startswith("Eligible for the CALL team"):
            return i + 1
    return len(factors)


def apply_override(decision: Decision, *, destination: Destination, by: str, reason: str,
                   at: datetime) -> Decision:
    """A dispatcher's override: the recommendation stays on record beside the choice."""
    mode = {
        # Not a dispatcher's choice (a transfer is a record the crisis centre works);
        # the route refuses it: kept here so the mapping covers every destination.
        Destination.crisis_center: Mode.transfer,
        Destination.police: Mode.police_only,
        Destination.joint: Mode.co_response,
        Destination.call_team: (decision.mode if decision.destination is Destination.call_team
                                else Mode.call_with_police_standby),
    }[destination]
    step = (f"Dispatcher {by} overrode the recommendation ({decision.destination.value}) "
            f"to {destination.value}: {reason}")
    factors = [*decision.factors, step]
    not_served = decision.not_served_reason
    if decision.eligible and destination is Destination.police:
        not_served = "override"
    elif destination is not Destination.police:
        not_served = None
    return decision.model_copy(update={
        "destination": destination, "mode": mode, "factors": factors,
        "explanation": explain(factors), "not_served_reason": not_served,
        "override": Override(by=by, reason=reason, from_destination=decision.destination,
                             from_mode=decision.mode, at=at),
    })


def backup_step(backup: Backup, *, withhold_reason: bool = False) -> str:
    """The explanation's step for a backup request, told from the structured `backup`.
    The reason is the team's note, protected text on some calls: with `withhold_reason`
    the step says it was withheld instead (service/calls/visibility.py decides when)."""
    who = f"team member {backup.by}" if backup.by else "the team"
    if not backup.reason:
        why = " (no reason given)"
    elif withhold_reason:
        why = " (reason withheld)"
    else:
        why = f": {backup.reason}"
    return (f"At {backup.at.isoformat(timespec='seconds')} {who} on scene requested police "
            f"backup{why}. The call is now a joint response (was "
            f"{backup.from_destination.value}, {backup.from_mode.value}).")


def apply_backup(decision: Decision, *, by: str | None, reason: str | None,
                 at: datetime) -> Decision:
    """The team on scene requested police backup: a joint response from now on, the
    earlier decision kept in the explanation. Applying it twice changes nothing."""
    if decision.backup is not None:
        return decision
    backup = Backup(by=by, reason=reason, from_destination=decision.destination,
                    from_mode=decision.mode, at=at)
    factors = [*decision.factors, backup_step(backup)]
    return decision.model_copy(update={
        "destination": Destination.joint, "mode": Mode.co_response, "factors": factors,
        "explanation": explain(factors), "not_served_reason": None, "backup": backup,
    })


def explain(factors: list[str]) -> str:
    """The explanation is its factors in order: a view that withholds part of one factor
    rebuilds it from them."""
    return " ".join(factors)
