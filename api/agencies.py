"""The region's agencies (issue 17): list them, and, for a regional supervisor, add one
or change one's name, districts or boundary. The same as `liaison agency …`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field

from api.access import CredentialsFirst, Principal, Role, Supervisor, allow, record
from api.deps import RuntimeDep
from routing.jurisdiction import AgencyRecord
from service.calls.visibility import sees_agency
from service.errors import Forbidden, NotFound
from service.policy.region import add_agency, list_agencies, update_agency
from service.store.tables import ANY_AGENCY

router = APIRouter(prefix="/v1/agencies", tags=["agencies"], route_class=CredentialsFirst)
Viewer = Annotated[Principal, allow(Role.dispatcher, Role.call_team, Role.supervisor,
                                     Role.analyst)]


class Agency(AgencyRecord):
    in_force: str | None = Field(default=None, description="its policy version deciding "
                                 "calls now; null: none yet (its calls go to police)")


class NewAgency(AgencyRecord):
    policy: str | None = Field(default=None, description="its first policy (YAML), "
                               "published at once; its program.timezone must be the "
                               "agency's")


def _shown(rt: Any, agency: AgencyRecord) -> dict[str, Any]:
    compiled = rt.region.policy_of(agency.id)
    return {**agency.model_dump(), "in_force": compiled.version if compiled else None}


@router.get("", summary="The agencies you see: yours, or every one for the region's people",
            response_model=list[Agency])
async def agencies(who: Viewer, rt: RuntimeDep) -> list[dict[str, Any]]:
    return [_shown(rt, a) for a in await list_agencies(rt.engine) if sees_agency(who, a.id)]


def _regional(who: Principal) -> None:
    if who.agency != ANY_AGENCY:
        raise Forbidden("only a regional supervisor (agency '*') adds agencies")


@router.post("", status_code=201, summary="Add an agency (a regional supervisor), with its "
             "first policy if given", response_model=Agency,
             responses={409: {"description": "the agency exists"}})
async def add(body: NewAgency, request: Request, who: Supervisor,
              rt: RuntimeDep) -> dict[str, Any]:
    _regional(who)
    record_ = AgencyRecord.model_validate(body.model_dump(exclude={"policy"}))
    await add_agency(rt.engine, record_, body.policy, author=who.name)
    await rt.region.sync(rt.engine)  # in force here now; the others on their next poll
    await record(request, who, "agency.add", target=body.id,
                 detail={"agency": body.id, "policy": body.policy is not None})
    return _shown(rt, record_)


@router.put("/{agency_id}", summary="Change an agency's name, districts or boundary (its "
            "time zone changes with its policy)", response_model=Agency)
async def change(agency_id: str, body: AgencyRecord, request: Request, who: Supervisor,
                 rt: RuntimeDep) -> dict[str, Any]:
    if not sees_agency(who, agency_id):
        await record(request, who, "agency.update", outcome="denied", target=agency_id)
        raise NotFound(f"no agency {agency_id!r}")
    if body.id != agency_id:
        raise Forbidden("an agency's id does not change")
    await update_agency(rt.engine, body)
    await rt.region.sync(rt.engine)
    await record(request, who, "agency.update", target=agency_id)
    return _shown(rt, body)
