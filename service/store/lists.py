"""`column IN (a list)` with the whole list as one parameter, so the statement's SQL is the
same whatever the list's length.

Why: SQLAlchemy's `in_(bindparam(..., expanding=True))` renders one placeholder per item
at each execution (~100 us a statement on this machine, a fifth of its cost), and every
length is a statement of its own: on PostgreSQL one more prepared statement, parsed again
whenever the driver's cache of them (100) has let it go, which a writer's batches of
1 to 256 events do. The writer's look-ups of a batch's events, calls and agencies use it
(service/writing/batch.py).

PostgreSQL: `column = ANY($1)`, the list an array, which the column's index serves as it
serves IN. SQLite: `column IN (SELECT value FROM json_each(?))`, the list JSON text;
SQLite seeks the column's index once per value, as for IN with a list.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Boolean, String, TypeDecorator, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine


class TextList(TypeDecorator[list[str]]):
    """A list of strings as one parameter: an array on PostgreSQL, JSON text elsewhere."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(String()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: list[str] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        items = list(value)
        if not all(isinstance(item, str) for item in items):
            raise TypeError("a TextList parameter holds strings only")
        return items if dialect.name == "postgresql" else orjson.dumps(items).decode()


def text_list(name: str) -> BindParameter[list[str]]:
    """A parameter `name` taking a list of strings, for `one_of`."""
    return bindparam(name, type_=TextList())


class OneOf(ColumnElement[bool]):
    """`column` is one of the list parameter's items (`one_of`)."""

    __visit_name__ = "liaison_one_of"
    inherit_cache = True
    type = Boolean()
    # A comparison: stands alone in a WHERE (else SQLite's would read `(... IN ...) = 1`,
    # which no index serves).
    _is_implicitly_boolean = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("items", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any], items: BindParameter[list[str]]) -> None:
        self.column = column
        self.items = items


def one_of(column: ColumnElement[Any], items: BindParameter[list[str]]) -> OneOf:
    """`column IN items`, `items` one parameter made by `text_list` (an empty list matches
    nothing, as an empty IN does)."""
    return OneOf(column, items)


@compiles(OneOf, "postgresql")
def _one_of_postgres(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, items = compiler.process(element.column, **kw), compiler.process(element.items, **kw)
    return f"({column} = ANY({items}))"


@compiles(OneOf)
def _one_of_json(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, items = compiler.process(element.column, **kw), compiler.process(element.items, **kw)
    return f"({column} IN (SELECT value FROM json_each({items})))"
