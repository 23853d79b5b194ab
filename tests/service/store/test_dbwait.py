"""A request waits for a database that answers, however late this process is run.

A process that is not run for a while (a loaded machine, a long garbage collection, the
loop busy with other work) must not take the database for silent: a CAD would get 503 for
an event a healthy database was about to take. The frozen and stopped database cases,
which must still be 503 at once, are in tests/service/test_db_faults.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.db import create_engine
from service.store.dbwait import Patience, answered

QUIET = 0.5


@pytest_asyncio.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'wait.db'}")
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    yield engine
    await engine.dispose()


async def query_after(engine: AsyncEngine, seconds: float) -> None:
    await asyncio.sleep(seconds)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def block_loop(seconds: float) -> None:
    time.sleep(seconds)  # the whole process held up, as a long garbage collection would


@pytest.mark.asyncio
@pytest.mark.parametrize("blocked_after", [0.0, 0.3])
async def test_a_process_held_up_mid_wait_still_waits_for_an_answering_database(
        engine: AsyncEngine, blocked_after: float) -> None:
    """The loop is held up for twice `quiet`, at the wait's start (before anything was
    asked) or once a question is out; the database answers all along, so the request
    is taken, not given up on. (Before, a hold-up in the wait's first nap counted as
    silence and the request got 503 without the database being asked.)"""
    # Nothing was heard from the database for longer than `quiet` before the wait.
    await asyncio.sleep(QUIET * 1.5)
    waited = asyncio.ensure_future(query_after(engine, blocked_after + 0.2))
    asyncio.get_running_loop().call_later(blocked_after, block_loop, 2 * QUIET)
    assert await answered(engine, waited, Patience(quiet=QUIET, most=30))
    assert waited.done() and waited.exception() is None


@pytest.mark.asyncio
async def test_a_database_that_never_answers_is_still_given_up_on(
        engine: AsyncEngine) -> None:
    """What the test above allows is time this process was not run, not time the
    database took: a wait on something that never ends, the database idle, still ends
    `quiet` after the database's last answer (its SELECT 1 kept answering, so it is
    `most` here)."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    assert not await answered(engine, never, Patience(quiet=QUIET, most=3 * QUIET))
    assert time.monotonic() - started >= 3 * QUIET  # the database kept answering its ping
