"""Where the roster meets a call's life: capacity from the units on duty, a unit that
signs on taking the queue's waiting calls, and the board told when a call moves a unit.

A program that keeps a roster (any unit not retired) has as many units as are on duty;
one that keeps none has its policy's `units` (routing.models.ProgramState.units_on_duty,
docs/units.md). A one-team policy's units are the program `team`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routing.models import Availability
from rules.evaluate import CompiledPolicy
from service.calls.records import CallRow
from service.lifecycle.waiting import offer, settle
from service.units.commands import PutUnit, SetDuty, announce, roster_counts
from service.units.models import ONE_TEAM, Unit
from service.writing.batch import Batch, Keys


async def one_team_availability(ctx: Batch, policy: CompiledPolicy, policy_units: int,
                                busy: int) -> Availability:
    """The one team's capacity (a one-team policy): its roster's units on duty, if it
    keeps one, else the policy's count. A policy of programs: the policy's (each
    program's own count is in its ProgramState)."""
    if not policy.programs.named:
        roster = await roster_counts(ctx, policy.agency)
        if ONE_TEAM in roster:
            return Availability(units_total=roster[ONE_TEAM], units_busy=busy,
                                units_from="roster")
    return Availability(units_total=policy_units, units_busy=busy)


async def units_touched(ctx: Batch, before: CallRow | None, after: CallRow) -> None:
    """A call's team status or unit changed: tell the board how the units it named (before
    and after) stand now, when they are on the roster."""
    names = {c.get("unit") for c in (before, after) if c is not None}
    await announce(ctx, [n for n in names if n])


@dataclass
class DutyThenQueue:
    """A roster or duty change, then the queue: a unit that came on duty is capacity
    freed, so its program's waiting calls are offered as when a unit clears
    (service/lifecycle/waiting.py `offer`, cause `unit_free`), as many as it now has
    room for."""

    command: PutUnit | SetDuty
    policy: CompiledPolicy | None

    def keys(self) -> Keys:
        return self.command.keys()

    async def apply(self, ctx: Batch) -> Any:
        queue = self.policy if self.policy and self.policy.programs.named else None
        at = await ctx.queue_clock() if queue else None
        if queue and at:  # what happened before now happened with the units of then
            await settle(ctx, queue, at)
        result = await self.command.apply(ctx)
        unit: Unit = result[0]
        if queue and at and unit.on_duty:
            while await offer(ctx, queue, unit.program_id, at) is not None:
                pass
        return result
