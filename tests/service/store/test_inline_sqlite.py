"""The writer's SQLite connection (service/store/inline_sqlite.py): a batch's statements run
on the event loop's thread, what may wait (the write lock, the commit) on another, and the
loop keeps serving while the writer waits for a lock another process holds."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from service.store.db import create_engine, migrate
from service.store.inline_sqlite import InlineSqlite
from service.writing.writer import Writer
from tests.factories import compiled, ingest_event, shipped_doc

pytestmark = pytest.mark.asyncio
SHIPPED = compiled(shipped_doc())


async def trace(writer: Writer, callback: Callable[[str], None]) -> None:
    """Have `callback` called with each statement the writer's connection runs, on the
    thread that runs it."""
    async with writer.write_engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert isinstance(driver, InlineSqlite)
        driver.sqlite.set_trace_callback(callback)


async def test_a_batch_runs_its_statements_in_place_and_waits_off_the_loop(
        tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await migrate(engine)
    writer = Writer(engine)
    ran: list[tuple[int, str]] = []
    await trace(writer, lambda sql: ran.append((threading.get_ident(), sql.split()[0].upper())))
    writer.start()
    try:
        answers = await asyncio.gather(*(writer.submit(ingest_event(SHIPPED)) for _ in range(5)))
    finally:
        await writer.stop()
        await engine.dispose()
    assert all(a["decision"]["destination"] for a in answers)
    loop_thread = threading.get_ident()
    on_loop = {verb for thread, verb in ran if thread == loop_thread}
    elsewhere = {verb for thread, verb in ran if thread != loop_thread}
    assert {"SELECT", "INSERT"} <= on_loop, ran
    assert {"BEGIN", "COMMIT"} <= elsewhere and not {"BEGIN", "COMMIT"} & on_loop, ran
    stored = sqlite3.connect(tmp_path / "w.db").execute("SELECT count(*) FROM call")
    assert stored.fetchone()[0] == 5


async def test_others_run_between_a_batchs_statements(tmp_path: Path) -> None:
    """Statements run in place, but the loop takes a turn after each: a batch's writes
    (one after another, the lock held) do not hold every other task up for the whole
    batch."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    await migrate(engine)
    writer = Writer(engine)
    turns = 0

    async def turn() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    seen: list[tuple[str, int]] = []
    await trace(writer, lambda sql: seen.append((sql, turns)))
    ticker = asyncio.create_task(turn())
    writer.start()
    try:
        await asyncio.gather(*(writer.submit(ingest_event(SHIPPED)) for _ in range(5)))
    finally:
        ticker.cancel()
        await writer.stop()
        await engine.dispose()
    # The statements between the lock and the commit: the batch's writes (an executemany
    # is traced once per row, its values filled in: one statement per table).
    verbs = [sql.split()[0].upper() for sql, _ in seen]
    begin, commit = verbs.index("BEGIN"), verbs.index("COMMIT")
    writes: list[tuple[str, int]] = []
    for sql, at in seen[begin + 1:commit]:
        head = sql.split("(")[0]
        if not writes or writes[-1][0] != head:
            writes.append((head, at))
    assert len(writes) >= 4, seen
    turns_at = [at for _, at in writes]
    assert turns_at == sorted(set(turns_at)), turns_at  # a turn between each two


async def test_the_loop_keeps_running_while_the_writer_waits_for_the_lock(
        tmp_path: Path) -> None:
    """Another process's write transaction: the writer's batch waits for it on the
    connection's own thread; the loop runs on (ticks every 10 ms) and the event is stored
    once the lock is let go."""
    path = tmp_path / "w.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    writer = Writer(engine)
    writer.start()
    held = sqlite3.connect(path, isolation_level=None)
    held.execute("BEGIN IMMEDIATE")
    try:
        pending = asyncio.create_task(writer.submit(ingest_event(SHIPPED)))
        longest = 0.0
        last = time.monotonic()
        while writer.stalled_for() < 1.0 and not pending.done():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest, last = max(longest, now - last), now
        assert not pending.done()
        # Waiting on the loop would stop it for SQLite's busy_timeout (10 s) at once.
        assert longest < 5.0, longest
        held.execute("ROLLBACK")
        answer = await asyncio.wait_for(pending, 30)
        assert answer["decision"]["destination"]
    finally:
        held.close()
        await writer.stop()
        await engine.dispose()
