"""Changes to the roster, duty and positions: writer commands, so they are ordered with
every other change, audited beside it and told to the board in the same commit
(`{"type": "unit", "unit": Unit}`, docs/board.md).

Unit rows are written straight to the batch's transaction (the batch buffers only a
call's tables); the units on duty per program, which decisions read as capacity, are
read once a batch (`roster_counts`) and read again after a change here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import aliased

from service.errors import Conflict, Invalid, NotFound
from service.store.tables import (
    BOARD,
    DEFAULT_AGENCY,
    UNIT,
    UNIT_DUTY,
    UNIT_POSITION,
    UNIT_SETTING,
    as_utc,
    utcnow,
)
from service.units.models import DevicePosition, PositionSource, Unit, UnitInput
from service.units.queries import on_duty_counts, read_units, retention_seconds
from service.writing.batch import Batch, Keys


async def roster_counts(ctx: Batch, agency: str = DEFAULT_AGENCY) -> dict[str, int]:
    """The agency's units on duty per program that keeps a roster, this batch's
    changes included."""
    if ctx.roster is None:  # not read with the agency's state, or a unit changed since
        ctx.roster = await on_duty_counts(ctx.conn)
    return ctx.roster.get(agency, {})


async def units_in_batch(ctx: Batch, ids: Iterable[str]) -> list[Unit]:
    """Units as this batch leaves them (its unflushed calls laid over the stored ones)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return []
    return await read_units(ctx.conn, ids=wanted, retired=True, overlay=ctx.calls)


async def announce(ctx: Batch, ids: Iterable[str], *, retired: bool = False) -> list[Unit]:
    """Tell the board how these units stand now; units not on the roster are skipped
    (a status change may name a unit nobody keeps)."""
    units = await units_in_batch(ctx, ids)
    now = utcnow().isoformat()
    for unit in units:
        message: dict[str, Any] = {"type": "unit", "call_id": None, "at": now,
                                   "unit": unit.model_dump(mode="json")}
        if retired:
            message["retired"] = True
        ctx.board("", "unit", message, agency=unit.agency)  # its agency's boards only
    return units


async def _row(ctx: Batch, unit_id: str) -> dict[str, Any] | None:
    row = (await ctx.conn.execute(select(UNIT).where(UNIT.c.id == unit_id))).mappings().first()
    return dict(row) if row else None


def _changed(ctx: Batch) -> None:
    ctx.wrote = True
    ctx.roster = None  # read again (the change is in the transaction) when next asked


# -- spells on duty (migration 0024): what the figures read as a unit's hours on duty ----


async def _sign_on(ctx: Batch, unit_id: str, program_id: str, at: datetime) -> None:
    await ctx.conn.execute(insert(UNIT_DUTY), {"unit_id": unit_id, "program_id": program_id,
                                               "on_at": at, "off_at": None})


async def _sign_off(ctx: Batch, unit_id: str, at: datetime) -> None:
    d = UNIT_DUTY.c
    await ctx.conn.execute(update(UNIT_DUTY).where(d.unit_id == unit_id, d.off_at.is_(None))
                           .values(off_at=at))


async def _check_duty_time(ctx: Batch, unit_id: str, on: bool, at: datetime) -> None:
    """A change told with its time must not overlap the unit's spells: signing on not
    before its last spell ended, signing off not before its spell began."""
    d = UNIT_DUTY.c
    if on:
        last = (await ctx.conn.execute(select(func.max(d.off_at))
                                       .where(d.unit_id == unit_id))).scalar()
        if last is not None and as_utc(last) > at:
            raise Invalid("at", f"unit {unit_id} was on duty until "
                                f"{as_utc(last).isoformat()}: it cannot sign on before that")
    else:
        began = (await ctx.conn.execute(select(d.on_at).where(
            d.unit_id == unit_id, d.off_at.is_(None)))).scalar()
        if began is not None and as_utc(began) > at:
            raise Invalid("at", f"unit {unit_id} signed on at {as_utc(began).isoformat()}: "
                                "it cannot sign off before that")


@dataclass
class PutUnit:
    """Create or update a unit (a retired one comes back). The program was checked
    against the policy in force by the caller."""

    unit_id: str
    unit: UnitInput
    agency: str = DEFAULT_AGENCY  # whose team it is (its program is that agency's)

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> tuple[Unit, bool]:
        now = utcnow()
        before = await _row(ctx, self.unit_id)
        if before is not None and before["agency_id"] != self.agency:
            raise Conflict(f"unit {self.unit_id} is agency {before['agency_id']}'s; give "
                           "this unit another id")
        u = self.unit
        values: dict[str, Any] = {"agency_id": self.agency,
            "program_id": u.program_id, "call_sign": u.call_sign.strip() or self.unit_id,
            "members": json.dumps(list(u.members)),
            "capabilities": json.dumps(sorted(set(u.capabilities))),
            "retired": False, "updated_at": now}
        was_on = bool(before and before["on_duty"] and not before["retired"])
        on = was_on if u.on_duty is None else u.on_duty
        values["on_duty"] = on
        if on != was_on:
            values["duty_since"] = now if on else None
        if before is None:
            await ctx.conn.execute(insert(UNIT), {"id": self.unit_id, "duty_since": None,
                                                  **values})
        else:
            await ctx.conn.execute(update(UNIT).where(UNIT.c.id == self.unit_id)
                                   .values(**values))
        # Its spell: closed when it goes off duty or moves to another program on duty
        # (the hours before count for the program it was in), opened for the new one.
        moved = before is not None and before["program_id"] != u.program_id
        if was_on and (not on or moved):
            await _sign_off(ctx, self.unit_id, now)
        if on and (not was_on or moved):
            await _sign_on(ctx, self.unit_id, u.program_id, now)
        _changed(ctx)
        [unit] = await announce(ctx, [self.unit_id])
        return unit, before is None or bool(before["retired"])


@dataclass
class RetireUnit:
    """Take a unit off the roster (kept for the record): off duty, no longer counted."""

    unit_id: str

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> Unit:
        before = await _row(ctx, self.unit_id)
        if before is None or before["retired"]:
            raise NotFound(f"no unit {self.unit_id}")
        now = utcnow()
        await ctx.conn.execute(update(UNIT).where(UNIT.c.id == self.unit_id).values(
            retired=True, on_duty=False, duty_since=None, updated_at=now))
        await _sign_off(ctx, self.unit_id, now)
        _changed(ctx)
        [unit] = await announce(ctx, [self.unit_id], retired=True)
        return unit


@dataclass
class SetDuty:
    """A unit signs on or off (at `at`, if told, else now): its spell on duty opens or
    closes with it. Signing on again while on duty keeps its `duty_since`."""

    unit_id: str
    on_duty: bool
    at: datetime | None = None

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> tuple[Unit, bool]:
        """The unit, and whether its duty changed."""
        before = await _row(ctx, self.unit_id)
        if before is None or before["retired"]:
            raise NotFound(f"no unit {self.unit_id}")
        changed = bool(before["on_duty"]) != self.on_duty
        if changed:
            now = utcnow()
            at = min(self.at, now) if self.at is not None else now
            await _check_duty_time(ctx, self.unit_id, self.on_duty, at)
            await ctx.conn.execute(update(UNIT).where(UNIT.c.id == self.unit_id).values(
                on_duty=self.on_duty, duty_since=at if self.on_duty else None,
                updated_at=now))
            if self.on_duty:
                await _sign_on(ctx, self.unit_id, before["program_id"], at)
            else:
                await _sign_off(ctx, self.unit_id, at)
            _changed(ctx)
            [unit] = await announce(ctx, [self.unit_id])
        else:
            [unit] = await units_in_batch(ctx, [self.unit_id])
        return unit, changed


@dataclass
class AddPositions:
    """Positions of units: from a team member's device (its unit must be on duty) or an
    AVL feed (any unit on the roster). Every unit named must be on the roster; the
    first that is not refuses the whole batch, naming its index."""

    positions: list[tuple[str, DevicePosition]]
    source: PositionSource

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> list[Unit]:
        ids = sorted({uid for uid, _ in self.positions})
        rows = {r["id"]: r for r in (await ctx.conn.execute(
            select(UNIT.c.id, UNIT.c.on_duty).where(UNIT.c.id.in_(ids),
                                                    UNIT.c.retired.is_(False)))).mappings()}
        for i, (uid, _) in enumerate(self.positions):
            if uid not in rows:
                field = "unit_id" if self.source == "device" else f"positions[{i}].unit_id"
                raise NotFound(f"no unit {uid}", field=field)
            if self.source == "device" and not rows[uid]["on_duty"]:
                raise Conflict(f"unit {uid} is off duty: a device shares its position only "
                               "while its unit is on duty", unit_id=uid)
        now = utcnow()
        await ctx.conn.execute(insert(UNIT_POSITION), [
            {"unit_id": uid, "lat": p.lat, "lon": p.lon, "accuracy_m": p.accuracy_m,
             "at": p.at, "source": self.source, "received_at": now}
            for uid, p in self.positions])
        ctx.wrote = True
        return await announce(ctx, ids)


@dataclass
class SetRetention:
    """How long positions are kept (seconds; 0: none but each on-duty unit's latest)."""

    seconds: int
    by: str

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> int:
        before = await retention_seconds(ctx.conn)
        values = {"position_retention_s": self.seconds, "updated_at": utcnow(),
                  "updated_by": self.by}
        done = await ctx.conn.execute(update(UNIT_SETTING).where(UNIT_SETTING.c.id == 1)
                                      .values(**values))
        if done.rowcount == 0:
            await ctx.conn.execute(insert(UNIT_SETTING), {"id": 1, **values})
        ctx.wrote = True
        return before


# The board's unit messages carry positions too; they are kept at least this long, so
# every instance's hub has read them before they go (it polls every second).
BOARD_GRACE = timedelta(seconds=60)


async def forget_positions(ctx: Batch, now: datetime) -> int:
    """Delete the positions older than the retention, but each on-duty unit's latest (a
    unit off duty keeps none once they are older), and the board's unit messages as old
    (a board opening gets the roster from the snapshot). Run by the field sweeper."""
    keep_for = await retention_seconds(ctx.conn)
    cutoff = now - timedelta(seconds=keep_for)
    # Unit messages are the rows without a call (`call_id` ''): found on its index. The
    # board's newest row stays, whatever its age: SQLite numbers a new row one past the
    # largest left, so deleting the newest would hand the next message a seq the boards
    # have already seen, and they would skip it.
    old_messages = await ctx.conn.execute(delete(BOARD).where(
        BOARD.c.call_id == "", BOARD.c.type == "unit",
        BOARD.c.created_at < min(cutoff, now - BOARD_GRACE),
        BOARD.c.seq < select(func.max(BOARD.c.seq)).scalar_subquery()))
    if old_messages.rowcount:
        ctx.wrote = True
    p, u = UNIT_POSITION.c, UNIT.c
    q = aliased(UNIT_POSITION)
    latest_on_duty = (select(p.id).join(UNIT, u.id == p.unit_id)
                      .where(u.on_duty.is_(True), u.retired.is_(False),
                             p.at == select(func.max(q.c.at)).where(q.c.unit_id == p.unit_id)
                             .scalar_subquery()))
    done = await ctx.conn.execute(delete(UNIT_POSITION).where(
        and_(p.at < cutoff, p.id.not_in(latest_on_duty))))
    if done.rowcount:
        ctx.wrote = True
    return int(done.rowcount or 0)
