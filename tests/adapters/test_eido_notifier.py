"""Liaison as the NENA-STA-024 notifier: a CAD (played by a real websocket client, with a
real CAD key) subscribes at /v1/eido/subscriptions and is sent its calls' EIDOs as they
change, decisions and team statuses, in order; on SQLite and PostgreSQL, over a real
uvicorn, and across two instances."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from adapters.eido.subscriber import ACCEPTS, SUBPROTOCOL
from service.access.auth import Role, create_key
from service.settings import Settings
from tests.conftest import WAIT, Server, running_server
from tests.factories import event
from tests.shared_data import SCHEMA_021_1B, schema_errors

pytestmark = pytest.mark.asyncio

DISPUTE = {"nature_code": "CDX", "nature_text": "Neighbor dispute"}


class Cad:
    """The CAD's end of one subscription connection."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, kind: str, **body: Any) -> None:
        await self.ws.send(json.dumps({kind: body}))

    async def expect(self, kind: str) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
        assert list(message) == [kind], message
        return dict(message[kind])

    async def subscribe(self, **more: Any) -> dict[str, Any]:
        request = str(uuid.uuid4())
        body = {"requestId": request, "requestType": "EIDO", "requestSubType": "new",
                "requestAccepts": ACCEPTS, "expires": 3600, **more}
        await self.send("subscribe", **{k: v for k, v in body.items() if v is not None})
        answer = await self.expect("subscribeResponse")
        assert answer["requestId"] == request
        return answer

    async def event(self) -> dict[str, Any]:
        """The next event, acknowledged as a CAD does; each EIDO in it is valid."""
        body = await self.expect("event")
        await self.send("eventResponse", transactionId=body["transactionId"],
                        statusCode=200, statusText="OK")
        for doc in body["notification"]:
            assert schema_errors(doc) == [] and schema_errors(doc, SCHEMA_021_1B) == []
        return body


@asynccontextmanager
async def connected(server: Server, headers: dict[str, str] | None = None
                    ) -> AsyncIterator[Cad]:
    async with websockets.connect(
            f"{server.ws_url}/v1/eido/subscriptions", subprotocols=[SUBPROTOCOL],
            additional_headers=server.creds.bearer(Role.cad) if headers is None
            else headers) as ws:
        assert ws.subprotocol == SUBPROTOCOL
        yield Cad(ws)


def incident_id(server: Server, call_id: str) -> str:
    return f"urn:emergency:uid:incidentid:{call_id}:{server.runtime.settings.eido_agency_id}"


def state(doc: dict[str, Any]) -> tuple[str, list[str], list[str] | None]:
    """Who the EIDO is about and where it stands: its incident, its incident status, and
    its unit's secondary status (None: no unit)."""
    units = doc.get("emergencyResourceComponent") or [None]
    return (doc["$id"], doc["incidentComponent"]["incidentStatusCommonRegistryText"],
            units[0]["secondaryUnitStatusRegistryText"] if units[0] else None)


async def new_call(server: Server, headers: dict[str, str] | None = None,
                   **fields: Any) -> str:
    r = await server.client.post("/v1/cad/events", json=event(**(fields or DISPUTE)),
                                 headers=headers)
    assert r.status_code == 202, r.text
    return str(r.json()["call_id"])


async def status(server: Server, call_id: str, new: str, **more: Any) -> None:
    r = await server.client.post(f"/v1/calls/{call_id}/status", json={"status": new, **more})
    assert r.status_code == 200, r.text


async def test_a_subscribed_cad_hears_each_decision_and_status_in_order(
        server: Server) -> None:
    before = await new_call(server)  # active when the CAD subscribes
    async with connected(server) as cad:
        answer = await cad.subscribe()
        assert (answer["statusCode"], answer["expires"]) == (200, 3600)
        sub = answer["subscriptionId"]
        first = await cad.event()  # every active incident, at once
        assert first["subscriptionId"] == sub
        assert [state(d) for d in first["notification"]] == [
            (incident_id(server, before), ["Active"], None)]

        call_id = await new_call(server)  # a new incident
        got = await cad.event()
        assert [state(d) for d in got["notification"]] == [
            (incident_id(server, call_id), ["Active"], None)]
        assert got["transactionId"] != first["transactionId"]
        steps: list[tuple[str, dict[str, Any], str, list[str]]] = [
            ("assigned", {"unit": "CALL-2"}, "ResourcesAssigned", ["Assigned"]),
            ("en_route", {}, "ResourcesEnroute", ["EnRoute"]),
            ("on_scene", {}, "ResourcesOnscene", ["OnScene"]),
            # A status and the decision it makes, one commit: one state, sent once.
            ("backup_requested", {"note": "Crowd gathering"}, "ResourcesOnscene",
             ["OnScene"]),
            ("cleared", {"disposition": "police_took_over"}, "Active", ["Cleared"]),
        ]
        for new, more, incident_status, unit_status in steps:
            await status(server, call_id, new, **more)
            [doc] = (await cad.event())["notification"]
            assert state(doc) == (incident_id(server, call_id), [incident_status],
                                  unit_status), new
            assert doc["emergencyResourceComponent"][0]["unitStatusInternal"] == [new]
            if new == "backup_requested":
                routing = doc["notesComponent"][-1]["notesActionComments"]
                assert '<data value="joint">' in routing  # the backup's decision in it
        # The CAD closes the call: its closed state.
        r = await server.post_event(incident_id=doc["incidentComponent"]["internalIncidentId"],
                                    type="closed", occurred_at="2026-03-10T14:30:00-04:00",
                                    **DISPUTE)
        assert r.status_code == 202, r.text
        [doc] = (await cad.event())["notification"]
        assert state(doc)[1] == ["Closed"]
        assert doc["incidentComponent"]["dispositionComponent"][0][
            "dispositionCommonRegistryCode"] == "15"

        # Renewed; an unknown subscription is not.
        renewed = await cad.subscribe(subscriptionId=sub, requestType=None,
                                      requestSubType=None, requestAccepts=None, expires=60)
        assert (renewed["statusCode"], renewed["subscriptionId"], renewed["expires"]) == (
            200, sub, 60)
        unknown = await cad.subscribe(subscriptionId="nope", requestType=None,
                                      requestSubType=None, requestAccepts=None)
        assert unknown["statusCode"] == 481

        # Unsubscribed: no more of the "new" subscription. A single-incident one follows
        # only its incident: a change of another call sends nothing, so the next event is
        # the one of its own incident's change (the positive signal).
        await cad.send("unsubscribe", requestId="u1", subscriptionId=sub)
        assert (await cad.expect("unsubscribeResponse"))["statusCode"] == 200
        single = await cad.subscribe(requestSubType="single",
                                     incidentId=incident_id(server, before))
        assert single["statusCode"] == 200
        [doc] = (await cad.event())["notification"]  # its current state, at once
        assert state(doc) == (incident_id(server, before), ["Active"], None)
        other = await new_call(server)
        await status(server, other, "assigned", unit="CALL-4")
        await status(server, before, "assigned", unit="CALL-1")
        got = await cad.event()
        assert got["subscriptionId"] == single["subscriptionId"]
        assert [state(d) for d in got["notification"]] == [
            (incident_id(server, before), ["ResourcesAssigned"], ["Assigned"])]


async def test_a_key_for_one_source_hears_only_that_sources_calls(server: Server) -> None:
    token, _ = await create_key(server.runtime.engine, "north-cad", source="north")
    north = {"authorization": f"Bearer {token}"}
    mine = await new_call(server, headers=north, **DISPUTE)
    theirs = await new_call(server)
    async with connected(server, north) as cad:
        await cad.subscribe()
        first = await cad.event()
        assert [state(d)[0] for d in first["notification"]] == [incident_id(server, mine)]
        refused = await cad.subscribe(requestSubType="single",
                                      incidentId=incident_id(server, theirs))
        assert refused["statusCode"] == 404
        await status(server, theirs, "assigned", unit="CALL-1")
        await status(server, mine, "assigned", unit="CALL-2")
        got = await cad.event()  # the next is its own call's: the other's was not sent
        assert [state(d)[0] for d in got["notification"]] == [incident_id(server, mine)]


async def test_what_the_notifier_refuses(server: Server) -> None:
    # Not the subprotocol, not a CAD key, no key: refused at the handshake.
    with pytest.raises(InvalidStatus):
        async with websockets.connect(f"{server.ws_url}/v1/eido/subscriptions",
                                      additional_headers=server.creds.bearer(Role.cad)):
            pass
    for headers in [server.creds.bearer(r) for r in Role if r is not Role.cad] + [{}]:
        with pytest.raises(InvalidStatus) as refused:
            async with connected(server, headers):
                pass
        assert refused.value.response.status_code == 403
    async with connected(server) as cad:
        for body, code in (({"requestType": "other"}, 400),
                           ({"requestSubType": "everything"}, 400),
                           ({"requestAccepts": "application/xml"}, 406),
                           ({"expires": 0}, 400),
                           ({"requestSubType": "single", "incidentId": "urn:x"}, 404)):
            assert (await cad.subscribe(**body))["statusCode"] == code, body
        await cad.send("subscribe", requestId="r1", requestType="EIDO",
                       requestSubType="resource", unitId="CALL-1")
        assert (await cad.expect("response")) == {
            "requestId": "r1", "statusCode": 501, "statusText": "Not implemented"}
    async with connected(server) as cad:
        await cad.ws.send("not json")
        answer = await cad.expect("response")
        assert (answer["statusCode"], answer["statusText"]) == (501, "Not implemented")
        # A subscription left to expire is terminated.
        answer = await cad.subscribe(expires=1)
        await cad.event()
        ended = await cad.expect("terminate")
        assert ended["subscriptionId"] == answer["subscriptionId"]
    async with connected(server) as cad:
        # A CAD that answers an event 481 does not know the subscription: it ends. The
        # one made after it is sent the next change; the first, earlier, would come first.
        forgotten = await cad.subscribe()
        first = await cad.expect("event")
        await cad.send("eventResponse", transactionId=first["transactionId"],
                       statusCode=481, statusText="Subscription does not exist")
        kept = await cad.subscribe()
        await cad.event()
        await new_call(server)
        got = await cad.event()
        assert got["subscriptionId"] == kept["subscriptionId"] != forgotten["subscriptionId"]


@pytest.mark.postgres
async def test_a_change_made_on_another_instance_is_notified(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url)
    async with (running_server(settings) as one,
                running_server(settings, creds=one.creds) as two):
        async with connected(two) as cad:
            await cad.subscribe()
            await cad.event()
            call_id = await new_call(one)
            [doc] = (await cad.event())["notification"]
            assert state(doc)[0] == incident_id(two, call_id)
            await status(one, call_id, "assigned", unit="CALL-1")
            [doc] = (await cad.event())["notification"]
            assert state(doc)[2] == ["Assigned"]
