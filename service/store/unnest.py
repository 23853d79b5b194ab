"""PostgreSQL: a batch's rows of several tables inserted in one statement.

Why: on PostgreSQL a statement is a round trip, and SQLAlchemy's execution of one costs
~250 us of CPU on this machine (bench/README.md, "Fifth sitting"). A batch of one new
call wrote four tables (call, cad_event, decision, board_message) in four statements; at
200 events/s batches hold one to three events, so that fixed cost is most of an event's.
Here each table's rows go as one typed array per column, `unnest` turns them back into
rows, and each table's INSERT is a part of one statement (a data-modifying WITH).

The statement still goes through SQLAlchemy (`exec_driver_sql`): its transaction, its
errors (a unique violation is an IntegrityError, `is_outage` unchanged) and its cursor
events (the database's liveness watch, service/store/dbwait.py). The values go through
each column's own bind processor first, as `conn.execute(insert(table), rows)` sends them.

The arrays are cast to each column's type without its length (`text[]`, not
`varchar(40)[]`): a cast to varchar(n) would cut a longer value silently, where the
INSERT's own assignment refuses it, as the plain INSERT does. The parts of one statement
share a snapshot and none sees another's rows; Liaison's tables have no foreign keys, and
each part writes different rows, so that changes nothing here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

# One table's rows: all of them with the same keys (columns given).
Part = tuple[Table, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class _Shape:
    sql: str
    # Per parameter, in order: the part it is of, its column's key and bind processor.
    params: tuple[tuple[int, str, Callable[[Any], Any] | None], ...]


def _array_type(column: Column[Any], dialect: Dialect) -> str:
    """The column's type as an array cast, without a length ("VARCHAR(40)" -> "VARCHAR[]")."""
    return re.sub(r"\(\d+(,\s*\d+)?\)", "", column.type.compile(dialect=dialect)) + "[]"


@functools.lru_cache(maxsize=64)
def _shape(dialect: Dialect, parts: tuple[tuple[Table, tuple[str, ...]], ...],
           returning: str | None) -> _Shape:
    """The statement for these tables and columns, built once: each part but the last a
    WITH of its own; the last the main INSERT, `returning` its column's values. The last
    part's rows are numbered and inserted in their order (WITH ORDINALITY ... ORDER BY), so
    a sequence gives them ascending values in that order."""
    quote = dialect.identifier_preparer
    params: list[tuple[int, str, Callable[[Any], Any] | None]] = []
    inserts = []
    for i, (table, keys) in enumerate(parts):
        arrays = []
        for key in keys:
            column = table.c[key]
            params.append((i, key, column.type.bind_processor(dialect)))
            arrays.append(f"${len(params)}::{_array_type(column, dialect)}")
        names = ", ".join(quote.quote(k) for k in keys)
        values = f"unnest({', '.join(arrays)})"
        if i == len(parts) - 1:
            given = ", ".join(f"v{j}" for j in range(len(keys)))
            values = (f"SELECT {given} FROM {values} WITH ORDINALITY AS u({given}, n) "
                      "ORDER BY n")
        else:
            values = f"SELECT * FROM {values}"
        inserts.append(f"INSERT INTO {quote.format_table(table)} ({names}) {values}")
    *first, main = inserts
    sql = main if not first else "WITH " + ", ".join(
        f"w{i} AS ({s})" for i, s in enumerate(first)) + " " + main
    if returning is not None:
        sql += f" RETURNING {quote.quote(returning)}"
    return _Shape(sql, tuple(params))


def same_keys(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...] | None:
    """The rows' keys, sorted, when every row gives the same ones; else None."""
    keys = rows[0].keys()
    if any(row.keys() != keys for row in rows):
        return None
    return tuple(sorted(keys))


async def insert_together(conn: AsyncConnection, parts: Sequence[Part],
                          returning: str | None = None) -> list[Any]:
    """Insert each part's rows (each part's rows with the same keys, none empty) in one
    statement on PostgreSQL; the values of the last part's column `returning`, if given,
    in no particular order."""
    shaped = []
    for table, rows in parts:
        keys = same_keys(rows)
        if keys is None:
            raise ValueError(f"rows of {table.name} give different columns")
        shaped.append((table, keys))
    shape = _shape(conn.dialect, tuple(shaped), returning)
    args = []
    for i, key, bind in shape.params:
        rows = parts[i][1]
        args.append([row[key] for row in rows] if bind is None
                    else [bind(row[key]) for row in rows])
    found = await conn.exec_driver_sql(shape.sql, tuple(args))
    return list(found.scalars()) if returning is not None else []
