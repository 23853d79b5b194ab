"""`Direct`: a statement compiled by SQLAlchemy, sent on the writer's SQLite cursor
(service/store/direct.py; on PostgreSQL through SQLAlchemy). What it stores and reads must
be what SQLAlchemy's own execution stores and reads, on both databases; SQLAlchemy's cursor
events hear it; on SQLite its execution machinery does not run it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError

from service.store.db import create_engine, create_write_engine, is_outage, migrate
from service.store.direct import Direct
from service.store.lists import one_of, text_list
from service.store.tables import CAD_EVENT, CALL
from service.writing.writer import Writer
from tests.factories import compiled, ingest_event, shipped_doc

EASTERN = timezone(timedelta(hours=-4))


def _event(event_id: str) -> dict[str, Any]:
    # An offset that is not UTC, non-ASCII text: what the bind processors handle.
    at = datetime(2026, 3, 10, 14, 0, 0, 123456, tzinfo=EASTERN)
    return {"event_id": event_id, "call_id": "c", "source": "cad", "incident_id": "Ñ-1",
            "type": "created", "occurred_at": at, "received_at": at + timedelta(seconds=1),
            "body": '{"narrative":"café ☎"}', "response": "{}"}


@pytest.mark.asyncio
async def test_rows_are_stored_and_read_as_through_sqlalchemy(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    writer_engine = create_write_engine(engine)
    keys = sorted(_event("x"))
    try:
        # Calls with every kind of column (datetimes, booleans, floats, JSON text, None),
        # stored by the writer; then one row written each way.
        writer = Writer(engine)
        writer.start()
        try:
            policy = compiled(shipped_doc())
            for n in range(3):
                await writer.submit(ingest_event(policy, incident_id=f"INC-{n}"))
        finally:
            await writer.stop()
        async with writer_engine.begin() as conn:
            await conn.execute(insert(CAD_EVENT), [_event("by-sqlalchemy")])
            await Direct(insert(CAD_EVENT), keys).run_many(conn, [_event("direct")])
            of_source = select(CALL).where(
                CALL.c.source == "generic", one_of(CALL.c.incident_id, text_list("ids")))
            params = {"ids": ["INC-0", "INC-2", "INC-9"]}
            by_sqlalchemy = [tuple(r) for r in await conn.execute(of_source, params)]
            direct = await Direct(of_source).rows(conn, params)
            # A literal the statement holds itself, and a computed column.
            counted = select(literal("n").label("k"), func.count().label("n")).where(
                CAD_EVENT.c.source == "cad")
            counted_rows = await Direct(counted).rows(conn, {})
        async with engine.connect() as conn:
            stored = {r["event_id"]: dict(r) for r in (await conn.execute(
                select(CAD_EVENT).where(CAD_EVENT.c.source == "cad"))).mappings()}
    finally:
        await writer_engine.dispose()
        await engine.dispose()
    assert len(direct) == 2 and sorted(direct) == sorted(by_sqlalchemy)
    assert {type(v) for row in direct for v in row} == {type(v) for row in by_sqlalchemy
                                                       for v in row}
    assert counted_rows == [("n", 2)]
    a, b = stored["by-sqlalchemy"], stored["direct"]
    del a["id"], a["event_id"], b["id"], b["event_id"]
    assert a == b
    assert b["occurred_at"] == datetime(2026, 3, 10, 18, 0, 0, 123456, tzinfo=UTC)
    assert b["body"] == '{"narrative":"café ☎"}'


@pytest.mark.asyncio
async def test_cursor_events_hear_it_and_on_sqlite_sqlalchemy_does_not_execute_it(
        database_url: str) -> None:
    """The database's liveness watch and the statement-counting tests listen to the cursor
    events; SQLAlchemy's own execution (`before_execute`) is what Direct leaves out on
    SQLite, and leaves to SQLAlchemy on PostgreSQL (where it measured no gain)."""
    engine = create_engine(database_url)
    await migrate(engine)
    writer_engine = create_write_engine(engine)
    cursor_heard: list[str] = []
    executed: list[str] = []
    after: list[str] = []
    event.listen(writer_engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: cursor_heard.append(sql))
    event.listen(writer_engine.sync_engine, "after_cursor_execute",
                 lambda _c, _cur, sql, *_: after.append(sql))
    event.listen(writer_engine.sync_engine, "before_execute",
                 lambda _c, clause, *_: executed.append(str(clause)))
    try:
        async with writer_engine.begin() as conn:
            rows = await Direct(text("SELECT 40 + 2")).rows(conn, {})
    finally:
        await writer_engine.dispose()
        await engine.dispose()
    assert rows == [(42,)]
    assert [s for s in cursor_heard if "40 + 2" in s] == ["SELECT 40 + 2"]
    assert [s for s in after if "40 + 2" in s] == ["SELECT 40 + 2"]
    through_sqlalchemy = [s for s in executed if "40 + 2" in s]
    assert through_sqlalchemy == ([] if database_url.startswith("sqlite") else
                                  ["SELECT 40 + 2"])


@pytest.mark.asyncio
async def test_it_runs_inside_the_transaction_even_as_its_first_statement(
        database_url: str) -> None:
    """Sent first in a transaction, a write is still the transaction's: rolled back with it
    (the writer's SQLite cursor begins the transaction before a write)."""
    engine = create_engine(database_url)
    await migrate(engine)
    writer_engine = create_write_engine(engine)
    keys = sorted(_event("x"))
    try:
        with pytest.raises(RuntimeError):
            async with writer_engine.begin() as conn:
                await Direct(insert(CAD_EVENT), keys).run_many(conn, [_event("first")])
                await Direct(insert(CAD_EVENT), keys).run_many(conn, [_event("second")])
                raise RuntimeError("roll back")
        async with writer_engine.begin() as conn:
            await Direct(insert(CAD_EVENT), keys).run_many(conn, [_event("kept")])
        async with engine.connect() as conn:
            stored = sorted((await conn.execute(select(CAD_EVENT.c.event_id))).scalars())
    finally:
        await writer_engine.dispose()
        await engine.dispose()
    assert stored == ["kept"]


@pytest.mark.asyncio
async def test_the_drivers_errors_are_raised_as_sqlalchemy_raises_them(
        database_url: str) -> None:
    """What the writer tells an outage from a fault by (service/store/db.py `is_outage`)
    is SQLAlchemy's exception classes: a refused row is an IntegrityError, as through
    `conn.execute`, the driver's own error its `orig`."""
    engine = create_engine(database_url)
    await migrate(engine)
    writer_engine = create_write_engine(engine)
    keys = sorted(_event("x"))
    try:
        with pytest.raises(IntegrityError) as raised:
            async with writer_engine.begin() as conn:
                await Direct(insert(CAD_EVENT), keys).run_many(
                    conn, [_event("twice"), _event("twice")])
    finally:
        await writer_engine.dispose()
        await engine.dispose()
    assert raised.value.orig is not None
    assert not is_outage(raised.value)
