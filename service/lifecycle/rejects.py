"""Read side of rejected CAD input: what came in, when, and why it was refused."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import NotFound
from service.store.tables import REJECT


def _public(row: Any, *, with_body: bool) -> dict[str, Any]:
    out = {"id": row.id, "source": row.source, "path": row.path, "sender": row.sender,
           "received_at": row.received_at.isoformat(), "errors": json.loads(row.errors)}
    if with_body:
        out["body"] = row.body
    return out


async def list_rejects(engine: AsyncEngine, *, source: str | None = None,
                       since: datetime | None = None, limit: int = 100,
                       before_id: int | None = None,
                       senders: list[str] | None = None) -> dict[str, Any]:
    """Lists rejects, newest first; page with `before_id`; with `senders`, only those
    these keys sent."""
    q = select(REJECT.c.id, REJECT.c.source, REJECT.c.path, REJECT.c.sender,
               REJECT.c.received_at, REJECT.c.errors)
    count = select(func.count()).select_from(REJECT)
    for cond in ([REJECT.c.source == source] if source else []) + (
            [REJECT.c.received_at >= since] if since else []) + (
            [REJECT.c.sender.in_(senders)] if senders is not None else []):
        q, count = q.where(cond), count.where(cond)
    if before_id is not None:
        q = q.where(REJECT.c.id < before_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(q.order_by(REJECT.c.id.desc()).limit(limit))).all()
        total = int((await conn.execute(count)).scalar_one())
    return {"data": [_public(r, with_body=False) for r in rows], "count": total}


async def get_reject(engine: AsyncEngine, reject_id: int) -> dict[str, Any]:
    """Gets one reject with the body exactly as it arrived."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(REJECT).where(REJECT.c.id == reject_id))).first()
    if row is None:
        raise NotFound(f"no reject {reject_id}")
    return _public(row, with_body=True)
