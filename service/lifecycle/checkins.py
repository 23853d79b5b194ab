"""Safety check-ins of a unit on scene, and the sweeper that watches them (and follow-ups).

Going on scene sets `checkin_due_at` (ChangeStatus, service/lifecycle/ingest.py); a team member's
"all is well" (`CheckIn`) moves it on and forgets earlier misses; clearing stops it. The
sweeper submits `SweepDue` to the writer every `field_sweep_seconds`: each overdue call gets
`checkins_missed + 1`, its next due time, and a board message, `checkin_missed` on the first
miss (alert the board and the dispatcher) and `checkin_escalated` on the second and later
(escalate: supervisor and dispatcher, priority). Because it is a writer command, it runs
under the writer's advisory lock and re-reads the due time inside it: several instances on
one PostgreSQL never alert twice for one miss.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from rules.evaluate import CompiledPolicy
from service.errors import Conflict
from service.lifecycle.care import raise_overdue
from service.lifecycle.crisis_plans import forget_expired
from service.lifecycle.followups import announce_due
from service.lifecycle.ingest import call_summary
from service.lifecycle.waiting import settle
from service.store.stopping import StepGuard, Stopping
from service.store.tables import CALL, as_utc, utcnow
from service.units.commands import forget_positions
from service.writing.batch import Batch, Keys

log = logging.getLogger("liaison.checkins")

CHECKING_IN = ("on_scene", "backup_requested")  # the statuses a unit checks in from
ESCALATE_TO = ["supervisor", "dispatcher"]


class CheckInRequest(BaseModel):
    note: str | None = Field(default=None, max_length=2000, description="optional")
    by: str | None = Field(default=None, max_length=120)


@dataclass
class CheckIn:
    """A team member on scene says all is well: the next check-in is an interval away."""

    call_id: str
    request: CheckInRequest
    interval: float

    def keys(self) -> Keys:
        return Keys(call_ids=[self.call_id])

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        call = await ctx.existing_call(self.call_id)
        status = call["team_status"] or "queued"
        if status not in CHECKING_IN or call["closed_at"] is not None:
            raise Conflict(f"a unit checks in while on scene; the call is {status}",
                           current=status, allowed=list(CHECKING_IN))
        now = utcnow()
        missed = call["checkins_missed"] or 0
        due = now + timedelta(seconds=self.interval) if self.interval > 0 else None
        call.update({"checkin_due_at": due, "checkins_missed": 0, "updated_at": now})
        ctx.save_call(call)
        ctx.board(self.call_id, "checkin", {
            "type": "checkin", "call_id": self.call_id, "at": now.isoformat(),
            "by": self.request.by, "note": self.request.note, "unit": call["unit"],
            "missed_before": missed, "next_due_at": due.isoformat() if due else None,
            "call": call_summary(call)})
        return {"call_id": self.call_id, "checked_in_at": now.isoformat(),
                "checkin_due_at": due.isoformat() if due else None, "checkins_missed": 0,
                "missed_before": missed}


@dataclass
class SweepDue:
    """Overdue check-ins, newly due follow-ups, the queue's timers (wait limits, shift
    starts: service/lifecycle/waiting.py), unit positions past their retention and
    expired crisis plans and cautions, in one writer transaction."""

    interval: float
    now: datetime | None = None
    # The policy in force (or each agency's, issue 17): each one's queue is settled.
    policy: CompiledPolicy | Sequence[CompiledPolicy] | None = None
    care_confirm_hours: float = 48.0  # a care handoff not connected by then: a follow-up

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> dict[str, int]:
        now = self.now or utcnow()
        c = CALL.c
        ids = (await ctx.conn.execute(
            select(c.id).where(c.checkin_due_at <= now, c.closed_at.is_(None),
                               c.team_status.in_(CHECKING_IN))
            .order_by(c.checkin_due_at).limit(500))).scalars().all()
        missed = escalated = 0
        for call_id in ids:
            call = await ctx.call_by_id(call_id)
            # Again on what this batch holds: a check-in or a clear earlier in it wins.
            if (call is None or call["checkin_due_at"] is None
                    or as_utc(call["checkin_due_at"]) > now or call["closed_at"] is not None
                    or call["team_status"] not in CHECKING_IN):
                continue
            was_due = as_utc(call["checkin_due_at"])
            n = (call["checkins_missed"] or 0) + 1
            # With check-ins turned off meanwhile, ask again in a minute: someone must answer.
            due = now + timedelta(seconds=self.interval if self.interval > 0 else 60)
            call.update({"checkin_due_at": due, "checkins_missed": n, "updated_at": now})
            ctx.save_call(call)
            kind = "checkin_missed" if n == 1 else "checkin_escalated"
            body: dict[str, Any] = {
                "type": kind, "call_id": call_id, "at": now.isoformat(),
                "level": "alert" if n == 1 else "escalation", "missed": n,
                "due_at": was_due.isoformat(), "next_due_at": due.isoformat(),
                "unit": call["unit"], "team_status": call["team_status"],
                "call": call_summary(call)}
            if n > 1:
                body["escalate_to"] = ESCALATE_TO
                escalated += 1
            else:
                missed += 1
            ctx.board(call_id, kind, body)
        care_overdue = await raise_overdue(ctx, now, self.care_confirm_hours)
        due_follow_ups = await announce_due(ctx, now)
        # Unit positions older than the retention a supervisor set (service/units/).
        positions = await forget_positions(ctx, now)
        plans = await forget_expired(ctx, now)  # crisis plans and cautions past expiry
        settled = 0
        policies = ([self.policy] if isinstance(self.policy, CompiledPolicy)
                    else list(self.policy or ()))
        for policy in policies:
            if policy.programs.named:
                # On the queue's clock (CAD time), not `now`: a replay's calls do not fall
                # back before their time.
                settled += await settle(ctx, policy, await ctx.queue_clock())
        return {"checkins_missed": missed, "checkins_escalated": escalated,
                "follow_ups_due": due_follow_ups, "queue_settled": settled,
                "positions_deleted": positions, "care_overdue": care_overdue,
                "plans_deleted": plans}


class FieldSweeper:
    """Submits SweepDue every `every` seconds; stops between sweeps, never inside one."""

    def __init__(self, writer: Any, *, every: float, checkin_interval: float,
                 policy: Callable[[], CompiledPolicy | Sequence[CompiledPolicy]] | None
                 = None,
                 care_confirm_hours: float = 48.0) -> None:
        self.writer = writer
        self.care_confirm_hours = care_confirm_hours
        self.policy = policy  # the policy in force at each sweep
        self.every = every
        self.checkin_interval = checkin_interval
        self._guard = StepGuard("field sweeper")
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liaison-field-sweeper")

    async def stop(self) -> None:
        await self._guard.stop(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                async with self._guard.step():
                    await self.writer.submit(SweepDue(
                        interval=self.checkin_interval,
                        policy=self.policy() if self.policy else None,
                        care_confirm_hours=self.care_confirm_hours))
                self.last_error = None
            except Stopping:
                return
            except Exception as exc:  # noqa: BLE001 - keep sweeping; say what went wrong
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("field sweep failed: %s", self.last_error)
