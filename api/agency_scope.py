"""One agency's people act on its calls only (issue 17): the gate every route about one
call passes before it reads or changes it, beside the role check of api/access.py."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from api.access import Principal, record
from routing.jurisdiction import Claim, RegionView, UnknownAgency
from rules.evaluate import CompiledPolicy
from service.calls.event import CallEvent
from service.calls.visibility import sees_agency
from service.errors import Invalid, NotFound
from service.lifecycle.queries import call_agency
from service.store.tables import ANY_AGENCY


async def policy_for_call(conn: HTTPConnection, rt: Any, call_id: str, who: Principal,
                          action: str) -> CompiledPolicy:
    """The policy in force for the call's agency, once `who` may act on that agency's
    calls. Another agency's call is 'not found', as one that does not exist, and the
    refusal is audited (`action`, outcome denied)."""
    agency = await call_agency(rt.engine, call_id)
    if not sees_agency(who, agency):
        await record(conn, who, action, outcome="denied", call_id=call_id)
        raise NotFound(f"no call {call_id}")
    policy: CompiledPolicy | None = rt.region.policy_of(agency)
    return policy if policy is not None else rt.policy.compiled


def claim_of(rt: Any, who: Principal, event: CallEvent) -> tuple[Claim, RegionView]:
    """Whose a CAD event's call is, if it opens one (a later event keeps its call's
    agency), and the region as the writer needs it. An agency the event names that does
    not exist, or that its key does not post for, is a 422 on `agency`."""
    location = event.location
    try:
        claim = rt.region.jurisdictions.claim(
            key_agency=who.agency if who.kind == "key" else ANY_AGENCY, named=event.agency,
            district=location.district if location else None,
            lat=location.lat if location else None, lon=location.lon if location else None)
    except UnknownAgency as exc:
        raise Invalid("agency", str(exc)) from None
    return claim, rt.region.view()
