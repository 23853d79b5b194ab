"""Board replays read once for every board that opens at the same moment (issue 18).

A board opening with `after=0&scope=live` first replays the live calls' messages, read
from the database in pages. When many open at once (every board after a restart, a shift
logging in), each read the same pages and made its own copies of the same messages and
frames: a thousand boards on a day of 1,000 open calls held about a gigabyte and kept the
database too busy to answer the CADs. Here a board asks `Replays` for its page; boards
asking for the same page (same point, window, agency and audience) before its read has
started share that one read, its messages and its frames.

A shared page holds all a board's own read would have: it is shared only by boards that
asked before the read began, and each subscribed to the hub before asking, so the read
sees everything published before their subscriptions; the seq check drops what both
bring. Reads of one page run one at a time: boards arriving during one wait for the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from service.calls.visibility import Audience
from service.live.board import BoardRow
from service.live.stream import Message, frames_of

# A page of stored messages after a seq: (after, live_since, agency, limit) -> rows.
PIECE = 64 * 1024  # bytes of frames a board writes at a time (the transport's high water)
Read = Callable[[int, datetime | None, str, int], Awaitable[list[BoardRow]]]


@dataclass(frozen=True)
class PageKey:
    after: int
    live: bool  # only the live calls' (the window's start is the read's own)
    agency: str
    audience: Audience


class Page:
    """One page as one audience receives it, for every board that shares it."""

    def __init__(self, rows: list[BoardRow], audience: Audience, limit: int) -> None:
        self.messages = [Message(row.seq, row.text(audience)) for row in rows]
        self.more = len(rows) >= limit  # a full page: there may be more after it

    @cached_property
    def pieces(self) -> list[tuple[list[Message], bytes]]:
        """The messages in runs of about PIECE bytes of frames, each run's frames joined
        once for every board: a board writes the next once its transport takes more, so
        what it has not sent yet stays near the transport's own limit, not a whole page
        (a page may be a megabyte, and a thousand boards may be opening)."""
        pieces: list[tuple[list[Message], bytes]] = []
        run: list[Message] = []
        size = 0
        for message in self.messages:
            run.append(message)
            size += len(message.frame)
            if size >= PIECE:
                pieces.append((run, frames_of(run)))
                run, size = [], 0
        if run:
            pieces.append((run, frames_of(run)))
        return pieces


@dataclass
class _Reads:
    """One page's reads: the one running, and the one its next askers wait for."""

    running: bool = False
    waiting: asyncio.Future[Page] | None = None
    live_since: datetime | None = None  # the window of the latest board to ask


@dataclass
class Replays:
    read: Read
    limit: int = 500
    _pages: dict[PageKey, _Reads] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)  # held while running

    async def page(self, after: int, *, live_since: datetime | None, agency: str,
                   audience: Audience) -> Page:
        """The page after `after`: read now, or with the boards that asked meanwhile."""
        key = PageKey(after, live_since is not None, agency, audience)
        reads = self._pages.setdefault(key, _Reads())
        reads.live_since = live_since
        waiting = reads.waiting
        if waiting is None:
            waiting = reads.waiting = asyncio.get_running_loop().create_future()
            # Retrieved here too, so a failure every asker stopped waiting for is quiet.
            waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
            if not reads.running:
                reads.running = True
                self._spawn(key, reads)
        # Shielded: one board going away does not cancel the others' read.
        return await asyncio.shield(waiting)

    def _spawn(self, key: PageKey, reads: _Reads) -> None:
        async def run() -> None:
            # The boards that asked until now share this read; later ones, the next.
            waiting, reads.waiting = reads.waiting, None
            assert waiting is not None
            try:
                rows = await self.read(key.after, reads.live_since, key.agency, self.limit)
                page = Page(rows, key.audience, self.limit)
            except asyncio.CancelledError:  # the server stopping: no more reads
                for left in (waiting, reads.waiting):
                    if left is not None:
                        left.cancel()
                reads.waiting, reads.running = None, False
                raise
            except Exception as exc:  # every board that asked gets the failure
                waiting.set_exception(exc)
            else:
                waiting.set_result(page)
            if reads.waiting is not None:  # asked meanwhile: their read, now
                self._spawn(key, reads)
                return
            reads.running = False
            if self._pages.get(key) is reads:
                del self._pages[key]

        task = asyncio.get_running_loop().create_task(run(), name="liaison-board-replay")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
