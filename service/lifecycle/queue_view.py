"""The queue as the pages and the API read it (GET /v1/programs, GET /v1/queue): each
program's units and waiting calls, and the waiting calls in the order they are offered,
at the queue's clock. Read-only: the writer's batch reads it the way a command would,
so what is shown is what the next command decides on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from routing.queue import Waiting, offer_order, positions
from routing.schedule import next_shift_start, on_duty
from rules.evaluate import CompiledPolicy
from service.calls.records import CallRow
from service.lifecycle.recorded import call_summary
from service.lifecycle.waiting import entry
from service.store.db import is_postgres
from service.units.commands import roster_counts
from service.writing.batch import Batch


@dataclass
class QueueNow:
    at: datetime  # the queue's clock
    waiting: list[tuple[CallRow, Waiting]]  # in offer order per program (policy order)
    busy: Counter[str]  # units held, per program id
    roster: dict[str, int]  # units on duty, per program that keeps a roster


async def read_queue(engine: AsyncEngine, policy: CompiledPolicy) -> QueueNow:
    async with engine.connect() as conn:
        batch = Batch(conn=conn, postgres=is_postgres(engine))
        at = await batch.queue_clock()
        calls = await batch.waiting_calls(policy.agency)
        busy = await batch.units_busy_by_program(agency=policy.agency)
        # A crisis centre's: its transfers.
        busy.update(await batch.counsellors_busy(agency=policy.agency))
        roster = await roster_counts(batch, policy.agency)
    entries = {c["id"]: (c, entry(c)) for c in calls}
    order = [p.id for p in policy.programs.programs]
    ranked: list[tuple[CallRow, Waiting]] = []
    for pid in [*order, *sorted({w.program_id for _, w in entries.values()} - set(order))]:
        mine = [w for _, w in entries.values() if w.program_id == pid]
        offered = offer_order(mine, pid, at)
        later = sorted((w for w in mine if w not in offered), key=lambda w: (w.since,
                                                                             w.call_id))
        ranked += [(entries[w.call_id][0], w) for w in [*offered, *later]]
    return QueueNow(at, ranked, busy, roster)


def programs_view(policy: CompiledPolicy, now: QueueNow) -> list[dict[str, Any]]:
    ps = policy.programs
    queued = Counter(w.program_id for _, w in now.waiting if not w.deferred)
    deferred = Counter(w.program_id for _, w in now.waiting if w.deferred)
    out = []
    for i, p in enumerate(ps.programs):
        start = next_shift_start(ps.weeks[i], ps.days_off[i], now.at, policy.zone)
        out.append({
            "id": p.id, "name": p.name, "mode": p.mode, "hours": ps.hours_texts[i],
            "on_duty": on_duty(ps.weeks[i], ps.days_off[i], now.at, policy.zone),
            "units_total": now.roster.get(p.id, p.units), "units_busy": now.busy[p.id],
            "units_from": "roster" if p.id in now.roster else "policy",
            "queued": queued[p.id], "deferred": deferred[p.id],
            "next_shift_start": start.isoformat() if start else None})
    return out


def queue_entries(policy: CompiledPolicy, now: QueueNow) -> list[dict[str, Any]]:
    """Each waiting call: its summary (with its category, which decides what a reader may
    see of it), program, kind, since, deadline and seconds left, place in the queue."""
    names = {p.id: p.name for p in policy.programs.programs}
    place = positions([w for _, w in now.waiting], now.at)
    out = []
    for call, w in now.waiting:
        deadline = w.deadline
        out.append({
            "call_id": call["id"], "call": {**call_summary(call), "category": call["category"]},
            "program": {"id": w.program_id, "name": names.get(w.program_id)},
            "kind": "deferred" if w.deferred else "queued",
            "since": w.since.isoformat(),
            "deadline": deadline.isoformat() if deadline else None,
            "seconds_left": (max(int((deadline - now.at).total_seconds()), 0)
                             if deadline else None),
            "position": place.get(w.call_id)})
    return out
