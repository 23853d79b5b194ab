"""Who responds to a call, and why: every routing decision is made here. Pure.

`route` turns a classification, the program settings and the team's availability into
a `Decision`; `decide_call` classifies then routes; `redecide` decides a call again when
a CAD event changes it, keeping what a close, an override or a backup request settled;
`apply_override` and `apply_backup` are those two changes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

from routing.availability import within_hours
from routing.models import (
    Availability,
    Backup,
    Decision,
    Destination,
    Mode,
    Override,
    ProgramContext,
)
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


def _context(program: Program, local: datetime, availability: Availability) -> ProgramContext:
    return ProgramContext(
        phase=program.phase,
        timezone=program.timezone,
        hours=f"{program.hours.start}-{program.hours.end} {','.join(program.hours.days)}",
        local_time=local.strftime("%a %H:%M"),
        within_hours=within_hours(program, local),
        units_total=availability.units_total,
        units_busy=availability.units_busy,
    )


def route(
    call: CallFacts,
    classification: Classification,
    policy: CompiledPolicy,
    availability: Availability,
    *,
    shaped: list[Shaping] | None = None,
) -> Decision:
    """Decide who responds and say why, step by step. `shaped`, when given, receives
    the program settings consulted, in the order they were (hours, capacity, phase)."""
    program = policy.policy.program
    local = call.occurred_at.astimezone(policy.zone)
    ctx = _context(program, local, availability)
    factors: list[str] = []

    def decide(destination: Destination, mode: Mode, basis: str, *, eligible: bool = False,
               not_served: str | None = None) -> Decision:
        return Decision(
            destination=destination, mode=mode, category=classification.category,
            policy_version=policy.version, matched_rules=classification.matched_rules,
            explanation=explain(factors), basis=basis,  # type: ignore[arg-type]
            eligible=eligible, not_served_reason=not_served,  # type: ignore[arg-type]
            factors=list(factors), program=ctx, decided_at=call.occurred_at,
            needs_field_unit=classification.needs_field_unit,
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
    if classification.needs_field_unit:
        if shaped is not None:
            shaped.append({"setting": "hours", "value": ctx.hours, "local_time": ctx.local_time,
                           "within_hours": ctx.within_hours,
                           "effect": ("allowed" if ctx.within_hours
                                      else "police respond (off hours)")})
        if not ctx.within_hours:
            factors.append(f"Outside team hours ({ctx.hours}, {program.timezone}; "
                           f"call at {ctx.local_time} local): eligible but not served, "
                           "police respond.")
            return decide(Destination.police, Mode.police_only, "rule", eligible=True,
                          not_served="off_hours")
        if shaped is not None:
            shaped.append({"setting": "capacity", "units_total": ctx.units_total,
                           "units_busy": ctx.units_busy,
                           "effect": ("allowed" if availability.units_free > 0
                                      else "police respond (units busy)")})
        if availability.units_free <= 0:
            factors.append(f"All {availability.units_total} team units are busy: eligible but "
                           "not served, police respond.")
            return decide(Destination.police, Mode.police_only, "rule", eligible=True,
                          not_served="units_busy")
        factors.append(f"Within team hours ({ctx.local_time} local); "
                       f"{availability.units_free} of {availability.units_total} units free.")
    else:
        factors.append("No field unit needed: the team answers this by phone at all hours.")
        return decide(Destination.call_team, Mode.call_direct, "rule", eligible=True)
    if joint:
        return decide(Destination.joint, Mode.co_response, "rule", eligible=True)
    destination, mode, why = _PHASE_MODE[program.phase]
    if shaped is not None:
        shaped.append({"setting": "phase", "value": program.phase,
                       "effect": f"mode {mode.value}"})
    factors.append(f"Program {why}.")
    return decide(destination, mode, "rule", eligible=True)


def decide_call(call: CallFacts, policy: CompiledPolicy, availability: Availability) -> Decision:
    """Classify then route; a failure in the rules still yields a police decision."""
    try:
        classification = classify_for_routing(call, policy)
    except Exception as exc:  # a broken rule must never drop a call
        classification = Classification(category=None, action=None, rule_id=None,
                                        error=f"{type(exc).__name__}: {exc}")
    return route(call, classification, policy, availability)


def redecide(facts: CallFacts, policy: CompiledPolicy, availability: Availability,
             previous: Decision | None, *, closed: bool) -> Decision:
    """A call's decision after a CAD event changed it (`previous`: its decision so far).

    A closed call keeps its decision. Otherwise the call is decided afresh, and a
    dispatcher's override and the team's backup request carried over onto the new
    decision, unless a safety exclusion now applies: then police respond, as for any call.
    """
    if closed and previous is not None:
        return previous
    decision = decide_call(facts, policy, availability)
    if previous is None or decision.basis == "exclusion":
        return decision
    if previous.override:
        decision = apply_override(decision, destination=previous.destination,
                                  by=previous.override.by, reason=previous.override.reason,
                                  at=previous.override.at)
    if previous.backup:
        decision = apply_backup(decision, by=previous.backup.by,
                                reason=previous.backup.reason, at=previous.backup.at)
    return decision


def apply_override(decision: Decision, *, destination: Destination, by: str, reason: str,
                   at: datetime) -> Decision:
    """A dispatcher's override: the recommendation stays on record beside the choice."""
    mode = {
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
