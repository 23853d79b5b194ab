"""The program in force, for the pages that show the team: its units, hours and phase.

The board needs the number of team units to draw them; the whole policy
(`/v1/policies`) is for supervisors only, so the board reads this instead.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.access import CredentialsFirst, Role, allow
from api.agency_scope import AgencyPolicy

router = APIRouter(prefix="/v1", tags=["program"], route_class=CredentialsFirst)


class Hours(BaseModel):
    start: str
    end: str
    days: list[str]


class ProgramInForce(BaseModel):
    policy_version: str = Field(description="the policy in force, e.g. st-petersburg-call@1")
    phase: int
    timezone: str
    hours: Hours = Field(description="team hours, in `timezone`")
    units: int = Field(description="team field units on shift")


# Those who may open the board (api/board.py).
@router.get("/program", summary="The team program in force: units, hours, phase",
            dependencies=[allow(Role.call_team, Role.dispatcher, Role.supervisor)])
async def program(compiled: AgencyPolicy) -> ProgramInForce:
    p = compiled.policy.program
    return ProgramInForce(policy_version=compiled.version, phase=p.phase, timezone=p.timezone,
                          hours=Hours(start=p.hours.start, end=p.hours.end,
                                      days=list(p.hours.days)),
                          units=p.units)
