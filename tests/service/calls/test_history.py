"""Repeat-contact reads (service/calls/history.py) on SQLite and PostgreSQL: the latest call of a
key when several share its opening time, the cap, and that the read stays an index seek
however many calls share a key and a time (migration 0008)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calls.history import COUNT_CAP, latest
from service.store.db import is_postgres
from service.store.tables import CALL
from tests.conftest import migrated_engine

AT = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
SHELTER = "addr:500 shelter way"

pytestmark = pytest.mark.asyncio


def call_row(cid: str, opened: datetime, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": cid, "source": "generic", "incident_id": f"INC-{cid}", "channel": "911",
        "nature_code": "MNTL", "nature_text": "Mental person", "flags": "[]",
        "opened_at": opened, "last_event_at": opened, "updated_at": opened,
        "destination": "call_team", "mode": "call_direct", "policy_version": "p@1",
        "decision": "{}", "purpose": "live", "checkins_missed": 0,
        "address_key": SHELTER, "person_key": None, "outcome": f"outcome of {cid}",
    }
    row.update(extra)
    return row


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url) as engine:
        yield engine


async def test_the_latest_of_calls_opened_at_the_same_moment_is_the_highest_id(
        engine: AsyncEngine) -> None:
    # A CAD that stamps to the second, or a replay: five calls at one address, one time.
    rows = [call_row(f"c{i}", AT) for i in (3, 1, 5, 2, 4)]
    rows.append(call_row("c0", AT - timedelta(hours=1), person_key="person:p1"))
    async with engine.begin() as conn:
        await conn.execute(insert(CALL), rows)
    async with engine.connect() as conn:
        got = await latest(conn, [("address", SHELTER), ("person", "person:p1"),
                                  ("person", "person:nobody")])
        assert got[("address", SHELTER)]["count"] == 6
        assert got[("address", SHELTER)]["last_outcome"] == "outcome of c5"
        assert got[("address", SHELTER)]["last_at"] == AT
        assert got[("person", "person:p1")]["count"] == 1
        assert ("person", "person:nobody") not in got
        # As of a stored call: the calls opened before it, not itself.
        before = await latest(conn, [("address", SHELTER)], opened_before=AT,
                              exclude_id="c5")
        assert before[("address", SHELTER)] == {
            "count": 1, "last_at": AT - timedelta(hours=1),
            "last_outcome": "outcome of c0", "last_disposition": None}


async def test_a_key_with_many_calls_is_counted_up_to_the_cap(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(CALL), [call_row(f"s{i:04d}", AT) for i in
                                          range(COUNT_CAP * 3)])
    async with engine.connect() as conn:
        got = (await latest(conn, [("address", SHELTER)]))[("address", SHELTER)]
    assert got["count"] == COUNT_CAP
    assert got["last_outcome"] == f"outcome of s{COUNT_CAP * 3 - 1:04d}"


async def test_the_read_is_an_index_seek_even_when_calls_share_a_time(
        engine: AsyncEngine) -> None:
    """Before migration 0008 the latest call was found by sorting every call sharing the
    latest opening time: ingest slowed as a busy address's calls piled up."""
    async with engine.begin() as conn:
        await conn.execute(insert(CALL), [call_row(f"t{i:04d}", AT) for i in range(300)])
    statements: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    async with engine.connect() as conn:
        event.listen(engine.sync_engine, "before_cursor_execute", keep)
        try:
            await latest(conn, [("address", SHELTER)])
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", keep)
        [(statement, params)] = statements
        if is_postgres(engine):
            await conn.execute(text("ANALYZE call"))
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(r[0] for r in await conn.exec_driver_sql(
                f"EXPLAIN {statement}", params))
            assert "Sort" not in plan, plan
            assert "ix_call_address_key_opened_at_id" in plan, plan
        else:
            plan = "\n".join(r[3] for r in await conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", params))
            assert "TEMP B-TREE" not in plan, plan
            assert "COVERING INDEX ix_call_address_key_opened_at_id" in plan, plan
