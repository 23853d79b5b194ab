"""Webhook deliveries across calls: find the given-up ones and send one again.

A delivery the CAD refused for good, or one failing for longer than
`LIAISON_WEBHOOK_GIVE_UP_AFTER`, is `failed` and holds nothing back
(service/outbox/, sent by adapters/outbound.py). Operators list them here; a supervisor
puts one back in line.
A call's own deliveries are at `GET /v1/calls/{call_id}/deliveries`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from api.access import CredentialsFirst, Principal, Role, Supervisor, allow, record
from api.deps import RuntimeDep
from service.calls.visibility import delivery_view
from service.outbox.deliveries import RetryDelivery, deliveries_with_status

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"],
                   route_class=CredentialsFirst)

# Sequences are 64-bit database integers: a larger number is a 422, not a database error.
ID_MAX = 2**63 - 1
Status = Literal["pending", "delivered", "failed"]
DeliveryId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$",
                                 description="the Liaison-Delivery-Id the CAD was sent")]


class Delivery(BaseModel):
    delivery_id: str
    call_id: str
    sequence: int = Field(description="increasing per call; the CAD drops one at or below "
                                      "the last it applied")
    cause: str = Field(description="event or override")
    status: Status
    attempts: int
    last_error: str | None
    last_status_code: int | None = Field(description="the CAD's last answer; null when it "
                                                     "gave none (refused, timed out)")
    failed_at: datetime | None = Field(description="when it was given up (failed only)")
    next_attempt_at: datetime | None = Field(description="when it is tried next "
                                                         "(pending only)")


class DeliveryPage(BaseModel):
    deliveries: list[Delivery]
    next_after: int | None = Field(description="the `after` of the next page; null on the "
                                               "last one")


@router.get("", summary="Deliveries of every call by status (failed by default), in "
            "sequence order; page with `after`")
async def list_deliveries(rt: RuntimeDep,
                          who: Annotated[Principal, allow(Role.dispatcher, Role.supervisor)],
                          status: Status = "failed",
                          limit: Annotated[int, Query(ge=1, le=500)] = 100,
                          after: Annotated[int, Query(ge=0, le=ID_MAX,
                                                      description="a sequence")] = 0
                          ) -> DeliveryPage:
    async with rt.engine.connect() as conn:
        rows = await deliveries_with_status(conn, status, after=after, limit=limit)
    page = [Delivery.model_validate(delivery_view(r, who)) for r in rows]
    return DeliveryPage(deliveries=page,
                        next_after=page[-1].sequence if len(page) == limit else None)


@router.post("/{delivery_id}/retry",
             summary="Send a failed delivery again: pending, due now (it may reach the CAD "
                     "after the call's later deliveries)",
             responses={404: {"description": "no such delivery"},
                        409: {"description": "the delivery is not failed (pending or "
                                             "delivered): nothing to retry"}})
async def retry_delivery(delivery_id: DeliveryId, request: Request, rt: RuntimeDep,
                         who: Supervisor) -> Delivery:
    retried = Delivery.model_validate(await rt.writer.submit(RetryDelivery(delivery_id)))
    await record(request, who, "delivery.retry", call_id=retried.call_id,
                 target=f"delivery:{delivery_id}")
    if rt.delivery is not None:
        rt.delivery.wake()  # due now: no need to wait for the next poll
    return retried
