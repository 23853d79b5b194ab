"""Who may do what: every route declares its roles, and each role is checked against
each route over real HTTP; what each role sees of a call; audit of every look."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount

from service.app import create_app
from service.auth import Role
from service.settings import Settings
from tests.conftest import Server, running_server
from tests.credentials import declaration, route_table

pytestmark = pytest.mark.asyncio

# FastAPI's own documentation routes: open, and they hold no data.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


async def test_every_route_declares_who_may_use_it() -> None:
    app = create_app(Settings())
    missing = []
    for entry in route_table(app):
        route = entry.route
        if isinstance(route, APIRoute | APIWebSocketRoute):
            if declaration(route) is None:
                missing.append(f"{sorted(entry.methods or ['WS'])} {entry.path}")
        elif isinstance(route, Mount):
            assert entry.path == "/static", f"an undeclared mount: {entry.path}"
        else:
            assert entry.path in DOCS, f"an undeclared route: {entry.path}"
    assert not missing, "routes without allow()/public(): " + ", ".join(missing)


@pytest_asyncio.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[Server]:
    # Access does not depend on the store; the storage suites run on both databases.
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    async with running_server(settings) as s:
        yield s


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_each_role_against_each_route(sqlite_server: Server) -> None:
    server = sqlite_server
    bare = httpx.AsyncClient(base_url=server.base_url, timeout=30)
    checked = 0
    async with bare:
        for entry in route_table(server.app):
            roles = declaration(entry.route)
            if not isinstance(entry.route, APIRoute) or roles in (None, "public"):
                continue
            assert isinstance(roles, tuple)
            path = concrete(entry.path)
            for method in sorted(entry.methods or ()):
                if method == "HEAD":
                    continue
                anonymous = await bare.request(method, path, json={})
                assert anonymous.status_code == 401, (method, path, anonymous.text)
                for role in Role:
                    r = await bare.request(method, path, json={},
                                           headers=server.creds.bearer(role))
                    if role in roles:
                        # Let through (what happens next is the route's business: 404,
                        # 422, or a refusal of its own, such as an officer key with no
                        # badge asking for "my referrals").
                        assert r.status_code != 401, (role, method, path, r.text)
                        assert "not allowed for your role" not in r.text, (role, path)
                    else:
                        assert r.status_code == 403, (role, method, path, r.text)
                        # Nothing about the thing asked for: only who may.
                        assert r.json() == {"error": "forbidden",
                                            "message": "not allowed for your role",
                                            "allowed_roles": [x.value for x in roles]}
                    checked += 1
    assert checked > 100


async def test_the_board_websocket_checks_roles_before_accepting(sqlite_server: Server
                                                                  ) -> None:
    server = sqlite_server
    with pytest.raises(websockets.InvalidStatus) as anonymous:
        await websockets.connect(f"{server.ws_url}/v1/board")
    assert anonymous.value.response.status_code == 403
    for role in Role:
        if role in (Role.call_team, Role.dispatcher, Role.supervisor):
            async with server.connect_board(role=role) as ws:
                await server.post_event()
                assert json.loads(await ws.recv())["type"] == "decision"
        else:
            with pytest.raises(websockets.InvalidStatus):
                await server.connect_board(role=role)


PERSON = {"id": "MN-4411", "name": "Jordan Example", "phone": "727-555-0199", "age": 34}
NARRATIVE = "Sister says he stopped his medication and hears voices."


async def read_as(server: Server, role: Role, call_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers=server.creds.bearer(role)) as c:
        return await c.get(f"/v1/calls/{call_id}")


async def login(server: Server, role: Role) -> httpx.AsyncClient:
    """A client logged in as the role's test user (a session cookie); close it after."""
    client = httpx.AsyncClient(base_url=server.base_url, timeout=30)
    r = await client.post("/v1/session", json={"username": server.creds.users[role],
                                               "password": server.creds.password})
    assert r.status_code == 200, r.text
    return client


async def test_what_each_role_sees_of_a_mental_health_call(sqlite_server: Server) -> None:
    server = sqlite_server
    r = await server.post_event(narrative=NARRATIVE, person=PERSON)
    call_id = r.json()["call_id"]
    assert r.json()["decision"]["category"] == "mental_health"
    for role in (Role.call_team, Role.supervisor):
        call = (await read_as(server, role, call_id)).json()["call"]
        assert call["narrative"] == NARRATIVE and call["person"]["phone"] == PERSON["phone"]
    for role in (Role.dispatcher, Role.cad):
        body = (await read_as(server, role, call_id)).json()
        call = body["call"]
        assert call["narrative"] is None and call["person"] is None
        assert set(call["withheld"]) == {"narrative", "person"}
        # What they need to act.
        assert call["location"]["address"] and call["category"] == "mental_health"
        assert body["decision"]["destination"] == "call_team" and "flags" in call
        assert PERSON["name"] not in json.dumps(body) and NARRATIVE not in json.dumps(body)
    assert (await read_as(server, Role.analyst, call_id)).status_code == 403
    # An officer sees only what they referred; another call is "not found".
    officer = await login(server, Role.officer)
    try:
        assert (await officer.get(f"/v1/calls/{call_id}")).status_code == 404
        mine = (await server.post_event(
            channel="officer_referral", narrative=NARRATIVE, person=PERSON,
            referral={"officer_id": "badge-officer", "consent": True,
                      "contact": "727-555-0100"})).json()["call_id"]
        seen = (await officer.get(f"/v1/calls/{mine}")).json()["call"]
        assert seen["referred_by"] == "badge-officer"
        assert seen["person"] is None and seen["referral_contact"] is None
    finally:
        await officer.aclose()


async def test_a_dispatcher_sees_the_narrative_of_other_calls_but_not_the_person(
        sqlite_server: Server) -> None:
    server = sqlite_server
    text = "Two neighbours arguing over a fence, no weapons."
    r = await server.post_event(nature_code="NEIGHBOR", nature_text="Neighbor dispute",
                                narrative=text, person=PERSON)
    assert r.json()["decision"]["category"] not in ("mental_health", "substance_use")
    call = (await read_as(server, Role.dispatcher, r.json()["call_id"])).json()["call"]
    assert call["narrative"] == text and call["person"] is None


async def test_every_look_and_change_is_audited_without_personal_text(
        sqlite_server: Server) -> None:
    server = sqlite_server
    call_id = (await server.post_event(narrative=NARRATIVE, person=PERSON)).json()["call_id"]
    team = await login(server, Role.call_team)
    try:
        assert (await team.get(f"/v1/calls/{call_id}")).status_code == 200
        r = await team.post(f"/v1/calls/{call_id}/status",
                            json={"status": "assigned", "unit": "CALL-2",
                                  "note": f"{PERSON['name']} at home"})
        assert r.status_code == 200, r.text
        # A role that may not look, looking: refused, and on the record.
        assert (await team.get("/v1/audit")).status_code == 403
    finally:
        await team.aclose()
    bad = httpx.AsyncClient(base_url=server.base_url)
    async with bad:
        r = await bad.post("/v1/session", json={"username": server.creds.users[Role.officer],
                                                "password": "not the password at all"})
        assert r.status_code == 401
        # A failure slows the next login from the same address (service/ratelimit.py).
        await asyncio.sleep(float(r.headers.get("retry-after", "1.1")) + 0.1)
    sup = await login(server, Role.supervisor)
    try:
        entries = (await sup.get("/v1/audit", params={"call_id": call_id})).json()
        actions = [(e["actor"], e["action"], e["outcome"]) for e in entries]
        assert ("test-call_team", "call.read", "ok") in actions
        assert ("test-call_team", "call.status", "ok") in actions
        mine = (await sup.get("/v1/audit", params={"actor": "test-call_team"})).json()
        assert {"login", "call.read", "call.status", "access.denied"} <= {
            e["action"] for e in mine}
        assert all(e["address"] == "127.0.0.1" for e in mine)
        failed = (await sup.get("/v1/audit", params={"action": "login.failed"})).json()
        assert failed and failed[0]["actor"] == "anonymous"
        assert failed[0]["detail"] == {"username": "test-officer"}
        export = await sup.get("/v1/audit/export.jsonl")
        assert export.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(x) for x in export.text.splitlines()]
        assert len(lines) >= len(entries) and lines == sorted(lines, key=lambda e: e["id"])
    finally:
        await sup.aclose()
    # Never narrative text, names or phone numbers.
    for secret in (NARRATIVE, PERSON["name"], PERSON["phone"], "hears voices"):
        assert secret not in export.text


async def test_a_page_without_a_session_sends_the_browser_to_login(sqlite_server: Server
                                                                    ) -> None:
    async with httpx.AsyncClient(base_url=sqlite_server.base_url) as bare:
        page = await bare.get("/metrics?district=D2", headers={"accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Fmetrics%3Fdistrict%3DD2"
        # An API client asking the same gets the JSON answer, not a redirect.
        assert (await bare.get("/metrics")).status_code == 401
        assert (await bare.get("/v1/metrics", headers={"accept": "text/html"})
                ).status_code == 401
