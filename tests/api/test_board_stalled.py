"""A board client that stops reading is cut off (README: "resync and close"), and the
others go on. The client is a raw TCP socket that does the websocket handshake and then
never reads; the server's socket for it gets a small kernel send buffer, so its sends
block after a few dozen messages instead of after megabytes. Real uvicorn, as `liaison
serve` runs it (service/live/websocket.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from service.access.auth import Role
from service.settings import Settings
from tests.conftest import Server, running_server

pytestmark = pytest.mark.asyncio

TCP_CLOSE = 7  # tcpi_state once the peer reset the connection
MAX_EVENTS = 600  # a client that reads nothing falls behind long before this


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def never_reading_board(server: Server) -> socket.socket:
    """A websocket handshake on a raw socket with a small receive buffer; nothing more."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1])))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/board HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer "
                  f"{server.creds.keys[Role.supervisor]}\r\n\r\n").encode())
    return sock


async def until(check: Any, what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="needs Linux's TCP_INFO")
async def test_a_board_client_that_never_reads_is_cut_off_and_the_others_go_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="liaison.board")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
                        board_send_timeout=0.5)
    async with running_server(settings) as server:
        assert server.uvicorn is not None
        hub = server.runtime.hub
        async with server.connect_board() as reader:
            stuck = never_reading_board(server)
            try:
                await until(lambda: len(hub.subscribers) == 2, "the second board")
                local = stuck.getsockname()
                (conn,) = [c for c in server.uvicorn.server_state.connections
                           if getattr(c, "client", None) == local]
                conn.transport.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
                received: list[int] = []

                async def read() -> None:
                    async for raw in reader:
                        received.append(json.loads(raw)["seq"])

                reading = asyncio.create_task(read())
                posted = 0

                def gave_up() -> bool:
                    return any("stopped reading" in m for m in caplog.messages)

                while not gave_up():
                    assert posted < MAX_EVENTS, (
                        f"{posted} board messages and the server never gave up on a client "
                        "that reads nothing")
                    answers = await asyncio.gather(*(server.post_event() for _ in range(10)))
                    assert all(r.status_code == 202 for r in answers)
                    posted += 10
                # Resynced and closed, then cut off: the connection is reset (the close
                # handshake it never read cannot finish).
                await until(lambda: tcp_state(stuck) == TCP_CLOSE,
                            "the server to cut the connection off")
                assert len(hub.subscribers) == 1
                # The board that reads got every message, in order.
                await until(lambda: len(received) >= posted, "the reading board")
                assert received == sorted(received) and len(set(received)) == posted
                reading.cancel()
                print(f"\ncut off after {posted} messages")
            finally:
                stuck.close()
