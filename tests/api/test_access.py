"""Who may do what: every route declares its roles, and each role is checked against
each route over real HTTP; what each role sees of a call; audit of every look."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount

from api.app import create_app
from service.access.auth import Role
from service.settings import Settings
from tests.conftest import Server, running_server
from tests.credentials import RouteEntry, declaration, liaison_key_create, route_table
from tests.factories import NARRATIVE, PERSON, event, login

pytestmark = pytest.mark.asyncio

# FastAPI's own documentation routes: open, and they hold no data.
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PUBLIC = "anyone"
EVERY_ROLE = "cad dispatcher call_team officer supervisor analyst crisis_center"

# SECURITY.md "Roles", written out route by route: who may use each route. Everyone else
# gets 403 (and no credentials 401). Written here, not read from the routes' own
# declarations, so a route that lets in a role this page does not is caught. A new route
# needs its line (test_every_route_is_in_the_role_table says which).
ROLE_TABLE: dict[str, str] = {
    "GET /v1/health": PUBLIC,
    # The region's agencies (issue 17): those who see calls, figures or policies list
    # theirs; supervisors change them (adding one: a regional supervisor).
    "GET /v1/agencies": "dispatcher call_team supervisor analyst",
    "POST /v1/agencies": "supervisor",
    "PUT /v1/agencies/{agency_id}": "supervisor",
    "POST /v1/session": PUBLIC,
    "GET /v1/session": EVERY_ROLE,
    "DELETE /v1/session": EVERY_ROLE,
    # cad: post events; read back the calls of its own source.
    "POST /v1/cad/events": "cad",
    "POST /v1/cad/eido": "cad",
    "GET /v1/calls": "cad dispatcher call_team officer supervisor",
    "GET /v1/calls/{call_id}": "cad dispatcher call_team officer supervisor",
    "GET /v1/calls/{call_id}/eido": "cad dispatcher call_team officer supervisor",
    "WS /v1/eido/subscriptions": "cad",
    # dispatcher: override a decision, webhook deliveries, the board.
    "POST /v1/calls/{call_id}/override": "dispatcher supervisor",
    "GET /v1/calls/{call_id}/deliveries": "dispatcher supervisor",
    # Units, not the call's details: those who see the board.
    "GET /v1/calls/{call_id}/recommendation": "dispatcher call_team supervisor",
    "GET /v1/deliveries": "dispatcher supervisor",
    "WS /v1/board": "dispatcher call_team supervisor",
    "GET /v1/program": "dispatcher call_team supervisor",
    "GET /v1/map": "dispatcher call_team supervisor",
    "GET /v1/programs": "dispatcher call_team supervisor",
    "GET /v1/queue": "dispatcher call_team supervisor",
    # units (issue 14): those who see the board see the roster; the team signs on and off
    # and shares its position; an AVL feed is a key with the cad role.
    "GET /v1/units": "dispatcher call_team supervisor",
    "GET /v1/units/{unit_id}": "dispatcher call_team supervisor",
    "POST /v1/units/{unit_id}/duty": "call_team supervisor",
    "POST /v1/units/{unit_id}/position": "call_team supervisor",
    "POST /v1/units/positions": "cad",
    # care (issue 16): the directory for those who see the board, kept by supervisors;
    # handoffs to care are the team's (a person's care is not the dispatcher's to read),
    # and a crisis centre's for the calls transferred to it (the warm line, a provider).
    "GET /v1/providers": "dispatcher call_team supervisor crisis_center",
    "PUT /v1/providers/{provider_id}": "supervisor",
    "DELETE /v1/providers/{provider_id}": "supervisor",
    "POST /v1/providers/import": "supervisor",
    "POST /v1/calls/{call_id}/care": "call_team supervisor crisis_center",
    "GET /v1/calls/{call_id}/care": "call_team supervisor crisis_center",
    "POST /v1/care/{referral_id}/steps": "call_team supervisor crisis_center",
    # call_team: move team calls along, check-ins, follow-ups.
    "POST /v1/calls/{call_id}/status": "call_team supervisor",
    "POST /v1/calls/{call_id}/checkin": "call_team supervisor",
    "GET /v1/follow-ups": "call_team supervisor",
    "GET /v1/follow-ups/{follow_up_id}": "call_team supervisor",
    "POST /v1/follow-ups/{follow_up_id}/open": "call_team supervisor",
    "POST /v1/follow-ups/{follow_up_id}/complete": "call_team supervisor",
    "POST /v1/follow-ups/{follow_up_id}/cancel": "call_team supervisor",
    # crisis plans and premise cautions (issue 16): the team that goes, and supervisors.
    "POST /v1/crisis-plans": "call_team supervisor",
    "PUT /v1/crisis-plans/{plan_id}": "call_team supervisor",
    "DELETE /v1/crisis-plans/{plan_id}": "call_team supervisor",
    "POST /v1/premise-cautions": "call_team supervisor",
    "PUT /v1/premise-cautions/{caution_id}": "call_team supervisor",
    "DELETE /v1/premise-cautions/{caution_id}": "call_team supervisor",
    "GET /v1/calls/{call_id}/plans": "call_team supervisor",
    # officer: refer; read only the referrals they made.
    "POST /v1/referrals": "officer supervisor",
    "GET /v1/referrals": "officer supervisor",
    "GET /v1/metrics/my-referrals": "officer supervisor",
    # crisis_center (988): the transfers to it, and their steps (issue 16).
    "GET /v1/transfers": "crisis_center supervisor dispatcher",
    "GET /v1/transfers/{transfer_id}": "crisis_center supervisor dispatcher",
    "POST /v1/transfers/{transfer_id}/steps": "crisis_center supervisor",
    # analyst: aggregate program figures only.
    "GET /v1/metrics": "supervisor analyst",
    "GET /v1/metrics/{table}.csv": "supervisor analyst",
    "GET /metrics": "supervisor analyst",
    "GET /reports/monthly": "supervisor analyst",
    # the rule scorecard (issue 15): counts for both; override reasons, supervisors only.
    "GET /v1/policies/{version}/scorecard": "supervisor analyst",
    # supervisor only: policies, rejected CAD input, the audit log, accounts, retries.
    "GET /v1/policies": "supervisor",
    "POST /v1/policies": "supervisor",
    "POST /v1/policies/validate": "supervisor",
    "POST /v1/policies/test": "supervisor",
    "POST /v1/policies/dry-run": "supervisor",
    "POST /v1/policies/what-if": "supervisor",
    "GET /v1/policies/nature-codes": "supervisor",
    "POST /v1/policies/yaml": "supervisor",
    "GET /v1/policies/{version}": "supervisor",
    "GET /v1/policies/{version}/diff": "supervisor",
    "POST /v1/policies/{version}/test": "supervisor",
    "POST /v1/policies/{version}/publish": "supervisor",
    "POST /v1/policies/{version}/unschedule": "supervisor",
    "POST /v1/policies/{version}/rollback": "supervisor",
    "POST /v1/policies/{version}/dry-run": "supervisor",
    "POST /v1/policies/{version}/what-if": "supervisor",
    "GET /v1/what-if/{job_id}": "supervisor",
    "GET /v1/what-if/{job_id}/changed.csv": "supervisor",
    "GET /v1/cad/rejects": "supervisor",
    "GET /v1/cad/rejects/{reject_id}": "supervisor",
    "POST /v1/cad/rejects/{reject_id}/resubmit": "supervisor",
    "GET /v1/audit": "supervisor",
    "GET /v1/audit/export.jsonl": "supervisor",
    "GET /v1/users": "supervisor",
    "POST /v1/users": "supervisor",
    "POST /v1/users/{username}/disable": "supervisor",
    "POST /v1/users/{username}/reset": "supervisor",
    "POST /v1/deliveries/{delivery_id}/retry": "supervisor",
    "PUT /v1/units/{unit_id}": "supervisor",
    "DELETE /v1/units/{unit_id}": "supervisor",
    "GET /v1/roster/retention": "supervisor",
    "PUT /v1/roster/retention": "supervisor",
    # The pages are shells holding no data; the API they call checks roles.
    "GET /": PUBLIC,
    "GET /board": PUBLIC,
    "GET /dispatch": PUBLIC,
    "GET /refer": PUBLIC,
    "GET /refer/mine": PUBLIC,
    "GET /policy": PUBLIC,
    "GET /units": PUBLIC,
    "GET /providers": PUBLIC,
    "GET /transfers": PUBLIC,
    "GET /login": PUBLIC,
    "GET /sw.js": PUBLIC,  # the board's service worker: the shell's files, no data
}


def may(route: str) -> frozenset[Role] | None:
    """The roles ROLE_TABLE lets use `route` ("METHOD /path"); None: anyone."""
    who = ROLE_TABLE[route]
    return None if who == PUBLIC else frozenset(Role(r) for r in who.split())


def served_routes(app: Any) -> dict[str, RouteEntry]:
    """"METHOD /path" (or "WS /path") of every route the app serves, but FastAPI's docs
    and the static files."""
    served: dict[str, RouteEntry] = {}
    for entry in route_table(app):
        if isinstance(entry.route, APIWebSocketRoute):
            served[f"WS {entry.path}"] = entry
        elif isinstance(entry.route, APIRoute):
            for method in sorted((entry.methods or set()) - {"HEAD"}):
                served[f"{method} {entry.path}"] = entry
    return served


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


async def test_every_route_is_in_the_role_table() -> None:
    served = served_routes(create_app(Settings()))
    missing = sorted(set(served) - set(ROLE_TABLE))
    assert not missing, (
        "routes with no line in ROLE_TABLE (tests/api/test_access.py): "
        + ", ".join(missing) + ". Add one per route saying which roles may use it, as "
        "SECURITY.md 'Roles' says (and say it there too if it is new).")
    gone = sorted(set(ROLE_TABLE) - set(served))
    assert not gone, "ROLE_TABLE names routes the app does not serve: " + ", ".join(gone)


@pytest_asyncio.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[Server]:
    # Access does not depend on the store; the storage suites run on both databases.
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    async with running_server(settings) as s:
        yield s


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_each_role_against_each_route(sqlite_server: Server) -> None:
    """Every role on every route, over HTTP, against ROLE_TABLE."""
    server = sqlite_server
    bare = httpx.AsyncClient(base_url=server.base_url, timeout=30)
    checked = 0
    async with bare:
        for route in sorted(set(served_routes(server.app)) & set(ROLE_TABLE)):
            method, path = route.split(" ", 1)
            if method == "WS":
                continue  # test_the_board_websocket_checks_roles_before_accepting
            allowed = may(route)
            path = concrete(path)
            anonymous = await bare.request(method, path, json={})
            if allowed is None:
                assert anonymous.status_code not in (401, 403), (route, anonymous.text)
                checked += 1
                continue
            assert anonymous.status_code == 401, (route, anonymous.text)
            for role in Role:
                r = await bare.request(method, path, json={},
                                       headers=server.creds.bearer(role))
                if role in allowed:
                    # Let through (what happens next is the route's business: 404,
                    # 422, or a refusal of its own, such as an officer key with no
                    # badge asking for "my referrals").
                    assert r.status_code != 401, (role, route, r.text)
                    assert "not allowed for your role" not in r.text, (
                        f"{role.value} may use {route} (ROLE_TABLE) but was refused")
                else:
                    assert r.status_code == 403, (
                        f"{role.value} may not use {route} (ROLE_TABLE) but got "
                        f"{r.status_code}: {r.text[:200]}")
                    # Nothing about the thing asked for: only who may.
                    body = r.json()
                    assert set(body) == {"error", "message", "allowed_roles"}, body
                    assert (body["error"], body["message"]) == (
                        "forbidden", "not allowed for your role")
                    assert set(body["allowed_roles"]) == {x.value for x in allowed}, (
                        f"{route} says it allows {sorted(body['allowed_roles'])}; ROLE_TABLE "
                        f"says {sorted(x.value for x in allowed)}")
                checked += 1
    # Every line of the table was tried (a route the app lacks fails the test above).
    assert checked == sum(1 if may(r) is None else len(Role) for r in ROLE_TABLE
                          if not r.startswith("WS "))


async def test_the_board_websocket_checks_roles_before_accepting(sqlite_server: Server
                                                                  ) -> None:
    server = sqlite_server
    with pytest.raises(websockets.InvalidStatus) as anonymous:
        await websockets.connect(f"{server.ws_url}/v1/board")
    assert anonymous.value.response.status_code == 403
    allowed = may("WS /v1/board")
    assert allowed is not None
    for role in Role:
        if role in allowed:
            async with server.connect_board(role=role) as ws:
                await server.post_event()
                assert json.loads(await ws.recv())["type"] == "decision"
        else:
            with pytest.raises(websockets.InvalidStatus):
                await server.connect_board(role=role)


async def read_as(server: Server, role: Role, call_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers=server.creds.bearer(role)) as c:
        return await c.get(f"/v1/calls/{call_id}")


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
    # Logged in before the failed login below: a failure slows the next login from the
    # same address (service/access/ratelimit.py).
    sup = await login(server, Role.supervisor)
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as bad:
            r = await bad.post("/v1/session", json={
                "username": server.creds.users[Role.officer],
                "password": "not the password at all"})
            assert r.status_code == 401
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


async def test_a_cad_key_with_a_source_reads_only_that_sources_calls(
        server: Server, database_url: str) -> None:
    """SECURITY.md: a CAD key tied to a source (`--source`) reads back only that source's
    calls; another source's call is "not found", like a call that does not exist."""
    keys = {src: await liaison_key_create(database_url, f"{src}-cad", src)
            for src in ("pinellas", "clearwater")}

    def as_cad(src: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers={"authorization": f"Bearer {keys[src]}"})

    calls: dict[str, str] = {}
    async with as_cad("pinellas") as pinellas, as_cad("clearwater") as clearwater:
        # Each CAD's own event and incident ids: what sets the calls apart is the key.
        for src, client in (("pinellas", pinellas), ("clearwater", clearwater)):
            r = await client.post("/v1/cad/events", json=event(
                event_id=f"{src}-ev-{uuid.uuid4().hex}",
                incident_id=f"{src}-inc-{uuid.uuid4().hex[:8]}"))
            assert r.status_code == 202, r.text
            calls[src] = r.json()["call_id"]
        # A call from the key made for any source (`*`): stored under "generic".
        calls["generic"] = (await server.post_event()).json()["call_id"]

        for path in ("/v1/calls/{}", "/v1/calls/{}/eido"):
            unknown = await pinellas.get(path.format("no-such-call"))
            assert unknown.status_code == 404, unknown.text
            for src, client in (("pinellas", pinellas), ("clearwater", clearwater)):
                own = await client.get(path.format(calls[src]))
                assert own.status_code == 200, (src, path, own.text)
                for other in set(calls) - {src}:
                    r = await client.get(path.format(calls[other]))
                    assert r.status_code == 404, (src, "reads", other, path, r.text)
                    # The same answer as for a call that does not exist.
                    assert r.text.replace(calls[other], "no-such-call") == unknown.text
        own_view = (await pinellas.get(f"/v1/calls/{calls['pinellas']}")).json()
        assert own_view["call"]["source"] == "pinellas"
    # The `*` key reads every source's calls.
    for call_id in calls.values():
        assert (await server.client.get(f"/v1/calls/{call_id}",
                                        headers=server.creds.bearer(Role.cad))
                ).status_code == 200
