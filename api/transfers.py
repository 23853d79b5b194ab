"""911 → 988 transfers: the crisis centre's queue and its steps (service/lifecycle/transfers.py).

The centre's counsellors (the /transfers page) and its system (a key of role
crisis_center) read the transfers and record their steps; supervisors too; dispatchers
read them. What each sees of a transfer's call is service/calls/visibility.py's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.access import CredentialsFirst, Principal, Role, allow, record
from api.agency_scope import policy_for_call
from api.deps import RuntimeDep
from routing.models import DecisionView
from service.calls.visibility import (
    audience_of,
    call_view,
    decision_view,
    protected,
    sees_agency,
)
from service.errors import NotFound
from service.lifecycle.queries import get_call_brief
from service.lifecycle.transfers import StepRequest, StepTransfer, get_transfer, list_transfers

router = APIRouter(prefix="/v1/transfers", tags=["transfers"], route_class=CredentialsFirst)

Reader = Annotated[Principal, allow(Role.crisis_center, Role.supervisor, Role.dispatcher)]
Worker = Annotated[Principal, allow(Role.crisis_center, Role.supervisor)]
Status = Literal["offered", "accepted", "declined", "completed", "returned", "withdrawn"]


class TransferStep(BaseModel):
    status: str
    at: str
    by: str
    reason: str | None


class Transfer(BaseModel):
    id: str
    call_id: str
    program_id: str = Field(description="the crisis centre (a program of mode transfer)")
    status: Status
    offered_at: str
    accepted_at: str | None
    ended_at: str | None
    reason: str | None = Field(description="the last step's reason")
    allowed_next: list[str] = Field(description="the steps it may take now")
    steps: list[TransferStep] = Field(description="in order, the offer first")
    call: dict[str, Any] | None = Field(default=None, description="the call, as the reader "
                                        "may see it (service/calls/visibility.py)")


class TransferList(BaseModel):
    transfers: list[Transfer] = Field(description="newest offered first")


class StepAnswer(BaseModel):
    transfer: Transfer
    decision: DecisionView | None = Field(description="declined or returned: the call's "
                                          "new decision (sent to the board and the CAD)")


async def _with_call(rt: Any, transfer: dict[str, Any], who: Principal) -> dict[str, Any]:
    """The transfer with its call narrowed for `who`. A step's reason is shown whole, as
    an override's is: the call's new decision quotes it to the board and the CAD."""
    brief = await get_call_brief(rt.engine, transfer["call_id"])
    brief["call"]["transferred"] = True  # may_read: a call transferred to the centre
    narrowed = call_view(brief, who)
    call = {**narrowed["call"], "decision": narrowed["decision"]}
    call.pop("transferred", None)
    return {**transfer, "call": call}


@router.get("", summary="Transfers to the crisis centre, newest first, each with its call",
            response_model=TransferList)
async def transfers(rt: RuntimeDep, who: Reader, status: Status | None = None,
                    limit: int = Query(default=200, ge=1, le=1000)) -> dict[str, Any]:
    found = await list_transfers(rt.engine, status=status, limit=limit)
    shown = [await _with_call(rt, t, who) for t in found]
    # A centre, dispatcher or supervisor of one agency: its calls' transfers only.
    return {"transfers": [t for t in shown if sees_agency(who, t["call"].get("agency_id"))]}


@router.get("/{transfer_id}", summary="One transfer with its steps and its call",
            response_model=Transfer, responses={404: {"description": "no such transfer"}})
async def transfer(transfer_id: str, request: Request, rt: RuntimeDep, who: Reader
                   ) -> dict[str, Any]:
    found = await _with_call(rt, await get_transfer(rt.engine, transfer_id), who)
    if not sees_agency(who, found["call"].get("agency_id")):
        await record(request, who, "transfer.read", outcome="denied", target=transfer_id)
        raise NotFound(f"no transfer {transfer_id}")
    await record(request, who, "transfer.read", call_id=found["call_id"], target=transfer_id)
    return found


@router.post("/{transfer_id}/steps",
             summary="The crisis centre records a step: accepted or declined (an offer), "
                     "completed or returned (an accepted one); declined and returned need "
                     "a reason, and the call is decided again with it",
             response_model=StepAnswer,
             responses={404: {"description": "no such transfer"},
                        409: {"description": "not a step it may take now; lists the "
                                             "allowed"}})
async def step(transfer_id: str, body: StepRequest, request: Request, rt: RuntimeDep,
               who: Worker) -> dict[str, Any]:
    transfer = await get_transfer(rt.engine, transfer_id)
    compiled = await policy_for_call(request, rt, transfer["call_id"], who, "transfer.step")
    result: dict[str, Any] = await rt.writer.submit(StepTransfer(
        transfer_id=transfer_id, step=body, by=who.name, policy=compiled,
        units_total=compiled.policy.program.units))
    await record(request, who, "transfer.step", call_id=result["transfer"]["call_id"],
                 target=transfer_id, detail={"status": body.status})
    decision = result["decision"]
    return {"transfer": await _with_call(rt, result["transfer"], who),
            "decision": None if decision is None else decision_view(
                decision, audience_of(who), is_protected=protected(decision))}
