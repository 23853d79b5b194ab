"""Each response program's state as the writer sees it now: its units busy (a crisis
centre's counsellors too), its calls queued and its units on duty (service/lifecycle/waiting.py
and mutual aid read it)."""

from __future__ import annotations

from routing.models import ProgramState
from rules.evaluate import CompiledPolicy
from service.units.commands import roster_counts
from service.writing.batch import Batch


async def program_states(ctx: Batch, policy: CompiledPolicy, *,
                         exclude_call: str | None = None) -> dict[str, ProgramState]:
    """Each program's units busy and calls queued, this batch's changes included (the
    call being decided left out)."""
    held = await ctx.units_busy_by_program(exclude_call=exclude_call,
                                         agency=policy.agency)
    # A crisis centre's counsellors: held by its open transfers (a transfer holds no unit).
    # Read only when the policy has a centre: this runs for every event.
    if any(p.mode == "transfer" for p in policy.programs.programs):
        held.update(await ctx.counsellors_busy(exclude_call=exclude_call,
                                               agency=policy.agency))
    queued = await ctx.queued_by_program(exclude_call=exclude_call,
                                         agency=policy.agency)
    # A program that keeps a roster: its units on duty.
    roster = await roster_counts(ctx, policy.agency)
    return {p.id: ProgramState(units_busy=held[p.id], queued=queued[p.id],
                               units_on_duty=roster.get(p.id))
            for p in policy.programs.programs}
