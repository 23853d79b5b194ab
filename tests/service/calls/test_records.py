"""The typed call row names exactly the call table's columns, with their nullability."""

from __future__ import annotations

import types
import typing

from service.calls.records import CallRow
from service.store.tables import CALL


def test_the_call_row_is_the_call_table() -> None:
    hints = typing.get_type_hints(CallRow)
    assert set(hints) == {c.name for c in CALL.columns}
    for column in CALL.columns:
        optional = (isinstance(hints[column.name], types.UnionType)
                    and type(None) in typing.get_args(hints[column.name]))
        assert optional == column.nullable, column.name
