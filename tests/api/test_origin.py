"""A logged-in person's browser driven by another site gets nothing: a cookie session's
board websocket and its changes (POST, PUT, PATCH, DELETE) are refused when their Origin
(or, for a change without one, their Referer) is not Liaison's own or one of
LIAISON_ALLOWED_ORIGINS (RFC 6455 §10.2; a second line behind SameSite=Strict). API keys
are not browsers' credentials and are not subject to it. Real uvicorn, real websockets.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import websockets

from service.access import auth
from service.access.auth import Role
from service.settings import Settings
from tests.conftest import Server, running_server

pytestmark = pytest.mark.asyncio

PASSWORD = "a long enough password"
EVIL = "https://evil.example"
CONSOLE = "https://console.example"


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'o.db'}",
                        allowed_origins=f"{CONSOLE}, https://other.example:8443")
    async with running_server(settings) as s:
        yield s


async def session_cookie(server: Server, name: str, role: Role) -> dict[str, str]:
    await auth.add_user(server.runtime.engine, name, role, PASSWORD)
    async with httpx.AsyncClient(base_url=server.base_url) as c:
        r = await c.post("/v1/session", json={"username": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"cookie": f"liaison_session={c.cookies['liaison_session']}"}


async def board_opens(server: Server, headers: dict[str, str]) -> bool:
    """Open the board with these headers: True if accepted (and it streams), False if
    refused with 403 at the handshake."""
    try:
        async with websockets.connect(f"{server.ws_url}/v1/board?after=0",
                                      additional_headers=headers) as ws:
            r = await server.post_event()
            assert r.status_code == 202
            while json.loads(await ws.recv())["call_id"] != r.json()["call_id"]:
                pass
            return True
    except websockets.InvalidStatus as refused:
        assert refused.response.status_code == 403
        return False


async def test_a_cookie_board_from_another_origin_is_refused(server: Server) -> None:
    cookie = await session_cookie(server, "nav-origin", Role.call_team)
    own = server.base_url  # http://127.0.0.1:<port>, what the board page sends
    assert not await board_opens(server, {**cookie, "origin": EVIL})
    assert not await board_opens(server, {**cookie, "origin": "null"})  # a sandboxed page
    assert not await board_opens(server, {**cookie, "origin": own.replace("http:", "https:")})
    assert await board_opens(server, {**cookie, "origin": own})
    assert await board_opens(server, {**cookie, "origin": CONSOLE})  # LIAISON_ALLOWED_ORIGINS
    assert await board_opens(server, {**cookie, "origin": "https://OTHER.example:8443"})
    # No Origin: not a browser, so not a browser driven by another site.
    assert await board_opens(server, cookie)
    # An API key is no browser credential: any Origin.
    assert await board_opens(server, {**server.creds.bearer(Role.supervisor), "origin": EVIL})


async def test_a_cookie_sessions_changes_from_another_origin_are_refused(
        server: Server) -> None:
    cookie = await session_cookie(server, "disp-origin", Role.dispatcher)
    posted = await server.post_event()
    assert posted.status_code == 202, posted.text
    call_id = posted.json()["call_id"]
    override = {"destination": "police", "reason": "Known address, officer safety"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=cookie) as person:
        for foreign in ({"origin": EVIL}, {"referer": f"{EVIL}/page"}, {"origin": "null"}):
            r = await person.post(f"/v1/calls/{call_id}/override", json=override,
                                  headers=foreign)
            assert r.status_code == 403, (foreign, r.status_code, r.text)
            assert "Origin" in r.json()["message"]
            r = await person.delete("/v1/session", headers=foreign)
            assert r.status_code == 403, (foreign, r.status_code, r.text)
        # Nothing was changed: the session lives, the call has its first decision only.
        assert (await person.get("/v1/session", headers={"origin": EVIL})).status_code == 200
        view = (await server.client.get(f"/v1/calls/{call_id}")).json()
        assert len(view["decisions"]) == 1
        # From Liaison's own page (Origin, or only a Referer) it goes through.
        r = await person.post(f"/v1/calls/{call_id}/override", json=override,
                              headers={"referer": f"{server.base_url}/dispatch"})
        assert r.status_code == 200, r.text
        r = await person.delete("/v1/session", headers={"origin": server.base_url})
        assert r.status_code == 200 and r.json() == {"logged_out": True}
    # A key's change from anywhere is a CAD's or a script's: not subject to it.
    r = await server.client.post(f"/v1/calls/{call_id}/override", json=override,
                                 headers={"origin": EVIL})
    assert r.status_code == 200, r.text
