"""Engine, connection settings and schema migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import event, exc, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.errors import Unavailable
from service.store.inline_sqlite import create_inline_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent.parent / "migrations"  # service/migrations
# Any fixed number: serialises writers and migrators across processes on PostgreSQL.
WRITE_LOCK_KEY = 727_100
MIGRATE_LOCK_KEY = 727_101


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


# aiosqlite logs every statement with its values at DEBUG: a narrative or a name would
# reach the log at `--log-level debug`. Its INFO and above say nothing of the data.
logging.getLogger("aiosqlite").setLevel(logging.INFO)


class Answers:
    """When the database last answered anything (a statement finished, a connection
    made), for one engine: how service/store/dbwait.py tells a silent database from a busy one."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.asking: asyncio.Task[None] | None = None  # dbwait's SELECT 1 under way
        self.asked_at = 0.0  # when it was asked

    def note(self, *_: Any) -> None:
        self.last = time.monotonic()


_ANSWERS: weakref.WeakKeyDictionary[Engine, Answers] = weakref.WeakKeyDictionary()


def answers(engine: AsyncEngine) -> Answers:
    found = _ANSWERS.get(engine.sync_engine)
    if found is None:
        # Listened for from the engine's creation: adding a listener while one of its
        # events is being dispatched (a connect awaiting SQLite's thread) would break it.
        found = _ANSWERS[engine.sync_engine] = Answers()
        event.listen(engine.sync_engine, "after_cursor_execute", found.note)
        event.listen(engine.sync_engine, "connect", found.note)
    return found


# Every SQLite connection's, the writer's too (create_write_engine).
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                  "PRAGMA busy_timeout=10000")


def pg_connect_args(connect_timeout: float, statement_timeout: float) -> dict[str, Any]:
    """asyncpg's deadlines. A server that does not answer (frozen, or a network gone
    silent) would otherwise hold a connection attempt for 60 s and a statement for ever:
    `timeout` bounds connecting, `statement_timeout` makes the server end a slow statement
    cleanly, and `command_timeout` (a little later) stops waiting for one that never
    answers at all."""
    return {"timeout": connect_timeout, "command_timeout": statement_timeout + 2,
            "server_settings": {"statement_timeout": str(int(statement_timeout * 1000))}}


def create_engine(url: str, *, connect_timeout: float = 10.0,
                  statement_timeout: float = 30.0) -> AsyncEngine:
    """Build the engine; SQLite gets WAL and full fsync so an acknowledged event survives."""
    # A failed statement's message would otherwise carry its parameters (a narrative, a
    # name) into the logs; Liaison's logs hold ids and reasons only.
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("postgresql"):
        # pool_timeout: with every pooled connection stuck on a server that does not
        # answer, waiting for one gives up as connecting would (a request itself gives up
        # sooner: service/store/dbwait.py).
        kwargs.update(pool_size=10, max_overflow=10, pool_recycle=1800,
                      pool_timeout=connect_timeout,
                      connect_args=pg_connect_args(connect_timeout, statement_timeout))
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            for pragma in SQLITE_PRAGMAS:
                cur.execute(pragma)
            cur.close()

    answers(engine)
    return engine


def create_write_engine(engine: AsyncEngine) -> AsyncEngine:
    """The writer's engine for `engine`'s database: on SQLite one whose statements run on
    the event loop's thread (service/store/inline_sqlite.py); on PostgreSQL `engine` itself.
    What it answers counts as the database answering (service/store/dbwait.py)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return engine
    return create_inline_engine(engine.url.render_as_string(hide_password=False),
                                SQLITE_PRAGMAS, heard=answers(engine).note)


def alembic_config(connection: Connection | None = None) -> Config:
    # Alembic is imported when a schema is migrated, not by every `liaison` command that
    # imports this module (it and what it imports take a few tenths of a second).
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the schema in place to the newest revision."""
    async with engine.begin() as conn:
        if is_postgres(engine):
            # Two instances starting together must not both create tables.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
        from alembic import command

        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def warm(engine: AsyncEngine, connections: int = 4) -> None:
    """Open a few pooled connections at start, so the first requests do not each wait for
    one: a request gives up on a database silent for a second (service/store/dbwait.py), and
    connecting to a loaded PostgreSQL can take longer than that."""
    if not is_postgres(engine):
        return
    opened = await asyncio.gather(*(engine.connect().start() for _ in range(connections)),
                                  return_exceptions=True)
    for conn in opened:
        if not isinstance(conn, BaseException):
            await conn.close()


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


class Pinger:
    """`SELECT 1` with a deadline, for /v1/health. A ping that outlives its deadline is
    not cancelled (cancelling a statement mid-protocol can leave the connection, or
    SQLite's thread, in a bad state) but left to end by the driver's own deadline; while
    it runs, later checks wait on it instead of starting more."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._running: asyncio.Task[None] | None = None
        self._engine: AsyncEngine | None = None

    async def problem(self, engine: AsyncEngine) -> str | None:
        """None when the database answered in time, else what went wrong."""
        if self._running is None or self._running.done() or self._engine is not engine:
            self._engine = engine
            self._running = asyncio.create_task(ping(engine), name="liaison-db-ping")
        task = self._running
        done, _ = await asyncio.wait({task}, timeout=self.deadline)
        if not done:
            return f"database not answering within {self.deadline:g} s"
        failed = task.exception()
        return f"database unreachable: {type(failed).__name__}" if failed else None


# SQLSTATE classes that mean "the database cannot do it now", not "this request is wrong":
# 08 connection, 53 insufficient resources (disk full, out of memory, too many
# connections), 57 operator intervention (shutdown, recovery, statement timeout), 58 I/O.
_OUTAGE_SQLSTATE = ("08", "53", "57", "58")
_OUTAGE_ERRNO = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE,
                 errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN,
                 errno.ENOSPC, errno.EIO}


def is_outage(error: BaseException) -> bool:
    """Is this the database being away, full or too slow (answer 503: retry), rather than
    a fault in Liaison (500)? Looks through the chain of causes: SQLAlchemy wraps the
    driver's error, and the driver may wrap the socket's."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, (TimeoutError, ConnectionError, socket.gaierror, exc.TimeoutError,
                             exc.OperationalError, exc.InterfaceError, asyncpg.InterfaceError,
                             asyncpg.PostgresConnectionError)):
            # SQLite's OperationalError: locked, disk full, disk I/O error, cannot open.
            return True
        if isinstance(seen, exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, OSError) and seen.errno in _OUTAGE_ERRNO:
            return True
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and state[:2] in _OUTAGE_SQLSTATE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def describe(error: BaseException) -> str:
    """A failure in one line, fit for /v1/health and the logs: the driver's own error
    (without SQLAlchemy's statement text, which names tables and columns)."""
    orig = getattr(error, "orig", None) or error
    first = (str(orig).splitlines() or [""])[0].strip()
    return f"{type(orig).__name__}: {first}"[:200] if first else type(orig).__name__


@contextlib.contextmanager
def unavailable_on_outage(doing: str) -> Iterator[None]:
    """Turn the database being away into Unavailable (503, retry), saying what failed."""
    try:
        yield
    except Exception as error:
        if is_outage(error):
            raise Unavailable(f"{doing}: the database is not answering; retry shortly",
                              cause=type(error).__name__) from error
        raise
