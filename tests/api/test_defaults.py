"""The shipped defaults, on a server started with them. Other tests pass limits of their
own (small ones, to be quick), so a changed default would pass them: these start Liaison
with nothing but a database URL and hold it to what SECURITY.md promises."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from service.access import auth
from service.access.auth import Role
from service.settings import Settings
from tests.conftest import Server, running_server
from tests.factories import event

MiB = 1024 * 1024
PASSWORD = "a long enough password"


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LIAISON_* setting from the environment: the defaults as shipped."""
    for name in list(os.environ):
        if name.startswith("LIAISON_") and name != "LIAISON_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    yield


def test_the_documented_defaults(shipped: None) -> None:
    s = Settings()
    # Hostile input: 1 MiB bodies, 8 MiB for whole EIDO incident states; board clients
    # send at most 4 KiB; the EIDO subscriber takes 16 MiB messages.
    assert (s.max_body_bytes, s.max_eido_body_bytes) == (MiB, 8 * MiB)
    assert (s.board_max_client_message, s.eido_subscribe_max_message) == (4096, 16 * MiB)
    # Failed logins: a delay doubling from 1 s (at most 30 s); 5 failures within 15
    # minutes lock the name for 15 minutes; the address after 20.
    assert (s.login_delay_base, s.login_delay_cap) == (1.0, 30.0)
    assert (s.login_lockout_after, s.login_window_seconds, s.login_lockout_seconds) == (
        5, 900.0, 900.0)
    assert s.login_address_lockout_after == 20
    # Sessions: 30 minutes idle, 12 hours in all, re-checked on an open board every 15 s.
    assert (s.session_idle_minutes, s.session_max_hours) == (30.0, 12.0)
    assert s.session_recheck_seconds == 15.0
    assert s.cookie_secure is None and s.behind_tls_proxy is False
    # Keys: 24 hours of grace at rotation, a revoked key stops within 5 s.
    assert (s.key_rotation_grace_hours, s.key_cache_seconds) == (24.0, 5.0)
    # Rate limits: 5 a second, bursts of 30, per address without credentials.
    assert (s.rate_limit_anonymous_rate, s.rate_limit_anonymous_burst) == (5.0, 30)


@pytest_asyncio.fixture
async def default_server(tmp_path: Path, shipped: None) -> AsyncIterator[Server]:
    async with running_server(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
                              ) as s:
        yield s


def body_of_size(size: int, **fields: object) -> bytes:
    """A generic event padded (in its narrative) to exactly `size` bytes."""
    empty = json.dumps(event(narrative="", **fields)).encode()
    body = json.dumps(event(narrative="x" * (size - len(empty)), **fields)).encode()
    assert len(body) == size
    return body


def eido_of_size(size: int) -> bytes:
    empty = json.dumps({"$id": "x", "notes": [""]}).encode()
    body = json.dumps({"$id": "x", "notes": ["z" * (size - len(empty))]}).encode()
    assert len(body) == size
    return body


def assert_too_large(r: httpx.Response, limit: int) -> None:
    assert r.status_code == 413, r.text[:300]
    assert r.json()["limit"] == limit


JSON = {"content-type": "application/json"}


@pytest.mark.asyncio
async def test_a_default_server_takes_1_mib_bodies_and_8_mib_eidos(default_server: Server
                                                                    ) -> None:
    c = default_server.client
    # One byte over 1 MiB: refused, declared or chunked; exactly 1 MiB: read.
    over = body_of_size(MiB + 1)
    assert_too_large(await c.post("/v1/cad/events", content=over, headers=JSON), MiB)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(over), 64 * 1024):
            yield over[i:i + 64 * 1024]

    assert_too_large(await c.post("/v1/cad/events", content=chunks(), headers=JSON), MiB)
    r = await c.post("/v1/cad/events", content=body_of_size(MiB), headers=JSON)
    assert r.status_code != 413 and r.status_code < 500, r.text[:300]
    # The EIDO endpoint takes whole incident states: up to 8 MiB.
    r = await c.post("/v1/cad/eido", content=eido_of_size(8 * MiB), headers=JSON)
    assert r.status_code != 413 and r.status_code < 500, r.text[:300]
    assert_too_large(await c.post("/v1/cad/eido", content=eido_of_size(8 * MiB + 1),
                                  headers=JSON), 8 * MiB)


@pytest.mark.asyncio
async def test_a_default_server_slows_then_locks_out_failed_logins(default_server: Server
                                                                    ) -> None:
    """1 s after the first failure, doubling; the fifth locks the name for 15 minutes.
    The throttle's clock is the server's own, held still and moved by the test, so the
    answers do not depend on how fast this machine is."""
    s = default_server
    await auth.add_user(s.runtime.engine, "nav-d", Role.call_team, PASSWORD)
    now = [1000.0]
    s.runtime.login_throttle.clock = lambda: now[0]

    async def attempt(password: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            return await c.post("/v1/session", json={"username": "nav-d",
                                                     "password": password})

    for waits in (1, 2, 4, 8):
        assert (await attempt("wrong password, again")).status_code == 401
        r = await attempt(PASSWORD)  # even the right one, too soon
        assert (r.status_code, r.headers.get("retry-after")) == (429, str(waits))
        now[0] += waits
    assert (await attempt("wrong password, again")).status_code == 401  # the fifth
    r = await attempt(PASSWORD)
    assert (r.status_code, r.headers["retry-after"]) == (429, "900")
    now[0] += 899
    assert (await attempt(PASSWORD)).status_code == 429
    now[0] += 1
    assert (await attempt(PASSWORD)).status_code == 200
