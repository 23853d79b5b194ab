from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from adapters.generic import CallEvent
from api.deps import RuntimeDep
from service.ingest import IngestEvent, IngestResult

router = APIRouter(prefix="/v1/cad", tags=["cad"])


@router.post(
    "/events",
    status_code=202,
    response_model=IngestResult,
    summary="Take one CAD event; answer once it is stored, with the routing decision",
    responses={422: {"description": "a field is missing or wrong; each is named with why"}},
)
async def post_event(event: CallEvent, rt: RuntimeDep) -> JSONResponse:
    compiled = rt.policy.compiled
    result = await rt.writer.submit(IngestEvent(
        event=event, policy=compiled, units_total=compiled.policy.program.units))
    return JSONResponse(result, status_code=202)
