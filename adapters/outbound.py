"""Decisions back to the CAD: a signed webhook fed from a durable outbox.

Each decision is written to the `outbox` table in the decision's own transaction
(`outbox_row`); `DeliveryWorker` POSTs the rows, signed (`sign`; a CAD checks with
`verify_signature`), in order per call, retried with backoff until delivered or given up,
shared between instances by leases. The contract and every rule: docs/webhook.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.live.board import BoardRow
from service.outbox.rows import DELIVERED, FAILED, PENDING, body_of
from service.outbox.signing import (
    DELIVERY_ID_HEADER,
    SEQUENCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from service.settings import Settings
from service.store.db import is_postgres
from service.store.stopping import StepGuard, Stopping
from service.store.tables import OUTBOX, utcnow

log = logging.getLogger("liaison.outbound")

# 4xx answers that mean "not now" rather than "never": retried like a 5xx. 401 and 403
# are about Liaison's credentials (a secret rotated on one side only), not this body:
# giving up at once would dead-letter every delivery until someone retried each by hand.
RETRYABLE_4XX = frozenset({401, 403, 408, 409, 425, 429})


# -- the delivery worker ----------------------------------------------------------------

def backoff(attempt: int, base: float, cap: float,
            rand: Callable[[], float] = random.random) -> float:
    """Seconds before retry `attempt` (1 after the first failure): base·2^(attempt-1),
    at most `cap`, then a random half of it taken off so many waiting rows spread out."""
    delay = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 62))
    return float(delay * (0.5 + 0.5 * rand()))


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str
    timeout: float = 10.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    poll_interval: float = 1.0
    concurrency: int = 16
    give_up_after: float = 3600.0  # seconds of failing; 0: never

    @classmethod
    def from_settings(cls, s: Settings) -> WebhookConfig | None:
        if not s.webhook_url:
            return None
        return cls(url=s.webhook_url, secret=s.webhook_secret, timeout=s.webhook_timeout,
                   backoff_base=s.webhook_backoff_base, backoff_cap=s.webhook_backoff_cap,
                   poll_interval=s.webhook_poll_interval, concurrency=s.webhook_concurrency,
                   give_up_after=s.webhook_give_up_after)

    @property
    def lease(self) -> timedelta:
        # Longer than any one attempt (bounded by `timeout`) plus recording its outcome.
        return timedelta(seconds=2 * self.timeout + 10)


@dataclass(frozen=True)
class _Claimed:
    id: int
    delivery_id: str
    call_id: str
    payload: str
    attempts: int
    failing_since: datetime | None  # the first failure since it last went out well


def refused_for_good(status: int | None) -> bool:
    """The CAD will never take this body: a 4xx that does not mean "later"."""
    return status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX


def give_up_reason(status: int | None, failing_for: float, give_up_after: float
                   ) -> str | None:
    """Why a failed attempt ends the delivery (None: retry it). `failing_for`: seconds
    since its first failure, this one included."""
    if refused_for_good(status):
        return f"refused by the CAD (HTTP {status})"
    if give_up_after and failing_for >= give_up_after:
        return f"failing for {failing_for:.0f}s (at most {give_up_after:g}s)"
    return None


class DeliveryWorker:
    """Sends pending outbox rows to the webhook, oldest first, one at a time per call."""

    def __init__(self, engine: AsyncEngine, config: WebhookConfig, *,
                 owner: str | None = None) -> None:
        self.engine = engine
        self.config = config
        self.postgres = is_postgres(engine)
        self.owner = (owner or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
                      )[:64]
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._guard = StepGuard("webhook delivery")
        self._client: httpx.AsyncClient | None = None
        # Outcomes the CAD gave that the database could not take yet, by row id.
        self._unrecorded: dict[int, tuple[str, dict[str, Any]]] = {}

    @classmethod
    def from_settings(cls, engine: AsyncEngine, settings: Settings) -> DeliveryWorker | None:
        config = WebhookConfig.from_settings(settings)
        return cls(engine, config) if config else None

    def on_commit(self, then: Callable[[list[BoardRow]], None]
                  ) -> Callable[[list[BoardRow]], None]:
        """A writer `on_commit` that calls `then` and wakes this worker: a commit with
        board rows may have added deliveries."""
        def committed(rows: list[BoardRow]) -> None:
            then(rows)
            self.wake()
        return committed

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False,
                                         headers={"user-agent": "Liaison-Webhook/0.1"})
        if not self.postgres:
            # SQLite has one instance: a lease left here is from one that died mid-send.
            await self._release(owner=None)
        self._task = asyncio.create_task(self._run(), name="liaison-delivery")

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        # Sends under way are cut off (their rows stay leased to us and are released
        # below); a claim or an outcome being recorded is let finish.
        await self._guard.stop(self._task, *self._inflight)
        with contextlib.suppress(Exception):  # a last try; else they are sent again
            await self._record_unrecorded()
        try:
            # What this worker held goes back at once, for the next start or another
            # instance; a delivery cut off here may have reached the CAD and is sent again.
            await self._release(owner=self.owner)
        except Exception as exc:  # noqa: BLE001 - the leases run out by themselves
            log.warning("could not release delivery leases: %s", exc)
        if self._client is not None:
            await self._client.aclose()

    def wake(self) -> None:
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            free = self.config.concurrency - len(self._inflight)
            claimed: list[_Claimed] = []
            if free > 0:
                try:
                    async with self._guard.step():
                        # First what the CAD already answered: claimed again, a row whose
                        # lease ran out meanwhile would be sent twice.
                        await self._record_unrecorded()
                        claimed = await self.claim(free)
                    self.last_error = None
                except Stopping:
                    return
                except Exception as exc:  # noqa: BLE001 - the database may come back
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("could not read the outbox: %s", self.last_error)
            for row in claimed:
                task = asyncio.create_task(self._deliver(row), name=f"liaison-delivery-{row.id}")
                self._inflight.add(task)
                task.add_done_callback(self._finished)
            if claimed:
                continue
            # A commit, a finished delivery or a due retry wakes us; the poll finds rows
            # other instances wrote and retries whose timer was lost with a restart.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self.wake()  # the call's next row may be sent now

    async def claim(self, limit: int) -> list[_Claimed]:
        """Lease up to `limit` rows that are due and first in line for their call."""
        now = utcnow()
        o = OUTBOX.c
        cand, earlier = OUTBOX.alias("cand"), OUTBOX.alias("earlier")
        due = (select(cand.c.id)
               .where(cand.c.status == PENDING, cand.c.next_attempt_at <= now,
                      or_(cand.c.lease_until.is_(None), cand.c.lease_until < now),
                      ~exists().where(earlier.c.call_id == cand.c.call_id,
                                      earlier.c.status == PENDING, earlier.c.id < cand.c.id))
               .order_by(cand.c.id).limit(limit)
               # PostgreSQL: rows another instance is claiming right now are passed over
               # (SQLite leaves this out; it has a single instance).
               .with_for_update(skip_locked=True, of=cand))
        # One statement, so SQLite takes its write lock up front instead of upgrading a
        # read (which fails at once if the writer committed in between).
        claim = (update(OUTBOX).where(o.id.in_(due))
                 .values(lease_owner=self.owner, lease_until=now + self.config.lease)
                 .returning(o.id, o.delivery_id, o.call_id, o.payload, o.attempts,
                            o.failing_since))
        async with self.engine.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return sorted((_Claimed(int(i), d, c, p, int(a), f) for i, d, c, p, a, f in rows),
                      key=lambda r: r.id)

    async def _deliver(self, row: _Claimed) -> None:
        assert self._client is not None
        body = body_of(row.id, row.payload)
        headers = {"content-type": "application/json",
                   SIGNATURE_HEADER: sign(self.config.secret, body),
                   TIMESTAMP_HEADER: str(int(time.time())),
                   DELIVERY_ID_HEADER: row.delivery_id,
                   SEQUENCE_HEADER: str(row.id)}
        status: int | None = None
        error: str | None = None
        retry_after = 0.0
        try:
            # The whole attempt is bounded, not each read: the lease must outlast it.
            async with asyncio.timeout(self.config.timeout):
                resp = await self._client.post(self.config.url, content=body, headers=headers)
            status = resp.status_code
            if not 200 <= status < 300:
                said = resp.text[:200].strip()
                error = f"HTTP {status}: {said}" if said else f"HTTP {status}"
                retry_after = _retry_after(resp.headers.get("retry-after"))
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, it is retried
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        now = utcnow()
        values: dict[str, Any] = {"attempts": row.attempts + 1, "last_attempt_at": now,
                                  "last_status_code": status, "lease_owner": None,
                                  "lease_until": None}
        delay = 0.0
        if error is None:
            values.update(status=DELIVERED, delivered_at=now, failing_since=None)
        else:
            delay = self._failed(row, values, status, error, retry_after, now)
        try:
            async with self._guard.step():
                await self._record(row.id, row.delivery_id, values)
        except Stopping:
            self._unrecorded[row.id] = (row.delivery_id, values)  # stop records it if it can
            return
        except Exception as exc:  # noqa: BLE001 - kept, and recorded when the database is back
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("could not record webhook delivery %s yet: %s", row.delivery_id,
                        self.last_error)
            self._unrecorded[row.id] = (row.delivery_id, values)
        if delay > 0:
            self._wake_in(delay)

    async def _record(self, row_id: int, delivery_id: str, values: dict[str, Any]) -> None:
        """Record an attempt's outcome on its row, if the row is still ours."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(OUTBOX).where(OUTBOX.c.id == row_id,
                                     OUTBOX.c.lease_owner == self.owner).values(**values))
        if done.rowcount == 0:
            log.warning("webhook delivery %s: lease lost before its outcome was recorded",
                        delivery_id)

    async def _record_unrecorded(self) -> None:
        """Record the outcomes kept while the database was away (raises while it still is)."""
        for row_id, (delivery_id, values) in sorted(self._unrecorded.items()):
            await self._record(row_id, delivery_id, values)
            del self._unrecorded[row_id]
            log.info("webhook delivery %s: outcome recorded after the database came back",
                     delivery_id)

    def _failed(self, row: _Claimed, values: dict[str, Any], status: int | None, error: str,
                retry_after: float, now: datetime) -> float:
        """Record a failed attempt in `values`: retried later, or given up. The delay
        before the retry (0 when given up). Logs name ids and a status code, never the
        CAD's words, which may echo the body."""
        attempts = values["attempts"]
        since = row.failing_since or now
        values.update(last_error=error, failing_since=since)
        said = f"HTTP {status}" if status is not None else error.partition(":")[0]
        why = give_up_reason(status, (now - since).total_seconds(), self.config.give_up_after)
        if why is not None:
            values.update(status=FAILED)
            log.error("webhook delivery %s (call %s, sequence %d) given up after %d "
                      "attempts, last %s: %s", row.delivery_id, row.call_id, row.id, attempts,
                      said, why)
            return 0.0
        delay = max(backoff(attempts, self.config.backoff_base, self.config.backoff_cap),
                    min(retry_after, self.config.backoff_cap))
        values.update(next_attempt_at=now + timedelta(seconds=delay))
        log.warning("webhook delivery %s (call %s, sequence %d) failed, attempt %d: %s; "
                    "retry in %.1fs", row.delivery_id, row.call_id, row.id, attempts, said,
                    delay)
        return delay

    def _wake_in(self, delay: float) -> None:
        timer: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(timer)
            self.wake()

        timer = asyncio.get_running_loop().call_later(delay, fire)
        self._timers.add(timer)

    async def _release(self, *, owner: str | None) -> None:
        """Give leased rows back: this worker's, or (owner None) every one."""
        stmt = update(OUTBOX).where(OUTBOX.c.lease_owner.is_not(None))
        if owner is not None:
            stmt = stmt.where(OUTBOX.c.lease_owner == owner)
        async with self.engine.begin() as conn:
            await conn.execute(stmt.values(lease_owner=None, lease_until=None))


def _retry_after(value: str | None) -> float:
    """A `Retry-After` in seconds (the HTTP-date form is not honoured)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
