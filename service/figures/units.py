"""Units' utilisation (issue 14): per unit, its hours on duty in the range (its spells,
migration 0024, clipped to the range; an open spell counts to the range's end or now,
whichever is sooner), the hours it was busy on calls and the calls it took; and per
program that keeps a roster, its units' hours on duty (the program's available
unit-hours, instead of the policy's unit count times its shift hours).

Busy: a call in scope (opened in the range, live, of the district if one is asked) whose
`unit` names the unit, from when it was assigned (its first status time: assigned, en
route, on scene) to when the team cleared it or the CAD closed it (still open: the
range's end or now), clipped to the range, as the program's `held` time is. Unit ids
and call signs only: never members' names (SECURITY.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from service.store.tables import CALL, UNIT, UNIT_DUTY, as_utc


class UnitUtilisationRow(BaseModel):
    unit: str
    call_sign: str | None = Field(description="null: a unit a status change named that is "
                                              "not on the roster")
    program: str | None
    duty_hours: float | None = Field(description="on duty within the range; null: no roster "
                                                 "record")
    busy_hours: float = Field(description="from assigned to cleared or closed, within the "
                                          "range")
    calls: int = Field(description="calls in scope the unit was on")
    utilisation: float | None = Field(description="busy of duty hours")


def _clipped(start: datetime, end: datetime, lo: datetime, hi: datetime) -> float:
    """Seconds of [start, end) within [lo, hi)."""
    return max(0.0, (min(end, hi) - max(start, lo)).total_seconds())


def _busy_from(r: Any) -> datetime | None:
    times = [as_utc(t) for t in (r.assigned_at, r.en_route_at, r.on_scene_at) if t]
    return min(times) if times else None


async def duty_seconds(conn: AsyncConnection, lo: datetime, hi: datetime,
                       agency: str | None = None
                       ) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds on duty within [lo, hi): per unit, and per program of the spells (of one
    agency's units, when given)."""
    d = UNIT_DUTY.c
    query = select(d.unit_id, d.program_id, d.on_at, d.off_at).where(
        d.on_at < hi, or_(d.off_at.is_(None), d.off_at > lo))
    if agency is not None:
        query = query.where(d.unit_id.in_(select(UNIT.c.id).where(UNIT.c.agency_id == agency)))
    rows = await conn.execute(query)
    per_unit: dict[str, float] = defaultdict(float)
    per_program: dict[str, float] = defaultdict(float)
    for r in rows:
        off = as_utc(r.off_at) if r.off_at is not None else hi
        s = _clipped(as_utc(r.on_at), off, lo, hi)
        per_unit[r.unit_id] += s
        per_program[r.program_id] += s
    return dict(per_unit), dict(per_program)


async def roster_programs(conn: AsyncConnection, agency: str | None = None) -> set[str]:
    """Programs that keep a roster now (any unit not retired; of one agency's units)."""
    u = UNIT.c
    query = select(u.program_id).where(u.retired.is_(False))
    if agency is not None:
        query = query.where(u.agency_id == agency)
    return set((await conn.execute(query.distinct())).scalars())


async def unit_figures(conn: AsyncConnection, where: Sequence[ColumnElement[bool]],
                       lo: datetime, hi: datetime, agency: str | None = None
                       ) -> tuple[list[UnitUtilisationRow], dict[str, float]]:
    """(a row per unit on duty or on a call in the range, by program then unit; seconds
    on duty per program). `where` selects the calls in scope; [lo, hi) is the range,
    `hi` already no later than now; `agency`: its units' duty only."""
    c = CALL.c
    calls = await conn.execute(
        select(c.unit, c.program_id, c.assigned_at, c.en_route_at, c.on_scene_at,
               c.cleared_at, c.closed_at).where(*where, c.unit.is_not(None)))
    busy: dict[str, float] = defaultdict(float)
    taken: dict[str, int] = defaultdict(int)
    call_program: dict[str, str | None] = {}
    for r in calls:
        taken[r.unit] += 1
        call_program.setdefault(r.unit, r.program_id)
        began = _busy_from(r)
        if began is None:
            continue
        freed = r.cleared_at or r.closed_at
        busy[r.unit] += _clipped(began, as_utc(freed) if freed else hi, lo, hi)
    on_duty, per_program = await duty_seconds(conn, lo, hi, agency)
    ids = sorted(set(taken) | set(on_duty))
    u = UNIT.c
    units = {r.id: r for r in (await conn.execute(
        select(u.id, u.call_sign, u.program_id).where(u.id.in_(ids)))).all()} if ids else {}
    out = []
    for uid in ids:
        known = units.get(uid)
        duty = on_duty.get(uid, 0.0) if known else None
        out.append(UnitUtilisationRow(
            unit=uid, call_sign=known.call_sign if known else None,
            program=known.program_id if known else call_program.get(uid),
            duty_hours=None if duty is None else round(duty / 3600, 3),
            busy_hours=round(busy.get(uid, 0.0) / 3600, 3), calls=taken.get(uid, 0),
            utilisation=round(busy.get(uid, 0.0) / duty, 4) if duty else None))
    out.sort(key=lambda row: (row.program or "", row.unit))
    return out, per_program
