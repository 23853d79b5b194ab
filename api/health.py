from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.access import public
from api.deps import RuntimeDep

router = APIRouter(prefix="/v1", tags=["health"], dependencies=[public()])


class PolicyState(BaseModel):
    version: str
    phase: int
    timezone: str = Field(description="the program's: a replay warns when an export's differs")
    reload_error: str | None = Field(description="why the last re-read of the policy file "
                                                 "was refused (the policy in force stays)")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    problems: list[str] = Field(description="what is wrong; empty when ready")
    policy: PolicyState = Field(description="the default agency's policy in force")
    agencies: dict[str, str | None] = Field(
        default_factory=dict, description="each agency's policy version in force (null: "
        "none yet): every instance on one database should say the same")
    database: str = Field(description="sqlite or postgresql")
    board_seq: int = Field(description="the last board message's seq")
    eido_subscriber: dict[str, Any] | None = Field(
        description="the EIDO subscription's state (adapters/eido/subscriber.py), when one "
                    "is configured")


@router.get("/health", summary="Ready when the database answers, writes work and a policy is "
            "in force", response_model=Health,
            responses={503: {"model": Health, "description": "not ready: `problems` says why"}})
async def health(rt: RuntimeDep, response: Response) -> dict[str, Any]:
    # The database answers within health_timeout, and writes work (service/writing/health.py).
    problems: list[str] = await rt.storage.problems(rt.engine)
    if not rt.writer.running:
        problems.append("the writer has stopped")
    if rt.listener is not None and not rt.listener.connected.is_set():
        problems.append("not listening for live updates from PostgreSQL")
    response.status_code = 200 if not problems else 503
    return {
        "status": "ok" if not problems else "unavailable",
        "problems": problems,
        "policy": {"version": rt.policy.compiled.version,
                   "phase": rt.policy.compiled.policy.program.phase,
                   # A replay warns when a city's export is in another zone than the hours.
                   "timezone": rt.policy.compiled.policy.program.timezone,
                   "reload_error": str(rt.policy.last_error) if rt.policy.last_error else None},
        "agencies": {a: (p.version if (p := rt.region.policy_of(a)) else None)
                     for a in sorted(rt.region.jurisdictions.agencies)},
        "database": rt.engine.dialect.name,
        "board_seq": rt.hub.last_seq,
        "eido_subscriber": rt.eido_subscriber.status() if rt.eido_subscriber else None,
    }
