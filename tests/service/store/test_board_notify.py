"""On PostgreSQL the database itself tells the other instances of a new board message: a
trigger on `board_message` (migration 0032) notifies at commit, with the highest seq of
each INSERT, so the writer needs no round trip of its own for it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import insert

from service.store.db import create_engine, migrate
from service.store.tables import BOARD, utcnow
from service.writing.bus import asyncpg_dsn
from service.writing.writer import BOARD_CHANNEL


def _row(n: int) -> dict[str, object]:
    return {"call_id": f"c{n}", "type": "decision", "created_at": utcnow(), "body": "{}",
            "restricted_body": "{}", "agency_id": None, "aid_agency_id": None}


@pytest.mark.asyncio
async def test_board_rows_notify_their_highest_seq_at_commit_and_never_on_rollback(
        postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    await migrate(engine)
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(asyncpg_dsn(postgres_url))
    await listener.add_listener(BOARD_CHANNEL, lambda *args: heard.put_nowait(args[-1]))
    try:
        async with engine.begin() as conn:
            seqs = (await conn.execute(insert(BOARD).returning(BOARD.c.seq),
                                       [_row(1), _row(2), _row(3)])).scalars().all()
            await asyncio.sleep(0.2)
            assert heard.empty()  # not before the commit
        assert await asyncio.wait_for(heard.get(), 10) == str(max(seqs))

        async with engine.connect() as conn:
            await conn.execute(insert(BOARD), [_row(4)])
            await conn.rollback()
        async with engine.begin() as conn:
            last = (await conn.execute(insert(BOARD).returning(BOARD.c.seq), _row(5))
                    ).scalar_one()
        # The rolled-back row said nothing: the next notification is the next commit's.
        assert await asyncio.wait_for(heard.get(), 10) == str(last)
        assert heard.empty()
    finally:
        await listener.close()
        await engine.dispose()
