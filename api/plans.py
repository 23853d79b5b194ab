"""Crisis plans and premise cautions (issue 16): the team writes them, and reads those for
a call when its card is opened on the board. Every write and every look is audited
(ids only, never the text); a role without need is refused and the refusal audited
against the call. service/lifecycle/crisis_plans.py; docs/crisis-plans.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel
from sqlalchemy import Table
from starlette.requests import HTTPConnection

from api.access import Access, CredentialsFirst, Principal, record
from api.agency_scope import policy_for_call
from api.deps import RuntimeDep
from service.calls.visibility import SEES_PLANS
from service.errors import Forbidden, NotFound
from service.lifecycle.crisis_plans import (
    CautionInput,
    CrisisPlan,
    CrisisPlanInput,
    DeleteRecord,
    PlansForCall,
    PremiseCaution,
    SaveRecord,
    caution_columns,
    caution_view,
    plan_columns,
    plan_view,
    plans_for_call,
)
from service.store.tables import CRISIS_PLAN, PREMISE_CAUTION

router = APIRouter(tags=["crisis plans"], route_class=CredentialsFirst)

READ = "crisis_plan.read"


class PlanReaders(Access):
    """allow(call_team, supervisor), and a refused look at a call's plans is also audited
    as `crisis_plan.read` denied against that call, so a supervisor sees who tried."""

    async def __call__(self, conn: HTTPConnection) -> Principal:
        try:
            return await super().__call__(conn)
        except Forbidden:
            who = conn.scope.get("liaison.principal")
            call_id = conn.path_params.get("call_id")
            if who is not None and call_id:
                await record(conn, who, READ, outcome="denied", call_id=str(call_id)[:40])
            raise


Team = Annotated[Principal, Depends(PlanReaders(SEES_PLANS))]
RecordId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


async def _save(request: Request, rt: RuntimeDep, who: Principal, table: Table,
                record_id: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """Write a plan or caution and audit it (`crisis_plan.create`, …: the id only)."""
    row: dict[str, Any] = await rt.writer.submit(SaveRecord(table, record_id, values,
                                                            who.actor))
    action = "create" if record_id is None else "update"
    await record(request, who, f"{table.name}.{action}", target=row["id"])
    return row


class Deleted(BaseModel):
    id: str
    deleted: bool = True


async def _delete(request: Request, rt: RuntimeDep, who: Principal, table: Table,
                  record_id: str) -> Deleted:
    await rt.writer.submit(DeleteRecord(table, record_id))
    await record(request, who, f"{table.name}.delete", target=record_id)
    return Deleted(id=record_id)


@router.post("/v1/crisis-plans", summary="Keep a crisis plan for a person (their consent "
             "is required)", response_model=CrisisPlan, status_code=201,
             responses={422: {"description": "a bad field, no consent, or an expiry in "
                                             "the past or over 365 days ahead"}})
async def create_plan(body: CrisisPlanInput, request: Request, rt: RuntimeDep,
                      who: Team) -> CrisisPlan:
    return plan_view(await _save(request, rt, who, CRISIS_PLAN, None, plan_columns(body)))


@router.put("/v1/crisis-plans/{plan_id}", summary="Replace a crisis plan",
            response_model=CrisisPlan)
async def replace_plan(plan_id: RecordId, body: CrisisPlanInput, request: Request,
                       rt: RuntimeDep, who: Team) -> CrisisPlan:
    return plan_view(await _save(request, rt, who, CRISIS_PLAN, plan_id,
                                 plan_columns(body)))


@router.delete("/v1/crisis-plans/{plan_id}", summary="Delete a crisis plan (nothing of it "
               "is kept)", response_model=Deleted)
async def delete_plan(plan_id: RecordId, request: Request, rt: RuntimeDep,
                      who: Team) -> Deleted:
    return await _delete(request, rt, who, CRISIS_PLAN, plan_id)


@router.post("/v1/premise-cautions", summary="Keep a caution for an address",
             response_model=PremiseCaution, status_code=201)
async def create_caution(body: CautionInput, request: Request, rt: RuntimeDep,
                         who: Team) -> PremiseCaution:
    return caution_view(await _save(request, rt, who, PREMISE_CAUTION, None,
                                    caution_columns(body)))


@router.put("/v1/premise-cautions/{caution_id}", summary="Replace a premise caution",
            response_model=PremiseCaution)
async def replace_caution(caution_id: RecordId, body: CautionInput, request: Request,
                          rt: RuntimeDep, who: Team) -> PremiseCaution:
    return caution_view(await _save(request, rt, who, PREMISE_CAUTION, caution_id,
                                    caution_columns(body)))


@router.delete("/v1/premise-cautions/{caution_id}", summary="Delete a premise caution",
               response_model=Deleted)
async def delete_caution(caution_id: RecordId, request: Request, rt: RuntimeDep,
                         who: Team) -> Deleted:
    return await _delete(request, rt, who, PREMISE_CAUTION, caution_id)


@router.get("/v1/calls/{call_id}/plans", summary="The crisis plans and premise cautions "
            "for a call's address (and phone), for the team that goes; every look audited",
            response_model=PlansForCall)
async def call_plans(call_id: str, request: Request, rt: RuntimeDep,
                     who: Team) -> PlansForCall:
    try:
        found = await plans_for_call(rt.engine, call_id)
    except NotFound:
        await record(request, who, READ, outcome="failed", call_id=call_id[:40])
        raise
    # Another agency's call: 'not found' too, and audited as denied (nothing is shown).
    await policy_for_call(request, rt, call_id, who, READ)
    await record(request, who, READ, call_id=call_id,
                 detail={"plan_ids": [p.id for p in found.plans],
                         "caution_ids": [c.id for c in found.cautions]})
    return found
