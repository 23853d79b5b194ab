"""What-if over stored call history: a candidate version against a baseline, over the
calls opened in [from, to), as a background job with progress.

Calls are read from the `call` table (one agency's, issue 17) in `opened_at` order, a
page at a time, and each becomes the facts the rules see exactly as on the live path
(`CallState.facts()`: the call's folded fields, its place and purpose, `occurred_at` =
`opened_at`); nothing else is left out. Calls alike but for their time are made once
(`StoredCalls`).
`routing.whatif.simulate` then decides every call with both versions.

A job's reading and deciding run in a process of its own (`run_job`, started with
`spawn`): a year of calls holds over a gigabyte while it runs and decides for a minute or
more, neither of which the server's live traffic should share (its memory and its
interpreter lock). That process reads the calls, then decides the candidate while a child
forked from it decides the baseline (`whatif_pair`). Each counts the calls it decided
into memory shared with the server, which writes their mean on the job as progress (the
row shows the job alive while the calls are read, too); both end when the service stops.

Jobs are kept in the database (`what_if_job`), so any instance shows a job's progress
and report and a restart loses none. The instance running a job writes its progress every
`PROGRESS_EVERY` seconds; a running job whose progress stops for `LOST_AFTER` seconds was
lost with its instance and reads as failed. Jobs are kept `KEEP_DAYS` days. These are
short, rare writes outside the call writer, as policy writes are.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import logging
import multiprocessing
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, delete, func, insert, or_, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncEngine

from routing.whatif import ServiceTimes, SharedValues, SimCall, replay_of, write_changed_csv
from rules.call import CallFacts
from rules.evaluate import CompiledPolicy, compile_policy
from rules.models import Policy
from service.calls.fold import CallState
from service.policy.whatif_pair import decide_pair
from service.store.tables import CALL, DEFAULT_AGENCY, WHAT_IF_JOB, as_utc, iso_utc, utcnow

log = logging.getLogger("liaison.whatif")

PAGE_SIZE = 1000
PROGRESS_EVERY = 0.5  # seconds between progress writes of a running job
LOST_AFTER = timedelta(seconds=60)  # a running job whose progress stops this long is lost
KEEP_DAYS = 30

# Every column the live path makes a call's facts from (CallState.facts()), read by
# position (`sim_call`): a row's look-up by name costs more than the rest of making it.
# The time as the database hands it over (SQLite: text; PostgreSQL: a datetime), made a
# UTC time here (`opened_utc`): the generic conversion was a fifth of a year's read.
_COLUMNS = (CALL.c.id, CALL.c.channel, CALL.c.nature_code, CALL.c.nature_text,
            CALL.c.narrative, CALL.c.priority, CALL.c.district, CALL.c.flags,
            CALL.c.lat, CALL.c.lon, CALL.c.purpose,
            type_coerce(CALL.c.opened_at, String).label("opened_at"))
COLUMN_NAMES = tuple(c.name for c in _COLUMNS)
_KIND = slice(1, 11)  # every column but the id and the time
# Stored calls alike in every fact but the time are made once; a year of a city's calls
# has a few thousand kinds. The memo is emptied when it grows past this (free text that
# differs on every call would make it as large as the calls).
ALIKE_MAX = 50_000


def opened_utc(value: str | datetime) -> datetime:
    """A stored `opened_at` as read: SQLite's text (UTC, without an offset) or
    PostgreSQL's datetime."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return as_utc(at)


def sim_call(row: Sequence[Any], shared: SharedValues | None = None) -> SimCall:
    """A stored call (a row of `COLUMN_NAMES`) as the rules see it (the live path's
    CallState.facts()); `shared`: one object per distinct value across the calls read
    (a year of them must fit)."""
    (call_id, channel, nature_code, nature_text, narrative, priority, district, flags,
     lat, lon, purpose, opened) = row
    at = opened_utc(opened)
    state = CallState(channel=channel, nature_code=nature_code, nature_text=nature_text,
                      narrative=narrative, priority=priority, district=district,
                      flags=json.loads(flags or "[]"), lat=lat, lon=lon, purpose=purpose,
                      opened_at=at, last_event_at=at)
    facts = state.facts()
    return SimCall(call_id=call_id, facts=shared(facts) if shared else facts)


class StoredCalls:
    """Stored calls made into what the rules see: the first of each kind (alike in every
    fact but the time) as `sim_call` makes it, validated; every later one of its kind is
    that call at its own time (`SharedValues.at`), without validating it again."""

    def __init__(self) -> None:
        self.shared = SharedValues()
        self._kinds: dict[tuple[Any, ...], CallFacts] = {}

    def __call__(self, row: Sequence[Any]) -> SimCall:
        kind = tuple(row[_KIND])
        first = self._kinds.get(kind)
        if first is not None:
            facts = self.shared.at(first, opened_utc(row[11]))
            if facts is not None:
                return SimCall(call_id=row[0], facts=facts)
        call = sim_call(row, self.shared)
        if len(self._kinds) >= ALIKE_MAX:
            self._kinds.clear()
        self._kinds[kind] = call.facts
        return call


def _of(start: datetime, end: datetime, agency: str | None) -> list[Any]:
    conds = [CALL.c.opened_at >= start, CALL.c.opened_at < end]
    if agency is not None:
        conds.append(CALL.c.agency_id == agency)
    return conds


async def count_calls(engine: AsyncEngine, start: datetime, end: datetime,
                      agency: str | None = None) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(CALL).where(*_of(start, end, agency))
        )).scalar_one())


async def stored_calls(engine: AsyncEngine, start: datetime, end: datetime, *,
                       page_size: int = PAGE_SIZE, agency: str | None = None
                       ) -> list[SimCall]:
    """Every call opened in [start, end) (of one agency, when given), in `opened_at` order
    (then id), read in pages (keyset on (opened_at, id), so no page holds a transaction
    open for long)."""
    calls: list[SimCall] = []
    made = StoredCalls()
    after: tuple[datetime, str] | None = None
    while True:
        # The next page starts at the last one's time: given as the range's lower bound
        # (not beside `start`), so the index is sought there. With both, SQLite sought
        # `start` and walked every earlier page again: a year read in quadratic time.
        query = (select(*_COLUMNS).where(*_of(after[0] if after else start, end, agency))
                 .order_by(CALL.c.opened_at, CALL.c.id).limit(page_size))
        if after is not None:
            query = query.where(or_(CALL.c.opened_at > after[0], CALL.c.id > after[1]))
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        calls.extend(map(made, rows))
        if len(rows) < page_size:
            return calls
        after = (opened_utc(rows[-1][11]), rows[-1][0])


@dataclass(frozen=True)
class JobWork:
    """What a job's process needs, all of it picklable: where the calls are stored, the
    two versions' documents (compiled in the process) and the run's settings."""

    database_url: str
    candidate: Policy
    baseline: Policy
    start: datetime
    end: datetime
    agency: str | None
    seed: int
    service_times: ServiceTimes


def run_job(work: JobWork, decided: Any, results: Any) -> None:
    """A job's process: read the calls, decide them with both versions (the baseline in a
    child of its own: `whatif_pair`), send the report and the changed calls' CSV (or the
    error) through `results` (a pipe's end). `decided`: a shared array of two counters,
    the calls each version has decided: the server's progress."""
    # A year's calls are a million objects kept to the end that make no cycles, yet each
    # full pass of the cycle collector walks them all; this process ends with the job.
    gc.disable()
    try:
        # Read in an event loop of its own, ended (with any thread it had) before the
        # baseline's process is forked.
        calls = asyncio.run(_read(work))
        report = decide_pair(
            replay_of(calls, service_times=work.service_times, seed=work.seed),
            compile_policy(work.candidate), compile_policy(work.baseline),
            progress=(_counter(decided, 0), _counter(decided, 1)))
        out = io.StringIO()
        write_changed_csv(report, out)
        results.send(("done", len(calls), report.model_dump_json(), out.getvalue()))
    except BaseException as exc:  # noqa: BLE001 - said to the server, which records it
        results.send(("failed", 0, f"{type(exc).__name__}: {exc}", ""))
    finally:
        results.close()


def _counter(decided: Any, slot: int) -> Callable[[int], None]:
    def advance(n: int) -> None:
        decided[slot] += n  # one process writes each slot

    return advance


async def _read(work: JobWork) -> list[SimCall]:
    from service.store.db import create_engine

    engine = create_engine(work.database_url)
    try:
        return await stored_calls(engine, work.start, work.end, agency=work.agency)
    finally:
        await engine.dispose()


@dataclass
class WhatIfJob:
    """A job being run by this instance: its progress, as its process counts it, written
    to its row as it goes."""

    id: str
    candidate: str
    baseline: str
    start: datetime
    end: datetime
    seed: int
    agency: str | None = None  # whose stored calls (None: every call)
    done: int = 0
    total: int | None = None
    pid: int | None = None  # its process's, while it runs


def job_view(row: Any, now: datetime) -> dict[str, Any]:
    """A stored job as the API shows it; one whose instance stopped mid-run is failed."""
    status, error = row.status, row.error
    if status == "running" and now - as_utc(row.updated_at) > LOST_AFTER:
        status, error = "failed", "lost: the instance running it stopped before it finished"
    return {
        "job_id": row.id, "agency": row.agency_id, "status": status,
        "progress": {"done": row.done, "total": row.total},
        "candidate": row.candidate, "baseline": row.baseline,
        "from": as_utc(row.start_at).isoformat(), "to": as_utc(row.end_at).isoformat(),
        "seed": row.seed, "started_at": as_utc(row.started_at).isoformat(),
        "finished_at": iso_utc(row.finished_at),
        "error": error, "report": json.loads(row.report) if row.report else None,
    }


class WhatIfJobs:
    """Starts what-if jobs on this instance and reads any instance's from the database."""

    def __init__(self) -> None:
        # The jobs running on this instance, each with the task running it.
        self._running: dict[str, tuple[WhatIfJob, asyncio.Task[None]]] = {}

    async def get(self, engine: AsyncEngine, job_id: str) -> dict[str, Any] | None:
        cols = [c for c in WHAT_IF_JOB.c if c.name != "changed_csv"]
        async with engine.connect() as conn:
            row = (await conn.execute(select(*cols).where(WHAT_IF_JOB.c.id == job_id))
                   ).first()
        return None if row is None else job_view(row, utcnow())

    async def changed_csv(self, engine: AsyncEngine, job_id: str) -> str | None:
        async with engine.connect() as conn:
            return (await conn.execute(select(WHAT_IF_JOB.c.changed_csv)
                                       .where(WHAT_IF_JOB.c.id == job_id))).scalar()

    async def start(self, engine: AsyncEngine, candidate: CompiledPolicy,
                    baseline: CompiledPolicy, *, start: datetime, end: datetime, seed: int,
                    service_times: ServiceTimes, candidate_label: str | None = None,
                    agency: str | None = None) -> dict[str, Any]:
        """Store the job (so a read right after finds it), then run it in the background.
        `candidate_label`: how the job names the candidate (default: its version);
        `agency`: over that agency's stored calls only."""
        job = WhatIfJob(id=uuid.uuid4().hex, candidate=candidate_label or candidate.version,
                        baseline=baseline.version, start=start, end=end, seed=seed,
                        agency=agency)
        now = utcnow()
        async with engine.begin() as conn:
            await conn.execute(delete(WHAT_IF_JOB).where(
                WHAT_IF_JOB.c.started_at < now - timedelta(days=KEEP_DAYS)))
            await conn.execute(insert(WHAT_IF_JOB).values(
                id=job.id, agency_id=agency or DEFAULT_AGENCY, candidate=job.candidate,
                baseline=job.baseline, start_at=start,
                end_at=end, seed=seed, status="running", done=0, total=None, started_at=now,
                updated_at=now))
        task = asyncio.create_task(self._run(job, engine, candidate, baseline, service_times),
                                   name=f"liaison-whatif-{job.id}")
        self._running[job.id] = (job, task)
        task.add_done_callback(lambda _: self._running.pop(job.id, None))
        return {"job_id": job.id, "status": "running",
                "progress": {"done": 0, "total": None}}

    async def _run(self, job: WhatIfJob, engine: AsyncEngine, candidate: CompiledPolicy,
                   baseline: CompiledPolicy, service_times: ServiceTimes) -> None:
        final: dict[str, Any] = {}
        spawn = multiprocessing.get_context("spawn")
        # Calls decided by each version, each written by one process alone.
        decided = spawn.Array("q", 2, lock=False)
        results, sending = spawn.Pipe(duplex=False)
        work = JobWork(database_url=engine.url.render_as_string(hide_password=False),
                       candidate=candidate.policy, baseline=baseline.policy,
                       start=job.start, end=job.end, agency=job.agency, seed=job.seed,
                       service_times=service_times)
        process = spawn.Process(target=run_job, args=(work, decided, sending),
                                name=f"liaison-whatif-{job.id}", daemon=True)
        try:
            job.total = await count_calls(engine, job.start, job.end, job.agency)
            await _save(engine, job.id, done=0, total=job.total)
            process.start()
            job.pid = process.pid
            sending.close()  # the process's end: EOF here once the process is gone
            message = None
            while message is None:
                await asyncio.sleep(PROGRESS_EVERY)
                if results.poll():
                    try:
                        message = await asyncio.to_thread(results.recv)
                    except EOFError:  # the process ended without a word (killed?)
                        await asyncio.to_thread(process.join, 5)
                        message = ("failed", 0, "the what-if's process ended without a "
                                   f"report (exit code {process.exitcode})", "")
                # The job's row shows it is alive while the calls are read (a year of them
                # reads for longer than LOST_AFTER), as while they are decided.
                job.done = sum(decided) // 2
                await _save(engine, job.id, done=job.done, total=job.total)
            results.close()
            status, calls, report, changed = message
            if status == "done":
                job.total = calls  # calls opened in the range meanwhile count too
                final = {"status": "done", "report": report, "changed_csv": changed}
            else:
                log.error("what-if %s failed: %s", job.id, report)
                final = {"status": "failed", "error": report}
        except asyncio.CancelledError:
            final = {"status": "failed", "error": "cancelled: the service stopped"}
            raise
        except Exception as exc:
            log.exception("what-if %s failed", job.id)
            final = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        finally:
            if process.pid is not None:
                process.terminate()  # at its end already, unless the job was cancelled
                await asyncio.to_thread(process.join)
            job.pid = None
            with contextlib.suppress(Exception):  # the database may be what failed
                await asyncio.shield(_save(engine, job.id, done=job.done, total=job.total,
                                           finished_at=utcnow(), **final))

    def running_pids(self) -> list[int]:
        """The processes of the jobs this instance is running."""
        return [job.pid for job, _ in self._running.values() if job.pid is not None]

    async def stop(self) -> None:
        """Cancel running jobs: their processes are ended, their rows say so."""
        tasks = [task for _, task in self._running.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _save(engine: AsyncEngine, job_id: str, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(WHAT_IF_JOB).where(WHAT_IF_JOB.c.id == job_id)
                           .values(updated_at=utcnow(), **values))
