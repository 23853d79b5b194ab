from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from adapters.generic import CallEvent
from api.access import Principal, Role, allow
from api.deps import RuntimeDep
from service.ingest import IngestEvent, IngestResult
from service.visibility import answer_view


def ingest_source(who: Principal) -> str:
    """The source a key's generic events are stored under: its CAD's name, or `generic`
    for a key made for any source (`*`)."""
    return who.source if who.source and who.source != "*" else "generic"

router = APIRouter(prefix="/v1/cad", tags=["cad"])


@router.post(
    "/events",
    status_code=202,
    response_model=IngestResult,
    summary="Take one CAD event; answer once it is stored, with the routing decision",
    responses={422: {"description": "a field is missing or wrong; each is named with why"}},
)
async def post_event(event: CallEvent, rt: RuntimeDep,
                     who: Annotated[Principal, allow(Role.cad)]) -> JSONResponse:
    compiled = rt.policy.compiled
    result = await rt.writer.submit(IngestEvent(
        event=event, policy=compiled, units_total=compiled.policy.program.units,
        source=ingest_source(who)))
    return JSONResponse(answer_view(result, who), status_code=202)
