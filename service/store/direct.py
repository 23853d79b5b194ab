"""Statements the writer runs in every batch, sent on the driver's connection itself.

Why: SQLAlchemy's execution of a compiled, cached statement (its execution context, the
DBAPI adapter's cursor, the greenlet it runs in) costs ~190 us of CPU on this machine
where asyncpg's own round trip costs ~55 (SQLite: ~150 where the statement takes ~15), and
a batch runs seven or eight such statements whatever it holds: about a third of what a
batch of one event costs (bench/README.md, "Fifth sitting").

What stays SQLAlchemy's: the statement (built and compiled by it, once per dialect, with
its own bind and result processors, so values go in and come out exactly as through
`conn.execute`), the connection and its transaction (the same connection, inside the
same BEGIN ... COMMIT), and its events: `before_cursor_execute` and `after_cursor_execute`
are told of every statement sent here as of any other (the database's liveness watch,
service/store/dbwait.py, and the tests that count a batch's statements listen there).
On SQLite the statement goes through the writer's InlineSqlite cursor, so the write lock
is taken before the first write and the loop gets its turn after each, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
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
    types: tuple[Any, ...]  # each result column's SQLAlchemy type


class Direct:
    """A statement the writer runs often, compiled once per dialect and sent on the driver's
    connection. `keys`: an INSERT's or UPDATE's columns given (its rows' keys)."""

    def __init__(self, statement: Executable, keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.keys = list(keys) if keys is not None else None
        self._by_dialect: dict[str, _Compiled] = {}
        # Per dialect, each result column's processor: some depend on the type the
        # database gives the column (a PostgreSQL number), known once it has answered.
        self._results: dict[str, tuple[Callable[[Any], Any] | None, ...]] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            statement: Any = self.statement  # a ClauseElement too: it compiles
            compiled: Any = statement.compile(dialect=dialect, column_keys=self.keys)
            names = tuple(compiled.positiontup or ())
            processors = compiled._bind_processors
            types = tuple(entry[3] for entry in compiled._result_columns)
            fixed = {name: bind.effective_value for name, bind in (
                (compiled.bind_names[b], b) for b in compiled.binds.values())
                if not bind.required}
            found = self._by_dialect[dialect.name] = _Compiled(
                compiled.string, names, fixed, tuple(processors.get(n) for n in names), types)
        return found

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
        procs = self._results.get(conn.dialect.name)
        raw, described = await _send(conn, driver, c.sql, self._args(c, params), many=False,
                                     describe=procs is None)
        if not c.types:  # text(): nothing to process, as SQLAlchemy would not
            return [tuple(r) for r in raw]
        if procs is None:
            procs = self._results[conn.dialect.name] = tuple(
                type_._cached_result_processor(conn.dialect, coltype)
                for type_, coltype in zip(c.types, described, strict=True))
        if not any(procs):
            return [tuple(r) for r in raw]
        return [tuple(v if p is None else p(v) for p, v in zip(procs, r, strict=True))
                for r in raw]

    async def run_many(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once per row (an INSERT's or UPDATE's rows), in one go."""
        if not rows:
            return
        driver = await _driver_of(conn)
        if driver is None:
            await conn.execute(self.statement, rows)
            return
        c = self._compiled(conn.dialect)
        await _send(conn, driver, c.sql, [self._args(c, r) for r in rows], many=True)


async def _driver_of(conn: AsyncConnection) -> InlineSqlite | asyncpg.Connection | None:
    """The writer's driver connection under `conn`, or None: the statement goes through
    SQLAlchemy, as any other. None for another driver (aiosqlite's, of an in-memory
    database's writer), and on PostgreSQL before the transaction has begun: SQLAlchemy's
    asyncpg adapter sends BEGIN with its first statement, and one sent here first would
    run on its own, outside the transaction (the writer's lock is taken first, so its
    batches' statements come after). SQLite's cursor begins the transaction itself before
    a write (service/store/inline_sqlite.py), as before."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if isinstance(driver, InlineSqlite):
        return driver
    if isinstance(driver, asyncpg.Connection):
        adapter: Any = raw.dbapi_connection
        begun = adapter is not None and (getattr(adapter, "_transaction", None) is not None
                                         or adapter.isolation_level == "autocommit")
        return driver if begun else None
    return None


async def _send(conn: AsyncConnection, driver: InlineSqlite | asyncpg.Connection, sql: str,
                args: Any, *, many: bool, describe: bool = False
                ) -> tuple[list[Any], list[Any]]:
    """The rows, and with `describe` each column's type as the driver describes it (as
    SQLAlchemy's result processors are given it)."""
    sync = conn.sync_connection
    assert sync is not None  # an AsyncConnection in use has one
    dispatch = sync.dispatch
    if dispatch.before_cursor_execute:
        for listen in dispatch.before_cursor_execute:
            listen(sync, None, sql, args, None, many)
    try:
        found, described = await _on_driver(driver, sql, args, many=many, describe=describe)
    except Exception as error:
        raise _as_sqlalchemy(conn, sql, error, many=many) from error
    if dispatch.after_cursor_execute:
        for listen in dispatch.after_cursor_execute:
            listen(sync, None, sql, args, None, many)
    return found, described


async def _on_driver(driver: InlineSqlite | asyncpg.Connection, sql: str, args: Any, *,
                     many: bool, describe: bool) -> tuple[list[Any], list[Any]]:
    found: list[Any] = []
    described: list[Any] = []
    if isinstance(driver, InlineSqlite):
        cursor = driver.cursor()
        try:
            if many:
                await cursor.executemany(sql, args)
            else:
                await cursor.execute(sql, args)
                found = await cursor.fetchall()
                described = [d[1] for d in cursor.description or ()]
        finally:
            await cursor.close()
    elif many:  # asyncpg: its statement cache keeps the statement prepared
        await driver.executemany(sql, args)
    elif describe:  # once: `prepare` parses again, where `fetch` takes the cache's
        statement = await driver.prepare(sql)
        found = await statement.fetch(*args)
        described = [a.type.oid for a in statement.get_attributes()]
    else:
        found = await driver.fetch(sql, *args)
    return found, described


def _as_sqlalchemy(conn: AsyncConnection, sql: str, error: Exception, *, many: bool
                   ) -> BaseException:
    """The driver's error as SQLAlchemy raises it for any other statement (IntegrityError,
    OperationalError, ...: what the writer tells an outage from a fault by,
    service/store/db.py `is_outage`), the driver's own as its `orig`."""
    dialect = conn.dialect
    dbapi: Any = dialect.loaded_dbapi
    translate = getattr(dbapi, "_asyncpg_error_translate", None)
    if translate is not None:  # asyncpg's, as SQLAlchemy's adapter translates it
        for kind in type(error).__mro__:
            if kind in translate:
                error = translate[kind](error.args[0] if error.args else str(error), error)
                break
    return exc.DBAPIError.instance(sql, None, error, dbapi.Error, hide_parameters=True,
                                   dialect=dialect, ismulti=many)
