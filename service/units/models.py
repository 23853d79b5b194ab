"""A unit as the API, the board and the other modules see it, and what a supervisor, a
team member's device or an AVL feed sends. Pure shapes; the rules of what may change are
in service/units/commands.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, field_validator

from rules.evaluate import CompiledPolicy
from service.store.tables import not_ahead

UNIT_ID = r"^[A-Za-z0-9._-]{1,40}$"
# The program a one-team policy's units belong to (its one program has the policy's id).
ONE_TEAM = "team"
CAPABILITY = r"^[a-z][a-z0-9_]{0,39}$"

UnitStatus = Literal["available", "assigned", "en_route", "on_scene", "backup_requested",
                     "off_duty"]
PositionSource = Literal["device", "avl"]
Capability = Annotated[str, StringConstraints(pattern=CAPABILITY)]
Member = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                          max_length=120)]


class Position(BaseModel):
    """Where a unit was: WGS 84 degrees, how sure (metres), when, and who said."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    at: AwareDatetime
    source: PositionSource


class Unit(BaseModel):
    """A unit on the roster, with its status and call derived from the team's status
    changes (the calls whose `unit` names it and are not cleared)."""

    id: str = Field(pattern=UNIT_ID)
    agency: str = Field(default="default", description="the agency whose team it is")
    program_id: str
    call_sign: str
    members: list[str]
    capabilities: list[str]
    on_duty: bool
    duty_since: AwareDatetime | None
    status: UnitStatus
    call_id: str | None = Field(description="the call it is on, if any")
    position: Position | None = Field(description="its latest position, if it is kept")


class UnitInput(BaseModel):
    """A supervisor's create or update (PUT /v1/units/{id}): the whole unit."""

    model_config = {"extra": "forbid"}

    program_id: str = Field(min_length=1, max_length=120,
                            description="a program of the policy in force (a one-team "
                                        "policy: `team`)")
    call_sign: str = Field(default="", max_length=80, description="absent: the id")
    members: list[Member] = Field(default_factory=list, max_length=20)
    capabilities: list[Capability] = Field(
        default_factory=list, max_length=30,
        description="words such as clinician, peer, emt, youth_trained, wheelchair_lift")
    on_duty: bool | None = Field(default=None, description="absent: unchanged (a new unit: "
                                                           "off duty)")


class DutyChange(BaseModel):
    model_config = {"extra": "forbid"}

    on_duty: bool
    at: AwareDatetime | None = Field(
        default=None, description="when the unit signed on or off, if not now (a sign-on "
                                  "noted late); not before its last spell on duty")

    @field_validator("at")
    @classmethod
    def _not_ahead(cls, v: AwareDatetime | None) -> AwareDatetime | None:
        return None if v is None else not_ahead(v, "a change of duty cannot be in the future")


class DevicePosition(BaseModel):
    """A team member's device says where its unit is (POST /v1/units/{id}/position)."""

    model_config = {"extra": "forbid"}

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    at: AwareDatetime

    @field_validator("at")
    @classmethod
    def _not_ahead(cls, v: AwareDatetime) -> AwareDatetime:
        return not_ahead(v, "a position cannot be from the future")


class AvlPosition(DevicePosition):
    unit_id: str = Field(pattern=UNIT_ID)


class AvlPositions(BaseModel):
    """An AVL feed's batch (POST /v1/units/positions)."""

    model_config = {"extra": "forbid"}

    positions: list[AvlPosition] = Field(min_length=1, max_length=1000)


class Retention(BaseModel):
    """How long positions are kept: older ones are deleted by the field sweeper; 0 keeps
    none but each on-duty unit's latest."""

    model_config = {"extra": "forbid"}

    position_retention_hours: float = Field(ge=0, le=24 * 366)


DEFAULT_RETENTION_S = 24 * 3600


def roster_programs(policy: CompiledPolicy) -> list[str]:
    """The programs a unit may belong to under `policy`: its programs (in field or
    co-response work, or by phone), or `team` for a one-team policy."""
    if not policy.programs.named:
        return [ONE_TEAM]
    return [p.id for p in policy.programs.programs]
