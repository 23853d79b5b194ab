"""Statements the writer runs in every batch, on SQLite sent on its cursor itself.

Why: SQLAlchemy's execution of a compiled, cached statement (its execution context, the
DBAPI adapter's cursor, the greenlet it runs in) costs ~150 us of CPU on this machine where
SQLite itself takes a few for the usual one, and a batch runs five or more whatever it holds
(bench/writer.py: a batch of one event costs 4-5 ms). Sent here, a batch of one costs
10-29% less CPU on SQLite (bench/README.md, "Fifth sitting"). On PostgreSQL the same, on
asyncpg's connection, measured no gain beyond the noise, so there the statement goes
through SQLAlchemy as any other (as it does on another driver: aiosqlite's, of an
in-memory database's writer).

What stays SQLAlchemy's: the statement (built and compiled by it, once, with its own bind
and result processors, so values go in and come out exactly as through `conn.execute`),
the connection and its transaction, its errors (the driver's raised as SQLAlchemy's
classes) and its cursor events: `before_cursor_execute` and `after_cursor_execute` are
told of every statement sent here as of any other (the database's liveness watch,
service/store/dbwait.py, and the tests that count a batch's statements listen there).
The writer's InlineSqlite cursor still takes the write lock before the first write and
gives the loop its turn after each statement (service/store/inline_sqlite.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

from service.store.inline_sqlite import InlineSqlite


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # each positional parameter's bind name
    fixed: dict[str, Any]  # the values the statement holds itself (a literal's)
    binds: tuple[Callable[[Any], Any] | None, ...]
    results: tuple[Callable[[Any], Any] | None, ...]  # per result column


class Direct:
    """A statement the writer runs in every batch: on the writer's SQLite connection,
    compiled once and sent on its cursor; elsewhere through SQLAlchemy. `keys`: an
    INSERT's columns given (its rows' keys)."""

    def __init__(self, statement: Executable, keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.keys = list(keys) if keys is not None else None
        self._compiled_once: _Compiled | None = None

    def _compiled(self, dialect: Dialect) -> _Compiled:
        if self._compiled_once is None:
            statement: Any = self.statement  # a ClauseElement too: it compiles
            compiled: Any = statement.compile(dialect=dialect, column_keys=self.keys)
            names = tuple(compiled.positiontup or ())
            processors = compiled._bind_processors
            fixed = {name: bind.effective_value for name, bind in (
                (compiled.bind_names[b], b) for b in compiled.binds.values())
                if not bind.required}
            # SQLite describes no column types: SQLAlchemy's processors are given None.
            results = tuple(entry[3]._cached_result_processor(dialect, None)
                            for entry in compiled._result_columns)
            self._compiled_once = _Compiled(compiled.string, names, fixed, tuple(
                processors.get(n) for n in names), results)
        return self._compiled_once

    @staticmethod
    def _args(c: _Compiled, params: Mapping[str, Any]) -> tuple[Any, ...]:
        fixed = c.fixed
        values = (params[n] if n in params else fixed[n] for n in c.names)
        return tuple(value if bind is None else bind(value)
                     for bind, value in zip(c.binds, values, strict=True))

    async def rows(self, conn: AsyncConnection, params: Mapping[str, Any]
                   ) -> list[tuple[Any, ...]]:
        """The statement's rows, each value as SQLAlchemy would give it."""
        driver = await _driver_of(conn)
        if driver is None:
            return [tuple(r) for r in await conn.execute(self.statement, params)]
        c = self._compiled(conn.dialect)
        found = await _send(conn, driver, c.sql, self._args(c, params), many=False)
        procs = c.results
        if not any(procs):  # text(), or nothing to process
            return [tuple(r) for r in found]
        return [tuple(v if p is None else p(v) for p, v in zip(procs, r, strict=True))
                for r in found]

    async def run_many(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once per row (an INSERT's rows), in one go."""
        if not rows:
            return
        driver = await _driver_of(conn)
        if driver is None:
            await conn.execute(self.statement, rows)
            return
        c = self._compiled(conn.dialect)
        await _send(conn, driver, c.sql, [self._args(c, r) for r in rows], many=True)


async def _driver_of(conn: AsyncConnection) -> InlineSqlite | None:
    """The writer's SQLite connection under `conn`; None for any other (the statement
    goes through SQLAlchemy)."""
    if conn.dialect.name != "sqlite":
        return None
    driver = (await conn.get_raw_connection()).driver_connection
    return driver if isinstance(driver, InlineSqlite) else None


async def _send(conn: AsyncConnection, driver: InlineSqlite, sql: str, args: Any, *,
                many: bool) -> list[Any]:
    sync = conn.sync_connection
    assert sync is not None  # an AsyncConnection in use has one
    dispatch = sync.dispatch
    for listen in dispatch.before_cursor_execute:
        listen(sync, None, sql, args, None, many)
    cursor = driver.cursor()
    try:
        if many:
            await cursor.executemany(sql, args)
            found: list[Any] = []
        else:
            await cursor.execute(sql, args)
            found = await cursor.fetchall()
    except Exception as error:
        raise _as_sqlalchemy(conn, sql, error, many=many) from error
    finally:
        await cursor.close()
    for listen in dispatch.after_cursor_execute:
        listen(sync, None, sql, args, None, many)
    return found


def _as_sqlalchemy(conn: AsyncConnection, sql: str, error: Exception, *, many: bool
                   ) -> BaseException:
    """The driver's error as SQLAlchemy raises it for any other statement (IntegrityError,
    OperationalError, ...: what the writer tells an outage from a fault by,
    service/store/db.py `is_outage`), the driver's own as its `orig`."""
    dialect = conn.dialect
    dbapi: Any = dialect.loaded_dbapi
    return exc.DBAPIError.instance(sql, None, error, dbapi.Error, hide_parameters=True,
                                   dialect=dialect, ismulti=many)
