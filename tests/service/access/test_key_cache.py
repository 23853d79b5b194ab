"""The API key cache (service/access/auth.py `KeyCache`): the requests that find a key's
entry stale together wait for one read of it and one note of its use, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.access.auth import KeyCache, Role, create_key, revoke_key
from service.store.tables import API_KEY
from tests.conftest import migrated_engine

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(database_url) as engine:
        yield engine


class KeyStatements:
    """The statements sent on the api_key table, by their first word."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def __enter__(self) -> KeyStatements:
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._keep)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._keep)

    def _keep(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_key" in statement:
            self.seen.append(statement.split()[0].upper())


async def test_requests_finding_a_key_stale_together_read_it_once(engine: AsyncEngine
                                                                   ) -> None:
    token, row = await create_key(engine, "cad-one", role=Role.cad)
    cache = KeyCache(engine, ttl=timedelta(seconds=60))
    with KeyStatements(engine) as sent:
        found = await asyncio.gather(*(cache.principal(token) for _ in range(20)))
    assert {(p.id, p.role) for p in found if p is not None} == {(row["id"], Role.cad)}
    assert len([p for p in found if p is not None]) == 20
    # One read, and one note of its first use (a key never used: last_used_at was None).
    assert sent.seen == ["SELECT", "UPDATE"]
    async with engine.connect() as conn:
        used = (await conn.execute(select(API_KEY.c.last_used_at)
                                   .where(API_KEY.c.id == row["id"]))).scalar_one()
    assert used is not None
    with KeyStatements(engine) as sent:
        assert await cache.principal(token) is not None
    assert sent.seen == [], "within the ttl the kept row answers"


async def test_a_caller_that_goes_away_leaves_the_read_to_the_others(engine: AsyncEngine
                                                                     ) -> None:
    token, row = await create_key(engine, "cad-two", role=Role.cad)
    cache = KeyCache(engine, ttl=timedelta(seconds=60))
    first = asyncio.create_task(cache.principal(token))
    await asyncio.sleep(0)  # the first has started the read
    others = [asyncio.create_task(cache.principal(token)) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    found = await asyncio.gather(*others)
    assert [p.id if p else None for p in found] == [row["id"]] * 3
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_revoked_key_stops_at_the_next_read(engine: AsyncEngine) -> None:
    token, row = await create_key(engine, "cad-three", role=Role.cad)
    cache = KeyCache(engine, ttl=timedelta(0))
    assert await cache.principal(token) is not None
    await revoke_key(engine, row["id"])
    assert await asyncio.gather(*(cache.principal(token) for _ in range(5))) == [None] * 5
    wrong = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    assert await cache.principal(wrong) is None
