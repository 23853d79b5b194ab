"""How long a request waits for the database: while it keeps answering, and no longer.

A request (its commit in the writer, the key or session lookup on its way) waits for the
database while the database keeps answering, anyone: any statement finished or any
connection made, on any connection of the engine. Once it has answered nothing for
`quiet` seconds of the wait (db_request_timeout, 1 s), the request gets Unavailable (503
with Retry-After), so a database that froze, or whose network went silent, is answered
"retry" within a second. One that is only busy (a load spike, a slow fsync, another
instance's batch holding the write lock) is waited for, up to `most` seconds in all
(db_statement_timeout): a wait that has heard nothing for a quarter of `quiet` asks the
database `SELECT 1` on another connection, and its answer shows it is alive.
Time this process was not run (a loaded machine, a long garbage collection) does not
count as silence, and a question asked late gets its time to be answered.

What was waited on is not cancelled (cancelling a statement mid-protocol can leave the
connection, or SQLite's thread, in a bad state; see service/store/stopping.py): the caller
says what becomes of it (the writer skips a command still queued), and the driver's own
deadlines (service/store/db.py) end the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Unavailable
from service.store.db import answers, describe, ping

log = logging.getLogger("liaison.db")
T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    quiet: float = 1.0  # give up once the database has answered nothing for this long
    most: float = 30.0  # and in any case after this long

    def describe(self) -> str:
        return f"the database did not answer within {self.quiet:g} s"


def _ask(engine: AsyncEngine) -> None:
    """`SELECT 1`, one at a time per engine: its answer shows the database is alive."""
    heard = answers(engine)
    if heard.asking is None or heard.asking.done():
        heard.asked_at = time.monotonic()
        heard.asking = asyncio.create_task(ping(engine), name="liaison-db-alive")
        heard.asking.add_done_callback(_quietly)


async def _nap(waited: asyncio.Future[Any], seconds: float) -> float:
    """Wait up to `seconds` for `waited`; how much later than asked this process woke.

    A machine too busy to run us on time (a loaded CPU, a long garbage collection) is not
    a silent database: an answer may be waiting in a socket, a few callbacks from being
    noted. The caller does not count that time against the database."""
    before = time.monotonic()
    await asyncio.wait({waited}, timeout=seconds)
    late = time.monotonic() - before - seconds
    if waited.done() or late <= 0.01:
        return 0.0
    for _ in range(5):
        await asyncio.sleep(0)  # let answers already in hand be noted
    return late


async def answered(engine: AsyncEngine, waited: asyncio.Future[Any],
                   patience: Patience) -> bool:
    """Wait for `waited` while the database keeps answering: True once it is done,
    False once the database has been silent for `patience.quiet` seconds of this wait,
    or after `patience.most` seconds in all."""
    heard_from = answers(engine)
    start = time.monotonic()
    half = patience.quiet / 2
    # Most waits end here, without asking the database anything.
    starved = await _nap(waited, min(half, 0.1))  # time this process was not run
    if waited.done():
        return True
    while True:
        heard = max(start, heard_from.last)
        now = time.monotonic()
        give_up_at = heard + patience.quiet + starved
        asking = heard_from.asking is not None and not heard_from.asking.done()
        if asking and heard_from.asked_at > heard:
            # A question still out gets half of `quiet` to come back, however late it
            # was asked (a starved process asks late).
            give_up_at = max(give_up_at, heard_from.asked_at + half + starved)
        give_up_at = min(give_up_at, start + patience.most)
        if now >= give_up_at:
            return waited.done()
        if now - heard_from.last >= half / 2:
            # Nothing heard lately (before this wait, too): is it there? Asked after a
            # quarter of `quiet`, so its answer has at least half of it to come back in
            # before give_up_at (asking only after half could miss by a rounding error).
            _ask(engine)
        starved += await _nap(waited, min(give_up_at - now, half))
        if waited.done():
            return True


async def answer_within(engine: AsyncEngine, patience: Patience | None, work: Awaitable[T],
                        doing: str) -> T:
    """`work`'s result, waited for as above; Unavailable once the database is silent. A
    lookup given up on runs on to its end; what it raises then is only logged."""
    if patience is None:
        return await work
    task = asyncio.ensure_future(work)
    if await answered(engine, task, patience):
        return task.result()
    task.add_done_callback(_forget)
    log.warning("%s gave up waiting for the database (%s)", doing, patience.describe())
    raise Unavailable(f"{doing}: {patience.describe()}; retry shortly")


def _quietly(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a database that does not answer is what we asked


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("a lookup given up on ended later: %s", describe(task.exception()))  # type: ignore[arg-type]

