"""What-if jobs run in a process of their own (service/policy/whatif.py): a year of calls
holds over a gigabyte and decides for a minute or more, away from the server's memory and
interpreter lock. The process's report is the one deciding in the server gives, and
stopping the service ends the process and says so on the job; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from routing.whatif import ServiceTimes, simulate
from rules.evaluate import compile_policy
from rules.load import default_policy_text, load_policy_text
from service.policy.whatif import WhatIfJobs, stored_calls
from service.store.db import create_engine, migrate
from service.store.tables import CALL
from tests.conftest import eventually
from tests.factories import compiled, shipped_doc

pytestmark = pytest.mark.asyncio

T0 = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
CODES = [("MNTL", "Mental person"), ("WELFARE", "Check the welfare"), ("BURGLARY", "Burglary"),
         ("VAG", "Sleeping in doorway")]


async def _stored(url: str, n: int) -> Any:
    engine = create_engine(url)
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(CALL), [{
            "id": f"call-{i:04d}", "agency_id": "default", "incident_id": f"INC-{i:04d}",
            "channel": "911", "nature_code": CODES[i % 4][0], "nature_text": CODES[i % 4][1],
            "priority": 2, "district": "D1" if i % 3 else "D7", "flags": "[]",
            "purpose": "live", "opened_at": T0 + timedelta(minutes=7 * i),
            "last_event_at": T0 + timedelta(minutes=7 * i),
            "updated_at": T0 + timedelta(minutes=7 * i), "source": "test-cad",
            # The stored decision is not read: the what-if decides each call afresh.
            "destination": "police", "mode": "police_only", "eligible": False,
            "holds_unit": False, "policy_version": "x@1", "decision": "{}"}
            for i in range(n)])
    return engine


async def _until_finished(jobs: WhatIfJobs, engine: Any, job_id: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        job = await jobs.get(engine, job_id)
        return job if job is not None and job["status"] != "running" else None

    done: dict[str, Any] = await eventually(finished, "the what-if to finish", every=0.05)
    return done


async def _running(jobs: WhatIfJobs, engine: Any) -> tuple[str, int]:
    """A job of the shipped policy against itself over a day, once its process is started
    (after the calls are counted): its id and the process's."""
    policy = compile_policy(load_policy_text(default_policy_text()))
    started = await jobs.start(engine, policy, policy, start=T0, end=T0 + timedelta(days=1),
                               seed=0, service_times=ServiceTimes())
    pids: list[int] = await eventually(lambda: jobs.running_pids() or None,
                                       "the job's process", every=0.01)
    return started["job_id"], pids[0]


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_the_process_reports_what_deciding_here_gives(database_url: str) -> None:
    engine = await _stored(database_url, 400)
    policy = compile_policy(load_policy_text(default_policy_text()))
    fewer = shipped_doc()
    fewer["policy"]["version"] = "2"
    fewer["programs"][0]["units"] = 1
    candidate = compiled(fewer)
    times = ServiceTimes(distribution="fixed", default_minutes=90)
    jobs = WhatIfJobs()
    try:
        end = T0 + timedelta(days=5)
        started = await jobs.start(engine, candidate, policy, start=T0, end=end, seed=3,
                                   service_times=times)
        job = await _until_finished(jobs, engine, started["job_id"])
        here = simulate(await stored_calls(engine, T0, end), candidate, policy,
                        service_times=times, seed=3)
    finally:
        await jobs.stop()
        await engine.dispose()
    assert job["status"] == "done", job
    assert job["progress"] == {"done": 400, "total": 400}
    assert here.changed > 0  # the two versions differ on this day's calls
    assert job["report"] == here.model_dump(mode="json")
    assert jobs.running_pids() == []


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_stopping_the_service_ends_a_running_job_and_its_process(
        database_url: str) -> None:
    engine = await _stored(database_url, 50)
    jobs = WhatIfJobs()
    try:
        # It is still starting (a new interpreter importing Liaison) when the service stops.
        job_id, pid = await _running(jobs, engine)
        assert pid != os.getpid()
        await jobs.stop()
        assert jobs.running_pids() == []
        with pytest.raises(ProcessLookupError):  # ended and reaped: no process of that id
            os.kill(pid, 0)
        job = await jobs.get(engine, job_id)
    finally:
        await jobs.stop()
        await engine.dispose()
    assert job is not None
    assert job["status"] == "failed" and job["error"] == "cancelled: the service stopped"


async def test_a_process_that_dies_fails_its_job_and_says_so(tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
    engine = await _stored(url, 20)
    jobs = WhatIfJobs()
    try:
        job_id, pid = await _running(jobs, engine)
        os.kill(pid, 9)  # as the kernel's out-of-memory killer would
        job = await _until_finished(jobs, engine, job_id)
    finally:
        await jobs.stop()
        await engine.dispose()
    assert job["status"] == "failed"
    assert job["error"] == "the what-if's process ended without a report (exit code -9)"
