"""The single writer: every change goes through one queue and is committed in batches.

Why one writer: board `seq` numbers must become visible in the order they were
assigned, or a board reading "everything after N" could skip a row that commits
late. One writer per process plus a PostgreSQL advisory lock across processes
gives that order; batching many commands into one transaction (group commit)
keeps durable ingest fast.

Deadlines: a caller waits for its commit while the database keeps answering, and gets 503
(Unavailable, with Retry-After) once it has been silent for `patience.quiet` seconds
(service/store/dbwait.py), so a database that stops answering makes Liaison answer "retry" at
once instead of holding every CAD request. A command still queued when its caller gave up
is skipped; one already in a transaction may yet be stored (a CAD's retry of an event is
idempotent, so it gets the first answer back).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from routing.jurisdiction import RegionView
from service.errors import DomainError, Unavailable
from service.live.board import BoardRow
from service.store.db import (
    WRITE_LOCK_KEY,
    create_write_engine,
    describe,
    is_outage,
    is_postgres,
)
from service.store.dbwait import Patience, answered
from service.store.stopping import StepGuard
from service.store.tables import utcnow
from service.writing.batch import Batch, Keys

log = logging.getLogger("liaison.writer")
BOARD_CHANNEL = "liaison_board"
# Built once, as the batch's other statements (service/writing/batch.py): a statement built
# per batch is compiled and hashed again each time.
# With the lock, for this transaction only, generic plans for the batch's prepared
# statements: PostgreSQL otherwise planned the state read (a UNION ALL of seven parts) anew
# at every bind, 0.66 of its 0.8 ms, as its generic plan's estimate (unknown array sizes
# and LIMITs) never beat the custom ones'. Generic: 0.15 ms to bind, 0.21 to run
# (bench/README.md, "Seventh sitting"). The API's own reads, on the same pooled
# connections, keep PostgreSQL's choice (the setting ends with the transaction).
_LOCK = text("SELECT pg_advisory_xact_lock(:k), "
             "set_config('plan_cache_mode', 'force_generic_plan', true)")


class Command(Protocol):
    def keys(self) -> Keys:
        """What the command will read, fetched for the whole batch at once."""

    async def apply(self, ctx: Batch) -> Any:
        """Validate first, raise DomainError before writing anything, then write."""


_Item = tuple[Command, asyncio.Future[Any]]


class Writer:
    def __init__(self, engine: AsyncEngine, *, batch_max: int = 256, queue_max: int = 10_000,
                 webhook: bool = False, patience: Patience = Patience(),
                 on_commit: Callable[[list[BoardRow]], None] | None = None,
                 committing: Callable[[int, int], None] | None = None,
                 region: Callable[[], RegionView] | None = None) -> None:
        self.engine = engine
        # Where batches are written: on SQLite a connection whose statements run in place
        # (service/store/inline_sqlite.py), on PostgreSQL the engine itself.
        self.write_engine = create_write_engine(engine)
        # Each batch's view of the region (service/policy/region.py), read when it starts.
        self.region = region
        self.patience = patience
        self.webhook = webhook
        self.queue_max = queue_max
        self.postgres = is_postgres(engine)
        self.batch_max = batch_max
        self.on_commit = on_commit
        # Told the first and last board seq of a batch before its COMMIT
        # (BoardHub.committing): the notification of that commit is then its own.
        self.committing = committing
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._guard = StepGuard("writer")
        # Writes are failing: set by a failed commit, cleared by one that wrote something
        # (a batch that only read proves nothing about the disk). /v1/health reports it.
        self.last_error: str | None = None
        self.failing_since: datetime | None = None
        self._committing_since: float | None = None  # time.monotonic() of the open commit

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._guard.stopping

    def start(self) -> None:
        self._guard = StepGuard("writer")  # a stopped writer can be started again
        self._task = asyncio.create_task(self._run(), name="liaison-writer")

    async def stop(self) -> None:
        # The batch being committed is finished (its callers get their answers); what is
        # still queued is refused, so its callers retry against another instance or later.
        await self._guard.stop(self._task)
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(Unavailable("the service is shutting down"))
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()

    def stalled_for(self) -> float:
        """Seconds the commit under way has been waiting on the database (0: none)."""
        since = self._committing_since
        return 0.0 if since is None else time.monotonic() - since

    async def submit(self, command: Command) -> Any:
        """Run a command in the next batch and return once it is committed; Unavailable
        (503) once the database has been silent for `patience.quiet` (service/store/dbwait.py)."""
        if not self.running:
            raise Unavailable("the writer is not running")
        if self._queue.qsize() >= self.queue_max:
            # Refuse rather than grow without bound: the CAD keeps the event and retries.
            raise Unavailable("too many changes waiting to be stored; retry shortly",
                              waiting=self._queue.qsize())
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((command, fut))
        if await answered(self.engine, fut, self.patience):
            return fut.result()
        fut.cancel()  # still queued: the writer skips it
        log.warning("a change gave up waiting for the database (%s); %d waiting",
                    self.patience.describe(), self._queue.qsize())
        raise Unavailable(f"{self.patience.describe()}; retry shortly",
                          waiting=self._queue.qsize())

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # Callers that gave up waiting (their deadline passed) are not served late.
            batch = [item for item in batch if not item[1].done()]
            if not batch:
                continue
            if self._guard.stopping:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(Unavailable("the service is shutting down"))
                return
            async with self._guard.step():
                await self._commit_each_if_need_be(batch)

    async def _commit_each_if_need_be(self, batch: list[_Item]) -> None:
        try:
            await self._commit(batch)
        except Exception as exc:  # noqa: BLE001
            if len(batch) == 1 or is_outage(exc):
                # The database is away or full: every command would fail the same way.
                self._failed(exc)
                for item in batch:
                    self._fail(item, exc)
                return
            # One bad command must not fail its neighbours: retry each alone.
            for item in batch:
                if item[1].done():
                    continue
                try:
                    await self._commit([item])
                except Exception as exc_one:  # noqa: BLE001
                    self._failed(exc_one)
                    self._fail(item, exc_one)

    def _failed(self, exc: Exception) -> None:
        self.last_error = describe(exc)
        if is_outage(exc):
            log.error("write failed, the database is not taking writes: %s", self.last_error)
        else:
            # The stack without the exceptions' texts: PostgreSQL's DETAIL quotes the row it
            # refused ("Failing row contains (…)": a narrative, a name), in the message of
            # every exception of the chain; `describe` keeps the first line only.
            log.error("write failed: %s\n%s", self.last_error,
                      "".join(traceback.format_tb(exc.__traceback__)).rstrip())
        self.failing_since = self.failing_since or utcnow()

    def _fail(self, item: _Item, exc: Exception) -> None:
        if not item[1].done():
            item[1].set_exception(Unavailable("the change could not be stored; retry",
                                              cause=type(exc).__name__))

    async def _commit(self, batch: list[_Item]) -> None:
        self._committing_since = time.monotonic()
        try:
            await self._commit_batch(batch)
        finally:
            self._committing_since = None

    async def _commit_batch(self, batch: list[_Item]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, DomainError | None]] = []
        async with self.write_engine.begin() as conn:
            ctx = Batch(conn=conn, postgres=self.postgres, webhook=self.webhook,
                        region=self.region() if self.region else None)
            if self.postgres:
                # Taken before reading, so what we read is what the last writer committed.
                # (SQLite: one writer per database; its lock is taken at the first write,
                # off the loop: service/store/inline_sqlite.py.)
                await conn.execute(_LOCK, {"k": WRITE_LOCK_KEY})
            await ctx.prefetch([command.keys() for command, _ in batch])
            for command, fut in batch:
                if fut.done():
                    continue  # its caller gave up while the batch waited for the database
                try:
                    outcomes.append((fut, await command.apply(ctx), None))
                except DomainError as refused:
                    outcomes.append((fut, None, refused))
            # On PostgreSQL the board rows' INSERT also notifies every instance listening
            # on this database (BOARD_CHANNEL, the highest seq), delivered at commit: a
            # trigger does it in the same round trip (migration 0032).
            await ctx.flush()
            if ctx.committed_board and self.committing:
                self.committing(ctx.committed_board[0].seq, ctx.max_seq)
        if ctx.wrote:
            self.last_error = self.failing_since = None
        for fut, result, err in outcomes:
            if fut.done():
                continue
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(result)
        if ctx.board_rows and self.on_commit:
            # The committed board rows themselves, so this instance's boards need no re-read.
            self.on_commit(ctx.committed_board)
