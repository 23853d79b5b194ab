"""Size limits over real sockets: request bodies (declared and chunked), the board
websocket's client messages, the EIDO subscriber's incoming messages. Oversized input gets
a clear 4xx (or a 1009 close) and changes nothing."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.settings import Settings
from service.store.tables import BOARD, CAD_EVENT, CALL, REJECT
from tests.conftest import WAIT, Server, running_server
from tests.factories import event

pytestmark = pytest.mark.asyncio

LIMIT = 4096
EIDO_LIMIT = 16384


@pytest_asyncio.fixture
async def small(tmp_path: Path) -> AsyncIterator[Server]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
                        max_body_bytes=LIMIT, max_eido_body_bytes=EIDO_LIMIT,
                        board_max_client_message=1024)
    async with running_server(settings) as s:
        yield s


async def counts(server: Server) -> dict[str, int]:
    async with server.runtime.engine.connect() as conn:
        return {t.name: int((await conn.execute(select(func.count()).select_from(t)))
                            .scalar_one()) for t in (CALL, CAD_EVENT, REJECT, BOARD)}


def big_event(size: int) -> bytes:
    return json.dumps(event(narrative="x" * size)).encode()


def assert_too_large(r: Any, limit: int) -> None:
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error"] == "too_large" and body["limit"] == limit
    assert body["detail"][0]["field"] == "(body)"
    assert str(limit) in body["detail"][0]["reason"]


async def test_a_declared_body_over_the_limit_is_413_and_stores_nothing(small: Server) -> None:
    before = await counts(small)
    r = await small.client.post("/v1/cad/events", content=big_event(LIMIT),
                                headers={"content-type": "application/json"})
    assert_too_large(r, LIMIT)
    assert r.headers["x-content-type-options"] == "nosniff", "413s carry the headers too"
    assert await counts(small) == before
    # Under the limit, the same endpoint works.
    ok = await small.client.post("/v1/cad/events", content=big_event(LIMIT // 2),
                                 headers={"content-type": "application/json"})
    assert ok.status_code == 202, ok.text


async def test_a_chunked_body_is_counted_as_it_streams(small: Server) -> None:
    before = await counts(small)
    raw = big_event(LIMIT * 3)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 1000):
            yield raw[i:i + 1000]

    r = await small.client.post("/v1/cad/events", content=chunks(),
                                headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_too_large(r, LIMIT)
    # The EIDO endpoint reads its body itself: the same answer.
    r = await small.client.post("/v1/cad/eido", content=chunks(),
                                headers={"content-type": "application/json"})
    assert r.status_code == 422, "under the EIDO allowance: read, and refused as an EIDO"
    eido_raw = json.dumps({"notes": ["y" * EIDO_LIMIT * 2]}).encode()

    async def eido_chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(eido_raw), 4000):
            yield eido_raw[i:i + 4000]

    after_reject = await counts(small)
    r = await small.client.post("/v1/cad/eido", content=eido_chunks(),
                                headers={"content-type": "application/json"})
    assert_too_large(r, EIDO_LIMIT)
    assert await counts(small) == after_reject, "not even a reject is kept"
    assert after_reject[REJECT.name] == before[REJECT.name] + 1
    # A small chunked body goes through.
    fine = json.dumps(event()).encode()

    async def one() -> AsyncIterator[bytes]:
        yield fine

    ok = await small.client.post("/v1/cad/events", content=one(),
                                 headers={"content-type": "application/json"})
    assert ok.status_code == 202, ok.text


async def test_eido_paths_take_larger_bodies(small: Server) -> None:
    doc = json.dumps({"$id": "x", "notes": ["z" * (LIMIT * 2)]}).encode()
    r = await small.client.post("/v1/cad/eido", content=doc,
                                headers={"content-type": "application/json"})
    assert r.status_code == 422, "over the general limit, within the EIDO allowance"
    r = await small.client.post("/v1/cad/events", content=doc,
                                headers={"content-type": "application/json"})
    assert_too_large(r, LIMIT)
    before = await counts(small)
    huge = json.dumps({"notes": ["z" * EIDO_LIMIT]}).encode()
    r = await small.client.post("/v1/cad/eido", content=huge,
                                headers={"content-type": "application/json"})
    assert_too_large(r, EIDO_LIMIT)
    r = await small.client.post("/v1/cad/rejects/1/resubmit", content=huge,
                                headers={"content-type": "application/json"})
    assert_too_large(r, EIDO_LIMIT)
    assert await counts(small) == before


async def test_a_content_length_that_is_not_a_number_is_400(small: Server) -> None:
    host, port = small.base_url.removeprefix("http://").split(":")

    def raw_request() -> bytes:
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /v1/cad/events HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 12abc\r\n\r\n{}")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            return data

    before = await counts(small)
    answer = await asyncio.to_thread(raw_request)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert await counts(small) == before


async def test_board_closes_a_client_that_sends_too_much_with_1009(small: Server) -> None:
    async with small.connect_board() as ws:
        await ws.send("ping")  # small messages are ignored
        await ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # Binary too; and the board keeps serving others.
    async with small.connect_board() as ws:
        await ws.send(b"\0" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with small.connect_board() as ws:
        r = await small.post_event()
        msg = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert msg["call_id"] == r.json()["call_id"]


async def test_liaison_serve_caps_websocket_messages(tmp_path: Path) -> None:
    """uvicorn's ws_max_size, as `liaison serve` sets it, refuses a message before the
    application reads it."""
    from tests.conftest import start_subprocess

    sp = await asyncio.to_thread(start_subprocess,
                                 f"sqlite+aiosqlite:///{tmp_path / 's.db'}", tmp_path)
    try:
        async with sp.connect_board(max_size=None) as ws:
            await ws.send("x" * (65 * 1024))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        await asyncio.to_thread(sp.stop)


async def test_the_eido_subscriber_refuses_an_oversized_message(tmp_path: Path) -> None:
    from tests.fakes import FakeCad, Peer, notify_with_eido, settings

    async def oversized(peer: Peer) -> None:
        await peer.accept()
        message = json.dumps(notify_with_eido([{"$id": "big", "notes": ["n" * 4000]}],
                                   transaction="t1"))
        assert len(message) > 2048
        with pytest.raises(ConnectionClosed) as closed:
            await peer.send(message)
            await asyncio.wait_for(peer.recv(), WAIT)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        peer.cad.mark("closed")

    async def accepted(peer: Peer) -> None:
        await peer.accept()
        peer.cad.mark("resubscribed")
        await peer.serve_until_closed()

    cad = FakeCad(oversized, accepted)
    async with cad.running():
        url = f"sqlite+aiosqlite:///{tmp_path / 'e.db'}"
        async with running_server(settings(url, cad, eido_subscribe_max_message=2048)
                                  ) as server:
            await cad.wait("closed")
            await cad.wait("resubscribed")
            c = await counts(server)
            assert c[CAD_EVENT.name] == 0 and c[CALL.name] == 0 and c[REJECT.name] == 0
    cad.check()


async def test_limit_by_address_answers_429_with_retry_after() -> None:
    """The per-address limit for routes without credentials, on a real uvicorn. The
    bucket's clock is held by the test, so the answers do not depend on how fast this
    machine sends four requests."""
    from types import SimpleNamespace

    import httpx
    import uvicorn
    from fastapi import Depends, FastAPI

    from api import errors
    from api.limits import limit_by_address
    from service.access.ratelimit import RateLimiter
    from tests.conftest import eventually, free_port

    app = FastAPI()
    errors.install(app)
    app.state.runtime = SimpleNamespace(settings=Settings(rate_limit_anonymous_rate=0.5,
                                                          rate_limit_anonymous_burst=3))
    now = [100.0]
    app.state.rate_limiters = {"open": RateLimiter(0.5, 3, clock=lambda: now[0])}
    hits: list[int] = []

    @app.post("/v1/open", dependencies=[Depends(limit_by_address("open"))])
    async def open_route() -> dict[str, int]:
        hits.append(1)
        return {"n": len(hits)}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, "uvicorn to start")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            codes = [(await c.post("/v1/open")).status_code for _ in range(3)]
            assert codes == [200, 200, 200]
            r = await c.post("/v1/open")
            assert r.status_code == 429, r.text
            assert r.headers["retry-after"] == "2"
            assert r.json()["error"] == "rate_limited" and r.json()["retry_after"] == 2
            assert len(hits) == 3, "the refused request never reached the route"
            now[0] += 1.9  # not yet a whole token back
            assert (await c.post("/v1/open")).status_code == 429
            now[0] += 0.1
            assert (await c.post("/v1/open")).status_code == 200
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_has_nul() -> None:
    from api.limits import has_nul

    assert has_nul(b'{"a": "x\\u0000"}')
    assert has_nul(b'{"a": "\\\\\\u0000"}'), "an escaped backslash, then a NUL escape"
    assert not has_nul(b'{"a": "\\\\u0000"}'), "an escaped backslash, then text u0000"
    assert not has_nul(b"raw\x00byte"), "not JSON: the application's to refuse"
    assert not has_nul(b"a=%00") and has_nul(b"a=%00", form=True)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_nul_characters_are_refused_with_422_and_change_nothing(
        database: str, tmp_path: Path) -> None:
    """PostgreSQL text cannot hold NUL: it used to be a 503 'retry' on ingest and a 500 on
    reads. Now a 422 naming where, on either database, before the app sees it."""
    from tests.conftest import postgres_database

    async def run(url: str) -> None:
        async with running_server(Settings(database_url=url)) as s:
            before = await counts(s)
            r = await s.post_event(narrative="a\x00b")
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0] == {
                "field": "(body)", "type": "nul_character",
                "reason": r.json()["detail"][0]["reason"]}
            r = await s.client.post("/v1/cad/eido", json={"$id": "x\x00", "notes": []})
            assert r.status_code == 422 and r.json()["detail"][0]["field"] == "(body)"
            r = await s.client.get("/v1/cad/rejects", params={"source": "a\x00"})
            assert r.status_code == 422 and r.json()["detail"][0]["field"] == "(query)"
            r = await s.client.get("/v1/calls/a%00b")
            assert r.status_code == 422 and r.json()["detail"][0]["field"] == "(path)"
            assert await counts(s) == before
            # A literal backslash-u0000 in text is text, and is kept.
            ok = await s.post_event(narrative="path C:\\u0000 is text")
            assert ok.status_code == 202, ok.text

    if database == "sqlite":
        await run(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}")
    else:
        with postgres_database() as url:
            await run(url)


async def test_ids_beyond_64_bits_are_422_not_500(small: Server) -> None:
    """Found by the fuzz run: a number past the database's 64-bit integers was a 500."""
    huge = str(2**70)
    for path, params in (("/v1/cad/rejects/" + huge, {}),
                         ("/v1/cad/rejects", {"before_id": huge}),
                         ("/v1/audit", {"after_id": huge})):
        r = await small.client.get(path, params=params)
        assert r.status_code == 422, (path, r.status_code, r.text)
    # The board refuses the handshake (a websocket's bad query is refused before accept).
    with pytest.raises(InvalidStatus) as refused:
        async with small.connect_board(f"?after={huge}") as ws:
            await asyncio.wait_for(ws.recv(), WAIT)
    assert refused.value.response.status_code == 403
