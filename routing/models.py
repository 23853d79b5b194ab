"""Who responds: the decision and the facts about the team that shaped it."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field


class Destination(StrEnum):
    call_team = "call_team"
    police = "police"
    joint = "joint"
    crisis_center = "crisis_center"  # transferred to a crisis centre (988): a transfer record


class Mode(StrEnum):
    call_direct = "call_direct"  # phase 3: the team goes alone, asks police only as needed
    call_with_police_standby = "call_with_police_standby"  # phase 2: officer in the vicinity
    co_response = "co_response"  # phase 1, or a joint rule: team and police together
    police_only = "police_only"
    transfer = "transfer"  # the call is offered to a crisis centre's counsellors


UnitsFrom = Literal["roster", "policy"]
NotServedReason = Literal["off_hours", "units_busy", "override", "wait_exceeded",
                          "outside_area"]
# `no_agency`: no agency claims the call, or its agency has no policy in force
# (routing/jurisdiction.py): police, the safe default.
Basis = Literal["rule", "exclusion", "no_rule", "evaluation_error", "no_agency"]


class Availability(BaseModel):
    """The team's capacity at decision time; an input, so a replay can supply it."""

    units_total: int = Field(ge=0)
    units_busy: int = Field(ge=0)
    # Where `units_total` came from: the units on duty on the roster, or the policy.
    units_from: UnitsFrom = "policy"

    @property
    def units_free(self) -> int:
        return max(self.units_total - self.units_busy, 0)


class ProgramState(BaseModel):
    """One response program's state at decision time, an input as `Availability` is:
    its units busy with live calls and the calls already waiting for it."""

    units_busy: int = Field(default=0, ge=0)
    queued: int = Field(default=0, ge=0)
    units_on_duty: int | None = Field(
        default=None, ge=0, description="its units on duty on the roster; None: it keeps "
                                        "no roster, and the policy's `units` count")

    def capacity(self, policy_units: int | None) -> int | None:
        """Its units: those on duty on the roster when it keeps one, else the policy's."""
        return policy_units if self.units_on_duty is None else self.units_on_duty


class ProgramContext(BaseModel):
    """The program settings that were in force when the decision was made."""

    phase: int
    timezone: str
    hours: str
    local_time: str
    within_hours: bool
    units_total: int
    units_busy: int
    units_from: UnitsFrom = Field(default="policy", description="where `units_total` came "
                                  "from: the units on duty on the roster, or the policy")
    id: str | None = Field(default=None, description="the program that took the call, or "
                                                     "the first one tried")
    name: str | None = None


class Queued(BaseModel):
    """The call waits for the program's next free unit."""

    since: AwareDatetime = Field(description="when it began to wait (CAD time)")
    wait_limit_s: int = Field(description="after this many seconds it falls back")
    position: int = Field(ge=1, description="its place in the program's queue when decided")


class Aid(BaseModel):
    """Mutual aid: another agency's program took the call (issue 17). The call stays its
    own agency's; the unit, its hours and its count are the helping agency's."""

    agency: str = Field(description="the helping agency")
    program: str = Field(description="its program that took the call (`program.id`)")


class Override(BaseModel):
    by: str
    reason: str
    from_destination: Destination
    from_mode: Mode
    at: AwareDatetime


class Backup(BaseModel):
    """The team on scene asked for police: the call became a joint response."""

    by: str | None
    reason: str | None
    from_destination: Destination
    from_mode: Mode
    at: AwareDatetime


class Decision(BaseModel):
    """A routing recommendation that explains itself."""

    destination: Destination
    mode: Mode
    category: str | None
    policy_version: str
    matched_rules: list[str]
    explanation: str
    basis: Basis
    eligible: bool = Field(description="the call was eligible for the CALL team")
    not_served_reason: NotServedReason | None = Field(
        default=None, description="why an eligible call did not go to the team"
    )
    factors: list[str] = Field(description="each step of the explanation, in order")
    needs_field_unit: bool = Field(
        default=True, description="a team response occupies a field unit (not phone-only work)")
    program: ProgramContext
    decided_at: AwareDatetime = Field(description="the CAD time the decision is based on")
    override: Override | None = None
    backup: Backup | None = Field(default=None,
                                  description="set when the team requested police backup")
    queued: Queued | None = Field(default=None, description="waiting for a unit of "
                                  "`program.id`; it holds none meanwhile")
    deferred_until: AwareDatetime | None = Field(
        default=None, description="scheduled for the start of `program.id`'s next shift")
    refused_programs: list[str] = Field(
        default_factory=list, description="transfer programs (crisis centres) that "
                                          "declined or returned this call: not tried again")
    aid: Aid | None = Field(default=None, description="mutual aid: another agency's "
                            "program (`program`) took the call")

    @property
    def involves_team(self) -> bool:
        return self.destination in (Destination.call_team, Destination.joint)


class DecisionView(Decision):
    """A decision as one reader sees it (service/calls/visibility.py)."""

    withheld: list[str] | None = Field(
        default=None, description="what was held back from this reader (e.g. "
                                  "backup_reason); absent for those who see everything")
