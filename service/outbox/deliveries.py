"""Where a call's deliveries stand, the failed ones across calls, and sending one again
(a writer command)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.errors import Conflict, NotFound
from service.outbox.rows import FAILED, PENDING
from service.store.tables import OUTBOX, as_utc, iso_utc, utcnow
from service.writing.batch import Batch, Keys


async def call_deliveries(conn: AsyncConnection, call_id: str) -> list[dict[str, Any]]:
    """A call's deliveries in sequence order, with where each one stands."""
    o = OUTBOX.c
    rows = (await conn.execute(
        select(o.id, o.delivery_id, o.cause, o.event_id, o.status, o.attempts,
               o.last_status_code, o.last_error, o.created_at, o.last_attempt_at,
               o.next_attempt_at, o.delivered_at)
        .where(o.call_id == call_id).order_by(o.id))).mappings()

    out = []
    for r in rows:
        failed_at, next_attempt_at = _status_times(r["status"], r["last_attempt_at"],
                                                   r["next_attempt_at"])
        out.append({
            "sequence": r["id"], "delivery_id": r["delivery_id"], "cause": r["cause"],
            "event_id": r["event_id"], "status": r["status"], "attempts": r["attempts"],
            "last_status_code": r["last_status_code"], "last_error": r["last_error"],
            "created_at": iso_utc(r["created_at"]),
            "last_attempt_at": iso_utc(r["last_attempt_at"]),
            "next_attempt_at": iso_utc(next_attempt_at),
            "delivered_at": iso_utc(r["delivered_at"]), "failed_at": iso_utc(failed_at)})
    return out


def _status_times(status: str, last_attempt_at: datetime | None, next_attempt_at: datetime
                  ) -> tuple[datetime | None, datetime | None]:
    """(failed_at, next_attempt_at) as shown: a delivery fails when its last attempt's
    answer is recorded; only a pending one has a next attempt."""
    return (as_utc(last_attempt_at) if status == FAILED and last_attempt_at else None,
            as_utc(next_attempt_at) if status == PENDING else None)


# -- deliveries across calls: finding the failed ones, sending one again ---------------

_SUMMARY = (OUTBOX.c.id, OUTBOX.c.delivery_id, OUTBOX.c.call_id, OUTBOX.c.cause,
            OUTBOX.c.status, OUTBOX.c.attempts, OUTBOX.c.last_error,
            OUTBOX.c.last_status_code, OUTBOX.c.last_attempt_at, OUTBOX.c.next_attempt_at)


def _summary(row: Any) -> dict[str, Any]:
    """A delivery as the deliveries API shows it (api/deliveries.py `Delivery`)."""
    failed_at, next_attempt_at = _status_times(row.status, row.last_attempt_at,
                                               row.next_attempt_at)
    return {"sequence": row.id, "delivery_id": row.delivery_id, "call_id": row.call_id,
            "cause": row.cause, "status": row.status, "attempts": row.attempts,
            "last_error": row.last_error, "last_status_code": row.last_status_code,
            "failed_at": failed_at, "next_attempt_at": next_attempt_at}


async def deliveries_with_status(conn: AsyncConnection, status: str, *, after: int = 0,
                                 limit: int = 100) -> list[dict[str, Any]]:
    """Deliveries of every call with this status, in sequence order after `after`."""
    o = OUTBOX.c
    rows = await conn.execute(select(*_SUMMARY).where(o.status == status, o.id > after)
                              .order_by(o.id).limit(limit))
    return [_summary(r) for r in rows]


@dataclass(frozen=True)
class RetryDelivery:
    """A writer command: a failed delivery back in line, due now, with a fresh give-up
    clock. Its attempts and last error stay, so the record shows it failed before."""

    delivery_id: str

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        o = OUTBOX.c
        row = (await ctx.conn.execute(
            select(*_SUMMARY).where(o.delivery_id == self.delivery_id))).first()
        if row is None:
            raise NotFound(f"no delivery {self.delivery_id}")
        if row.status != FAILED:
            raise Conflict(f"delivery {self.delivery_id} is {row.status}; only a failed "
                           "delivery can be retried", status=row.status)
        await ctx.conn.execute(update(OUTBOX).where(o.id == row.id, o.status == FAILED)
                               .values(status=PENDING, next_attempt_at=utcnow(),
                                       failing_since=None))
        retried = await ctx.conn.execute(select(*_SUMMARY).where(o.id == row.id))
        return _summary(retried.one())
