"""Reading the roster: units with their derived status, call and latest position, and
the units on duty per program (a program's capacity when it keeps a roster).

A unit's status is never stored twice: it is the team status of the open call whose
`unit` names it and is not cleared (the latest changed, if several), else `available`
on duty and `off_duty` off it. Commands read through the writer's connection with the
batch's unflushed calls laid over the stored ones (`overlay`), so a status change and
the unit message it causes agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.store.tables import CALL, UNIT, UNIT_POSITION, UNIT_SETTING, as_utc
from service.units.models import DEFAULT_RETENTION_S, Position, Unit
from service.writing.batch import ON_DUTY

_ON_A_CALL = (CALL.c.closed_at.is_(None), CALL.c.team_status.is_not(None),
              CALL.c.team_status != "cleared")


def _on_call(row: Mapping[str, Any]) -> bool:
    return (row.get("closed_at") is None and row.get("team_status") is not None
            and row.get("team_status") != "cleared" and bool(row.get("unit")))


async def _calls_of(conn: AsyncConnection, ids: list[str],
                    overlay: Mapping[str, Mapping[str, Any]] | None
                    ) -> dict[str, tuple[str, str, datetime]]:
    """Per unit id: the call it is on (id, team status, updated_at)."""
    c = CALL.c
    rows: dict[str, Mapping[str, Any]] = {}
    if ids:
        found = await conn.execute(select(c.id, c.unit, c.team_status, c.closed_at,
                                          c.updated_at)
                                   .where(c.unit.in_(ids), *_ON_A_CALL))
        rows = {r["id"]: dict(r) for r in found.mappings()}
    if overlay:  # what this batch holds is newer than what is stored
        wanted = set(ids)
        for cid, call in overlay.items():
            if call.get("unit") in wanted or cid in rows:
                rows[cid] = call
    out: dict[str, tuple[str, str, datetime]] = {}
    for cid, r in rows.items():
        if not _on_call(r):
            continue
        unit, at = str(r["unit"]), as_utc(r["updated_at"])
        if unit not in out or (at, cid) > (out[unit][2], out[unit][0]):
            out[unit] = (cid, str(r["team_status"]), at)
    return out


async def _latest_positions(conn: AsyncConnection, ids: list[str]) -> dict[str, Position]:
    """Each unit's latest position: one backward seek on (unit_id, at) per unit, so the
    cost stays flat however many positions the retention keeps (a max() grouped by unit
    reads every kept position of every unit)."""
    if not ids:
        return {}
    p, u = UNIT_POSITION.c, UNIT.c
    newest = (select(UNIT_POSITION.c.id).where(UNIT_POSITION.c.unit_id == u.id)
              .order_by(UNIT_POSITION.c.at.desc(), UNIT_POSITION.c.id.desc()).limit(1)
              .correlate(UNIT).scalar_subquery())
    latest = select(newest.label("pid")).where(u.id.in_(ids)).subquery()
    rows = await conn.execute(
        select(p.unit_id, p.lat, p.lon, p.accuracy_m, p.at, p.source)
        .join(latest, p.id == latest.c.pid))
    return {r.unit_id: Position(lat=r.lat, lon=r.lon, accuracy_m=r.accuracy_m,
                                at=as_utc(r.at), source=r.source) for r in rows}


def _unit(row: Mapping[str, Any], call: tuple[str, str, datetime] | None,
          position: Position | None) -> Unit:
    on_duty = bool(row["on_duty"]) and not row["retired"]
    status = call[1] if call else ("available" if on_duty else "off_duty")
    return Unit(id=row["id"], agency=row["agency_id"], program_id=row["program_id"],
                call_sign=row["call_sign"],
                members=json.loads(row["members"]),
                capabilities=json.loads(row["capabilities"]), on_duty=on_duty,
                duty_since=as_utc(row["duty_since"]) if on_duty and row["duty_since"] else None,
                status=status,  # type: ignore[arg-type]
                call_id=call[0] if call else None,
                # Where a unit is, only while it is on duty: off duty it is a person's.
                position=position if on_duty else None)


async def read_units(conn: AsyncConnection, *, ids: Iterable[str] | None = None,
                     program: str | None = None, on_duty: bool | None = None,
                     retired: bool = False, agency: str | None = None,
                     overlay: Mapping[str, Mapping[str, Any]] | None = None) -> list[Unit]:
    """Units on the roster (with `retired`, those retired too), by id; with `agency`,
    that agency's only."""
    u = UNIT.c
    stmt = select(UNIT)
    if agency is not None:
        stmt = stmt.where(u.agency_id == agency)
    if not retired:
        stmt = stmt.where(u.retired.is_(False))
    if ids is not None:
        stmt = stmt.where(u.id.in_(list(ids)))
    if program is not None:
        stmt = stmt.where(u.program_id == program)
    if on_duty is not None:
        stmt = stmt.where(u.on_duty.is_(on_duty))
    rows = [dict(r) for r in (await conn.execute(stmt.order_by(u.program_id, u.id))).mappings()]
    unit_ids = [r["id"] for r in rows]
    calls = await _calls_of(conn, unit_ids, overlay)
    positions = await _latest_positions(conn, unit_ids)
    return [_unit(r, calls.get(r["id"]), positions.get(r["id"])) for r in rows]


async def list_units(engine: AsyncEngine, program: str | None = None, *,
                     on_duty: bool | None = None, agency: str | None = None) -> list[Unit]:
    """The roster (retired units left out), by program then id; with `agency`, that
    agency's team only."""
    async with engine.connect() as conn:
        return await read_units(conn, program=program, on_duty=on_duty, agency=agency)


async def get_unit(engine: AsyncEngine, unit_id: str) -> Unit | None:
    async with engine.connect() as conn:
        found = await read_units(conn, ids=[unit_id])
    return found[0] if found else None


async def on_duty_counts(conn: AsyncConnection) -> dict[str, dict[str, int]]:
    """Per agency, units on duty per program, for the programs that keep a roster (any
    unit not retired); a program without one is absent (its policy's `units` count)."""
    rows = await conn.execute(ON_DUTY)  # the writer's, read with an agency's state
    counts: dict[str, dict[str, int]] = {}
    for agency, pid, n in rows:
        counts.setdefault(agency, {})[pid] = int(n or 0)
    return counts


async def retention_seconds(conn: AsyncConnection) -> int:
    got = (await conn.execute(select(UNIT_SETTING.c.position_retention_s)
                              .where(UNIT_SETTING.c.id == 1))).scalar()
    return DEFAULT_RETENTION_S if got is None else int(got)


async def retention(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(UNIT_SETTING).where(UNIT_SETTING.c.id == 1))
               ).mappings().first()
    if row is None:
        return {"position_retention_hours": DEFAULT_RETENTION_S / 3600, "updated_at": None,
                "updated_by": None}
    return {"position_retention_hours": row["position_retention_s"] / 3600,
            "updated_at": as_utc(row["updated_at"]).isoformat(),
            "updated_by": row["updated_by"]}
