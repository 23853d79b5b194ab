"""GET /v1/calls over real HTTP, on SQLite and PostgreSQL: every filter, every role
narrowed as GET /v1/calls/{id} narrows it, keyset pages that neither skip nor repeat while
calls keep coming, and one audit entry per listing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from service.access.auth import Role, create_key
from service.settings import Settings
from tests.conftest import Server, running_server
from tests.factories import NARRATIVE, PERSON, always_open_policy, event, login

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    """A real Liaison whose team is on shift round the clock: the officer's referral below
    is made now, and must go to the team whenever the suite runs."""
    settings = Settings(database_url=database_url, policy=always_open_policy(tmp_path))
    async with running_server(settings) as s:
        yield s


async def listing(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/calls", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None, "one page expected"
    return r.json()["calls"]  # type: ignore[no-any-return]


def ids(calls: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in calls]


async def closed(server: Server, incident_id: str) -> None:
    r = await server.client.post("/v1/cad/events", json={
        "event_id": f"ev-{uuid.uuid4().hex}", "incident_id": incident_id, "type": "closed",
        "occurred_at": "2026-03-10T16:00:00-04:00"})
    assert r.status_code == 202, r.text


async def test_filters_and_what_each_role_may_list(server: Server) -> None:
    # a: a mental-health call about a person; b: a weapon, police, later closed;
    # c: from another CAD (its own key and source); d: an officer's referral.
    a = await server.post_event(narrative=NARRATIVE, person=PERSON,
                                occurred_at="2026-03-10T14:00:00-04:00")
    b = await server.post_event(nature_code="ASSAULT", nature_text="Assault", flags=["weapon"],
                                occurred_at="2026-03-10T15:00:00-04:00",
                                location={"address": "9 Central Ave", "district": "D1"})
    pinellas, _ = await create_key(server.runtime.engine, "pinellas-cad", role=Role.cad,
                                   source="pinellas")
    as_pinellas = httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                    headers={"authorization": f"Bearer {pinellas}"})
    officer = await login(server, Role.officer)
    try:
        c = await as_pinellas.post("/v1/cad/events", json=event(
            nature_code="VAG", nature_text="Vagrant", narrative="Sleeping in a doorway.",
            occurred_at="2026-03-11T10:00:00-04:00",
            location={"address": "4th St S", "district": "D3"}))
        assert c.status_code == 202, c.text
        d = await officer.post("/v1/referrals", json={
            "who": PERSON["name"], "where": "1300 1st Ave N", "what": NARRATIVE,
            "concern": "mental_health", "consent": True, "district": "D4"})
        assert d.status_code == 202, d.text
        a_id, b_id, c_id, d_id = (x.json()["call_id"] for x in (a, b, c, d))
        a_incident = (await server.client.get(
            f"/v1/calls/{a_id}")).json()["call"]["incident_id"]
        await closed(server, (await server.client.get(
            f"/v1/calls/{b_id}")).json()["call"]["incident_id"])
        r = await server.client.post(f"/v1/calls/{a_id}/status",
                                     json={"status": "assigned", "unit": "CALL-1"})
        assert r.status_code == 200, r.text

        sup = server.client  # a supervisor's key: every call
        everything = await listing(sup)
        assert ids(everything) == [d_id, c_id, b_id, a_id], "newest opened first"
        assert ids(await listing(sup, incident_id=a_incident)) == [a_id]
        assert ids(await listing(sup, source="pinellas")) == [c_id]
        assert ids(await listing(sup, source="referral")) == [d_id]
        assert ids(await listing(sup, destination="police")) == [b_id]
        assert ids(await listing(sup, category="mental_health", source="generic")) == [a_id]
        assert ids(await listing(sup, district="D1")) == [b_id]
        # Dates are the program's local midnight; `to` is not included.
        assert ids(await listing(sup, **{"from": "2026-03-10", "to": "2026-03-11"})) == [
            b_id, a_id]
        assert ids(await listing(sup, **{"from": "2026-03-10T15:00:00-04:00",
                                         "to": "2026-03-11T10:00:00-04:00"})) == [b_id]
        assert ids(await listing(sup, status="closed")) == [b_id]
        assert b_id not in ids(await listing(sup, status="open"))
        assert ids(await listing(sup, status="assigned")) == [a_id]
        assert c_id in ids(await listing(sup, status="queued"))
        assert a_id not in ids(await listing(sup, status="queued"))
        assert await listing(sup, district="D9") == []

        item = everything[-1]
        assert item["incident_id"] == a_incident and item["category"] == "mental_health"
        assert item["team_status"] == "assigned" and item["location"]["district"] == "D2"
        assert item["decision"]["destination"] == "call_team"
        assert "mental-health" in item["decision"]["explanation"]

        # Each role, as GET /v1/calls/{id} narrows it: the same calls, the same fields.
        for role in (Role.call_team, Role.dispatcher, Role.cad):
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                         headers=server.creds.bearer(role)) as client:
                seen = await listing(client)
                assert ids(seen) == [d_id, c_id, b_id, a_id], role
                for listed in seen:
                    view = (await client.get(f"/v1/calls/{listed['id']}")).json()
                    assert listed["decision"] == view["decision"]
                    # (Those who see everything get no `withheld` in a call's view.)
                    whole = {"withheld": [], **view["call"]}
                    for key, value in listed.items():
                        if key != "decision":
                            assert whole[key] == value, (role, key)
        # An officer lists only the calls they referred; another source is nothing.
        assert ids(await listing(officer)) == [d_id]
        assert await listing(officer, source="generic") == []
        # A CAD key tied to a source lists only that source's calls.
        assert ids(await listing(as_pinellas)) == [c_id]
        assert await listing(as_pinellas, source="generic") == []
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as bare:
            assert (await bare.get("/v1/calls")).status_code == 401
            analyst = await bare.get("/v1/calls", headers=server.creds.bearer(Role.analyst))
            assert analyst.status_code == 403
        # A list never carries a narrative or personal details, whoever asks.
        text = (await sup.get("/v1/calls")).text
        for secret in (NARRATIVE, PERSON["name"], PERSON["phone"], "Sleeping in a doorway"):
            assert secret not in text
    finally:
        await officer.aclose()
        await as_pinellas.aclose()


async def test_pages_neither_skip_nor_repeat_while_calls_arrive(server: Server) -> None:
    # Three calls opened at the same moment: the id breaks the tie.
    stamps = ["2026-03-10T09:00:00-04:00"] * 3 + [
        f"2026-03-10T1{h}:00:00-04:00" for h in range(4)]
    for at in stamps:
        assert (await server.post_event(occurred_at=at)).status_code == 202
    whole = await listing(server.client)
    assert len(whole) == 7
    opened = [c["opened_at"] for c in whole]
    assert opened == sorted(opened, reverse=True)
    ties = [c["id"] for c in whole if c["opened_at"] == whole[-1]["opened_at"]]
    assert len(ties) == 3 and ties == sorted(ties, reverse=True)

    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await server.client.get("/v1/calls", params=params)
        assert r.status_code == 200, r.text
        pages.append(ids(r.json()["calls"]))
        cursor = r.json()["next_cursor"]
        if len(pages) == 1:
            # A newer call arrives mid-way: a keyset page after the cursor is unmoved.
            await server.post_event(occurred_at="2026-03-10T23:00:00-04:00")
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [i for p in pages for i in p] == ids(whole)

    for bad in ("nonsense!", "bm8tYmFy", "MjAyNi0wMy0xMFQxMzowMDowMHw"):
        r = await server.client.get("/v1/calls", params={"cursor": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["detail"][0]["field"] == "cursor"
    r = await server.client.get("/v1/calls", params={"from": "last tuesday"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "from"
    r = await server.client.get("/v1/calls", params={"status": "lost"})
    assert r.status_code == 422
    assert (await server.client.get("/v1/calls", params={"limit": 501})).status_code == 422


async def test_a_listing_is_one_audit_entry_naming_its_filter(server: Server) -> None:
    call_id = (await server.post_event(narrative=NARRATIVE, person=PERSON)).json()["call_id"]
    team = await login(server, Role.call_team)
    try:
        r = await team.get("/v1/calls", params={"district": "D2", "status": "open"})
        assert ids(r.json()["calls"]) == [call_id]
        assert (await team.get("/v1/calls", params={"source": "eido"})).json()["calls"] == []
    finally:
        await team.aclose()
    entries = (await server.client.get("/v1/audit", params={
        "actor": server.creds.users[Role.call_team]})).json()
    listings = [e for e in entries if e["action"] == "call.list"]
    assert [e["detail"] for e in listings] == [
        {"district": "D2", "status": "open", "cursor": False, "count": 1},
        {"source": "eido", "cursor": False, "count": 0}]
    assert all(e["outcome"] == "ok" and e["call_id"] is None for e in listings)
    # Listing is not a look at a call's details: no call.read for the listed call.
    assert not [e for e in entries if e["action"] == "call.read"]
    export = (await server.client.get("/v1/audit/export.jsonl")).text
    assert NARRATIVE not in export and PERSON["name"] not in export
    assert all(json.loads(line)["action"] for line in export.splitlines())
