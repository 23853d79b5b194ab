"""Mutual aid: another agency's program asked to take a call its own agency's programs
cannot take now, before police respond (issue 17; docs/agencies.md). Pure.

The policy names the programs it may ask (`mutual_aid:`, in order); the caller gives what
it knows of each helping agency now (`AidOffer`: its policy in force and its programs'
units busy). A program is judged as its own agency judges it (its hours in its time zone,
its units, its roster) but not by its service area, and nothing waits for it: a call it
cannot take now goes on to the next entry, then to police.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from routing.models import Availability, ProgramState
from routing.programs import Trial, place
from rules.call import CallFacts
from rules.evaluate import CompiledPolicy
from rules.models import MutualAid

_NONE = Availability(units_total=0, units_busy=0)


@dataclass(frozen=True)
class AidOffer:
    """A helping agency as the caller knows it now: its name, its policy in force (None:
    it has none) and its programs' state, by program id (a program absent: none busy)."""

    agency: str
    name: str
    policy: CompiledPolicy | None
    state: Mapping[str, ProgramState] = field(default_factory=dict)


@dataclass
class Asked:
    """What asking for mutual aid found: the program that takes the call (with its
    agency) or none, and a step of the explanation for each program that could not."""

    taken: Trial | None = None
    offer: AidOffer | None = None
    factors: list[str] = field(default_factory=list)


def label(offer: AidOffer, trial: Trial) -> str:
    p = trial.program
    return f"agency '{offer.agency}' ({offer.name})'s program '{p.id}' ({p.name})"


def ask(call: CallFacts, category: str | None, needs_unit: bool,
        entries: Sequence[MutualAid], offers: Mapping[str, AidOffer], at: datetime) -> Asked:
    """Ask the policy's mutual-aid programs in order for an eligible call at `at`."""
    out = Asked()
    for entry in entries:
        if entry.categories is not None and category not in entry.categories:
            continue
        offer = offers.get(entry.agency)
        if offer is None or offer.policy is None:
            out.factors.append(f"Mutual aid: agency '{entry.agency}' has no policy in force "
                               "here; not asked.")
            continue
        i = offer.policy.programs.position(entry.program)
        if i is None:
            out.factors.append(f"Mutual aid: agency '{entry.agency}' ({offer.name}) has no "
                               f"program '{entry.program}' in force; not asked.")
            continue
        program = offer.policy.programs.programs[i]
        if program.mode == "transfer":
            out.factors.append(f"Mutual aid: program '{program.id}' of agency "
                               f"'{entry.agency}' is a crisis centre; not asked.")
            continue
        if not program.takes(category):
            out.factors.append(f"Mutual aid: agency '{entry.agency}' ({offer.name})'s "
                               f"program '{program.id}' does not take category {category}.")
            continue
        placed = place(call, category, needs_unit, offer.policy, _NONE, offer.state, at=at,
                       may_wait=False, only=program.id, anywhere=True)
        if placed.taken is not None:
            out.taken, out.offer = placed.taken, offer
            return out
        for t in placed.tried:
            out.factors.append(f"Mutual aid: {label(offer, t)} cannot take it now: "
                               f"{refusal_text(t)}.")
    return out


def refusal_text(t: Trial) -> str:
    if t.reason == "off_hours":
        return (f"outside its hours ({t.ctx.hours}, {t.ctx.timezone}; call at "
                f"{t.ctx.local_time} its local time)")
    return f"all {t.ctx.units_total} of its units are busy"
