"""Two `liaison serve` processes on one PostgreSQL database are one service: a call
taken by either appears on the boards of both, in one order, with no gap and no repeat,
and a board that reconnects with `?after=N` picks up exactly where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection

from service.db import create_engine
from tests.conftest import Subprocess, event, route_app, start_subprocess
from tests.credentials import RoleAuth
from tests.pgcluster import PgCluster

pytestmark = pytest.mark.postgres

BURST = 50
RETRIED = 10


class Board:
    """A websocket board client that collects every message it is sent."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                self.messages.append(json.loads(raw))
                self.arrived.set()

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool],
                       within: float) -> dict[str, Any]:
        """The first message matching pred, waiting up to `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            for m in self.messages:
                if pred(m):
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching board message within {within}s; "
                                     f"got {self.messages[-5:]}")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)

    async def wait_count(self, n: int, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self.messages) < n and time.monotonic() < deadline:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), deadline - time.monotonic())

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def board(sp: Subprocess, after: int | None = None) -> AsyncIterator[Board]:
    query = "" if after is None else f"?after={after}"
    async with sp.connect_board(query) as ws:
        b = Board(ws)
        try:
            yield b
        finally:
            await b.close()


@contextlib.contextmanager
def two_servers(url: str, tmp_path: Path) -> Iterator[tuple[Subprocess, Subprocess]]:
    a = start_subprocess(url, tmp_path)
    try:
        b = start_subprocess(url, tmp_path)
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


async def post(client: httpx.AsyncClient, base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"{base_url}/v1/cad/events", json=body)
    assert r.status_code == 202, (base_url, r.status_code, r.text)
    return r.json()  # type: ignore[no-any-return]


def is_call(call_id: str, message: dict[str, Any]) -> bool:
    return message.get("call_id") == call_id


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in messages]


@pytest.mark.asyncio
async def test_two_instances_share_one_board(postgres_url: str, tmp_path: Path) -> None:
    with two_servers(postgres_url, tmp_path) as (a, b):
        assert a.creds is not None  # both servers share the database, so its keys
        async with httpx.AsyncClient(timeout=30, auth=RoleAuth(route_app(), a.creds)) as client:
            for sp in (a, b):
                h = (await client.get(f"{sp.base_url}/v1/health")).json()
                assert h["status"] == "ok" and h["database"] == "postgresql", h

            # 1. A call taken by A reaches a board connected to B, with its seq, and
            # promptly: the hub also polls once a second as a safety net, and LISTEN/NOTIFY
            # must beat it (five calls at different phases of the poll all inside 0.5 s).
            latencies: list[float] = []
            async with board(b) as board_b:
                for _ in range(5):
                    t0 = time.monotonic()
                    first = await post(client, a.base_url, event())
                    msg = await board_b.wait_for(partial(is_call, first["call_id"]), within=5)
                    latencies.append(time.monotonic() - t0)
                    assert msg["type"] == "decision"
                    assert isinstance(msg["seq"], int) and msg["seq"] > 0
                    assert msg["decision"] == first["decision"]
                    await asyncio.sleep(0.37)
                assert seqs(board_b.messages) == sorted(seqs(board_b.messages))
            assert max(latencies) < 0.5, f"B's board lagged like polling: {latencies}"
            start = msg["seq"]

            # 2. A burst split across A and B, with a board on each. The first RETRIED
            # events are also sent, at the same moment, to the other instance (a CAD retry
            # landing on the other node): one call and one board message each.
            async with board(a, after=start) as board_a, board(b, after=start) as board_b:
                bodies = [event() for _ in range(BURST)]
                targets = [(a if i % 2 == 0 else b, body) for i, body in enumerate(bodies)]
                targets += [(b if i % 2 == 0 else a, body)
                            for i, body in enumerate(bodies[:RETRIED])]
                results = await asyncio.gather(*(
                    post(client, sp.base_url, body) for sp, body in targets))
                answers = results[:BURST]
                for original, retry in zip(answers[:RETRIED], results[BURST:], strict=True):
                    assert retry == original, "a retry on the other instance was re-decided"
                await board_a.wait_count(BURST, within=10)
                await board_b.wait_count(BURST, within=10)
                # Anything beyond BURST would be a repeat or a stray; give it a moment.
                await asyncio.sleep(0.5)
                got_a, got_b = list(board_a.messages), list(board_b.messages)

            assert seqs(got_a) == seqs(got_b), "the two boards disagree on the order"
            assert got_a == got_b, "the two boards were sent different messages"
            assert len(got_a) == BURST, f"expected {BURST} messages, got {seqs(got_a)}"
            assert seqs(got_a) == list(range(start + 1, start + BURST + 1)), (
                f"seqs are not contiguous and increasing after {start}: {seqs(got_a)}")
            assert {m["call_id"] for m in got_a} == {r["call_id"] for r in answers}
            assert all(m["type"] == "decision" for m in got_a)

            # 3. Reconnect with ?after=N from the middle: exactly the later ones, in order.
            middle = got_a[BURST // 2 - 1]["seq"]
            expected = [m for m in got_a if m["seq"] > middle]
            for sp in (a, b):
                async with board(sp, after=middle) as again:
                    await again.wait_count(len(expected), within=5)
                    await asyncio.sleep(0.3)
                    replayed = list(again.messages)
                assert replayed == expected, (sp.base_url, seqs(replayed))


async def post_until_taken(client: httpx.AsyncClient, base_url: str, body: dict[str, Any],
                           within: float = 60.0) -> dict[str, Any]:
    """Post as a CAD does: again after a 503, until it is taken."""
    deadline = time.monotonic() + within
    while True:
        r = await client.post(f"{base_url}/v1/cad/events", json=body)
        if r.status_code == 202:
            return r.json()  # type: ignore[no-any-return]
        assert r.status_code == 503, (base_url, r.status_code, r.text)
        assert time.monotonic() < deadline, f"{base_url} never took the event again"
        await asyncio.sleep(0.2)


async def healthy(client: httpx.AsyncClient, sp: Subprocess, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while (r := await client.get(f"{sp.base_url}/v1/health")).status_code != 200:
        assert time.monotonic() < deadline, f"{sp.base_url} never became healthy: {r.text}"
        await asyncio.sleep(0.2)


@pytest.mark.asyncio
async def test_two_instances_ride_out_a_postgres_crash(pg_cluster: PgCluster,
                                                       pg_cluster_url: str,
                                                       tmp_path: Path) -> None:
    """PostgreSQL is killed (SIGKILL, every process) under two running instances and
    started again. While it is down both answer 503 with Retry-After and say so in
    /v1/health; once it is back both recover by themselves (pools, LISTEN) and the boards
    that stayed open on each see every call taken before and after, in the database's
    order, none missing and none twice. (A crash may skip seq values: PostgreSQL hands
    out identities in blocks. No gap means no committed message missing.)"""
    with two_servers(pg_cluster_url, tmp_path) as (a, b):
        assert a.creds is not None
        async with httpx.AsyncClient(timeout=30, auth=RoleAuth(route_app(), a.creds)) as client:
            async with board(a, after=0) as board_a, board(b, after=0) as board_b:
                taken = [await post(client, sp.base_url, event()) for sp in (a, b, a, b)]
                await board_a.wait_count(4, within=10)
                await board_b.wait_count(4, within=10)

                await pg_cluster.acrash()
                for sp in (a, b):
                    r = await client.post(f"{sp.base_url}/v1/cad/events", json=event())
                    assert r.status_code == 503, (r.status_code, r.text)
                    assert r.headers["retry-after"] == "1"
                    h = await client.get(f"{sp.base_url}/v1/health")
                    assert h.status_code == 503 and h.json()["problems"], h.text
                await pg_cluster.restart()
                for sp in (a, b):
                    await healthy(client, sp)

                for sp in (b, a, b, a):
                    taken.append(await post_until_taken(client, sp.base_url, event()))
                calls = {t["call_id"] for t in taken}
                for on in (board_a, board_b):
                    for call_id in calls:
                        await on.wait_for(partial(is_call, call_id), within=30)

                engine = create_engine(pg_cluster_url)
                try:
                    async with engine.connect() as conn:
                        stored = [int(s) for s in (await conn.execute(text(
                            "SELECT seq FROM board_message ORDER BY seq"))).scalars()]
                finally:
                    await engine.dispose()
                got_a, got_b = list(board_a.messages), list(board_b.messages)
                assert seqs(got_a) == stored, (seqs(got_a), stored)
                assert got_a == got_b, "the two boards were sent different messages"
                assert {m["call_id"] for m in got_a} == calls
            # A board reconnecting after the crash, from a seq before it: exactly the rest.
            middle = stored[3]
            async with board(b, after=middle) as again:
                await again.wait_count(len(stored) - 4, within=10)
                assert seqs(again.messages) == stored[4:]
