"""The live bus: how a commit in any instance wakes every board hub.

In-process: the writer pokes the hub directly. PostgreSQL: the writer's
transaction issues NOTIFY (carrying only the seq); every instance LISTENs and
reads the rows from the database, so all boards see the same ordered feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from service.live.board import BoardHub
from service.writing.writer import BOARD_CHANNEL

log = logging.getLogger("liaison.bus")


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class PostgresListener:
    """LISTEN on the board channel; on a dropped connection, reconnect with backoff and
    let the hub catch up from the database, so nothing is missed."""

    def __init__(self, url: str, hub: BoardHub, *, timeout: float = 10.0) -> None:
        self.dsn = asyncpg_dsn(url)
        self.hub = hub
        # Connecting, and the liveness check below, give up after this long.
        self.timeout = timeout
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liaison-pg-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.hub.poke(int(payload) if payload.isdigit() else None)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=self.timeout)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(BOARD_CHANNEL, self._on_notify)
                self.connected.set()
                self.hub.poke()  # catch up on anything committed while we were away
                delay = 0.2
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 5)
                    if not lost.is_set() and conn.is_closed():
                        break
                    # A server that froze, or a network that went silent, closes nothing:
                    # ask, and start over when no answer comes.
                    await conn.execute("SELECT 1", timeout=self.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("board listener lost its connection (%s); retrying in %.1fs",
                            exc, delay)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()  # no goodbye: the server may not be answering
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
