"""Repeat contact: the earlier calls about a call's person, else at its address.

On ingest the writer reads it for a whole batch at once: every `created` event names its
person and address keys (`Keys.repeat`), and `Batch.prefetch` reads, in one statement, how
many stored calls share each key and the latest of them (person_key and address_key are
indexed). A new call's history is that, plus the calls its own batch opened before it; the
board shows it on the call's first decision message. `GET /v1/calls/{id}` reads it for one
call: the calls opened before it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, String, bindparam, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from service.store.tables import CALL, as_utc

BY = (("person", "person_key"), ("address", "address_key"))
# Built once: an alias of the 50-column call table costs more to build than the query.
_OTHER = {by: CALL.alias(f"latest_{by}") for by, _ in BY}
RepeatKey = tuple[str, str]  # ("person" | "address", the key)


def repeat_keys(person_key: str | None, address_key: str | None) -> list[RepeatKey]:
    return [(by, v) for by, v in (("person", person_key), ("address", address_key)) if v]


# Earlier calls are counted up to this many: a shelter or a hospital has thousands, and
# counting them all for every new call there would slow ingest as the years pass. The
# board says "100+".
COUNT_CAP = 100
# SQLite refuses a compound statement of more than 500 parts.
_PER_STATEMENT = 200


async def latest(conn: AsyncConnection, keys: list[RepeatKey], *,
                 opened_before: datetime | None = None, exclude_id: str | None = None
                 ) -> dict[RepeatKey, dict[str, Any]]:
    """For each key: how many stored calls share it (at most COUNT_CAP), and the latest
    of them, each by a seek on the (key, opened_at, id) index. A key without calls is not
    in the answer."""
    parts = sorted({(by, v) for by, v in keys})
    bounded = opened_before is not None
    out: dict[RepeatKey, dict[str, Any]] = {}
    for i in range(0, len(parts), _PER_STATEMENT):
        chunk = parts[i:i + _PER_STATEMENT]
        params: dict[str, Any] = {f"k{j}": v for j, (_, v) in enumerate(chunk)}
        if bounded:
            params.update(before=opened_before, exclude=exclude_id or "")
        stmt = _statement(tuple(by for by, _ in chunk), bounded)
        for r in (await conn.execute(stmt, params)).mappings():
            out[(r["by"], r["k"])] = found_history(r["n"], r["m"], r["outcome"],
                                                   r["disposition"])
    return out


def found_history(count: int, last_at: datetime, outcome: str | None,
                  disposition: str | None) -> dict[str, Any]:
    """A key's history from a row of the read (`LatestOf`)."""
    return {"count": int(count), "last_at": as_utc(last_at), "last_outcome": outcome,
            "last_disposition": disposition}


@dataclass(frozen=True)
class LatestOf:
    """The read of one key (its value the parameter `k{j}`), as columns of the latest
    call with it (`where`): for a statement of its own (`_statement`), or a part of the
    writer's read of a batch's state (service/writing/batch.py)."""

    key: ColumnElement[str]
    count: ColumnElement[int]
    where: ColumnElement[bool]


def latest_of(by: str, j: int, bounded: bool = False) -> LatestOf:
    """The read of the `j`th key, of kind `by` ("person" or "address"); `bounded`: of the
    calls opened before the parameter "before", but "exclude"."""
    o = _OTHER[by].c
    value = bindparam(f"k{j}", type_=String())
    conds: list[ColumnElement[bool]] = [o[f"{by}_key"] == value]
    if bounded:
        conds += [o.opened_at < bindparam("before"), o.id != bindparam("exclude")]
    some = select(o.id).where(*conds).limit(COUNT_CAP).subquery()
    count = select(func.count()).select_from(some).scalar_subquery()
    # One row per key even when several calls were opened at the same moment.
    latest_id = (select(o.id).where(*conds)
                 .order_by(o.opened_at.desc(), o.id.desc()).limit(1)
                 .scalar_subquery())
    return LatestOf(value, count, CALL.c.id == latest_id)


@functools.lru_cache(maxsize=128)
def _statement(shape: tuple[str, ...], bounded: bool) -> Executable:
    """The read for keys of these kinds, with the values as parameters: built once per
    shape (building and hashing a statement cost more than running it, per batch)."""
    c = CALL.c
    parts = []
    for j, by in enumerate(shape):
        of = latest_of(by, j, bounded)
        parts.append(select(literal(by).label("by"), of.key.label("k"),
                            of.count.label("n"), c.opened_at.label("m"), c.outcome,
                            c.disposition).where(of.where))
    return parts[0] if len(parts) == 1 else union_all(*parts)


def pick_history(row: Mapping[str, Any], found: dict[RepeatKey, dict[str, Any]]
          ) -> dict[str, Any] | None:
    """The person's history when there is one, else the address's; None without either."""
    for by, name in BY:
        h = found.get((by, row[name])) if row.get(name) else None
        if h and h["count"]:
            return {"count": h["count"], "more": h["count"] >= COUNT_CAP, "by": by,
                    "last_at": h["last_at"].isoformat() if h["last_at"] else None,
                    "last_outcome": h["last_outcome"],
                    "last_disposition": h["last_disposition"]}
    return None


async def history_of(conn: AsyncConnection, row: dict[str, Any]) -> dict[str, Any] | None:
    """A stored call's repeat-contact history (for reads): the calls opened before it."""
    keys = repeat_keys(row.get("person_key"), row.get("address_key"))
    if not keys:
        return None
    return pick_history(row, await latest(conn, keys, opened_before=as_utc(row["opened_at"]),
                                   exclude_id=row["id"]))
