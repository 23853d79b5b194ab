"""What the writer knows of the agencies a policy asks for mutual aid (routing/mutual_aid.py):
each one's policy in force and its programs' units busy now, counted as its own decisions
count them (a call it helps with holds one of its units: service/writing/batch.py)."""

from __future__ import annotations

from routing.jurisdiction import RegionView
from routing.models import ProgramState
from routing.mutual_aid import AidOffer
from rules.evaluate import CompiledPolicy
from service.lifecycle.program_states import program_states
from service.units.commands import roster_counts
from service.units.models import ONE_TEAM
from service.writing.batch import Batch


async def aid_offers(ctx: Batch, policy: CompiledPolicy, region: RegionView | None, *,
                     exclude_call: str | None) -> dict[str, AidOffer] | None:
    """The helping agencies `policy` names, by id (None: it names none, or the caller
    knows no region; an agency without a policy in force is offered without one, and the
    decision says it was not asked). Read only for a policy with mutual aid."""
    if not policy.policy.mutual_aid or region is None:
        return None
    out: dict[str, AidOffer] = {}
    for entry in policy.policy.mutual_aid:
        agency = entry.agency
        record = region.jurisdictions.agencies.get(agency)
        if agency in out or record is None:
            continue
        helper = region.policies.get(agency)
        if helper is None:
            out[agency] = AidOffer(agency=agency, name=record.name, policy=None)
            continue
        if helper.programs.named:
            state = await program_states(ctx, helper, exclude_call=exclude_call)
        else:  # one team: its units busy, and its roster's on duty if it keeps one
            roster = await roster_counts(ctx, agency)
            busy = await ctx.units_busy(exclude_call=exclude_call, agency=agency)
            state = {p.id: ProgramState(units_busy=busy, units_on_duty=roster.get(ONE_TEAM))
                     for p in helper.programs.programs}
        out[agency] = AidOffer(agency=agency, name=record.name, policy=helper, state=state)
    return out
