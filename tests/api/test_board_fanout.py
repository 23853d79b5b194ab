"""The board's fan-out (service/live/board.py, service/live/stream.py): each message is made
once per audience and the same bytes go to every client of it; each audience keeps its
own redacted form; a client that falls behind and catches up loses nothing."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from service.access.auth import Role
from service.live.websocket import WebSocketProtocol
from service.settings import Settings
from tests.api.test_board_stalled import never_reading_board
from tests.conftest import WAIT, Server, eventually, running_server

pytestmark = pytest.mark.asyncio

NOTE = "Counsellor spoke with the son on the porch"


async def texts(ws: Any, n: int) -> list[str]:
    """The next n messages exactly as received."""
    return [await asyncio.wait_for(ws.recv(), WAIT) for _ in range(n)]


async def test_every_client_of_an_audience_gets_the_same_bytes_each_audience_its_own(
        server: Server) -> None:
    roles = [Role.call_team, Role.call_team, Role.supervisor, Role.dispatcher,
             Role.dispatcher]
    clients = [await server.connect_board(role=role) for role in roles]
    try:
        # A mental-health call (protected): a status note is the team's alone.
        call_id = (await server.post_event()).json()["call_id"]
        r = await server.client.post(f"/v1/calls/{call_id}/status",
                                     json={"status": "assigned", "unit": "CALL-1",
                                           "note": NOTE})
        assert r.status_code == 200, r.text
        got = await asyncio.gather(*(texts(ws, 2) for ws in clients))
    finally:
        for ws in clients:
            await ws.close()
    full, restricted = got[:3], got[3:]
    assert full[0] == full[1] == full[2], "the team and supervisors: one form, byte for byte"
    assert restricted[0] == restricted[1], "dispatchers: one form, byte for byte"
    status_full, status_restricted = json.loads(full[0][1]), json.loads(restricted[0][1])
    assert (status_full["type"], status_full["call_id"]) == ("status", call_id)
    assert status_full["note"] == NOTE and not status_full.get("withheld")
    assert status_restricted["seq"] == status_full["seq"]
    assert status_restricted["note"] is None and status_restricted["withheld"] == ["notes"]
    assert NOTE not in restricted[0][1]


class RawBoard:
    """Board messages read off a raw socket past its handshake answer (a server's frames:
    unmasked, one per message)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""
        while b"\r\n\r\n" not in self.data:
            self._more()
        self.data = self.data.split(b"\r\n\r\n", 1)[1]

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the connection"
        self.data += chunk

    def _need(self, n: int) -> None:
        while len(self.data) < n:
            self._more()

    def read(self, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            self._need(2)
            assert self.data[0] == 0x81, "a whole text frame"
            size, start = self.data[1] & 0x7F, 2
            if size >= 126:
                start = 4 if size == 126 else 10
                self._need(start)
                size = int.from_bytes(self.data[2:start], "big")
            self._need(start + size)
            out.append(json.loads(self.data[start:start + size]))
            self.data = self.data[start + size:]
        return out


@pytest.mark.skipif(not hasattr(socket, "SO_SNDBUF"), reason="needs SO_SNDBUF")
async def test_a_client_whose_socket_filled_gets_everything_in_order_once_it_reads(
        tmp_path: Path) -> None:
    """While a client's socket is full (the server's transport paused), its messages wait
    in its backlog; once it reads again it gets all of them, in order, then live ones."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
                        board_send_timeout=120)
    async with running_server(settings) as server:
        assert server.uvicorn is not None
        sock = never_reading_board(server)
        try:
            await eventually(lambda: len(server.runtime.hub.subscribers) == 1, "the board")
            (conn,) = [c for c in server.uvicorn.server_state.connections
                       if getattr(c, "client", None) == sock.getsockname()]
            assert isinstance(conn, WebSocketProtocol)
            conn.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            posted = 0
            while conn.writable.is_set():  # until the server's side is paused
                assert posted < 600, "the client's socket never filled"
                answers = await asyncio.gather(*(server.post_event() for _ in range(10)))
                assert all(r.status_code == 202 for r in answers)
                posted += 10
            posted += len(await asyncio.gather(*(server.post_event() for _ in range(10))))
            board = await asyncio.to_thread(RawBoard, sock)
            got = await asyncio.to_thread(board.read, posted)
            call_id = (await server.post_event()).json()["call_id"]
            (live,) = await asyncio.to_thread(board.read, 1)
        finally:
            sock.close()
    seqs = [m["seq"] for m in got]
    assert [m["type"] for m in got] == ["decision"] * posted
    assert seqs == list(range(seqs[0], seqs[0] + posted)), "every message once, in order"
    assert (live["call_id"], live["seq"]) == (call_id, seqs[-1] + 1)
