"""A PostgreSQL that stops answering, or stops altogether, is answered "503, retry", at
once, by every route and by /v1/health; it is never a 500, a hang, or a logged-out person.

The database is a private cluster of the test's own (tests/pgcluster.py), frozen with
SIGSTOP and crashed with SIGKILL; Liaison is a real uvicorn with real websocket boards.
The times measured are printed (`pytest -s`), not asserted: speed belongs in bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from service.access import auth
from service.access.auth import Role
from service.settings import Settings
from service.store.db import WRITE_LOCK_KEY
from tests.conftest import Server, running_server
from tests.factories import eido, event
from tests.pgcluster import PgCluster

pytestmark = pytest.mark.asyncio

# Far beyond the deadlines under test (about a second): only a hang reaches it.
HANG = 20.0
PASSWORD = "a long enough password"


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str,
                     within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while True:
        got = check()
        if got if isinstance(got, bool) else await got:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def posted(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    """Post until 202, as a CAD retries on 503: the answer."""
    answer: dict[str, Any] = {}

    async def accepted() -> bool:
        r = await server.client.post("/v1/cad/events", json=body, timeout=HANG)
        assert r.status_code in (202, 503), (r.status_code, r.text)
        if r.status_code == 202:
            answer.update(r.json())
        return r.status_code == 202

    await eventually(accepted, f"event {body['event_id']} to be taken")
    return answer


async def message_for(ws: ClientConnection, call_id: str) -> dict[str, Any]:
    """The board message for this call (earlier ones are skipped)."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), HANG))
        if message.get("call_id") == call_id:
            return message


async def healthy(server: Server) -> bool:
    r = await server.client.get("/v1/health", timeout=HANG)
    return r.status_code == 200


@pytest.mark.postgres
async def test_a_frozen_postgres_gets_503_at_once_and_health_still_answers(
        pg_cluster: PgCluster, pg_cluster_url: str) -> None:
    """Every way a request meets the database: the writer (a CAD event), the key lookup (no
    key cached: key_cache_seconds=0), a session, an EIDO's incident lookup; and health."""
    settings = Settings(database_url=pg_cluster_url, key_cache_seconds=0)
    async with running_server(settings) as server:
        await auth.add_user(server.runtime.engine, "nav-frozen", Role.call_team, PASSWORD)
        first = await posted(server, event())
        async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG) as person, \
                server.connect_board("?after=0") as board:
            r = await person.post("/v1/session", json={"username": "nav-frozen",
                                                       "password": PASSWORD})
            assert r.status_code == 200, r.text
            await message_for(board, first["call_id"])
            body = event()
            pg_cluster.freeze()
            took: dict[str, float] = {}
            try:
                for name, request in (
                        ("POST /v1/cad/events", lambda: server.client.post(
                            "/v1/cad/events", json=body, timeout=HANG)),
                        ("POST /v1/cad/eido", lambda: server.client.post(
                            "/v1/cad/eido", json=eido(unique="frozen"), timeout=HANG)),
                        ("GET /v1/session (cookie)", lambda: person.get("/v1/session")),
                        ("GET /v1/health", lambda: server.client.get("/v1/health",
                                                                     timeout=HANG))):
                    t0 = time.monotonic()
                    r = await request()
                    took[name] = time.monotonic() - t0
                    assert r.status_code == 503, (name, r.status_code, r.text)
                    if name != "GET /v1/health":
                        assert r.headers["retry-after"] == "1", name
                        assert r.json()["error"] == "unavailable", (name, r.text)
                problems = r.json()["problems"]
                assert any("not answering" in p or "not completing" in p
                           for p in problems), problems
                print("\nPostgreSQL frozen, answered 503 in: " + ", ".join(
                    f"{name} {t:.2f} s" for name, t in took.items()) + f"; health: {problems}")
            finally:
                pg_cluster.thaw()
            # Thawed: the CAD's retry is taken, the board goes on, health is back.
            again = await posted(server, body)
            assert (await message_for(board, again["call_id"]))["type"] == "decision"
            await eventually(lambda: healthy(server), "health to be 200 again")
            assert (await person.get("/v1/session")).status_code == 200


@pytest.mark.postgres
async def test_a_stopped_postgres_is_503_for_keys_and_sessions_and_boards_stay_open(
        pg_cluster: PgCluster, pg_cluster_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """No key cached (key_cache_seconds=0): the key lookup meets the outage. A session
    is checked against the database on every request. Open boards re-check their
    credentials every 0.2 s: a failed check keeps them open (not 4401 "session ended")."""
    settings = Settings(database_url=pg_cluster_url, key_cache_seconds=0,
                        session_recheck_seconds=0.2)
    caplog.set_level(logging.WARNING, logger="liaison.board")
    async with running_server(settings) as server:
        await auth.add_user(server.runtime.engine, "nav-outage", Role.call_team, PASSWORD)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=HANG) as person:
            r = await person.post("/v1/session", json={"username": "nav-outage",
                                                       "password": PASSWORD})
            assert r.status_code == 200, r.text
            cookie = {"cookie": f"liaison_session={person.cookies['liaison_session']}"}
            async with server.connect_board() as by_key, websockets.connect(
                    f"{server.ws_url}/v1/board", additional_headers=cookie) as by_cookie:
                await pg_cluster.acrash()
                try:
                    r = await server.post_event()
                    assert r.status_code == 503, (r.status_code, r.text)
                    assert r.headers["retry-after"] == "1"
                    r = await person.get("/v1/session")
                    assert r.status_code == 503, (r.status_code, r.text)
                    assert r.headers["retry-after"] == "1"
                    h = await server.client.get("/v1/health")
                    assert h.status_code == 503
                    assert any(p.startswith("database unreachable")
                               for p in h.json()["problems"]), h.text
                    # A board opening now is told to come back, not that it is forbidden.
                    with pytest.raises(websockets.InvalidStatus) as refused:
                        async with server.connect_board():
                            pass
                    assert refused.value.response.status_code == 503
                    assert refused.value.response.headers["retry-after"] == "1"

                    def rechecks_failed() -> int:
                        return sum("could not re-check a board's credentials" in m
                                   for m in caplog.messages)

                    async def both_rechecked_twice() -> bool:
                        return rechecks_failed() >= 4

                    await eventually(both_rechecked_twice, "the boards to re-check twice")
                finally:
                    await pg_cluster.restart()
                # The same boards, still open, see the next call.
                call = await posted(server, event())
                for board in (by_key, by_cookie):
                    assert (await message_for(board, call["call_id"]))["type"] == "decision"
            r = await person.get("/v1/session")
            assert r.status_code == 200 and r.json()["username"] == "nav-outage"
    with contextlib.suppress(Exception):
        pg_cluster.stop()


@contextlib.asynccontextmanager
async def write_lock_held(database_url: str) -> AsyncIterator[None]:
    """Another process holding the database's write lock: the writer's advisory lock on
    PostgreSQL, SQLite's write lock."""
    if database_url.startswith("sqlite"):
        held = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
        held.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            held.execute("ROLLBACK")
            held.close()
        return
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", WRITE_LOCK_KEY)
        yield
        await conn.execute("SELECT pg_advisory_unlock($1)", WRITE_LOCK_KEY)
    finally:
        await conn.close()


async def test_a_busy_database_is_waited_for_not_refused(database_url: str) -> None:
    """The write lock held elsewhere for three times db_request_timeout: the database
    still answers (SELECT 1), so the event waits and is taken, not refused."""
    async with running_server(Settings(database_url=database_url)) as server:
        await posted(server, event())
        writer = server.runtime.writer
        async with write_lock_held(database_url):
            pending = asyncio.create_task(server.post_event())
            await eventually(lambda: writer.stalled_for() > 3 * writer.patience.quiet,
                             "the writer to wait on the lock for 3 s")
            assert not pending.done(), pending.result().text
        r = await pending
        assert r.status_code == 202, r.text

