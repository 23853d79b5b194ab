"""The board hub: reads new board rows from the database once and fans them out.

Every subscriber has a bounded queue. One that falls behind is marked for
resync and dropped, so a slow client never slows the others or grows memory.
The protocol a board client sees: docs/board.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import CompoundSelect, func, select, union
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calls.visibility import Audience, message_view
from service.store.db import describe, is_outage
from service.store.stopping import StepGuard, Stopping
from service.store.tables import ANY_AGENCY, BOARD, CALL, FOLLOW_UP

log = logging.getLogger("liaison.board")


class BoardRow(NamedTuple):
    """A stored board message: the full body (call team, supervisors) and the restricted
    one (dispatchers; service/calls/visibility.py), both JSON without the seq."""

    seq: int
    body: str
    restricted: str | None  # None: written before restricted bodies were kept
    agency: str | None = None  # its call's (or unit's) agency; None: a call nobody claimed

    def for_agency(self, agency: str) -> bool:
        """Whether a board of `agency`'s people gets it (`*`: the region's, all; a call no
        agency claimed is the region's alone)."""
        return agency == ANY_AGENCY or self.agency == agency

    def text(self, audience: Audience) -> str:
        """The message as `audience` receives it: made once per message and audience."""
        if audience is Audience.full:
            return message_text(self.seq, self.body)
        if self.restricted is not None:
            return message_text(self.seq, self.restricted)
        # An older row: narrowed now, as if its call were protected.
        narrowed = message_view(json.loads(self.body), audience, is_protected=True)
        return message_text(self.seq, json.dumps(narrowed, separators=(",", ":")))


def message_text(seq: int, body: str) -> str:
    # Bodies are stored as JSON objects without their seq; splice it in front.
    return f'{{"seq":{seq},{body[1:]}' if len(body) > 2 else f'{{"seq":{seq}}}'


async def read_after(engine: AsyncEngine, after: int, limit: int = 500,
                     live_since: datetime | None = None,
                     agency: str = ANY_AGENCY) -> list[BoardRow]:
    """Board messages after `after`, in seq order. With `live_since`, only those of the
    live calls (see `live_calls`); with an `agency`, only those its people get."""
    b = BOARD.c
    stmt = select(b.seq, b.body, b.restricted_body, b.agency_id).where(b.seq > after)
    if live_since is not None:
        stmt = stmt.where(b.call_id.in_(live_calls(live_since)))
    if agency != ANY_AGENCY:
        stmt = stmt.where(b.agency_id == agency)
    async with engine.connect() as conn:
        rows = await conn.execute(stmt.order_by(b.seq).limit(limit))
        return [BoardRow(int(seq), body, restricted, agency_id)
                for seq, body, restricted, agency_id in rows]


def live_calls(since: datetime) -> CompoundSelect:
    """The calls a board opening now needs: open ones, those changed since `since` (the
    dispatcher console shows recent calls too), and those with a follow-up still to do
    (its original call may have closed long ago). A board replays only their
    messages, so opening it does not replay the whole history."""
    c, f = CALL.c, FOLLOW_UP.c
    # One part per index seek (closed_at, updated_at, follow-up status): an OR would
    # scan. updated_at is Liaison's clock, so a CAD's skewed or replayed times do not
    # hide a call that just changed.
    return union(select(c.id).where(c.closed_at.is_(None)),
                 select(c.id).where(c.updated_at >= since),
                 select(f.call_id).where(f.status == "scheduled"))


class Subscription:
    def __init__(self, size: int, position: int, audience: Audience = Audience.full,
                 agency: str = ANY_AGENCY) -> None:
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=size)
        self.position = position  # the hub's last seq when this subscription began
        self.audience = audience  # which form of each message it receives
        self.agency = agency  # whose calls' messages it receives (`*`: every agency's)
        self.overflowed = asyncio.Event()

    def offer(self, seq: int, text: str) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait((seq, text))
        except asyncio.QueueFull:
            self.overflowed.set()


class BoardHub:
    def __init__(self, engine: AsyncEngine, *, queue_size: int = 2000,
                 poll_interval: float = 1.0) -> None:
        self.engine = engine
        self.queue_size = queue_size
        # A safety net: even with no notification, new rows are found within this time.
        self.poll_interval = poll_interval
        self.last_seq = 0
        self.subscribers: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._guard = StepGuard("board hub")

    async def start(self) -> None:
        async with self.engine.connect() as conn:
            self.last_seq = int((await conn.execute(select(func.max(BOARD.c.seq)))).scalar() or 0)
        self._task = asyncio.create_task(self._run(), name="liaison-board-hub")

    async def stop(self) -> None:
        await self._guard.stop(self._task)

    def poke(self, seq: int | None = None) -> None:
        """Something was committed (up to `seq`, when known): read it soon."""
        if seq is not None and seq <= self.last_seq:
            return  # our own commit, already fanned out
        self._wake.set()

    def publish(self, rows: list[BoardRow]) -> None:
        """Rows this process just committed: fan them out without reading them back,
        when they follow on from what was sent; otherwise read from the database, which
        keeps the order whoever wrote them."""
        if not rows or rows[0].seq != self.last_seq + 1:
            self.poke()
            return
        for row in rows:
            self._fan_out(row)

    def _fan_out(self, row: BoardRow) -> None:
        texts: dict[Audience, str] = {}  # each form made once, whatever the clients
        self.last_seq = row.seq
        for sub in tuple(self.subscribers):
            if not row.for_agency(sub.agency):
                continue
            text = texts.get(sub.audience)
            if text is None:
                text = texts[sub.audience] = row.text(sub.audience)
            sub.offer(row.seq, text)

    def subscribe(self, audience: Audience = Audience.full,
                  agency: str = ANY_AGENCY) -> Subscription:
        sub = Subscription(self.queue_size, self.last_seq, audience, agency)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()
            try:
                async with self._guard.step():
                    await self._drain()
            except Stopping:
                return
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                if is_outage(exc):
                    log.warning("board hub could not read new messages: %s", describe(exc))
                else:
                    log.exception("board hub could not read new messages")
                await asyncio.sleep(self.poll_interval)

    async def _drain(self) -> None:
        while True:
            rows = await read_after(self.engine, self.last_seq)
            for i, row in enumerate(rows, 1):
                if row.seq <= self.last_seq:
                    continue  # published directly while we were reading
                self._fan_out(row)
                if i % 20 == 0:
                    # Let senders drain between chunks: a burst alone must not overflow
                    # a client that keeps up.
                    await asyncio.sleep(0)
            if len(rows) < 500:
                return
