"""On PostgreSQL the board rows an instance's own writer commits reach its boards from the
commit itself (BoardHub.publish), not read back: the commit's notification, which may come
before the writer hears its COMMIT answered, is known for its own (BoardHub.committing)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import event

from service.settings import Settings
from tests.conftest import WAIT, running_server

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio]

EVENTS = 20


async def test_the_hub_reads_back_none_of_its_own_writers_board_rows(postgres_url: str
                                                                      ) -> None:
    async with running_server(Settings(database_url=postgres_url)) as server:
        runtime = server.runtime
        assert runtime.listener is not None and runtime.listener.connected.is_set()
        hub = runtime.hub
        # Only a notification may wake the hub from here on: its safety-net poll waits an
        # hour (the next wait after this poke's read).
        hub.poll_interval = 3600
        hub.poke()
        async with server.connect_board("?snapshot=true") as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert first["type"] == "snapshot"  # the board's replay is done
            await asyncio.sleep(0.2)  # the poke's read, if it has not run yet
            reads: list[str] = []

            def keep(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                if statement.lstrip().upper().startswith("SELECT") \
                        and "FROM board_message" in statement:
                    reads.append(statement)

            event.listen(runtime.engine.sync_engine, "before_cursor_execute", keep)
            try:
                for _ in range(EVENTS):  # one at a time: a batch, a commit, a notification each
                    r = await server.post_event()
                    assert r.status_code == 202, r.text
                    got = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                    assert got["call_id"] == r.json()["call_id"]
                # A read woken by the last notification would have run by now.
                await asyncio.sleep(0.5)
            finally:
                event.remove(runtime.engine.sync_engine, "before_cursor_execute", keep)
    assert reads == [], f"{len(reads)} reads of board rows for {EVENTS} commits of this writer"
