"""One board client's delivery: board messages encoded once, written to every client.

The hub (service/live/board.py) makes each message once per group of clients that see it
alike, and its websocket frame once; every client of the group that keeps up is written
those same bytes, several messages in one write when they came close together. No JSON,
model or frame is made per client: with 100 boards the frame and write per client were
most of an event's cost (issue 18; bench/README.md).

A client that is behind (replaying, its socket paused, or served without raw frames)
gets a backlog instead, bounded like the hub's queues, that its pump (api/board.py)
sends in order before the client is written directly again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from websockets.frames import Frame, Opcode


def text_frame(text: str) -> bytes:
    """A server's (unmasked) websocket text frame carrying `text`, as it goes on the wire."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class Message:
    """A board message as one audience receives it: its text, and its frame made on first
    use; one object for every client of that audience."""

    __slots__ = ("_frame", "seq", "text")

    def __init__(self, seq: int, text: str) -> None:
        self.seq = seq
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text)
        return self._frame


def frames_of(batch: list[Message]) -> bytes:
    return batch[0].frame if len(batch) == 1 else b"".join(m.frame for m in batch)


class Frames(Protocol):
    """A websocket connection that takes ready-made frames (service/live/websocket.py
    offers it in the ASGI scope's extensions, FRAMES)."""

    def ready(self) -> bool:
        """Open, and its transport is taking more (not paused by flow control)."""

    def is_open(self) -> bool: ...

    async def writable(self) -> None:
        """Return once the transport takes more (at once when it does)."""

    def write(self, data: bytes) -> None: ...


class ClientFeed:
    """A board websocket's side of the hub: `last` is the seq the client has (or is owed
    from its replay); `live` while messages may be written to it straight away."""

    def __init__(self, limit: int, position: int, frames: Frames | None) -> None:
        self.limit = limit  # messages it may fall behind before resync (board_queue_size)
        self.position = position  # the hub's last seq when this feed began
        self.last = position
        self.frames = frames
        self.live = False
        self.backlog: deque[Message] = deque()
        self.wake = asyncio.Event()
        self.overflowed = asyncio.Event()

    def deliver(self, batch: list[Message], data: bytes) -> None:
        """Messages the hub flushes to this feed's group (`data`: their frames)."""
        if self.overflowed.is_set():
            return
        if self.live and self.frames is not None and self.frames.ready():
            if batch[0].seq <= self.last:
                # Fanned out before this feed went live, and flushed after: the replay
                # or the backlog sent those already.
                batch = [m for m in batch if m.seq > self.last]
                if not batch:
                    return
                data = frames_of(batch)
            self.frames.write(data)
            self.last = batch[-1].seq
            return
        self.live = False  # its pump sends the backlog first, in order
        self.backlog.extend(batch)
        if len(self.backlog) > self.limit:
            self.backlog.clear()  # resync: the client reads them from the database
            self.overflowed.set()
        self.wake.set()

    def take(self) -> list[Message]:
        """The backlog not yet sent, in order; empties it."""
        batch = [m for m in self.backlog if m.seq > self.last]
        self.backlog.clear()
        return batch

    def go_live(self) -> None:
        """The backlog is sent: write the next messages straight away, when frames can be."""
        if not self.backlog:
            self.live = self.frames is not None
