from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request

from api.access import Principal, Role, allow, record
from api.deps import RuntimeDep
from routing.models import Decision, DecisionView
from service.errors import NotFound
from service.ingest import ChangeStatus, OverrideCall, OverrideRequest, StatusChange
from service.queries import get_call, get_deliveries
from service.tables import utcnow
from service.visibility import (
    audience_of,
    call_view,
    decision_view,
    delivery_view,
    may_read,
    protected,
)

router = APIRouter(prefix="/v1/calls", tags=["calls"])

Reader = Annotated[Principal, allow(Role.cad, Role.dispatcher, Role.call_team, Role.officer,
                                    Role.supervisor)]
Team = Annotated[Principal, allow(Role.call_team, Role.supervisor)]
Dispatcher = Annotated[Principal, allow(Role.dispatcher, Role.supervisor)]


async def readable_call(request: Request, rt: Any, call_id: str, who: Principal
                        ) -> dict[str, Any]:
    """The call as `who` may see it; every look is audited, refused ones too. A call they
    may not see is 'not found', so its existence is not given away."""
    view = await get_call(rt.engine, call_id)
    if not may_read(view["call"], who):
        await record(request, who, "call.read", outcome="denied", call_id=call_id)
        raise NotFound(f"no call {call_id}")
    await record(request, who, "call.read", call_id=call_id)
    return call_view(view, who)


@router.get("/{call_id}", summary="A call, its current decision and its timeline")
async def read_call(call_id: str, request: Request, rt: RuntimeDep,
                    who: Reader) -> dict[str, Any]:
    return await readable_call(request, rt, call_id, who)


@router.get("/{call_id}/deliveries", summary="The call's decisions as sent to the CAD's "
            "webhook: status, attempts, last error, next attempt")
async def read_deliveries(call_id: str, rt: RuntimeDep, who: Dispatcher) -> dict[str, Any]:
    found = await get_deliveries(rt.engine, call_id)
    return {**found, "deliveries": [delivery_view(d, who) for d in found["deliveries"]]}


@router.post(
    "/{call_id}/status",
    summary="Move a team call along its flow: assigned, en_route, on_scene, "
            "backup_requested, cleared (with a disposition)",
    responses={409: {"description": "not allowed from the current status; lists the allowed"}},
)
async def change_status(call_id: str, change: StatusChange, request: Request, rt: RuntimeDep,
                        who: Team) -> dict[str, Any]:
    change = change.model_copy(update={"by": who.name})
    result = await rt.writer.submit(ChangeStatus(
        call_id=call_id, change=change, checkin_interval=rt.settings.checkin_interval_seconds))
    await record(request, who, "call.status", call_id=call_id,
                 detail={"status": change.status, "disposition": change.disposition})
    return result  # type: ignore[no-any-return]


@router.post("/{call_id}/override", summary="A dispatcher overrides the destination, "
             "with a reason that is kept")
async def override(call_id: str, request_body: OverrideRequest, request: Request,
                   rt: RuntimeDep, who: Dispatcher) -> DecisionView:
    # The record names who is logged in, not whom the body claims.
    body = request_body.model_copy(update={"by": who.name})
    decision: Decision = await rt.writer.submit(
        OverrideCall(call_id=call_id, request=body, at=utcnow()))
    await record(request, who, "call.override", call_id=call_id,
                 detail={"destination": body.destination})
    doc = decision.model_dump(mode="json")
    return DecisionView.model_validate(
        decision_view(doc, audience_of(who), is_protected=protected(doc)))
