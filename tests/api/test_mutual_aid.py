"""Mutual aid across agencies (issue 17): St. Petersburg's policy names West County's field
team as its fallback. A real uvicorn on SQLite and PostgreSQL, keys tied to agencies, a
real board websocket.

St. Petersburg's team works 08:00-24:00 New York time; West County's (one unit) round
the clock, in Chicago. At 06:30 UTC it is 02:30 in New York: St. Petersburg's calls are
off its team's hours, and West County's unit may take them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from rules.load import default_policy_text
from service.access.auth import Role
from tests.api.test_agencies import key, post, region, west_policy, where
from tests.conftest import Server, eventually

pytestmark = pytest.mark.asyncio

NIGHT = "2026-03-10T06:{:02d}:00Z"  # 02:xx in New York, 01:xx in Chicago
IN_WEST = where("W1", 38.5, -90.5)


def helped_policy() -> str:
    """The shipped policy, version 2, asking West County's field team (`call`) for help."""
    text = default_policy_text().replace('version: "1"', 'version: "2"', 1)
    return text[:text.index("\ntests:")] + (
        "\nmutual_aid:\n  - {agency: west, program: call}\n")


@contextlib.asynccontextmanager
async def helped_region(database_url: str) -> AsyncIterator[Server]:
    text = west_policy().replace('{daily: ["08:00-24:00"]}', '{daily: ["00:00-24:00"]}', 1)
    text = text.replace("units: 4", "units: 1", 1)
    async with region(database_url) as s:
        r = await s.client.post("/v1/policies?agency=west", content=text.replace(
            'version: "1"', 'version: "2"', 1), headers={"content-type": "text/yaml"})
        assert r.status_code == 201, r.text
        r = await s.client.post("/v1/policies/2/publish?agency=west")
        assert r.status_code == 200, r.text
        r = await s.client.post("/v1/policies?agency=default", content=helped_policy(),
                                headers={"content-type": "text/yaml"})
        assert r.status_code == 201, r.text
        r = await s.client.post("/v1/policies/2/publish?agency=default")
        assert r.status_code == 200, r.text
        yield s


async def test_a_policy_may_not_ask_itself_or_an_agency_that_does_not_exist(
        database_url: str) -> None:
    async with region(database_url) as s:
        for agency, reason in (("default", "is this policy's own agency"),
                               ("nowhere", "no agency 'nowhere'")):
            doc = helped_policy().replace("agency: west", f"agency: {agency}")
            r = await s.client.post("/v1/policies?agency=default", content=doc,
                                    headers={"content-type": "text/yaml"})
            assert r.status_code == 422, r.text
            detail = r.json()["detail"][0]
            assert detail["field"] == "mutual_aid[0].agency" and reason in detail["reason"]


async def test_another_agencys_unit_takes_the_call_and_its_people_see_and_clear_it(
        database_url: str) -> None:
    async with helped_region(database_url) as s:
        helped = await post(s, occurred_at=NIGHT.format(30), location=where("D1"))
        assert helped.status_code == 202, helped.text
        d, helped_id = helped.json()["decision"], helped.json()["call_id"]
        assert (d["destination"], d["aid"]) == ("call_team", {"agency": "west",
                                                              "program": "call"})
        assert d["policy_version"] == "st-petersburg-call@2"  # its own agency's policy
        assert (d["program"]["timezone"], d["program"]["local_time"]) == (
            "America/Chicago", "Tue 01:30")
        assert "Program 'call' (CALL field team) cannot take it now: outside its hours" \
            in d["explanation"]
        assert ("Mutual aid: agency 'west' (West County)'s program 'call' (CALL field "
                "team) takes the call: within its hours (Tue 01:30 local); 1 of 1 units "
                "free.") in d["factors"]
        # West County's one unit is out: the next call of St. Petersburg's goes to police,
        # and West County's own call waits for its unit.
        second = (await post(s, occurred_at=NIGHT.format(31), location=where("D2"))).json()
        assert second["decision"]["destination"] == "police"
        assert ("cannot take it now: all 1 of its units are busy."
                in second["decision"]["explanation"])
        own = (await post(s, occurred_at=NIGHT.format(32), location=IN_WEST)).json()
        assert own["decision"]["queued"] is not None, own["decision"]["explanation"]
        assert own["decision"]["program"]["units_busy"] == 1

        west_team = await key(s, "team-west", Role.call_team, "west")
        default_dispatch = await key(s, "dispatch-default", Role.dispatcher, "default")
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            # The helping agency's people read and list the call it helps with, not the
            # other calls of the agency it helps.
            r = await c.get(f"/v1/calls/{helped_id}", headers=west_team)
            assert r.status_code == 200, r.text
            assert (r.json()["call"]["agency_id"], r.json()["call"]["aid_agency_id"]) == (
                "default", "west")
            assert (await c.get(f"/v1/calls/{second['call_id']}", headers=west_team)
                    ).status_code == 404
            listed = {x["id"] for x in (await c.get("/v1/calls", headers=west_team)
                                        ).json()["calls"]}
            assert listed == {helped_id, own["call_id"]}
            # Its own agency's people still see it, and not West County's own call.
            assert (await c.get(f"/v1/calls/{helped_id}", headers=default_dispatch)
                    ).status_code == 200
            assert (await c.get(f"/v1/calls/{own['call_id']}", headers=default_dispatch)
                    ).status_code == 404

            # West County's board gets the helped call's messages, not the other's; its
            # own last call is the positive signal that nothing earlier was held back.
            async with websockets.connect(f"{s.ws_url}/v1/board?after=0",
                                          additional_headers=west_team) as ws:
                last = (await post(s, occurred_at=NIGHT.format(33), location=IN_WEST)
                        ).json()["call_id"]
                seen: list[str] = []
                while last not in seen:
                    seen.append(json.loads(await ws.recv())["call_id"])
                assert helped_id in seen and second["call_id"] not in seen

                # West County's team clears it: its unit is free, and its own waiting
                # call (first in its queue) takes it.
                for status, extra in (("assigned", {"unit": "W-1"}), ("en_route", {}),
                                      ("cleared", {"disposition": "resolved_on_scene"})):
                    r = await c.post(f"/v1/calls/{helped_id}/status", headers=west_team,
                                     json={"status": status, "at": NIGHT.format(40),
                                           **extra})
                    assert r.status_code == 200, r.text

            async def taken() -> bool:
                r = await c.get(f"/v1/calls/{own['call_id']}", headers=west_team)
                return r.json()["decision"]["queued"] is None

            await eventually(taken, "West County's waiting call to take the freed unit")
            r = await c.get(f"/v1/calls/{own['call_id']}", headers=west_team)
            decision: dict[str, Any] = r.json()["decision"]
            assert decision["destination"] == "call_team" and decision["aid"] is None
            assert "a unit came free at Tue 01:40 and takes it." in decision["explanation"]


async def test_a_lent_unit_freed_after_a_waiting_calls_limit_finds_it_fallen_back(
        database_url: str) -> None:
    """The helping agency's queue is settled up to the time the unit came free before the
    unit is offered: a call of its own whose wait limit passed meanwhile fell back then."""
    async with helped_region(database_url) as s:
        helped = (await post(s, occurred_at=NIGHT.format(30), location=where("D1"))).json()
        assert helped["decision"]["aid"] == {"agency": "west", "program": "call"}
        own = (await post(s, occurred_at=NIGHT.format(32), location=IN_WEST)).json()
        queued = own["decision"]["queued"]
        assert queued is not None and queued["wait_limit_s"] < 18 * 60
        west_team = await key(s, "team-west", Role.call_team, "west")
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30) as c:
            # Cleared at 06:50, after the waiting call's limit (06:32 + 15 min).
            r = await c.post(f"/v1/calls/{helped['call_id']}/status", headers=west_team,
                             json={"status": "cleared", "at": NIGHT.format(50),
                                   "disposition": "resolved_on_scene"})
            assert r.status_code == 200, r.text
            r = await c.get(f"/v1/calls/{own['call_id']}", headers=west_team)
            decision = r.json()["decision"]
            assert (decision["destination"], decision["not_served_reason"]) == (
                "police", "wait_exceeded"), decision["explanation"]
