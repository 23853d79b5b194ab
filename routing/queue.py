"""The order queued calls are offered in when a unit clears, and which have waited too
long. Pure: the service keeps the queue (which calls wait, for which program) and asks.

A unit that clears is offered the most urgent call first (the lowest priority number; a
call without a priority after every call with one), the oldest among equals; a call
past its wait limit is not offered, it falls back (routing.decide.fall_back).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field

from routing.models import Decision


class Waiting(BaseModel):
    """A queued call as the queue sees it."""

    call_id: str
    program_id: str
    priority: int | None = None
    since: AwareDatetime
    wait_limit_s: int = Field(ge=0)

    @property
    def deadline(self) -> datetime:
        return self.since + timedelta(seconds=self.wait_limit_s)

    @classmethod
    def of(cls, call_id: str, priority: int | None, decision: Decision) -> Waiting:
        """The queue entry of a queued decision."""
        if decision.queued is None or decision.program.id is None:
            raise ValueError("the decision is not queued for a program")
        return cls(call_id=call_id, program_id=decision.program.id, priority=priority,
                   since=decision.queued.since, wait_limit_s=decision.queued.wait_limit_s)


def _urgency(w: Waiting) -> tuple[bool, int, datetime, str]:
    return (w.priority is None, w.priority or 0, w.since, w.call_id)


def offer_order(waiting: Iterable[Waiting], program_id: str, now: datetime) -> list[Waiting]:
    """The program's queued calls still within their wait, in the order to offer them."""
    return sorted((w for w in waiting if w.program_id == program_id and now < w.deadline),
                  key=_urgency)


def next_to_offer(waiting: Iterable[Waiting], program_id: str, now: datetime
                  ) -> Waiting | None:
    """The call a unit of `program_id` that clears at `now` is offered first."""
    order = offer_order(waiting, program_id, now)
    return order[0] if order else None


def overdue(waiting: Iterable[Waiting], now: datetime) -> list[Waiting]:
    """The calls whose wait limit has passed at `now`, the longest overdue first: each
    is to fall back (routing.decide.fall_back with reason 'wait_limit')."""
    return sorted((w for w in waiting if w.deadline <= now),
                  key=lambda w: (w.deadline, w.call_id))


def positions(waiting: Iterable[Waiting], now: datetime) -> dict[str, int]:
    """Each waiting call's place in its program's queue (1 is offered next)."""
    by_program: dict[str, list[Waiting]] = {}
    for w in waiting:
        by_program.setdefault(w.program_id, []).append(w)
    return {w.call_id: n for pid, ws in by_program.items()
            for n, w in enumerate(offer_order(ws, pid, now), start=1)}
