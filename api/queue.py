"""The response programs and the calls waiting for them (issue 13), for those who may
open the board: each program's hours, units and queue (GET /v1/programs), and the
waiting calls in the order a free unit takes them (GET /v1/queue). A queue entry is a
call summary, narrowed for the reader by service/calls/visibility.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.access import Principal, Role, allow
from api.agency_scope import AgencyPolicy
from api.deps import RuntimeDep
from service.calls.visibility import call_view
from service.lifecycle.queue_view import programs_view, queue_entries, read_queue

router = APIRouter(prefix="/v1", tags=["program"])

# Those who may open the board (api/board.py).
BoardReader = Annotated[Principal, allow(Role.call_team, Role.dispatcher, Role.supervisor)]


class ProgramNow(BaseModel):
    id: str
    name: str
    mode: Literal["field", "phone", "co_response", "transfer"]
    hours: str = Field(description="its shifts as a person reads them, in the policy's zone")
    on_duty: bool = Field(description="within a shift at `at`")
    units_total: int | None = Field(description="units on shift; null: not limited by units")
    units_from: Literal["roster", "policy"] = Field(
        description="roster: the units on duty on its roster; policy: the policy's count")
    units_busy: int = Field(description="units held by live open calls")
    queued: int = Field(description="calls waiting for its next free unit")
    deferred: int = Field(description="calls scheduled for a shift of it")
    next_shift_start: str | None = Field(description="the start of its next shift, in the "
                                         "policy's zone; null: at all hours, or none ahead")


class ProgramsNow(BaseModel):
    policy_version: str
    timezone: str
    at: str = Field(description="the queue's clock: the CAD time of the event received "
                    "last plus the time since (live, now)")
    programs: list[ProgramNow] = Field(description="in the order calls are offered to them")


class WaitingSummary(BaseModel):
    """The call as a board shows it (no narrative), as the reader may see it."""

    model_config = ConfigDict(extra="allow")

    incident_id: str
    channel: str
    nature_code: str
    nature_text: str
    priority: int | None
    category: str | None
    address: str | None
    district: str | None
    flags: list[str]
    opened_at: str
    withheld: list[str] = Field(default=[], description="what the reader may not see")


class ProgramRef(BaseModel):
    id: str
    name: str | None = Field(description="null: no longer in the policy in force")


class WaitingCall(BaseModel):
    call_id: str
    call: WaitingSummary
    program: ProgramRef
    kind: Literal["queued", "deferred"] = Field(description="queued: for the next free "
                                                "unit; deferred: for a shift")
    since: str = Field(description="queued: when it began to wait; deferred: the start "
                       "of the shift it is scheduled for (CAD time)")
    deadline: str | None = Field(description="when it falls back to the next program or "
                                 "police; null for a deferred call (never)")
    seconds_left: int | None = Field(description="until the deadline, at `at`")
    position: int | None = Field(description="its place in its program's queue (1 is "
                                 "taken next); null for a deferred call before its shift")


class QueueNow(BaseModel):
    at: str = Field(description="the queue's clock (see GET /v1/programs)")
    calls: list[WaitingCall] = Field(description="per program in policy order, in the "
                                     "order a free unit takes them")


@router.get("/programs", summary="The response programs in force now: hours, on duty, "
            "units busy, calls queued and deferred, next shift")
async def programs(rt: RuntimeDep, who: BoardReader, policy: AgencyPolicy) -> ProgramsNow:
    now = await read_queue(rt.engine, policy)
    return ProgramsNow(policy_version=policy.version,
                       timezone=policy.policy.program.timezone, at=now.at.isoformat(),
                       programs=[ProgramNow.model_validate(p)
                                 for p in programs_view(policy, now)])


@router.get("/queue", summary="The calls waiting for a program (queued or deferred), in "
            "the order a free unit takes them")
async def queue(rt: RuntimeDep, who: BoardReader, policy: AgencyPolicy) -> QueueNow:
    now = await read_queue(rt.engine, policy)
    calls: list[dict[str, Any]] = []
    for item in queue_entries(policy, now):
        seen = call_view({"call": item["call"]}, who)["call"]
        calls.append({**item, "call": seen})
    return QueueNow(at=now.at.isoformat(),
                    calls=[WaitingCall.model_validate(c) for c in calls])
