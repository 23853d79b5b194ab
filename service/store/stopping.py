"""Stopping background tasks between their database steps, never in the middle of one.

Cancelling a task inside a transaction is not safe here: with SQLite the cancelled
statement goes on in aiosqlite's thread and can hold the write lock after the pool
has taken the connection back ("database is locked" for the next start), and with
asyncpg a connection cut mid-protocol has to be thrown away, which can stall shutdown.
So a task marks each database step with `guard.step()`, and `guard.stop(tasks)` waits
for the steps under way to end (bounded), then cancels the tasks where they wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

log = logging.getLogger("liaison.stopping")


class Stopping(Exception):
    """Raised on entering a step once stop has begun: the task should end."""


class StepGuard:
    def __init__(self, name: str, *, patience: float = 10.0) -> None:
        self.name = name
        self.patience = patience
        self.stopping = False
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def step(self) -> AsyncIterator[None]:
        """A stretch of work that stop lets finish. No await may come between deciding
        to take a step and entering it, so a task never starts one after stop began."""
        if self.stopping:
            raise Stopping(self.name)
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def stop(self, *tasks: asyncio.Task[object] | None) -> None:
        self.stopping = True
        try:
            await asyncio.wait_for(self._idle.wait(), self.patience)
        except TimeoutError:
            # A database that does not answer must not hold shutdown for ever.
            log.warning("%s: a step still running after %.0fs is cut short", self.name,
                        self.patience)
        live = [t for t in tasks if t is not None and not t.done()]
        for task in live:
            task.cancel()
        results = await asyncio.gather(*live, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, Stopping):
                log.warning("%s ended with %s: %s", self.name, type(result).__name__, result)
