"""Agencies at the API's edge (issue 17), beside the role check of api/access.py: the gate
every route about one call passes before it reads or changes it (`policy_for_call`),
whose a call sent in is (`claim_of`), and which agency a request about "the program"
is for (`chosen_agency`, `AgencyPolicy`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query
from starlette.requests import HTTPConnection, Request

from api.access import Principal, principal_of, record
from api.deps import RuntimeDep
from routing.jurisdiction import Claim, RegionView, UnknownAgency
from rules.evaluate import CompiledPolicy
from service.calls.event import CallEvent
from service.calls.visibility import sees_agency, sees_call_agency
from service.errors import Invalid, NotFound
from service.lifecycle.queries import call_agency
from service.store.tables import ANY_AGENCY, DEFAULT_AGENCY


async def policy_for_call(conn: HTTPConnection, rt: Any, call_id: str, who: Principal,
                          action: str) -> CompiledPolicy:
    """The policy in force for the call's agency, once `who` may act on that agency's
    calls (or helps with it by mutual aid). Another agency's call is 'not found', as one
    that does not exist, and the refusal is audited (`action`, outcome denied)."""
    agency, helper = await call_agency(rt.engine, call_id)
    if not sees_call_agency(who, agency, helper):
        await record(conn, who, action, outcome="denied", call_id=call_id)
        raise NotFound(f"no call {call_id}")
    policy: CompiledPolicy | None = rt.region.policy_of(agency)
    return policy if policy is not None else rt.policy.compiled


def claim_of(rt: Any, who: Principal, event: CallEvent) -> tuple[Claim, RegionView]:
    """Whose a call `who` sends (a CAD's event, an officer's referral) is, if it opens
    one (a later event keeps its call's agency), and the region as the writer needs it.
    A key or person of one agency sends its calls; an agency the event names that does
    not exist, or is not the sender's, is a 422 on `agency`."""
    location = event.location
    try:
        claim = rt.region.jurisdictions.claim(
            key_agency=who.agency, named=event.agency,
            district=location.district if location else None,
            lat=location.lat if location else None, lon=location.lon if location else None)
    except UnknownAgency as exc:
        raise Invalid("agency", str(exc)) from None
    return claim, rt.region.view()


async def chosen_agency(conn: HTTPConnection, rt: Any, who: Principal, asked: str | None,
                        action: str) -> str:
    """The agency a request about "the program" (its policy, queue, units, figures) is
    for: the one `asked` (`?agency=`), else the person's own, else (for the region's
    people) the default agency. One they may not see, or none that exists, is 'not
    found'; the refusal is audited (`action`)."""
    chosen = asked or (who.agency if who.agency != ANY_AGENCY else DEFAULT_AGENCY)
    if not sees_agency(who, chosen):
        await record(conn, who, action, outcome="denied", target=chosen)
        raise NotFound(f"no agency {chosen!r}")
    if chosen not in rt.region.jurisdictions.agencies and chosen != DEFAULT_AGENCY:
        raise NotFound(f"no agency {chosen!r}")
    return chosen


AgencyQuery = Annotated[str | None, Query(min_length=1, max_length=40, description=(
    "which agency's (default: yours; for the region's people, the default agency)"))]


async def _agency_policy(request: Request, rt: RuntimeDep, agency: AgencyQuery = None
                         ) -> CompiledPolicy:
    who = await principal_of(request)
    assert who is not None  # the route's allow() ran first
    chosen = await chosen_agency(request, rt, who, agency, "agency.read")
    policy: CompiledPolicy | None = rt.region.policy_of(chosen)
    if policy is None:
        raise NotFound(f"agency {chosen!r} has no policy in force yet")
    return policy


# A route about one agency's program: its policy in force (`policy.agency` names it).
AgencyPolicy = Annotated[CompiledPolicy, Depends(_agency_policy)]
