"""The board hub: reads new board rows from the database once and fans them out.

Subscribers are grouped by what they see (audience and filter, `Group`): each message is
made once per group, never per client. Board websockets (`feed`, service/live/stream.py)
are written the same frames, flushed at most every `flush_interval` so that messages
close together go out in one write per client; others (`subscribe`: the EIDO notifier)
get a bounded queue. One that falls behind is marked for resync and dropped, so a slow
client never slows the others or grows memory.
The protocol a board client sees: docs/board.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from sqlalchemy import CompoundSelect, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calls.visibility import Audience, message_view
from service.live.stream import ClientFeed, Frames, Message, frames_of
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
    aid: str | None = None  # the agency helping with its call by mutual aid

    def for_agency(self, agency: str) -> bool:
        """Whether a board of `agency`'s people gets it (`*`: the region's, all; a call no
        agency claimed is the region's alone; the agency helping with a call gets its
        messages too)."""
        return agency == ANY_AGENCY or self.agency == agency or (
            self.aid is not None and self.aid == agency)

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
    stmt = select(b.seq, b.body, b.restricted_body, b.agency_id, b.aid_agency_id
                  ).where(b.seq > after)
    if live_since is not None:
        stmt = stmt.where(b.call_id.in_(live_calls(live_since)))
    if agency != ANY_AGENCY:
        stmt = stmt.where(or_(b.agency_id == agency, b.aid_agency_id == agency))
    async with engine.connect() as conn:
        rows = await conn.execute(stmt.order_by(b.seq).limit(limit))
        return [BoardRow(int(seq), body, restricted, agency_id, aid)
                for seq, body, restricted, agency_id, aid in rows]


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


class Only(Protocol):
    """A filter on which messages a group receives (hashable: part of the group's key),
    e.g. the calls of one agency; asked once per message and group, not per client."""

    def admits(self, row: BoardRow) -> bool: ...


@dataclass(frozen=True)
class AgencyOnly:
    """One agency's messages (issue 17): its calls' and its units' (BoardRow.for_agency)."""

    agency: str

    def admits(self, row: BoardRow) -> bool:
        return row.for_agency(self.agency)


def agency_only(agency: str) -> AgencyOnly | None:
    """The filter of a board of `agency`'s people (None: the region's, every message)."""
    return None if agency == ANY_AGENCY else AgencyOnly(agency)


class Subscription:
    """A queue of (seq, text): for a reader that is not a board websocket."""

    def __init__(self, size: int, position: int, audience: Audience = Audience.full) -> None:
        self.queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=size)
        self.position = position  # the hub's last seq when this subscription began
        self.audience = audience  # which form of each message it receives
        self.overflowed = asyncio.Event()

    def offer(self, seq: int, text: str) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait((seq, text))
        except asyncio.QueueFull:
            self.overflowed.set()


class Group:
    """The subscribers that receive the same form of every message."""

    def __init__(self, audience: Audience, only: Only | None) -> None:
        self.audience = audience
        self.only = only
        self.queues: set[Subscription] = set()
        self.feeds: set[ClientFeed] = set()
        self.pending: list[Message] = []  # for the feeds, until the next flush

    def __bool__(self) -> bool:
        return bool(self.queues or self.feeds)


class BoardHub:
    def __init__(self, engine: AsyncEngine, *, queue_size: int = 2000,
                 poll_interval: float = 1.0, flush_interval: float = 0.005) -> None:
        self.engine = engine
        self.queue_size = queue_size
        # A safety net: even with no notification, new rows are found within this time.
        self.poll_interval = poll_interval
        # Feeds are written at most this often: a burst goes out in one write per client.
        self.flush_interval = flush_interval
        self.last_seq = 0
        self.groups: dict[tuple[Audience, Only | None], Group] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._guard = StepGuard("board hub")
        self._flush: asyncio.TimerHandle | None = None
        self._flushed_at = 0.0
        # The seqs of the board rows this process's writer is committing (first, last).
        self._committing = (0, 0)

    @property
    def subscribers(self) -> set[Subscription | ClientFeed]:
        found: set[Subscription | ClientFeed] = set()
        for group in self.groups.values():
            found |= group.queues
            found |= group.feeds
        return found

    async def start(self) -> None:
        async with self.engine.connect() as conn:
            self.last_seq = int((await conn.execute(select(func.max(BOARD.c.seq)))).scalar() or 0)
        self._task = asyncio.create_task(self._run(), name="liaison-board-hub")

    async def stop(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
        await self._guard.stop(self._task)

    def poke(self, seq: int | None = None) -> None:
        """Something was committed (up to `seq`, when known): read it soon."""
        first, last = self._committing
        if seq is not None and (seq <= self.last_seq or first <= seq <= last):
            # Our own commit: already fanned out, or about to be by `publish` (its
            # notification may come before the writer hears its COMMIT answered).
            return
        self._wake.set()

    def committing(self, first: int, last: int) -> None:
        """This process's writer is committing the board rows `first` to `last` (seqs),
        which it will `publish`: a notification of that commit needs no read. Seqs are
        never handed out twice, so another instance's notification is never mistaken for
        one of these; and a commit that fails notifies nobody."""
        self._committing = (first, last)

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
        made: dict[Audience, Message] = {}  # each form made once, whatever the clients
        self.last_seq = row.seq
        for group in tuple(self.groups.values()):
            if group.only is not None and not group.only.admits(row):
                continue
            message = made.get(group.audience)
            if message is None:
                message = made[group.audience] = Message(row.seq, row.text(group.audience))
            for sub in tuple(group.queues):
                sub.offer(message.seq, message.text)
            if group.feeds:
                group.pending.append(message)
                self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_at(max(loop.time(), self._flushed_at + self.flush_interval),
                                       self._flush_now)

    def _flush_now(self) -> None:
        """Each group's messages since the last flush, as one write to each of its
        feeds: the same bytes for all of them."""
        self._flush = None
        self._flushed_at = asyncio.get_running_loop().time()
        for group in tuple(self.groups.values()):
            if not group.pending:
                continue
            batch, group.pending = group.pending, []
            data = frames_of(batch)
            for feed in tuple(group.feeds):
                feed.deliver(batch, data)

    def _group(self, audience: Audience, only: Only | None) -> Group:
        group = self.groups.get((audience, only))
        if group is None:
            group = self.groups[audience, only] = Group(audience, only)
        return group

    def subscribe(self, audience: Audience = Audience.full,
                  agency: str = ANY_AGENCY) -> Subscription:
        sub = Subscription(self.queue_size, self.last_seq, audience)
        self._group(audience, agency_only(agency)).queues.add(sub)
        return sub

    def feed(self, audience: Audience, frames: Frames | None,
               only: Only | None = None) -> ClientFeed:
        """A board websocket's feed (`frames`: its connection's raw frame writes; None
        where the server offers none, then every message goes through its backlog)."""
        feed = ClientFeed(self.queue_size, self.last_seq, frames)
        self._group(audience, only).feeds.add(feed)
        return feed

    def unsubscribe(self, sub: Subscription | ClientFeed) -> None:
        """Stop delivering to `sub` (at once: nothing more is written to it)."""
        for key, group in tuple(self.groups.items()):
            if isinstance(sub, ClientFeed):
                group.feeds.discard(sub)
                sub.live = False
            else:
                group.queues.discard(sub)
            if not group:
                del self.groups[key]

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
