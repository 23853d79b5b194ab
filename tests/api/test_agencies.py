"""A region in one deployment (issue 17): two agencies in two time zones on one server,
each with its own policy, people and calls. A real uvicorn on SQLite and PostgreSQL, CAD
and people's keys tied to agencies, a real board websocket; two instances on one
PostgreSQL for the last test.

Agency `default` runs the shipped policy (America/New_York, districts D1-D4); agency
`west` runs a copy in America/Chicago whose team serves districts W1-W2. The shipped
team works 08:00-24:00: at 12:30 UTC it is 08:30 in New York and 07:30 in Chicago.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select

from rules.load import default_policy_text
from service.access.auth import Role, add_user, create_key
from service.settings import Settings
from service.store.tables import AUDIT
from tests.conftest import Server, eventually, running_server
from tests.factories import _prologue, eido, event

pytestmark = pytest.mark.asyncio

SAME_INSTANT = "2026-03-10T12:30:00Z"  # 08:30 in New York, 07:30 in Chicago
WEST_BOUNDARY = {"type": "Polygon", "coordinates": [[[-91.0, 38.0], [-90.0, 38.0],
                                                     [-90.0, 39.0], [-91.0, 39.0],
                                                     [-91.0, 38.0]]]}


def west_policy() -> str:
    """The shipped policy as another agency's: its own id and zone, its team's districts
    W1-W2; its test cases (written for New York's clock) left out."""
    text = default_policy_text()
    text = text.replace("id: st-petersburg-call", "id: west-county", 1)
    text = text.replace("timezone: America/New_York", "timezone: America/Chicago", 1)
    text = text.replace("area: {districts: [D1, D2, D3, D4]}", "area: {districts: [W1, W2]}")
    return text[:text.index("\ntests:")] + "\n"


async def key(s: Server, client: str, role: Role, agency: str, source: str = "*") -> dict[
        str, str]:
    token, _ = await create_key(s.runtime.engine, client, role=role, source=source,
                                agency=agency)
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def region(database_url: str, **settings: Any) -> AsyncIterator[Server]:
    async with running_server(Settings(database_url=database_url, **settings)) as s:
        r = await s.client.put("/v1/agencies/default", json={
            "id": "default", "name": "St. Petersburg", "timezone": "America/New_York",
            "districts": ["D1", "D2", "D3", "D4"]})
        assert r.status_code == 200, r.text
        r = await s.client.post("/v1/agencies", json={
            "id": "west", "name": "West County", "timezone": "America/Chicago",
            "districts": ["W1", "W2"], "boundary": WEST_BOUNDARY, "policy": west_policy()})
        assert r.status_code == 201, r.text
        assert r.json()["in_force"] == "west-county@1"
        yield s


async def post(s: Server, headers: dict[str, str] | None = None, **fields: Any
               ) -> httpx.Response:
    async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
        return await c.post("/v1/cad/events", json=event(**fields),
                            headers=headers or s.creds.bearer(Role.cad))


def where(district: str, lat: float = 27.77, lon: float = -82.65) -> dict[str, Any]:
    return {"address": "100 Main St", "district": district, "lat": lat, "lon": lon}


async def test_the_same_call_at_the_same_instant_is_in_hours_for_one_agency_only(
        database_url: str) -> None:
    async with region(database_url) as s:
        east = await post(s, occurred_at=SAME_INSTANT, location=where("D2"))
        west = await post(s, occurred_at=SAME_INSTANT, location=where("W1", 38.5, -90.5))
        assert east.status_code == west.status_code == 202, (east.text, west.text)
        e, w = east.json()["decision"], west.json()["decision"]
        assert (e["destination"], e["policy_version"]) == ("call_team",
                                                           "st-petersburg-call@1")
        assert (w["destination"], w["not_served_reason"], w["policy_version"]) \
            == ("police", "off_hours", "west-county@1")
        assert w["program"]["timezone"] == "America/Chicago"
        assert w["program"]["local_time"] == "Tue 07:30"
        # Each explanation says first whose call it is, and why.
        assert e["factors"][0] == ("Agency 'default' (St. Petersburg, America/New_York) has "
                                   "this call: district D2 is its.")
        assert w["factors"][0].startswith("Agency 'west' (West County, America/Chicago)")
        calls = {c["id"]: c for c in (await s.client.get("/v1/calls")).json()["calls"]}
        assert calls[east.json()["call_id"]]["agency_id"] == "default"
        assert calls[west.json()["call_id"]]["agency_id"] == "west"


async def test_whose_call_it_is_key_event_district_boundary_or_nobody(
        database_url: str) -> None:
    async with region(database_url) as s:
        west_cad = await key(s, "west-cad", Role.cad, "west", source="westcad")
        # A key tied to an agency: its calls are that agency's, wherever they are.
        r = await post(s, west_cad, location=where("D2"))
        assert r.status_code == 202 and "its CAD key is tied to it" in \
            r.json()["decision"]["factors"][0]
        # ...and it may not post for another one.
        r = await post(s, west_cad, agency="default")
        assert r.status_code == 422
        assert r.json()["detail"][0]["field"] == "agency"
        assert "posts for agency 'west'" in r.json()["detail"][0]["reason"]
        # An event may name its agency; one that does not exist is refused.
        r = await post(s, agency="west", location=where("D2"))
        assert r.status_code == 202 and "the event names it" in \
            r.json()["decision"]["factors"][0]
        r = await post(s, agency="nowhere")
        assert r.status_code == 422 and "no agency 'nowhere'" in r.json()["detail"][0][
            "reason"]
        # Coordinates inside an agency's boundary, with a district nobody lists.
        r = await post(s, location=where("X9", 38.5, -90.5))
        assert r.json()["decision"]["factors"][0].endswith("it is inside its boundary.")
        # Nobody's: police, saying so, and only the region's people see the call.
        r = await post(s, location=where("X9", 10.0, 10.0))
        d = r.json()["decision"]
        assert (d["destination"], d["basis"], d["policy_version"]) == ("police",
                                                                       "no_agency", "none")
        assert d["explanation"].startswith("No agency has this call: no agency claims it "
                                           "(district X9, at 10.00000,10.00000")
        assert d["explanation"].endswith("Sent to police, the safe default.")
        unclaimed = r.json()["call_id"]
        a_dispatcher = await key(s, "disp-a", Role.dispatcher, "default")
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            assert (await c.get(f"/v1/calls/{unclaimed}", headers=a_dispatcher)
                    ).status_code == 404
        assert (await s.client.get(f"/v1/calls/{unclaimed}")).status_code == 200
        # A later event keeps the call's agency, whatever it says of its place.
        r = await post(s, incident_id="INC-W-1", location=where("W2", 38.5, -90.5))
        assert r.json()["decision"]["policy_version"] == "west-county@1"
        r = await post(s, incident_id="INC-W-1", type="updated", location=where("D2"))
        d = r.json()["decision"]
        assert d["policy_version"] == "west-county@1"
        assert d["factors"][0] == "Agency 'west' (West County, America/Chicago) has this call."


async def denied(s: Server, action: str, call_id: str) -> bool:
    async with s.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(AUDIT.c.outcome).where(
            AUDIT.c.action == action, AUDIT.c.call_id == call_id))).scalars().all()
    return "denied" in rows


async def test_one_agencys_dispatcher_cannot_read_list_stream_or_act_on_anothers_calls(
        database_url: str) -> None:
    async with region(database_url) as s:
        a = await key(s, "disp-a", Role.dispatcher, "default")
        regional = s.creds.bearer(Role.supervisor)  # a key of no one agency
        theirs = (await post(s, location=where("W1", 38.5, -90.5))).json()["call_id"]
        ours = (await post(s, location=where("D1"))).json()["call_id"]
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            # Read: not found, as a call that does not exist, and audited.
            r = await c.get(f"/v1/calls/{theirs}", headers=a)
            assert r.status_code == 404
            assert await denied(s, "call.read", theirs)
            assert (await c.get(f"/v1/calls/{ours}", headers=a)).status_code == 200
            # List: only their agency's; asking for the other's gives nothing.
            listed = [x["id"] for x in (await c.get("/v1/calls", headers=a)).json()["calls"]]
            assert ours in listed and theirs not in listed
            r = await c.get("/v1/calls", params={"agency": "west"}, headers=a)
            assert r.status_code == 200 and r.json()["calls"] == []
            # Act: an override of the other's call is not found, and audited.
            r = await c.post(f"/v1/calls/{theirs}/override", headers=a,
                             json={"destination": "police", "reason": "not ours to say"})
            assert r.status_code == 404
            assert await denied(s, "call.override", theirs)
            # A regional supervisor sees both, and may list one agency's.
            for call_id in (ours, theirs):
                assert (await c.get(f"/v1/calls/{call_id}", headers=regional)
                        ).status_code == 200
            r = await c.get("/v1/calls", params={"agency": "west"}, headers=regional)
            assert [x["id"] for x in r.json()["calls"]] == [theirs]
            # Their agency only, in the agency list too.
            r = await c.get("/v1/agencies", headers=a)
            assert [x["id"] for x in r.json()] == ["default"]
        # Stream: a board of agency A's dispatcher replays and receives A's calls only.
        # Its own call, posted last, is the positive signal that the other's (earlier in
        # the feed) was passed over, not late.
        async with websockets.connect(f"{s.ws_url}/v1/board?after=0",
                                      additional_headers=a) as ws:
            live = (await post(s, location=where("W2", 38.5, -90.5))).json()["call_id"]
            # A call nobody claims is the region's alone.
            nobody = (await post(s, location=where("X9", 10.0, 10.0))).json()["call_id"]
            # A unit of each team: the board hears of its own agency's only.
            for unit, agency in (("W-2", "west"), ("D-2", "default")):
                r = await s.client.put(f"/v1/units/{unit}?agency={agency}",
                                       json={"program_id": "call"})
                assert r.status_code == 200, r.text
            last = (await post(s, location=where("D3"))).json()["call_id"]
            seen: list[str] = []
            while last not in seen:
                message = json.loads(await ws.recv())
                seen.append(message["call_id"] or message["unit"]["id"])
            assert ours in seen and "D-2" in seen
            assert theirs not in seen and live not in seen and "W-2" not in seen
            assert nobody not in seen


async def test_publishing_one_agencys_policy_leaves_the_others_in_force(
        database_url: str) -> None:
    async with region(database_url) as s:
        west_supervisor = await key(s, "sup-west", Role.supervisor, "west")
        shipped = default_policy_text().replace('version: "1"', 'version: "2"', 1)
        r = await s.client.post("/v1/policies?agency=default", content=shipped,
                                headers={"content-type": "text/yaml"})
        assert r.status_code == 201, r.text
        r = await s.client.post("/v1/policies/2/publish?agency=default")
        assert r.status_code == 200, r.text
        assert r.json()["in_force"] == "st-petersburg-call@2"
        west = (await s.client.get("/v1/policies?agency=west")).json()
        assert west["in_force"] == "west-county@1"
        assert [v["status"] for v in west["versions"]] == ["published"]
        r = await post(s, location=where("W1", 38.5, -90.5))
        assert r.json()["decision"]["policy_version"] == "west-county@1"
        r = await post(s, location=where("D1"))
        assert r.json()["decision"]["policy_version"] == "st-petersburg-call@2"
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            # West's supervisor works on west's policy only.
            r = await c.get("/v1/policies", headers=west_supervisor)
            assert r.json()["in_force"] == "west-county@1"
            r = await c.get("/v1/policies?agency=default", headers=west_supervisor)
            assert r.status_code == 404
            r = await c.get("/v1/policies/2?agency=west", headers=west_supervisor)
            assert r.status_code == 404  # default's version 2 is not west's
            # A policy in another time zone than the agency's is refused, saying why.
            r = await c.post("/v1/policies", content=shipped.replace('version: "2"',
                                                                     'version: "3"'),
                             headers={**west_supervisor, "content-type": "text/yaml"})
            assert r.status_code == 422
            assert r.json()["detail"][0]["field"] == "program.timezone"
            # Only a regional supervisor adds agencies.
            r = await c.post("/v1/agencies", headers=west_supervisor, json={
                "id": "east", "name": "East", "timezone": "America/New_York"})
            assert r.status_code == 403


async def test_two_instances_on_one_postgresql_agree(postgres_url: str) -> None:
    async with region(postgres_url, policy_poll_interval=0.2) as one, \
            running_server(Settings(database_url=postgres_url, policy_poll_interval=0.2),
                           creds=one.creds) as two:
        async def knows_west() -> bool:
            agencies = (await two.client.get("/v1/agencies")).json()
            return any(a["id"] == "west" and a["in_force"] == "west-county@1"
                       for a in agencies)

        await eventually(knows_west, "the second instance to know agency west")
        r = await post(two, occurred_at=SAME_INSTANT, location=where("W1", 38.5, -90.5))
        d = r.json()["decision"]
        assert (d["policy_version"], d["destination"]) == ("west-county@1", "police")
        # A publish on one instance is in force on the other after its poll.
        text = west_policy().replace('version: "1"', 'version: "2"', 1)
        r = await one.client.post("/v1/policies?agency=west", content=text,
                                  headers={"content-type": "text/yaml"})
        assert r.status_code == 201, r.text
        assert (await one.client.post("/v1/policies/2/publish?agency=west")).status_code \
            == 200

        async def in_force_on_two() -> bool:
            return bool(two.runtime.region.policy_of("west").version == "west-county@2")

        await eventually(in_force_on_two, "west's new version in force on the second")
        r = await post(two, location=where("W2", 38.5, -90.5))
        assert r.json()["decision"]["policy_version"] == "west-county@2"
        assert two.runtime.region.policy_of("default").version == "st-petersburg-call@1"


# A body each route about one call or unit accepts, so what answers is the route's own
# gate, not the body's validation.
BODIES: dict[str, Any] = {
    "POST /v1/calls/{call_id}/override": {"destination": "police", "reason": "not ours"},
    "POST /v1/calls/{call_id}/status": {"status": "assigned"},
    "POST /v1/calls/{call_id}/checkin": {},
    "POST /v1/calls/{call_id}/care": {"provider_id": "nobody"},
    "PUT /v1/units/{unit_id}": {"program_id": "call"},
    "POST /v1/units/{unit_id}/duty": {"on_duty": True},
    "POST /v1/units/{unit_id}/position": {"lat": 38.5, "lon": -90.5,
                                          "at": "2026-03-10T12:00:00Z"},
    "POST /v1/follow-ups/{follow_up_id}/complete": {"note": "done"},
    "POST /v1/follow-ups/{follow_up_id}/cancel": {"note": "not needed"},
}


async def test_every_call_and_unit_route_each_role_of_another_agency_is_not_found(
        database_url: str) -> None:
    """The walk: every route about one call, unit or follow-up, every role it lets in,
    with a key of agency `default` asking about agency `west`'s: 404 each time; with a key
    of `west`, never that 404 (the object is there: the agency is what refuses)."""
    from tests.api.test_access import ROLE_TABLE, may  # the roles each route lets in

    async with region(database_url) as s:
        call_id = (await post(s, location=where("W1", 38.5, -90.5))).json()["call_id"]
        # A team call of west's, cleared with a follow-up (11:00 in Chicago: in hours).
        team_call = (await post(s, occurred_at="2026-03-10T16:00:00Z",
                                location=where("W1", 38.5, -90.5))).json()
        assert team_call["decision"]["destination"] == "call_team", team_call
        r = await s.client.post(f"/v1/calls/{team_call['call_id']}/status", json={
            "status": "cleared", "disposition": "resolved_on_scene",
            "follow_up_in_hours": 24})
        assert r.status_code == 200, r.text
        follow_up_id = r.json()["follow_up"]["id"]
        r = await s.client.put("/v1/units/W-1?agency=west", json={"program_id": "call"})
        assert r.status_code == 200 and r.json()["unit"]["agency"] == "west", r.text
        walked = 0
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            # Retiring the unit and closing the follow-up last: the routes before need them.
            last = ("DELETE", "POST /v1/follow-ups/{follow_up_id}/c")
            for route in sorted(ROLE_TABLE, key=lambda r: (r.startswith(last), r)):
                method, path = route.split(" ", 1)
                if not any(p in path for p in ("{call_id}", "{unit_id}", "{follow_up_id}")):
                    continue
                allowed = may(route)
                assert allowed is not None
                url = (path.replace("{call_id}", call_id).replace("{unit_id}", "W-1")
                       .replace("{follow_up_id}", follow_up_id))
                for role in sorted(allowed):
                    ours = await key(s, f"a-{role.value}", role, "default")
                    r = await c.request(method, url, json=BODIES.get(route), headers=ours)
                    assert r.status_code == 404, (route, role.value, r.status_code, r.text)
                    theirs = await key(s, f"w-{role.value}", role, "west")
                    r = await c.request(method, url, json=BODIES.get(route), headers=theirs)
                    if role in (Role.dispatcher, Role.call_team, Role.supervisor, Role.cad):
                        assert r.status_code != 404, (route, role.value, r.text)
                    walked += 1
        assert walked >= 30  # every such route and role (a new one joins the walk)
        # Lists: another agency's call and unit are not in them.
        a_team = await key(s, "a-team-list", Role.call_team, "default")
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30, headers=a_team) as c:
            assert call_id not in [x["id"] for x in (await c.get("/v1/calls")).json()["calls"]]
            assert "W-1" not in [u["id"] for u in (await c.get("/v1/units")).json()["units"]]
            assert follow_up_id not in [
                f["id"] for f in (await c.get("/v1/follow-ups")).json()["follow_ups"]]
            queue = (await c.get("/v1/queue")).json()
            assert all(x["call"]["id"] != call_id for x in queue["calls"])
            assert (await c.get("/v1/program")).json()["timezone"] == "America/New_York"
            assert (await c.get("/v1/program?agency=west")).status_code == 404
        r = await s.client.get("/v1/program?agency=west")
        assert r.json()["policy_version"] == "west-county@1"
        health = (await s.client.get("/v1/health")).json()
        assert health["agencies"] == {"default": "st-petersburg-call@1",
                                      "west": "west-county@1"}


async def test_an_eido_names_its_agency_by_an_agency_component(database_url: str) -> None:
    async with region(database_url) as s:
        doc = eido(unique="w1", beat="X9", at=SAME_INSTANT)
        doc["agencyComponent"].append({
            **_prologue("west", SAME_INSTANT), "agencyType": ["psap"],
            "agencyRoleDescriptionRegistryText": ["Dispatching"]})
        r = await s.client.post("/v1/cad/eido", json=doc)
        assert r.status_code == 202, r.text
        d = r.json()["decision"]
        assert d["policy_version"] == "west-county@1"
        assert d["factors"][0] == ("Agency 'west' (West County, America/Chicago) has this "
                                   "call: the event names it.")
        # Without one, the district (D2, the default agency's) decides.
        r = await s.client.post("/v1/cad/eido", json=eido(unique="d1", beat="D2"))
        assert r.json()["decision"]["policy_version"] == "st-petersburg-call@1"


async def test_an_officers_referral_is_their_agencys(database_url: str) -> None:
    async with region(database_url) as s:
        officer = await key(s, "officer-west", Role.officer, "west")
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            r = await c.post("/v1/referrals", headers=officer, json={
                "officer": "badge-9", "concern": "mental_health", "what": "talking to himself",
                "where": "1 Elm St", "who": "Sam", "district": "D2", "consent": True})
        assert r.status_code == 202, r.text
        assert r.json()["decision"]["policy_version"] == "west-county@1"


async def test_a_rejected_body_is_read_by_its_agencys_supervisors_only(
        database_url: str) -> None:
    async with region(database_url) as s:
        west_cad = await key(s, "west-cad-r", Role.cad, "west", source="westcad")
        r = await post(s, west_cad, nature_code=None, narrative="Sam Smith, 1 Elm St")
        assert r.status_code == 422
        ours = await key(s, "sup-a", Role.supervisor, "default")
        theirs = await key(s, "sup-w", Role.supervisor, "west")
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            [kept] = (await c.get("/v1/cad/rejects", headers=theirs)).json()["data"]
            assert (await c.get(f"/v1/cad/rejects/{kept['id']}", headers=theirs)
                    ).json()["body"].find("Sam Smith") > 0
            assert (await c.get("/v1/cad/rejects", headers=ours)).json() == {"data": [],
                                                                           "count": 0}
            r = await c.get(f"/v1/cad/rejects/{kept['id']}", headers=ours)
            assert r.status_code == 404
        regional = (await s.client.get("/v1/cad/rejects")).json()["data"]
        assert [x["id"] for x in regional] == [kept["id"]]


async def test_an_agencys_supervisor_reads_its_agencys_audit_log_only(
        database_url: str) -> None:
    async with region(database_url) as s:
        west_dispatcher = await key(s, "disp-w", Role.dispatcher, "west")
        ours_sup = await key(s, "sup-a", Role.supervisor, "default")
        west_sup = await key(s, "sup-w", Role.supervisor, "west")
        ours = (await post(s, location=where("D1"))).json()["call_id"]
        theirs = (await post(s, location=where("W1", 38.5, -90.5))).json()["call_id"]

        def entries(got: httpx.Response) -> set[tuple[Any, ...]]:
            assert got.status_code == 200, got.text
            return {(e["action"], e["call_id"], e["outcome"], e["role"], e["agency_id"])
                    for e in (got.json() if got.headers["content-type"].startswith(
                        "application/json") else
                        [json.loads(line) for line in got.text.splitlines()])}

        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            assert (await c.get(f"/v1/calls/{theirs}", headers=west_dispatcher)
                    ).status_code == 200
            assert (await c.get(f"/v1/calls/{ours}", headers=west_dispatcher)
                    ).status_code == 404
            assert (await c.get(f"/v1/calls/{ours}", headers=ours_sup)).status_code == 200

            west_read = ("call.read", theirs, "ok", "dispatcher", "west")
            west_try = ("call.read", ours, "denied", "dispatcher", "west")
            our_read = ("call.read", ours, "ok", "supervisor", "default")
            # Ours: our own look, and the other agency's attempt on our call; nothing of
            # theirs. The export says the same.
            mine = entries(await c.get("/v1/audit", headers=ours_sup))
            assert {our_read, west_try} <= mine and west_read not in mine
            assert {e[1] for e in mine} <= {ours, None}
            assert {e[4] for e in mine if e[1] is None} == {"default"}
            exported = entries(await c.get("/v1/audit/export.jsonl", headers=ours_sup))
            assert {our_read, west_try} <= exported and west_read not in exported
            # Theirs: their dispatcher's look and attempt, not our look.
            west = entries(await c.get("/v1/audit", headers=west_sup))
            assert {west_read, west_try} <= west and our_read not in west
            # Another agency's log is not found, as an agency that does not exist, and
            # the refusal is on the record (ours).
            r = await c.get("/v1/audit", params={"agency": "west"}, headers=ours_sup)
            assert r.status_code == 404
            r = await c.get("/v1/audit/export.jsonl", params={"agency": "west"},
                            headers=ours_sup)
            assert r.status_code == 404
            refused = entries(await c.get("/v1/audit", params={"action": "audit.read"},
                                          headers=ours_sup))
            assert ("audit.read", None, "denied", "supervisor", "default") in refused
            # A failed login under the name of one of West's people is West's to see.
            await add_user(s.runtime.engine, "w-dispatcher", Role.dispatcher,
                           "a long and proper passphrase", agency="west")
            r = await c.post("/v1/session", json={"username": "w-dispatcher",
                                                  "password": "not the passphrase"})
            assert r.status_code == 401
            failed = ("login.failed", None, "failed", None, "west")
            assert failed in entries(await c.get("/v1/audit", headers=west_sup))
            assert failed not in entries(await c.get("/v1/audit", headers=ours_sup))
        # The region's supervisor: everything, or one agency's when asked.
        everything = entries(await s.client.get("/v1/audit"))
        assert {west_read, west_try, our_read} <= everything
        assert entries(await s.client.get("/v1/audit", params={"agency": "west"})
                       ) >= {west_read, west_try}
        assert our_read not in entries(await s.client.get("/v1/audit",
                                                          params={"agency": "west"}))
