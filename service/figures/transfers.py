"""911 → 988 transfers (issue 16): per crisis centre, transfers by outcome, the time
from the offer to its acceptance, and the declines and returns counted by reason.

In scope: the transfers of calls in scope (opened in the range, live, of the district if
one is asked), whatever became of them since (service/lifecycle/transfers.py). Times:
nearest rank (the p50 is the middle transfer's own time, not an average of two).
Reasons are the centre's free text: counted per reason as written (trimmed, case
folded), for supervisors only, as override reasons are.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from service.store.tables import CALL, TRANSFER, as_utc

OUTCOMES = ("offered", "accepted", "declined", "completed", "returned", "withdrawn")


class TransferRow(BaseModel):
    program: str = Field(description="the crisis centre (a program of mode transfer)")
    transfers: int = Field(description="transfers of calls in scope")
    offered: int = Field(description="still offered: neither accepted nor declined yet")
    accepted: int = Field(description="accepted and not yet completed or returned")
    declined: int
    completed: int
    returned: int
    withdrawn: int = Field(description="ended by Liaison: a CAD update decided the call away")
    accept_share: float | None = Field(description="accepted ever, of those answered "
                                                   "(accepted ever + declined)")
    to_accept_p50_s: float | None = Field(description="seconds from offer to acceptance, "
                                                      "median (nearest rank)")
    to_accept_p90_s: float | None = Field(description="the same, 90th percentile")


class TransferReasonRow(BaseModel):
    program: str
    status: str = Field(description="declined or returned")
    reason: str = Field(description="as written, trimmed and case folded")
    transfers: int


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by nearest rank: the value at rank ceil(q·n) (1-based)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


async def transfer_figures(conn: AsyncConnection, where: Sequence[ColumnElement[bool]]
                           ) -> tuple[list[TransferRow], list[TransferReasonRow]]:
    """(a row per crisis centre, the declines and returns per reason), for the transfers
    of the calls `where` selects."""
    t = TRANSFER.c
    rows = (await conn.execute(
        select(t.program_id, t.status, t.offered_at, t.accepted_at, t.reason)
        .select_from(TRANSFER.join(CALL, CALL.c.id == t.call_id)).where(*where))).all()
    by_program: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_program[r.program_id].append(r)
    out: list[TransferRow] = []
    reasons: Counter[tuple[str, str, str]] = Counter()
    for program, found in sorted(by_program.items()):
        counts = Counter(r.status for r in found)
        waits = [(as_utc(r.accepted_at) - as_utc(r.offered_at)).total_seconds()
                 for r in found if r.accepted_at is not None]
        answered = len(waits) + counts["declined"]
        out.append(TransferRow(
            program=program, transfers=len(found), **{s: counts[s] for s in OUTCOMES},
            accept_share=round(len(waits) / answered, 4) if answered else None,
            to_accept_p50_s=nearest_rank(waits, 0.5),
            to_accept_p90_s=nearest_rank(waits, 0.9)))
        for r in found:
            if r.status in ("declined", "returned") and r.reason:
                reasons[(program, r.status, " ".join(r.reason.split()).casefold())] += 1
    return out, [TransferReasonRow(program=p, status=s, reason=why, transfers=n)
                 for (p, s, why), n in sorted(reasons.items(),
                                              key=lambda kv: (kv[0][0], kv[0][1], -kv[1],
                                                              kv[0][2]))]
