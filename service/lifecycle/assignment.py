"""The recommended unit for a team call, from the live roster (routing/recommend.py
decides; this reads the units, their loads and the policy's requirements), and the
assignment that keeps the recommendation given beside the unit sent.

A call's recommendation is computed when asked (GET /v1/calls/{id}, its
`/recommendation`, the pages after a `unit` or `decision` message): positions and
statuses move all the time, so a recommendation stored on the call would be stale by
the first move. At the assignment it is computed once more, in the writer's
transaction, and kept (migration 0022).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from routing.models import Destination
from routing.recommend import (
    SPEED_KMH_DEFAULT,
    STALE_AFTER_DEFAULT,
    Recommendation,
    UnitCandidate,
    recommend,
)
from rules.evaluate import CompiledPolicy
from service.lifecycle.team import StatusChange
from service.store.tables import ASSIGNMENT, CALL, as_utc, iso_utc, utcnow
from service.units.models import ONE_TEAM, Unit
from service.units.queries import read_units
from service.writing.batch import Batch


@dataclass(frozen=True)
class RecommendSettings:
    """LIAISON_RECOMMEND_SPEED_KMH and LIAISON_RECOMMEND_STALE_MINUTES."""

    speed_kmh: float = SPEED_KMH_DEFAULT
    stale_after: timedelta = STALE_AFTER_DEFAULT


@dataclass(frozen=True)
class Target:
    """Whose units may take the call, and what its category asks of them."""

    roster_program: str
    needs: list[str]


@dataclass(frozen=True)
class _Point:
    lat: float | None
    lon: float | None


def target_of(policy: CompiledPolicy, call: Mapping[str, Any],
              decision: Mapping[str, Any]) -> Target | None:
    """The roster program and capabilities for an open team call nobody has taken, in the
    field (a phone program sends no unit); None otherwise."""
    if call.get("closed_at") is not None or call.get("team_status") is not None:
        return None
    if decision.get("destination") not in (Destination.call_team, Destination.joint):
        return None
    programs = policy.programs
    at = programs.position(decision.get("program", {}).get("id"))
    if at is None:  # a program a newer policy dropped: nobody to recommend
        return None
    program = programs.programs[at]
    if program.mode == "phone":
        return None
    return Target(roster_program=program.id if programs.named else ONE_TEAM,
                  needs=program.needs(call.get("category")))


def candidates(units: Sequence[Unit], loads: Mapping[str, int]) -> list[UnitCandidate]:
    return [UnitCandidate(
        id=u.id, call_sign=u.call_sign, capabilities=frozenset(u.capabilities),
        status=u.status, load=loads.get(u.id, 0),
        lat=u.position.lat if u.position else None,
        lon=u.position.lon if u.position else None,
        position_at=u.position.at if u.position else None) for u in units]


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    """The start of `now`'s day in the policy's zone: a unit's load counts from there."""
    return now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)


async def loads_today(conn: AsyncConnection, ids: Sequence[str], since: datetime
                      ) -> dict[str, int]:
    """Live calls each unit was assigned since `since`: from the assignments (indexed by
    time; the call table has no index on when a call was assigned)."""
    if not ids:
        return {}
    a, c = ASSIGNMENT.c, CALL.c
    rows = await conn.execute(
        select(a.assigned_unit, func.count()).join(CALL, c.id == a.call_id)
        .where(a.at >= since, a.assigned_unit.is_not(None), c.purpose == "live")
        .group_by(a.assigned_unit))
    wanted = set(ids)
    return {str(unit): int(n) for unit, n in rows if unit in wanted}


async def recommend_in(conn: AsyncConnection, policy: CompiledPolicy,
                       call: Mapping[str, Any], decision: Mapping[str, Any],
                       settings: RecommendSettings, *, now: datetime,
                       overlay: Mapping[str, Mapping[str, Any]] | None = None
                       ) -> Recommendation | None:
    """The recommendation for a call (a stored row, or a view's `call` with `location`),
    None when it is not an open team field call nobody has taken."""
    target = target_of(policy, call, decision)
    if target is None:
        return None
    # The call's agency's team only (issue 17): its policy's programs are that team's.
    units = await read_units(conn, program=target.roster_program, overlay=overlay,
                             agency=policy.agency)
    loads = await loads_today(conn, [u.id for u in units], local_midnight(now, policy.zone))
    where = call.get("location") or call
    return recommend(_Point(where.get("lat"), where.get("lon")), target.needs,
                     candidates(units, loads), speed_kmh=settings.speed_kmh, now=now,
                     stale_after=settings.stale_after)


async def recommendation_for(engine: AsyncEngine, policy: CompiledPolicy,
                             call: Mapping[str, Any], decision: Mapping[str, Any],
                             settings: RecommendSettings) -> Recommendation | None:
    async with engine.connect() as conn:
        return await recommend_in(conn, policy, call, decision, settings, now=utcnow())


async def record_assignment(ctx: Batch, policy: CompiledPolicy, call: Mapping[str, Any],
                            change: StatusChange, settings: RecommendSettings,
                            *, at: datetime) -> dict[str, Any]:
    """Keep the recommendation as it stands at the assignment (the call as it was before,
    still unassigned) with the unit sent. Called by ChangeStatus once the change is
    allowed, before the call is saved as assigned. A call another agency helps with by
    mutual aid is recommended that agency's units, by its policy in force."""
    decision = json.loads(call["decision"])
    lender = (decision.get("aid") or {}).get("agency")
    if lender and ctx.region is not None and lender in ctx.region.policies:
        policy = ctx.region.policies[lender]
    given = await recommend_in(ctx.conn, policy, call, decision, settings, now=at,
                               overlay=ctx.calls)
    row = {"call_id": call["id"], "at": at, "assigned_unit": change.unit,
           "recommended_unit": given.unit_id if given else None,
           "distance_km": given.distance_km if given else None,
           "eta_minutes": given.eta_minutes if given else None,
           "basis": given.basis if given else None,
           "reason": given.reason if given else "no recommendation for this call",
           "taken": bool(given and given.unit_id and given.unit_id == change.unit),
           "by": change.by}
    await ctx.conn.execute(insert(ASSIGNMENT), row)
    ctx.wrote = True
    return assignment_view(row)


def assignment_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"assigned_unit": row["assigned_unit"], "recommended_unit": row["recommended_unit"],
            "distance_km": row["distance_km"], "eta_minutes": row["eta_minutes"],
            "basis": row["basis"], "reason": row["reason"], "taken": bool(row["taken"]),
            "at": iso_utc(as_utc(row["at"])), "by": row["by"]}


async def get_assignment(engine: AsyncEngine, call_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(ASSIGNMENT).where(ASSIGNMENT.c.call_id == call_id))
               ).mappings().first()
    return assignment_view(dict(row)) if row else None
