from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.access import CredentialsFirst, Principal, Role, allow, ingest_source
from api.agency_scope import claim_of
from api.answers import FastJSON, IngestResult
from api.deps import RuntimeDep
from service.calls.event import CallEvent
from service.calls.visibility import answer_view
from service.lifecycle.ingest import IngestEvent

# Credentials before the body: a stranger's body is never read, let alone kept.
router = APIRouter(prefix="/v1/cad", tags=["cad"], route_class=CredentialsFirst)


@router.post(
    "/events",
    status_code=202,
    response_model=IngestResult,
    summary="Take one CAD event; answer once it is stored, with the routing decision",
    responses={422: {"description": "a field is missing or wrong; each is named with why"},
               409: {"description": "this sender used the event_id before, with another body"}},
)
async def post_event(event: CallEvent, rt: RuntimeDep,
                     who: Annotated[Principal, allow(Role.cad)]) -> JSONResponse:
    claim, region = claim_of(rt, who, event)
    compiled = rt.region.policy_of(claim.agency) or rt.policy.compiled
    result = await rt.writer.submit(IngestEvent(
        event=event, policy=compiled, units_total=compiled.policy.program.units,
        source=ingest_source(who), claim=claim, region=region))
    return FastJSON(answer_view(result, who), status_code=202)
