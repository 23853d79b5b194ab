"""Whose figures a request reads (issue 17): the `agency` query parameter of every figures
route (api/metrics.py, api/scorecard.py), as `policy_agency` is the policy routes'.

A person of one agency reads their agency's figures only: no `agency`, or their own; another
is 'not found', as one that does not exist, and the refusal is audited. A regional person
(agency `*`) reads the whole region's by default (every agency's calls, and those no agency
claimed) or one agency's with `agency=X`.

Local days and hours: one agency's figures are in its policy's time zone; the region's in
the default agency's (`rt.policy`), as before agencies.
"""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request

from api.access import principal_of
from api.agency_scope import chosen_agency
from api.deps import RuntimeDep
from rules.evaluate import CompiledPolicy
from service.store.tables import ANY_AGENCY


async def figures_agency(request: Request, rt: RuntimeDep,
                         agency: Annotated[str | None, Query(
                             min_length=1, max_length=40, description=(
                                 "one agency's figures (default: yours; the region's, every "
                                 "agency's, for a regional person)"))] = None) -> str | None:
    """The agency whose calls count; None: the region's (a regional person only)."""
    who = await principal_of(request)
    assert who is not None  # the route's allow() ran first
    if agency is None:
        return None if who.agency == ANY_AGENCY else who.agency
    return await chosen_agency(request, rt, who, agency, "figures.agency")


FiguresAgency = Annotated[str | None, Depends(figures_agency)]


def policy_of(rt: Any, agency: str | None) -> CompiledPolicy | None:
    """The policy in force for the agency's figures (its programs' hours and units); the
    region's figures: the default agency's. None: the agency has no policy yet."""
    if agency is None:
        return rt.policy.compiled  # type: ignore[no-any-return]
    found: CompiledPolicy | None = rt.region.policy_of(agency)
    return found


def zone_of(rt: Any, agency: str | None) -> ZoneInfo:
    """Local days and hours of the figures: the agency's policy's time zone (an agency with
    no policy yet: its record's); the region's: the default agency's."""
    policy = policy_of(rt, agency)
    if policy is not None:
        return policy.zone
    record_ = rt.region.agency(agency)
    return ZoneInfo(record_.timezone) if record_ is not None else rt.policy.compiled.zone
