"""uvicorn's websocket protocol, except that a connection it has given up on is cut off.

uvicorn ends a connection with `transport.close()`, which first sends whatever is still
buffered: to a client that never reads, never. So a board client that stopped reading
kept its socket, its buffer and a FIN-WAIT for as long as it liked, whatever the board
did (api/board.py resyncs and closes it once a send has waited `board_send_timeout`).
Here, once the application is done with a connection, or a keepalive ping went
unanswered, the peer has `close_timeout` seconds (10) to finish the closing handshake;
after that the connection is reset (RST), buffers and all: closing alone would leave the
kernel sending what it holds, to a peer that does not read, until it gave up.

It also offers the application its raw frame writes (`FRAMES` in the ASGI scope's
extensions; service/live/stream.py): the board writes one frame, made once, to every
client, where the ASGI send would frame each message again for each client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

FRAMES = "liaison.frames"  # the ASGI scope extension: a RawFrames of the connection


class WebSocketProtocol(WebSocketsSansIOProtocol):
    _cut_off: asyncio.TimerHandle | None = None

    async def run_asgi(self) -> None:
        extensions: dict[str, object] = self.scope.setdefault("extensions", {})  # type: ignore[assignment]
        extensions[FRAMES] = RawFrames(self)
        await super().run_asgi()
        self._cut_off_later()

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self._cut_off_later()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._cut_off is not None:
            self._cut_off.cancel()
            self._cut_off = None
        super().connection_lost(exc)

    def _cut_off_later(self) -> None:
        if not self.disconnected and self._cut_off is None:
            self._cut_off = self.loop.call_later(self.close_timeout, self._abort)

    def _abort(self) -> None:
        self._cut_off = None
        if self.disconnected:
            return
        sock = self.transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            # Linger 0: close() sends RST and drops what the kernel still held for the peer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


class RawFrames:
    """Frames written to a connection as they are (service.live.stream.Frames): only
    while it is open, between whole frames (the protocol writes each of its own frames
    at once), so what it sends itself (pings, pongs, its close) stays in order."""

    def __init__(self, protocol: WebSocketProtocol) -> None:
        self._protocol = protocol

    def is_open(self) -> bool:
        p = self._protocol
        return (p.handshake_complete and p.initial_response is None and not p.close_sent
                and not p.disconnected and p.conn.state is State.OPEN
                and not p.transport.is_closing())

    def ready(self) -> bool:
        return self._protocol.writable.is_set() and self.is_open()

    async def writable(self) -> None:
        await self._protocol.writable.wait()

    def write(self, data: bytes) -> None:
        self._protocol.transport.write(data)
