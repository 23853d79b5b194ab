"""The order waiting calls are offered in when a unit is free, and which have waited too
long. Pure: the service (and the simulation) keeps the waiting calls and asks.

Two kinds of call wait for a program: a queued one (every unit was busy; it falls back
when its wait limit passes) and a deferred one (an intake scheduled for the program's
next shift; it waits from `deferred_until` for as long as it takes, never sent to police
for hours or capacity). A free unit is offered the most urgent call first (the lowest
priority number; a call without a priority after every call with one), the oldest among
equals (a deferred call counts from its shift's start, so it is the day's first work); a
queued call past its wait limit is not offered, it falls back (routing.decide.fall_back),
and a deferred call is not offered before its time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field

from routing.models import Decision


class Waiting(BaseModel):
    """A waiting call as the queue sees it: queued (`wait_limit_s` set) or deferred
    (`wait_limit_s` None; `since` is the start of the shift it was scheduled for)."""

    call_id: str
    program_id: str
    priority: int | None = None
    since: AwareDatetime
    wait_limit_s: int | None = Field(default=None, ge=0)

    @property
    def deferred(self) -> bool:
        return self.wait_limit_s is None

    @property
    def deadline(self) -> datetime | None:
        """When it falls back; None: never (a deferred call)."""
        if self.wait_limit_s is None:
            return None
        return self.since + timedelta(seconds=self.wait_limit_s)

    def offerable(self, now: datetime) -> bool:
        """A free unit may take it at `now`: within its wait, or its shift has begun."""
        deadline = self.deadline
        return now < deadline if deadline is not None else self.since <= now

    @classmethod
    def of(cls, call_id: str, priority: int | None, decision: Decision) -> Waiting:
        """The entry of a queued or deferred decision."""
        if decision.program.id is None:
            raise ValueError("the decision names no program")
        if decision.queued is not None:
            return cls(call_id=call_id, program_id=decision.program.id, priority=priority,
                       since=decision.queued.since,
                       wait_limit_s=decision.queued.wait_limit_s)
        if decision.deferred_until is not None:
            return cls(call_id=call_id, program_id=decision.program.id, priority=priority,
                       since=decision.deferred_until)
        raise ValueError("the decision is neither queued nor deferred")


def _urgency(w: Waiting) -> tuple[bool, int, datetime, str]:
    return (w.priority is None, w.priority or 0, w.since, w.call_id)


def offer_order(waiting: Iterable[Waiting], program_id: str, now: datetime) -> list[Waiting]:
    """The program's calls a free unit may take at `now`, in the order to offer them."""
    return sorted((w for w in waiting if w.program_id == program_id and w.offerable(now)),
                  key=_urgency)


def next_to_offer(waiting: Iterable[Waiting], program_id: str, now: datetime
                  ) -> Waiting | None:
    """The call a unit of `program_id` that clears at `now` is offered first."""
    order = offer_order(waiting, program_id, now)
    return order[0] if order else None


def overdue(waiting: Iterable[Waiting], now: datetime) -> list[Waiting]:
    """The queued calls whose wait limit has passed at `now`, the longest overdue first:
    each is to fall back (routing.decide.fall_back with reason 'wait_limit')."""
    due = [(d, w) for w in waiting if (d := w.deadline) is not None and d <= now]
    return [w for _, w in sorted(due, key=lambda dw: (dw[0], dw[1].call_id))]


def positions(waiting: Iterable[Waiting], now: datetime) -> dict[str, int]:
    """Each waiting call's place in its program's queue (1 is offered next); a deferred
    call before its shift has none yet."""
    by_program: dict[str, list[Waiting]] = {}
    for w in waiting:
        by_program.setdefault(w.program_id, []).append(w)
    return {w.call_id: n for pid, ws in by_program.items()
            for n, w in enumerate(offer_order(ws, pid, now), start=1)}
