"""`insert_together`: several tables' rows in one PostgreSQL statement (service/store/unnest.py).
What it stores must be what `conn.execute(insert(table), rows)` stores, in one statement;
what PostgreSQL refuses must be refused the same way (an over-long value is not cut)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.db import is_outage
from service.store.tables import BOARD, CAD_EVENT, DECISION
from service.store.unnest import insert_together
from tests.conftest import migrated_engine

EASTERN = timezone(timedelta(hours=-4))
AT = datetime(2026, 3, 10, 14, 0, 0, 123456, tzinfo=EASTERN)


def _event(event_id: str, call_id: str = "c") -> dict[str, Any]:
    return {"event_id": event_id, "call_id": call_id, "source": "cad", "incident_id": "Ñ-1",
            "type": "created", "occurred_at": AT, "received_at": AT + timedelta(seconds=1),
            "body": '{"narrative":"café ☎"}', "response": "{}"}


def _decision(call_id: str, event_id: str | None) -> dict[str, Any]:
    return {"call_id": call_id, "cause": "event", "event_id": event_id,
            "destination": "call_team", "policy_version": "v1", "decision": "{}",
            "created_at": AT}


def _board(n: int) -> dict[str, Any]:
    return {"call_id": f"c{n}", "type": "call", "created_at": AT, "body": f'{{"n":{n}}}',
            "restricted_body": None if n % 2 else "{}", "agency_id": None,
            "aid_agency_id": "north" if n % 3 == 0 else None}


@pytest_asyncio.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh PostgreSQL database, migrated (the statement is PostgreSQL's only)."""
    async with migrated_engine(postgres_url) as engine:
        yield engine


def _stored(row: dict[str, Any], drop: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "seq", drop)}


@pytest.mark.asyncio
async def test_several_tables_rows_are_stored_in_one_statement_as_insert_stores_them(
        engine: AsyncEngine) -> None:
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: sent.append(sql))
    async with engine.begin() as conn:
        await conn.execute(insert(CAD_EVENT), [_event("by-insert")])
        await conn.execute(insert(DECISION), [_decision("c", None)])
        sent.clear()
        seqs = await insert_together(conn, [
            (CAD_EVENT, [_event("together-1", "d"), _event("together-2", "d")]),
            (DECISION, [_decision("d", "together-1")]),
            (BOARD, [_board(n) for n in range(5)])], "seq")
        together = list(sent)
    async with engine.connect() as conn:
        events = [dict(r) for r in (await conn.execute(
            select(CAD_EVENT).order_by(CAD_EVENT.c.id))).mappings()]
        decisions = [dict(r) for r in (await conn.execute(
            select(DECISION).order_by(DECISION.c.id))).mappings()]
        board = [dict(r) for r in (await conn.execute(
            select(BOARD).order_by(BOARD.c.seq))).mappings()]
    assert len(together) == 1 and together[0].startswith("WITH w0 AS (INSERT INTO cad_event ")
    assert [e["event_id"] for e in events] == ["by-insert", "together-1", "together-2"]
    assert _stored(events[0], "event_id") == _stored(events[1], "event_id") | {"call_id": "c"}
    assert events[1]["occurred_at"] == datetime(2026, 3, 10, 18, 0, 0, 123456, tzinfo=UTC)
    assert events[1]["body"] == '{"narrative":"café ☎"}'
    assert _stored(decisions[1], "event_id") == _stored(decisions[0], "event_id") | {
        "call_id": "d"}
    # The seqs returned are the board rows', and in the rows' order once sorted.
    assert sorted(seqs) == [b["seq"] for b in board]
    assert [_stored(b, "") for b in board] == [_board(n) for n in range(5)]


@pytest.mark.asyncio
async def test_many_board_rows_are_numbered_in_the_order_given(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        seqs = await insert_together(conn, [(BOARD, [_board(n) for n in range(300)])],
                                     "seq")
        stored = [b for (b,) in await conn.execute(
            select(BOARD.c.body).order_by(BOARD.c.seq))]
    assert len(seqs) == 300 and len(set(seqs)) == 300
    assert stored == [f'{{"n":{n}}}' for n in range(300)]


@pytest.mark.asyncio
async def test_an_over_long_value_is_refused_not_cut_and_nothing_of_the_statement_stays(
        engine: AsyncEngine) -> None:
    """The arrays are cast without a length: a cast to varchar(40) would cut the value."""
    with pytest.raises(DBAPIError) as refused:
        async with engine.begin() as conn:
            await insert_together(conn, [
                (BOARD, [_board(1)]),
                (CAD_EVENT, [_event("long") | {"source": "s" * 41}])])
    async with engine.connect() as conn:
        left = [(await conn.execute(select(t).limit(1))).first()
                for t in (BOARD, CAD_EVENT)]
    assert "too long" in str(refused.value)
    assert not is_outage(refused.value)
    assert left == [None, None]


@pytest.mark.asyncio
async def test_a_unique_violation_is_an_integrity_error(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await insert_together(conn, [(CAD_EVENT, [_event("once")])])
    with pytest.raises(IntegrityError) as refused:
        async with engine.begin() as conn:
            await insert_together(conn, [(CAD_EVENT, [_event("once")])])
    assert not is_outage(refused.value)


@pytest.mark.asyncio
async def test_rows_of_one_table_must_give_the_same_columns(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="cad_event"):
            await insert_together(conn, [(CAD_EVENT, [_event("a"), {"event_id": "b"}])])
