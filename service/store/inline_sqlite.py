"""The writer's SQLite connection: statements run on the event loop's thread; only what may
wait (taking the write lock, the commit's fsync, closing) runs on a thread of its own.

Why: aiosqlite runs every call on its thread, and SQLAlchemy makes three or four calls of a
statement (cursor, execute, fetch, close). Each hop cost ~50 us on the loop's thread and
~45 us on SQLite's (a queue, a wake-up, the GIL handed over and back), where the statement
itself takes a few: about 1 ms of an ingested event's 1.9 (bench/README.md, "Ingest cost
per event"). The writer's statements are index look-ups and inserts of one batch, so they
run where they are awaited. What can wait does not: the first write of a transaction
takes the write lock first (`BEGIN IMMEDIATE`: busy_timeout, as another connection may
hold it for seconds), and the commit waits for the disk, each on the connection's own
thread, so the loop keeps serving while they wait. Once the write lock is held, SQLite's
statements in WAL mode do not wait for anyone, and reads never do. The lock is taken at
the first write, as sqlite3 itself would: the batch's reads before it hold nothing, so
the API's own writes (a key's last use, a session) wait no longer than they did.

It stands in for an aiosqlite connection under SQLAlchemy's aiosqlite dialect (through
`create_async_engine(async_creator=...)`), so SQLAlchemy, its events and the driver's
errors are the same as on the main engine. Only the writer uses it (service/writing/writer.py):
the API's reads may be long (a year of figures) and stay on aiosqlite's thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

T = TypeVar("T")


async def _let_others_run() -> None:
    """One turn of the event loop after each statement, as aiosqlite's hop gave: a batch's
    statements in a row would otherwise hold the loop for the whole batch, and every
    request, websocket and client sharing it would wait (~5 us a turn; a hop cost ~100)."""
    await asyncio.sleep(0)


# What sqlite3 begins a transaction for (it looks at the first word, as here).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class InlineCursor:
    """aiosqlite's cursor, run in place: a sqlite3 cursor behind coroutines."""

    def __init__(self, cursor: sqlite3.Cursor, connection: InlineSqlite) -> None:
        self._cursor = cursor
        self._connection = connection

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        await self._connection.lock_before(sql)
        self._cursor.execute(sql, () if parameters is None else parameters)
        await _let_others_run()
        return self

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> InlineCursor:
        await self._connection.lock_before(sql)
        self._cursor.executemany(sql, rows)
        await _let_others_run()
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineSqlite:
    """aiosqlite's connection as SQLAlchemy's aiosqlite dialect uses it, run in place but
    for what may wait."""

    def __init__(self, conn: sqlite3.Connection, waits: ThreadPoolExecutor) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._waits = waits

    @classmethod
    async def open(cls, path: str, pragmas: Sequence[str]) -> InlineSqlite:
        waits = ThreadPoolExecutor(max_workers=1, thread_name_prefix="liaison-sqlite-wait")

        def connect() -> sqlite3.Connection:
            # Used from this thread and the loop's, never from both at once.
            conn = sqlite3.connect(path, check_same_thread=False)
            for pragma in pragmas:
                conn.execute(pragma)
            return conn

        loop = asyncio.get_running_loop()
        return cls(await loop.run_in_executor(waits, connect), waits)

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for what SQLAlchemy does not offer (a trace)."""
        return self._open()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        # SQLAlchemy's adapter looks here (as on aiosqlite's) before a commit or rollback.
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")  # aiosqlite's words, which SQLAlchemy maps
        return self._conn

    async def _waiting(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._waits, work)

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._open().cursor(), self)

    async def lock_before(self, sql: str) -> None:
        """Before a transaction's first write, begin it holding SQLite's write lock, waited
        for off the loop (sqlite3 would begin it in place, waiting there)."""
        conn = self._open()
        if not conn.in_transaction and sql.lstrip()[:7].upper().startswith(_WRITES):
            await self._waiting(lambda: conn.execute("BEGIN IMMEDIATE"))

    async def commit(self) -> None:
        conn = self._open()
        if conn.in_transaction:
            await self._waiting(conn.commit)

    async def rollback(self) -> None:
        conn = self._open()
        # Nothing to undo (the pool's reset after a commit): no hop.
        if conn.in_transaction:
            await self._waiting(conn.rollback)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await self._waiting(conn.close)  # the last close checkpoints the WAL
            finally:
                self._waits.shutdown(wait=False)

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate, when a connection is discarded)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._waits.shutdown(wait=False)


def create_inline_engine(url: str, pragmas: Sequence[str],
                         heard: Callable[..., None] | None = None) -> AsyncEngine:
    """An engine of InlineSqlite connections to the SQLite database at `url`. `heard` is
    told whenever a statement has been answered (service/store/dbwait.py's watch)."""
    path = make_url(url).database
    if not path or path == ":memory:":
        raise ValueError("an inline SQLite engine needs a database file")

    async def connect() -> InlineSqlite:
        return await InlineSqlite.open(path, pragmas)

    engine = create_async_engine(url, async_creator=connect, hide_parameters=True,
                                 pool_size=1, max_overflow=1)
    if heard is not None:
        event.listen(engine.sync_engine, "after_cursor_execute", heard)
    return engine
