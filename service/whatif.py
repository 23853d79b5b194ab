"""What-if over stored call history: a candidate version against a baseline, over the
calls opened in [from, to), as a background job with progress.

Calls are read from the `call` table in `opened_at` order, a page at a time, and each
becomes the facts the rules see exactly as on the live path (`CallState.facts()`: the
call's folded fields, `occurred_at` = `opened_at`); nothing else is left out.
`rules.simulate.simulate` then decides every call with both versions in a worker thread
(`asyncio.to_thread`) while its progress callback counts calls decided on the job.

Jobs are kept in memory on the Runtime (`Runtime.whatif`), the last `MAX_JOBS` of them:
they do not survive a restart, and each instance knows only the jobs it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from rules.evaluate import CompiledPolicy
from rules.simulate import ServiceTimes, SimCall, WhatIfReport, simulate
from service.fold import CallState
from service.tables import CALL, utcnow

log = logging.getLogger("liaison.whatif")

MAX_JOBS = 20
PAGE_SIZE = 1000

_COLUMNS = (CALL.c.id, CALL.c.channel, CALL.c.nature_code, CALL.c.nature_text,
            CALL.c.narrative, CALL.c.priority, CALL.c.district, CALL.c.flags,
            CALL.c.opened_at)


def sim_call(row: Any) -> SimCall:
    """A stored call as the rules see it (the live path's CallState.facts())."""
    state = CallState(channel=row.channel, nature_code=row.nature_code,
                      nature_text=row.nature_text, narrative=row.narrative,
                      priority=row.priority, district=row.district,
                      flags=json.loads(row.flags or "[]"), opened_at=row.opened_at,
                      last_event_at=row.opened_at)
    return SimCall(call_id=row.id, facts=state.facts())


async def count_calls(engine: AsyncEngine, start: datetime, end: datetime) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(CALL)
            .where(CALL.c.opened_at >= start, CALL.c.opened_at < end))).scalar_one())


async def stored_calls(engine: AsyncEngine, start: datetime, end: datetime, *,
                       page_size: int = PAGE_SIZE) -> list[SimCall]:
    """Every call opened in [start, end), in `opened_at` order (then id), read in pages
    (keyset on (opened_at, id), so no page holds a transaction open for long)."""
    calls: list[SimCall] = []
    after: tuple[datetime, str] | None = None
    while True:
        query = (select(*_COLUMNS)
                 .where(CALL.c.opened_at >= start, CALL.c.opened_at < end)
                 .order_by(CALL.c.opened_at, CALL.c.id).limit(page_size))
        if after is not None:
            query = query.where(or_(CALL.c.opened_at > after[0],
                                    and_(CALL.c.opened_at == after[0], CALL.c.id > after[1])))
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        calls.extend(sim_call(r) for r in rows)
        if len(rows) < page_size:
            return calls
        after = (rows[-1].opened_at, rows[-1].id)


Status = Literal["running", "done", "failed"]


@dataclass
class WhatIfJob:
    id: str
    candidate: str
    baseline: str
    start: datetime
    end: datetime
    seed: int
    status: Status = "running"
    done: int = 0
    total: int | None = None
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    report: WhatIfReport | None = None
    error: str | None = None

    def advance(self, n: int) -> None:
        self.done += n  # from the worker thread; readers only ever see a count

    def to_dict(self, *, with_report: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job_id": self.id, "status": self.status,
            "progress": {"done": self.done, "total": self.total},
            "candidate": self.candidate, "baseline": self.baseline,
            "from": self.start.isoformat(), "to": self.end.isoformat(), "seed": self.seed,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error,
        }
        if with_report:
            out["report"] = (self.report.model_dump(mode="json")
                             if self.report is not None else None)
        return out


class WhatIfJobs:
    """The last MAX_JOBS jobs of this instance, in memory (lost on restart)."""

    def __init__(self, limit: int = MAX_JOBS) -> None:
        self.limit = limit
        self._jobs: OrderedDict[str, WhatIfJob] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, job_id: str) -> WhatIfJob | None:
        return self._jobs.get(job_id)

    def start(self, engine: AsyncEngine, candidate: CompiledPolicy, baseline: CompiledPolicy,
              *, start: datetime, end: datetime, seed: int,
              service_times: ServiceTimes) -> WhatIfJob:
        job = WhatIfJob(id=uuid.uuid4().hex, candidate=candidate.version,
                        baseline=baseline.version, start=start, end=end, seed=seed)
        self._jobs[job.id] = job
        while len(self._jobs) > self.limit:
            self._jobs.popitem(last=False)
        task = asyncio.create_task(self._run(job, engine, candidate, baseline, service_times),
                                   name=f"liaison-whatif-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: WhatIfJob, engine: AsyncEngine, candidate: CompiledPolicy,
                   baseline: CompiledPolicy, service_times: ServiceTimes) -> None:
        try:
            job.total = await count_calls(engine, job.start, job.end)
            calls = await stored_calls(engine, job.start, job.end)
            job.total = len(calls)  # calls opened in the range meanwhile count too
            job.report = await asyncio.to_thread(
                simulate, calls, candidate, baseline, service_times=service_times,
                seed=job.seed, progress=job.advance)
            job.status = "done"
        except asyncio.CancelledError:
            job.status, job.error = "failed", "cancelled: the service stopped"
            raise
        except Exception as exc:
            log.exception("what-if %s failed", job.id)
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = utcnow()

    async def stop(self) -> None:
        """Cancel running jobs (a simulation already in its thread runs to its end)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
