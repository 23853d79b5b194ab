"""Logins, sessions and keys over real HTTP: cookie flags, idle and absolute limits,
logout and disable ending websockets, lockout, key rotation and revocation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import websockets

from service import auth
from service.auth import Role
from service.settings import Settings
from tests.conftest import Server, running_server

pytestmark = pytest.mark.asyncio

PASSWORD = "a long enough password"


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
                    session_recheck_seconds=0.2, key_cache_seconds=0, **kw)


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running_server(settings(tmp_path)) as s:
        yield s


async def person(server: Server, name: str, role: Role = Role.call_team) -> None:
    await auth.add_user(server.runtime.engine, name, role, PASSWORD)


async def log_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD
                 ) -> httpx.Response:
    return await client.post("/v1/session", json={"username": name, "password": password})


async def test_login_sets_a_protected_cookie_and_logout_ends_the_session(server: Server
                                                                        ) -> None:
    await person(server, "nav-1")
    async with httpx.AsyncClient(base_url=server.base_url) as c:
        r = await log_in(c, "nav-1")
        assert r.status_code == 200 and r.json()["role"] == "call_team"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("liaison_session=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain HTTP here; see the TLS test below
        assert (await c.get("/v1/session")).json()["username"] == "nav-1"
        # The board websocket takes the same cookie, and is closed at logout.
        token = c.cookies["liaison_session"]
        async with websockets.connect(f"{server.ws_url}/v1/board",
                                      additional_headers={"cookie": f"liaison_session={token}"}
                                      ) as ws:
            assert (await c.delete("/v1/session")).json() == {"logged_out": True}
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        # The old token is worth nothing now, even presented again.
        again = await server.client.get("/v1/session",
                                        headers={"cookie": f"liaison_session={token}"})
        assert again.status_code == 401 and "ended" in again.json()["message"]


async def test_secure_cookie_behind_tls(tmp_path: Path) -> None:
    async with running_server(settings(tmp_path, cookie_secure=True)) as s:
        await person(s, "nav-2")
        async with httpx.AsyncClient(base_url=s.base_url) as c:
            assert "Secure" in (await log_in(c, "nav-2")).headers["set-cookie"]


async def test_wrong_password_unknown_user_and_disabled_account_look_alike(server: Server
                                                                           ) -> None:
    await person(server, "nav-3")
    await auth.disable_user(server.runtime.engine, "nav-3")
    bodies = []
    for name, password in (("nav-3", PASSWORD), ("nobody", PASSWORD)):
        async with httpx.AsyncClient(base_url=server.base_url) as c:
            r = await log_in(c, name, password)
            assert r.status_code in (401, 429)
            if r.status_code == 401:
                bodies.append(r.json())
            await asyncio.sleep(float(r.headers.get("retry-after", "1")) + 0.1)
    assert bodies and all(b == bodies[0] for b in bodies)


async def test_failed_logins_slow_down_then_lock_out(server: Server) -> None:
    await person(server, "nav-4")
    throttle = server.runtime.login_throttle
    async with httpx.AsyncClient(base_url=server.base_url) as c:
        statuses = []
        for _ in range(8):
            r = await log_in(c, "nav-4", "wrong password, again")
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
        assert statuses[0] == 401 and 429 in statuses
        # Locked: even the right password is refused until the lock ends.
        for _ in range(5):
            throttle.failed("nav-4", "127.0.0.1")
        r = await log_in(c, "nav-4")
        assert r.status_code == 429


async def test_idle_timeout_and_absolute_lifetime(tmp_path: Path) -> None:
    # Idle after 1.2 s without a request; at most 3.6 s in all.
    s_ = settings(tmp_path, session_idle_minutes=0.02, session_max_hours=0.001)
    async with running_server(s_) as s:
        await person(s, "nav-5")
        async with httpx.AsyncClient(base_url=s.base_url) as c:
            await log_in(c, "nav-5")
            start = time.monotonic()
            # Activity keeps it alive past the idle limit...
            while time.monotonic() - start < 2.0:
                assert (await c.get("/v1/session")).status_code == 200
                await asyncio.sleep(0.2)
            # ...but not past the lifetime.
            await asyncio.sleep(max(0.0, 3.8 - (time.monotonic() - start)))
            assert (await c.get("/v1/session")).status_code == 401
            await log_in(c, "nav-5")
            await asyncio.sleep(1.5)  # idle
            r = await c.get("/v1/session")
            assert r.status_code == 401 and "log in again" in r.json()["message"]


async def test_disabling_a_user_ends_their_sessions_and_websockets(server: Server) -> None:
    await person(server, "nav-6", Role.dispatcher)
    async with httpx.AsyncClient(base_url=server.base_url) as c:
        await log_in(c, "nav-6")
        token = c.cookies["liaison_session"]
        async with websockets.connect(f"{server.ws_url}/v1/board",
                                      additional_headers={"cookie": f"liaison_session={token}"}
                                      ) as ws:
            await auth.disable_user(server.runtime.engine, "nav-6")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert (await c.get("/v1/session")).status_code == 401


async def test_key_rotation_keeps_both_keys_for_the_grace_then_revocation_stops_one(
        server: Server) -> None:
    engine = server.runtime.engine
    old, row = await auth.create_key(engine, "pinellas-cad")
    new, _, replaced = await auth.rotate_key(engine, "pinellas-cad", timedelta(seconds=1.5))
    assert replaced == [row["id"]]
    async with httpx.AsyncClient(base_url=server.base_url) as c:
        for token in (old, new):
            r = await c.get("/v1/session", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["role"] == "cad"
        await asyncio.sleep(1.7)
        r = await c.get("/v1/session", headers={"authorization": f"Bearer {old}"})
        assert r.status_code == 401
        assert (await c.get("/v1/session", headers={"authorization": f"Bearer {new}"})
                ).status_code == 200
        new_id = new.removeprefix("lk_").split(".")[0]
        await auth.revoke_key(engine, new_id)
        r = await c.get("/v1/session", headers={"authorization": f"Bearer {new}"})
        assert r.status_code == 401
        # A right id with a wrong secret is no key either.
        forged = f"lk_{new_id}.{'A' * 43}"
        assert (await c.get("/v1/session", headers={"authorization": f"Bearer {forged}"})
                ).status_code == 401


async def test_a_supervisor_manages_accounts_over_the_api(server: Server) -> None:
    sup = server.creds.bearer(Role.supervisor)
    c = server.client
    r = await c.post("/v1/users", json={"username": "nav-9", "role": "call_team"}, headers=sup)
    assert r.status_code == 201, r.text
    password = r.json()["password"]
    assert r.json()["account"]["role"] == "call_team" and len(password) >= 12
    assert (await c.post("/v1/users", json={"username": "nav-9", "role": "call_team"},
                         headers=sup)).status_code == 409
    assert (await c.post("/v1/users", json={"username": "cad-x", "role": "cad"},
                         headers=sup)).status_code == 400
    async with httpx.AsyncClient(base_url=server.base_url) as person_c:
        assert (await log_in(person_c, "nav-9", password)).status_code == 200
        r = await c.post("/v1/users/nav-9/disable", headers=sup)
        assert r.json()["sessions_ended"] == 1
        assert (await person_c.get("/v1/session")).status_code == 401
    r = await c.post("/v1/users/nav-9/reset", headers=sup)
    new = r.json()["password"]
    assert new != password and r.json()["account"]["disabled_at"] is None
    async with httpx.AsyncClient(base_url=server.base_url) as person_c:
        assert (await log_in(person_c, "nav-9", new)).status_code == 200
    names = {a["username"] for a in (await c.get("/v1/users", headers=sup)).json()}
    assert "nav-9" in names
    audit = (await c.get("/v1/audit", params={"action": "user.reset"}, headers=sup)).json()
    assert audit[0]["target"] == "nav-9" and password not in str(audit)
