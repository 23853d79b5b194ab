from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import RuntimeDep
from routing.models import Decision
from service.ingest import ChangeStatus, OverrideCall, OverrideRequest, StatusChange
from service.queries import get_call, get_deliveries
from service.tables import utcnow

router = APIRouter(prefix="/v1/calls", tags=["calls"])


@router.get("/{call_id}", summary="A call, its current decision and its timeline")
async def read_call(call_id: str, rt: RuntimeDep) -> dict[str, Any]:
    return await get_call(rt.engine, call_id)


@router.get("/{call_id}/deliveries", summary="The call's decisions as sent to the CAD's "
            "webhook: status, attempts, last error, next attempt")
async def read_deliveries(call_id: str, rt: RuntimeDep) -> dict[str, Any]:
    return await get_deliveries(rt.engine, call_id)


@router.post(
    "/{call_id}/status",
    summary="Move a team call along its flow: assigned, en_route, on_scene, "
            "backup_requested, cleared (with a disposition)",
    responses={409: {"description": "not allowed from the current status; lists the allowed"}},
)
async def change_status(call_id: str, change: StatusChange, rt: RuntimeDep) -> dict[str, Any]:
    return await rt.writer.submit(ChangeStatus(call_id=call_id, change=change))  # type: ignore[no-any-return]


@router.post("/{call_id}/override", summary="A dispatcher overrides the destination, "
             "with a reason that is kept")
async def override(call_id: str, request: OverrideRequest, rt: RuntimeDep) -> Decision:
    return await rt.writer.submit(  # type: ignore[no-any-return]
        OverrideCall(call_id=call_id, request=request, at=utcnow()))
