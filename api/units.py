"""Units as records (issue 14): the roster a supervisor keeps, team members signing on
and off and sharing their position, an AVL feed's positions, and how long positions
are kept. Every change goes through the writer, is audited and is told to the board
(`{"type": "unit", "unit": …}`). docs/units.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from api.access import CredentialsFirst, Principal, Role, Supervisor, allow, record
from api.agency_scope import AgencyPolicy, AgencyQuery
from api.deps import RuntimeDep
from service.calls.visibility import sees_agency
from service.errors import Invalid, NotFound
from service.lifecycle.roster import DutyThenQueue
from service.store.tables import ANY_AGENCY
from service.units.commands import AddPositions, PutUnit, RetireUnit, SetDuty, SetRetention
from service.units.models import (
    UNIT_ID,
    AvlPositions,
    DevicePosition,
    DutyChange,
    Retention,
    Unit,
    UnitInput,
    roster_programs,
)
from service.units.queries import get_unit, list_units, retention

router = APIRouter(tags=["units"], route_class=CredentialsFirst)

Reader = Annotated[Principal, allow(Role.call_team, Role.dispatcher, Role.supervisor)]
Team = Annotated[Principal, allow(Role.call_team, Role.supervisor)]
Feed = Annotated[Principal, allow(Role.cad)]
UnitId = Annotated[str, Path(pattern=UNIT_ID, description="the unit's id, e.g. CALL-3")]


class UnitList(BaseModel):
    units: list[Unit]


async def _own_unit(request: Request, rt: Any, who: Principal, unit_id: str,
                    action: str) -> Unit:
    """The unit, when it is of `who`'s agency (the region's people: any); another
    agency's is 'not found', as one that does not exist, and the refusal is audited."""
    found = await get_unit(rt.engine, unit_id)
    if found is not None and not sees_agency(who, found.agency):
        await record(request, who, action, outcome="denied", target=unit_id)
        found = None
    if found is None:
        raise NotFound(f"no unit {unit_id}")
    return found


def _policy_of(rt: Any, unit: Unit) -> Any:
    return rt.region.policy_of(unit.agency) or rt.policy.compiled


class UnitSaved(BaseModel):
    unit: Unit
    created: bool = Field(description="true: a new unit (or a retired one back)")


class Positions(BaseModel):
    units: list[Unit] = Field(description="the units whose positions were taken, as now")


class RetentionNow(BaseModel):
    position_retention_hours: float
    updated_at: str | None
    updated_by: str | None


@router.get("/v1/units", summary="The roster: units with their duty, status, call and "
            "position", response_model=UnitList)
async def units(rt: RuntimeDep, who: Reader,
                program: str | None = Query(default=None, max_length=120),
                on_duty: bool | None = None, agency: AgencyQuery = None) -> dict[str, Any]:
    # One agency's people see its team; the region's all, or one agency's when asked.
    mine = agency if who.agency == ANY_AGENCY else who.agency
    return {"units": await list_units(rt.engine, program, on_duty=on_duty, agency=mine)}


@router.get("/v1/units/{unit_id}", summary="One unit", response_model=Unit)
async def unit(unit_id: UnitId, request: Request, rt: RuntimeDep, who: Reader) -> Unit:
    return await _own_unit(request, rt, who, unit_id, "unit.read")


@router.put("/v1/units/{unit_id}", summary="Add a unit to the roster or change it",
            response_model=UnitSaved,
            responses={422: {"description": "a bad field, or a program not in the policy "
                                            "in force"}})
async def put_unit(unit_id: UnitId, body: UnitInput, request: Request, rt: RuntimeDep,
                   who: Supervisor, policy: AgencyPolicy) -> dict[str, Any]:
    # The unit joins the team of the supervisor's agency (`?agency=` for the region's).
    existing = await get_unit(rt.engine, unit_id)
    if existing is not None:
        await _own_unit(request, rt, who, unit_id, "unit.update")
    programs = roster_programs(policy)
    if body.program_id not in programs:
        raise Invalid("program_id", f"not a program of the policy in force (one of: "
                                    f"{', '.join(programs)})")
    saved, created = await rt.writer.submit(DutyThenQueue(
        PutUnit(unit_id, body, agency=policy.agency), policy))
    await record(request, who, "unit.add" if created else "unit.update", target=unit_id,
                 detail={"unit_id": unit_id, "program": body.program_id,
                         "on_duty": saved.on_duty, "capabilities": saved.capabilities,
                         "count": len(saved.members)})
    return {"unit": saved, "created": created}


@router.delete("/v1/units/{unit_id}", summary="Retire a unit: off the roster, kept on record",
               response_model=Unit)
async def retire_unit(unit_id: UnitId, request: Request, rt: RuntimeDep,
                      who: Supervisor) -> Unit:
    await _own_unit(request, rt, who, unit_id, "unit.retire")
    gone: Unit = await rt.writer.submit(RetireUnit(unit_id))
    await record(request, who, "unit.retire", target=unit_id, detail={"unit_id": unit_id})
    return gone


@router.post("/v1/units/{unit_id}/duty", summary="Sign a unit on or off duty; signing on "
             "adds capacity, so a call waiting for its program may take it",
             response_model=Unit)
async def duty(unit_id: UnitId, body: DutyChange, request: Request, rt: RuntimeDep,
               who: Team) -> Unit:
    mine = await _own_unit(request, rt, who, unit_id, "unit.duty")
    command = SetDuty(unit_id, body.on_duty, body.at)
    now, changed = await rt.writer.submit(DutyThenQueue(command, _policy_of(rt, mine)))
    await record(request, who, "unit.duty", target=unit_id,
                 detail={"unit_id": unit_id, "on_duty": body.on_duty, "status":
                         "changed" if changed else "unchanged"})
    return now  # type: ignore[no-any-return]


@router.post("/v1/units/{unit_id}/position", summary="A team member's device shares its "
             "unit's position (only while the unit is on duty)", response_model=Unit,
             responses={409: {"description": "the unit is off duty"}})
async def device_position(unit_id: UnitId, body: DevicePosition, request: Request,
                          rt: RuntimeDep, who: Team) -> Unit:
    await _own_unit(request, rt, who, unit_id, "unit.position")
    [now] = await rt.writer.submit(AddPositions([(unit_id, body)], "device"))
    # Audited without the position itself: where a person was is not the log's to keep.
    await record(request, who, "unit.position", target=unit_id,
                 detail={"unit_id": unit_id, "sources": "device"})
    return now


@router.post("/v1/units/positions", summary="An AVL feed's positions of units",
             response_model=Positions,
             responses={422: {"description": "a bad field, or a unit not on the roster"}})
async def avl_positions(body: AvlPositions, request: Request, rt: RuntimeDep,
                        who: Feed) -> dict[str, Any]:
    for i, p in enumerate(body.positions):  # a feed of one agency moves its units only
        found = await get_unit(rt.engine, p.unit_id)
        if found is not None and not sees_agency(who, found.agency):
            raise Invalid(f"positions[{i}].unit_id", f"unit {p.unit_id} is not on the "
                                                     "roster")
    try:
        moved = await rt.writer.submit(AddPositions(
            [(p.unit_id, p) for p in body.positions], "avl"))
    except NotFound as exc:  # a unit the roster does not keep: the feed's input is bad
        raise Invalid(str(exc.extra.get("field", "positions")), exc.message) from None
    await record(request, who, "unit.positions", detail={"count": len(body.positions),
                                                         "sources": "avl"})
    return {"units": moved}


@router.get("/v1/roster/retention", summary="How long unit positions are kept",
            response_model=RetentionNow)
async def get_retention(rt: RuntimeDep, who: Supervisor) -> dict[str, Any]:
    return await retention(rt.engine)


@router.put("/v1/roster/retention", summary="Set how long unit positions are kept (0: "
            "none but each on-duty unit's latest)", response_model=RetentionNow)
async def set_retention(body: Retention, request: Request, rt: RuntimeDep,
                        who: Supervisor) -> dict[str, Any]:
    seconds = round(body.position_retention_hours * 3600)
    before = await rt.writer.submit(SetRetention(seconds, who.actor))
    await record(request, who, "unit.retention",
                 detail={"retention_hours": body.position_retention_hours,
                         "from": before / 3600})
    return await retention(rt.engine)
