from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from api.access import Access, CredentialsFirst, Principal, Role, allow, ingest_source
from api.agency_scope import claim_of
from api.answers import FastJSON, IngestResult
from api.deps import RuntimeDep
from api.runtime import Runtime
from service.calls.event import CallEvent
from service.calls.visibility import answer_view
from service.lifecycle.ingest import IngestEvent

_CAD = (Role.cad,)


class EventRoute(CredentialsFirst):
    """The CAD event route, with its common case made short: credentials first (as every
    CredentialsFirst route), then a JSON body validated once, straight from its bytes,
    and the event taken, without FastAPI's generic reading and dependency solving (about
    a tenth of the server's time per event). Anything else (another content type, an
    empty or invalid body) goes FastAPI's own way, so every refusal (422 with its
    fields, a CAD reject kept, 400) is the one it always was: the short way only ever
    takes what FastAPI's way would have taken, as the same CallEvent."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        full = super().get_route_handler()
        check = Access(_CAD)

        async def handler(request: Request) -> Response:
            who = await check(request)  # refused: 401/403 with the body unread
            event = await _json_event(request)
            if event is None:
                return await full(request)
            return await take_event(event, request.app.state.runtime, who)

        return handler


async def _json_event(request: Request) -> CallEvent | None:
    """The body as a CallEvent when it is `application/json` and valid; None otherwise."""
    kind = request.headers.get("content-type")
    if kind is None or kind.partition(";")[0].strip().lower() != "application/json":
        return None
    try:
        body = await request.body()  # kept on the request: FastAPI's way reads it again
    except Exception:  # noqa: BLE001 - a body refused (api/limits.py): answered FastAPI's way
        return None
    if not body:
        return None
    try:
        return CallEvent.model_validate_json(body)
    except ValidationError:
        return None


# Credentials before the body: a stranger's body is never read, let alone kept.
router = APIRouter(prefix="/v1/cad", tags=["cad"], route_class=EventRoute)


@router.post(
    "/events",
    status_code=202,
    response_model=IngestResult,
    summary="Take one CAD event; answer once it is stored, with the routing decision",
    responses={422: {"description": "a field is missing or wrong; each is named with why"},
               409: {"description": "this sender used the event_id before, with another body"}},
)
async def post_event(event: CallEvent, rt: RuntimeDep,
                     who: Annotated[Principal, allow(*_CAD)]) -> JSONResponse:
    return await take_event(event, rt, who)


async def take_event(event: CallEvent, rt: Runtime, who: Principal) -> JSONResponse:
    claim, region = claim_of(rt, who, event)
    compiled = rt.region.policy_of(claim.agency) or rt.policy.compiled
    result = await rt.writer.submit(IngestEvent(
        event=event, policy=compiled, units_total=compiled.policy.program.units,
        source=ingest_source(who), claim=claim, region=region))
    return FastJSON(answer_view(result, who), status_code=202)
