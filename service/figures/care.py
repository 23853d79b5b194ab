"""Figures of care after the call (issue 16), from the handoffs of the calls in scope
(opened in the range, live, the district if one is asked): connections to care by
service type, the share of handoffs confirmed (connected) within the confirmation time,
declines by reason, and the same by district and by age group, as the other equity
figures are. A handoff to a provider of several services counts under each of them.

Handoffs of a month are few (a handful per team call at most): read once, counted here.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from service.store.tables import CALL, CARE_REFERRAL, as_utc

ALL = "all"
UNKNOWN = "unknown"


class CareRow(BaseModel):
    """Handoffs to care of one group: all, a service type, a district or an age group."""

    group: str
    handoffs: int
    connected: int = Field(description="the person reached care")
    connected_share: float | None
    confirmed_in_time: int = Field(description="connected within the confirmation time "
                                   "of being offered")
    confirmed_share: float | None = Field(description="confirmed in time, of the handoffs")
    declined: int
    open: int = Field(description="offered or accepted, not yet connected or declined")
    follow_ups_raised: int = Field(description="not connected in time: a follow-up raised")
    warm_line: int = Field(description="of them to a warm line")


class CareReasonRow(BaseModel):
    """Declined handoffs by the reason given (as written, trimmed, case folded)."""

    reason: str
    declined: int


class CareFigures(BaseModel):
    by_service: list[CareRow]
    by_district: list[CareRow]
    by_age_group: list[CareRow]
    declined_reasons: list[CareReasonRow]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _row(group: str, rows: Sequence[dict[str, Any]]) -> CareRow:
    connected = sum(r["status"] == "connected" for r in rows)
    in_time = sum(r["in_time"] for r in rows)
    return CareRow(
        group=group, handoffs=len(rows), connected=connected,
        connected_share=_share(connected, len(rows)), confirmed_in_time=in_time,
        confirmed_share=_share(in_time, len(rows)),
        declined=sum(r["status"] == "declined" for r in rows),
        open=sum(r["status"] in ("offered", "accepted") for r in rows),
        follow_ups_raised=sum(r["follow_up_id"] is not None for r in rows),
        warm_line=sum("warm_line" in r["services"] for r in rows))


def _grouped(rows: Iterable[dict[str, Any]],
             keys: Callable[[dict[str, Any]], Iterable[str]]) -> list[CareRow]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        for key in keys(r):
            groups[key].append(r)
    return [_row(g, groups[g]) for g in sorted(groups)]


async def care_figures(conn: AsyncConnection, where: list[ColumnElement[bool]],
                       confirm_hours: float) -> CareFigures:
    r, c = CARE_REFERRAL.c, CALL.c
    found = (await conn.execute(
        select(r.status, r.services, r.offered_at, r.connected_at, r.declined_reason,
               r.follow_up_id, c.district, c.age_group)
        .join(CALL, c.id == r.call_id).where(*where))).mappings().all()
    limit = timedelta(hours=confirm_hours)
    rows = []
    for f in found:
        connected_at = f["connected_at"]
        rows.append({**f, "services": json.loads(f["services"]),
                     "in_time": connected_at is not None
                     and as_utc(connected_at) - as_utc(f["offered_at"]) <= limit})
    reasons = Counter(" ".join((x["declined_reason"] or "").split()).casefold() or UNKNOWN
                      for x in rows if x["status"] == "declined")
    return CareFigures(
        by_service=[_row(ALL, rows), *_grouped(rows, lambda x: x["services"])],
        by_district=_grouped(rows, lambda x: [x["district"] or UNKNOWN]),
        by_age_group=_grouped(rows, lambda x: [x["age_group"] or UNKNOWN]),
        declined_reasons=[CareReasonRow(reason=k, declined=n)
                          for k, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))])
