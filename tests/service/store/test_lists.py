"""`one_of`: `column IN (a list)` with the list as one parameter (service/store/lists.py),
so a statement's SQL, and on PostgreSQL its prepared statement, is the same whatever the
list's length."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import StatementError

from service.store.db import create_engine, migrate
from service.store.lists import one_of, text_list
from service.store.tables import CAD_EVENT, utcnow

# Ids a JSON list or an array literal must carry as they are.
IDS = ["plain", 'quote"d', "it's", "comma,brace}", "Ñandú ☎", "back\\slash", ""]


def _event(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "call_id": "c", "source": "cad", "incident_id": "i",
            "type": "new", "occurred_at": utcnow(), "received_at": utcnow(), "body": "{}",
            "response": "{}"}


@pytest.mark.asyncio
async def test_one_sql_for_every_length_and_the_same_rows_as_in(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, sql, *_: sent.append(sql))
    of_source = select(CAD_EVENT.c.event_id).where(
        CAD_EVENT.c.source == "cad", one_of(CAD_EVENT.c.event_id, text_list("ids")))
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(CAD_EVENT), [_event(i) for i in [*IDS, "other"]])
            sent.clear()
            for ids in ([IDS[0]], IDS, [*IDS, "missing", "also missing"], ["missing"], []):
                found = (await conn.execute(of_source, {"ids": ids})).scalars().all()
                expected = (await conn.execute(select(CAD_EVENT.c.event_id).where(
                    CAD_EVENT.c.source == "cad", CAD_EVENT.c.event_id.in_(ids)))).scalars().all()
                assert sorted(found) == sorted(expected) == sorted(i for i in IDS if i in ids)
        one_of_sql = sent[0::2]
        assert len(one_of_sql) == 5 and len(set(one_of_sql)) == 1, one_of_sql
        assert len(set(sent[1::2])) > 1  # IN with a list is a statement per length
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_a_list_parameter_holds_strings_only(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        async with engine.connect() as conn:
            with pytest.raises(StatementError, match="strings only"):
                await conn.execute(select(CAD_EVENT.c.id).where(
                    one_of(CAD_EVENT.c.event_id, text_list("ids"))), {"ids": ["a", 1]})
    finally:
        await engine.dispose()
