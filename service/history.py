"""Repeat contact: the earlier calls about a call's person, else at its address.

One indexed statement per call looked at (person_key and address_key are indexed), and
none for a call with neither key. The board shows it on a new call's first decision;
`GET /v1/calls/{id}` shows it too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from service.batch import Batch
from service.tables import CALL, as_utc


async def _earlier(conn: AsyncConnection, call_id: str, keys: dict[str, str],
                   opened_at: datetime) -> dict[str, dict[str, Any]]:
    """Per key kind ("person", "address"): how many other calls opened before `opened_at`
    share it, and the latest of them."""
    c = CALL.c
    parts = []
    for by, value in keys.items():
        column = c.person_key if by == "person" else c.address_key
        parts.append(select(
            literal(by).label("by"), func.count().over().label("n"), c.opened_at,
            c.outcome, c.disposition,
        ).where(column == value, c.opened_at < opened_at, c.id != call_id)
            .order_by(c.opened_at.desc()).limit(1).subquery())
    if not parts:
        return {}
    stmt = union_all(*(select(p) for p in parts))
    return {r["by"]: {"count": int(r["n"]), "last_at": as_utc(r["opened_at"]),
                      "last_outcome": r["outcome"], "last_disposition": r["disposition"]}
            for r in (await conn.execute(stmt)).mappings()}


def _keys(row: dict[str, Any]) -> dict[str, str]:
    return {by: row[col] for by, col in (("person", "person_key"), ("address", "address_key"))
            if row.get(col)}


def _pick(found: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The person's history when there is one, else the address's; None without either."""
    for by in ("person", "address"):
        h = found.get(by)
        if h and h["count"]:
            return {"count": h["count"], "by": by,
                    "last_at": h["last_at"].isoformat() if h["last_at"] else None,
                    "last_outcome": h["last_outcome"],
                    "last_disposition": h["last_disposition"]}
    return None


async def history_of(conn: AsyncConnection, row: dict[str, Any]) -> dict[str, Any] | None:
    """A stored call's repeat-contact history (for reads)."""
    keys = _keys(row)
    if not keys:
        return None
    return _pick(await _earlier(conn, row["id"], keys, as_utc(row["opened_at"])))


async def history_in_batch(ctx: Batch, row: dict[str, Any]) -> dict[str, Any] | None:
    """A new call's history inside the writer's batch: what is stored, plus the calls this
    batch opened before it (not stored yet)."""
    keys = _keys(row)
    if not keys:
        return None
    opened = as_utc(row["opened_at"])
    found = await _earlier(ctx.conn, row["id"], keys, opened)
    for other_id in ctx._new:  # calls this batch created, not in the database yet
        other = ctx.calls.get(other_id)
        if other is None or other_id == row["id"] or as_utc(other["opened_at"]) >= opened:
            continue
        for by, value in keys.items():
            if other[f"{by}_key"] != value:
                continue
            h = found.setdefault(by, {"count": 0, "last_at": None, "last_outcome": None,
                                      "last_disposition": None})
            h["count"] += 1
            if h["last_at"] is None or as_utc(other["opened_at"]) > h["last_at"]:
                h.update(last_at=as_utc(other["opened_at"]), last_outcome=other["outcome"],
                         last_disposition=other["disposition"])
    return _pick(found)
