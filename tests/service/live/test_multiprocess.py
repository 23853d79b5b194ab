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

from service.live.board import BoardHub
from service.store.db import create_engine
from service.writing.bus import PostgresListener
from tests.conftest import WAIT, Subprocess, route_app, start_subprocess
from tests.credentials import RoleAuth
from tests.factories import event
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
                       within: float = WAIT) -> dict[str, Any]:
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

    async def wait_count(self, n: int, within: float = WAIT) -> None:
        """Until at least `n` messages have arrived."""
        await self.wait_for(lambda _m: len(self.messages) >= n, within)

    async def until_call(self, call_id: str) -> list[dict[str, Any]]:
        """Every message up to and including `call_id`'s decision, waiting for it: a call
        posted after the ones a test looks at is the positive signal that the board has
        sent everything before it (it sends in seq order)."""
        last = await self.wait_for(partial(is_call, call_id))
        return self.messages[:self.messages.index(last) + 1]

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

            # 1. A call taken by A reaches a board connected to B, with its seq. (That
            # LISTEN/NOTIFY, not the poll, carries it: the test below; how fast:
            # bench/board_instances.py.)
            async with board(b) as board_b:
                for _ in range(5):
                    first = await post(client, a.base_url, event())
                    msg = await board_b.wait_for(partial(is_call, first["call_id"]))
                    assert msg["type"] == "decision"
                    assert isinstance(msg["seq"], int) and msg["seq"] > 0
                    assert msg["decision"] == first["decision"]
                assert seqs(board_b.messages) == sorted(seqs(board_b.messages))
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
                # One call after the burst: what comes before it is all there is (anything
                # beyond BURST would be a repeat or a stray).
                marker = (await post(client, b.base_url, event()))["call_id"]
                got_a = (await board_a.until_call(marker))[:-1]
                got_b = (await board_b.until_call(marker))[:-1]

            assert seqs(got_a) == seqs(got_b), "the two boards disagree on the order"
            assert got_a == got_b, "the two boards were sent different messages"
            assert len(got_a) == BURST, f"expected {BURST} messages, got {seqs(got_a)}"
            assert seqs(got_a) == list(range(start + 1, start + BURST + 1)), (
                f"seqs are not contiguous and increasing after {start}: {seqs(got_a)}")
            assert {m["call_id"] for m in got_a} == {r["call_id"] for r in answers}
            assert all(m["type"] == "decision" for m in got_a)

            # 3. Reconnect with ?after=N from the middle: exactly the later ones, in order
            # (and the marker calls posted since, the last one ending the replay).
            middle = got_a[BURST // 2 - 1]["seq"]
            expected = [m for m in got_a if m["seq"] > middle] + [
                board_a.messages[len(got_a)]]
            for sp in (a, b):
                async with board(sp, after=middle) as again:
                    marker = (await post(client, sp.base_url, event()))["call_id"]
                    replayed = await again.until_call(marker)
                assert replayed[:-1] == expected, (sp.base_url, seqs(replayed))
                expected.append(replayed[-1])


@pytest.mark.asyncio
async def test_a_commit_reaches_another_instance_by_notify_not_by_polling(
        postgres_url: str, tmp_path: Path) -> None:
    """The other instance's hub here polls once an hour, so only LISTEN/NOTIFY can bring
    it a call taken by `liaison serve` within the test's wait."""
    sp = start_subprocess(postgres_url, tmp_path)
    engine = create_engine(postgres_url)
    hub = BoardHub(engine, poll_interval=3600)
    listener = PostgresListener(postgres_url, hub)
    try:
        await hub.start()
        await listener.start()
        assert listener.connected.is_set()
        sub = hub.subscribe()
        async with sp.client() as client:
            # The first call may come with the catch-up read the listener asks for when
            # it connects; the second can only come by a notification.
            for _ in range(2):
                taken = await post(client, sp.base_url, event())
                seq, text = await asyncio.wait_for(sub.queue.get(), WAIT)
                assert json.loads(text)["call_id"] == taken["call_id"]
                assert json.loads(text)["seq"] == seq
    finally:
        await listener.stop()
        await hub.stop()
        await engine.dispose()
        sp.stop()




async def post_until_taken(client: httpx.AsyncClient, base_url: str, body: dict[str, Any],
                           within: float = WAIT) -> dict[str, Any]:
    """Post as a CAD does: again after a 503, until it is taken."""
    deadline = time.monotonic() + within
    while True:
        r = await client.post(f"{base_url}/v1/cad/events", json=body)
        if r.status_code == 202:
            return r.json()  # type: ignore[no-any-return]
        assert r.status_code == 503, (base_url, r.status_code, r.text)
        assert time.monotonic() < deadline, f"{base_url} never took the event again"
        await asyncio.sleep(0.2)


async def healthy(client: httpx.AsyncClient, sp: Subprocess, within: float = WAIT) -> None:
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
                await board_a.wait_count(4, within=WAIT)
                await board_b.wait_count(4, within=WAIT)

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
                await again.wait_count(len(stored) - 4, within=WAIT)
                assert seqs(again.messages) == stored[4:]
