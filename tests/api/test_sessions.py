"""Logins, sessions and keys over real HTTP: cookie flags, idle and absolute limits,
logout and disable ending websockets, lockout, key rotation and revocation."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, text, update

from service.access import auth
from service.access.auth import Role
from service.settings import Settings
from service.store.tables import SESSION
from tests.conftest import WAIT, Server, running_server
from tests.credentials import liaison_key_create

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
                await asyncio.wait_for(ws.recv(), WAIT)
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


async def test_wrong_password_unknown_user_and_disabled_account_look_alike(
        tmp_path: Path) -> None:
    # No delay after a failure here (login_delay_base=0), so each attempt is answered,
    # not throttled; the throttle has tests of its own.
    async with running_server(settings(tmp_path, login_delay_base=0)) as server:
        await person(server, "nav-3")
        await person(server, "nav-3b")
        await auth.disable_user(server.runtime.engine, "nav-3")
        answers = []
        for name, password in (("nav-3", PASSWORD), ("nobody", PASSWORD),
                               ("nav-3b", "not the password at all")):
            async with httpx.AsyncClient(base_url=server.base_url) as c:
                r = await log_in(c, name, password)
                answers.append((r.status_code, r.json()))
    assert answers[0][0] == 401 and answers[0][1]["message"], answers
    assert answers == [answers[0]] * 3, "the three failures told apart"


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


async def session_row(server: Server, sid: str) -> dict[str, Any]:
    async with server.runtime.engine.connect() as conn:
        row = (await conn.execute(select(SESSION).where(SESSION.c.id == sid))).mappings().one()
    return dict(row)


async def move_back(server: Server, sid: str, **by: timedelta) -> None:
    """Move a session's stored times back (created_at=…, last_seen_at=…, expires_at=…):
    as if that much time had passed, without waiting for it."""
    row = await session_row(server, sid)
    async with server.runtime.engine.begin() as conn:
        await conn.execute(update(SESSION).where(SESSION.c.id == sid).values(
            **{column: row[column] - delta for column, delta in by.items()}))


async def test_idle_timeout_and_absolute_lifetime(database_url: str) -> None:
    """The shipped limits (30 minutes without a request, 12 hours in all), on a server
    started with the defaults; the session's stored times are moved back instead of
    waiting."""
    async with running_server(Settings(database_url=database_url)) as s:
        await person(s, "nav-5")
        async with httpx.AsyncClient(base_url=s.base_url) as c:
            await log_in(c, "nav-5")
            sid = hashlib.sha256(c.cookies["liaison_session"].encode()).hexdigest()
            row = await session_row(s, sid)
            assert row["expires_at"] - row["created_at"] == timedelta(hours=12)
            assert row["last_seen_at"] == row["created_at"]

            # 11 hours in, 29 minutes since the last request: alive, and the request
            # counts as activity.
            await move_back(s, sid, created_at=timedelta(hours=11),
                            expires_at=timedelta(hours=11), last_seen_at=timedelta(minutes=29))
            before = datetime.now(UTC)
            assert (await c.get("/v1/session")).status_code == 200
            assert (await session_row(s, sid))["last_seen_at"] >= before
            # Activity does not keep it past its lifetime: 12 hours after login it ends.
            await move_back(s, sid, created_at=timedelta(hours=1, seconds=1),
                            expires_at=timedelta(hours=1, seconds=1))
            r = await c.get("/v1/session")
            assert r.status_code == 401 and "log in again" in r.json()["message"]
            assert (await session_row(s, sid))["ended_why"] == "lifetime"

            # Idle: 30 minutes without a request end it.
            await log_in(c, "nav-5")
            sid = hashlib.sha256(c.cookies["liaison_session"].encode()).hexdigest()
            await move_back(s, sid, last_seen_at=timedelta(minutes=30))
            r = await c.get("/v1/session")
            assert r.status_code == 401 and "log in again" in r.json()["message"]
            assert (await session_row(s, sid))["ended_why"] == "idle"


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
                await asyncio.wait_for(ws.recv(), WAIT)
        assert (await c.get("/v1/session")).status_code == 401


async def test_key_rotation_keeps_both_keys_for_the_grace_then_revocation_stops_one(
        server: Server) -> None:
    engine = server.runtime.engine
    old, row = await auth.create_key(engine, "pinellas-cad")
    rotated = datetime.now(UTC)
    new, _, replaced = await auth.rotate_key(engine, "pinellas-cad", timedelta(hours=1))
    assert replaced == [row["id"]]
    expires = {k["id"]: k["expires_at"] for k in await auth.list_keys(engine)}
    # The old key runs out an hour after the rotation; the new one does not.
    assert timedelta(hours=1) <= expires[row["id"]] - rotated <= timedelta(hours=1, minutes=1)
    assert expires[key_id(new)] is None

    async def works(token: str) -> bool:
        r = await c.get("/v1/session", headers={"authorization": f"Bearer {token}"})
        assert r.status_code in (200, 401), r.text
        return r.status_code == 200 and r.json()["role"] == "cad"

    async with httpx.AsyncClient(base_url=server.base_url) as c:
        assert await works(old) and await works(new)
        # Rotated again with no grace: every earlier key stops at once (the same rule as
        # at the end of a grace period), the newest works.
        newest, _, replaced = await auth.rotate_key(engine, "pinellas-cad", timedelta(0))
        assert sorted(replaced) == sorted([row["id"], key_id(new)])
        assert not await works(old) and not await works(new) and await works(newest)
        new, new_id = newest, key_id(newest)
        await auth.revoke_key(engine, new_id)
        r = await c.get("/v1/session", headers={"authorization": f"Bearer {new}"})
        assert r.status_code == 401
        # A right id with a wrong secret is no key either.
        forged = f"lk_{new_id}.{'A' * 43}"
        assert (await c.get("/v1/session", headers={"authorization": f"Bearer {forged}"})
                ).status_code == 401


def key_id(token: str) -> str:
    return token.removeprefix("lk_").split(".")[0]


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


async def test_the_database_keeps_only_hashes_of_session_tokens_and_key_secrets(
        database_url: str) -> None:
    """SECURITY.md: a copy of the database holds no usable session or key. Read straight
    from every table after a login and a key made as an operator makes one."""
    async with running_server(Settings(database_url=database_url)) as s:
        await person(s, "nav-11")
        async with httpx.AsyncClient(base_url=s.base_url) as c:
            assert (await log_in(c, "nav-11")).status_code == 200
            token = c.cookies["liaison_session"]
            key = await liaison_key_create(database_url, "hash-check-cad", "*")
            key_id, secret = key.removeprefix("lk_").split(".", 1)
            # Both work, so they are the real thing.
            assert (await c.get("/v1/session")).json()["username"] == "nav-11"
            r = await c.get("/v1/session", headers={"authorization": f"Bearer {key}"})
            assert r.json()["role"] == "cad"

        async with s.runtime.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: sa_inspect(sync).get_table_names())
            assert {"user_session", "api_key", "app_user"} <= set(tables), tables
            for table in tables:
                rows = (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
                stored = repr(rows)
                for raw in (token, secret, key, PASSWORD):
                    assert raw not in stored, f"a raw secret is stored in {table}"
            sessions = (await conn.execute(text("SELECT id FROM user_session"))).scalars()
            keys = (await conn.execute(text("SELECT secret_sha256 FROM api_key WHERE id = :i"),
                                       {"i": key_id})).scalars()
            assert hashlib.sha256(token.encode()).hexdigest() in list(sessions)
            assert list(keys) == [hashlib.sha256(secret.encode()).hexdigest()]
