"""NENA-STA-024 with Liaison as the subscriber, against a real WebSocket server playing the
CAD: the handshake, notifications stored before they are acknowledged, drops and
redelivery (nothing lost, nothing doubled), terminate, refusals with backoff, renewals,
refused EIDOs kept and answered 400, storage failures answered 503; once on SQLite and
PostgreSQL where it touches storage.

The CAD's messages are built here, in the shapes of PhrSite EidoLib's sample messages, so
a clone without ../shared runs every test but one: that one plays the samples themselves
(read in place from ../shared/eido) and skips, saying why, without them."""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from adapters.eido.parse import document_event_id
from adapters.eido.subscriber import ACCEPTS, SUBPROTOCOL, EidoSubscriber
from service.settings import Settings
from tests.conftest import WAIT, Server, eventually, running_server
from tests.factories import eido
from tests.fakes import (
    FakeCad,
    Peer,
    Script,
    eido_calls,
    eido_events,
    notify_with_eido,
    settings,
    subscribe_response,
)
from tests.shared_data import shared_json

pytestmark = pytest.mark.asyncio

WS_FILES = "PhrSite-EidoLib/Testing/EidoUnitTests/WebSocketTestFiles"


def ws_sample(name: str) -> dict[str, Any]:
    """One of PhrSite EidoLib's NENA-STA-024 messages, e.g. NotifyWithEido. Read it in the
    test itself, never in a CAD script: a skip raised in the CAD's task is a failure."""
    message: dict[str, Any] = shared_json(f"{WS_FILES}/{name}.json")
    return message


def event_response(transaction: str) -> dict[str, Any]:
    return {"eventResponse": {"transactionId": transaction, "statusCode": 200,
                              "statusText": "OK"}}


def terminate(request_id: str, subscription: str = "sub1234") -> dict[str, Any]:
    return {"terminate": {"requestId": request_id, "subscriptionId": subscription}}


def terminate_response(request_id: str, subscription: str = "sub1234") -> dict[str, Any]:
    return {"terminateResponse": {"requestId": request_id, "subscriptionId": subscription,
                                  "statusCode": 200, "statusText": "OK"}}


def resubscribed(subscription: str) -> Script:
    """A later connection's script: a new subscription (not a renewal), then mark it."""
    async def script(peer: Peer) -> None:
        request = await peer.accept(subscription)
        assert request["requestType"] == "EIDO" and "subscriptionId" not in request
        peer.cad.mark("resubscribed")
        await peer.serve_until_closed()

    return script


async def health(server: Server) -> dict[str, Any]:
    r = await server.client.get("/v1/health")
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()["eido_subscriber"]
    return state


async def until_health(server: Server, holds: Callable[[dict[str, Any]], Any]
                       ) -> dict[str, Any] | None:
    """The subscriber's state in health if `holds` for it (for eventually())."""
    state = await health(server)
    return state if holds(state) else None


async def stored(server: Server, incident_id: str) -> bool:
    return incident_id in await eido_calls(server)


async def test_subscribes_stores_then_acknowledges(database_url: str) -> None:
    """The handshake; a notified EIDO is committed before its eventResponse."""
    incident = eido(unique="first-notified")
    box: dict[str, Any] = {}

    async def cad_side(peer: Peer) -> None:
        request = await peer.expect("subscribe")
        assert uuid.UUID(request["requestId"])
        assert (request["requestType"], request["requestSubType"]) == ("EIDO", "new")
        assert request["requestAccepts"] == ACCEPTS
        assert request["requestAccepts"].split(";")[0] == "application/emergency.eido+json"
        assert request["expires"] == 3600
        assert "subscriptionId" not in request and "incidentId" not in request
        await peer.send(subscribe_response(request["requestId"]))
        await peer.cad.marks["server"].wait()
        await peer.send(notify_with_eido([incident], transaction="t-first@cad.example"))
        ack = await peer.recv()
        # Stored before the acknowledgement went out.
        box["calls_at_ack"] = await eido_calls(box["server"])
        box["ack"] = ack
        peer.cad.mark("acked")
        await peer.serve_until_closed()

    cad = FakeCad(cad_side)
    async with cad.running():
        async with running_server(settings(database_url, cad)) as server:
            box["server"] = server
            cad.mark("server")
            await cad.wait("acked")
            assert box["ack"] == event_response("t-first@cad.example")
            assert list(box["calls_at_ack"]) == [incident["$id"]]
            call_id = box["calls_at_ack"][incident["$id"]][0]
            r = await server.client.get(f"/v1/calls/{call_id}")
            assert r.status_code == 200
            call = r.json()
            assert call["call"]["source"] == "eido"
            assert call["call"]["nature_code"] == "MNTL"
            assert call["decision"]["destination"] == "call_team"
            assert [e["event_id"] for e in call["events"]] == [document_event_id(incident)]
            state = await health(server)
            assert state["url"] == cad.url and state["running"] and state["connected"]
            assert state["subscription_id"] == "sub1234" and state["expires"] == 3600
            assert (state["connects"], state["subscriptions"], state["events"],
                    state["eidos_stored"], state["eidos_refused"]) == (1, 1, 1, 1, 0)
            assert state["last_event_at"] is not None and state["last_error"] is None
        # Shutting down, Liaison unsubscribed.
        assert cad.unsubscribes == ["sub1234"]
    assert cad.subprotocols == [SUBPROTOCOL]
    assert cad.unexpected == []
    cad.check()


SAMPLES = ("BasicSubscribe", "BasicSubscribeResponse", "NotifyWithEido", "NotifyResponse",
           "TerminateRequest", "TerminateResponse")


async def test_the_sample_messages_are_understood_and_answered_in_kind(tmp_path: Any) -> None:
    """PhrSite EidoLib's samples themselves (the reference files are the point: without
    ../shared this skips): Liaison's subscribe has BasicSubscribe's shape, the sample
    NotifyWithEido (NENA's call-transfer EIDO) is stored and answered with exactly the
    sample NotifyResponse, TerminateRequest with exactly TerminateResponse; and the
    messages the other tests build have the samples' shapes."""
    samples = {name: ws_sample(name) for name in SAMPLES}  # before any CAD task runs
    answer = samples["BasicSubscribeResponse"]["subscribeResponse"]
    assert subscribe_response(answer["requestId"], answer["subscriptionId"],
                              answer["expires"]) == samples["BasicSubscribeResponse"]
    notified = samples["NotifyWithEido"]["event"]
    assert notify_with_eido(notified["notification"], transaction=notified["transactionId"],
                 subscription=notified["subscriptionId"]) == samples["NotifyWithEido"]
    assert event_response(notified["transactionId"]) == samples["NotifyResponse"]
    ended = samples["TerminateRequest"]["terminate"]
    assert terminate(ended["requestId"], ended["subscriptionId"]) == \
        samples["TerminateRequest"]
    assert terminate_response(ended["requestId"], ended["subscriptionId"]) == \
        samples["TerminateResponse"]
    sample_eido = notified["notification"][0]
    box: dict[str, Any] = {}

    async def first(peer: Peer) -> None:
        request = await peer.expect("subscribe")
        basic = samples["BasicSubscribe"]["subscribe"]
        assert request["requestType"] == basic["requestType"]
        assert request["requestSubType"] == basic["requestSubType"]
        assert request["requestAccepts"].split(";")[0] == basic["requestAccepts"].split(";")[0]
        response = copy.deepcopy(samples["BasicSubscribeResponse"])
        response["subscribeResponse"]["requestId"] = request["requestId"]
        await peer.send(response)
        await peer.cad.marks["server"].wait()
        await peer.send(samples["NotifyWithEido"])
        box["ack"] = await peer.recv()
        await peer.send(samples["TerminateRequest"])
        box["terminated"] = await peer.recv()
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    cad = FakeCad(first, resubscribed("sub-after"))
    async with cad.running():
        url = f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
        async with running_server(settings(url, cad)) as server:
            cad.mark("server")
            await cad.wait("resubscribed")
            assert box["ack"] == samples["NotifyResponse"]
            assert box["terminated"] == samples["TerminateResponse"]
            (call_id,) = (await eido_calls(server))[sample_eido["$id"]]
            call = (await server.client.get(f"/v1/calls/{call_id}")).json()
            # A call-transfer EIDO says nothing of the incident yet: police, the default.
            assert call["call"]["nature_code"] == "TROUBLE"
            assert call["decision"]["destination"] == "police"
            assert [e["event_id"] for e in call["events"]] == [document_event_id(sample_eido)]
    cad.check()


async def test_a_drop_mid_stream_loses_nothing_and_doubles_nothing(database_url: str) -> None:
    """The CAD drops the connection with two notifications unacknowledged (one stored, one
    perhaps not); after the resubscription it sends every active incident and redelivers
    both. Every incident ends up exactly once."""
    a, b, d, c = (eido(unique=f"drop-{x}", code=code) for x, code in
                  (("a", "MNTL"), ("b", "WELFARE"), ("d", "VAG"), ("c", "EDP")))
    box: dict[str, Any] = {}

    async def first(peer: Peer) -> None:
        await peer.accept("sub-1")
        await peer.cad.marks["server"].wait()
        assert (await peer.notify([a], transaction="t1", subscription="sub-1"))[
            "statusCode"] == 200
        await peer.send(notify_with_eido([b], transaction="t2", subscription="sub-1"))
        # b is stored, its acknowledgement never read
        await eventually(lambda: stored(box["server"], b["$id"]), "b stored")
        await peer.send(notify_with_eido([d], transaction="t3", subscription="sub-1"))
        peer.ws.transport.abort()  # no close frame: a network failure

    async def second(peer: Peer) -> None:
        request = await peer.accept("sub-2")
        assert request["requestType"] == "EIDO" and request["requestSubType"] == "new"
        # A new subscription starts with every active incident...
        initial = await peer.notify([a, b, d], transaction="t4", subscription="sub-2")
        # ...and the notifier redelivers what was never acknowledged.
        again = [await peer.notify([x], transaction=t, subscription="sub-2")
                 for x, t in ((b, "t2"), (d, "t3"))]
        new = await peer.notify([c], transaction="t5", subscription="sub-2")
        box["acks"] = [initial, *again, new]
        peer.cad.mark("done")
        await peer.serve_until_closed()

    cad = FakeCad(first, second)
    async with cad.running():
        async with running_server(settings(database_url, cad)) as server:
            box["server"] = server
            cad.mark("server")
            await cad.wait("done")
            assert [(x["transactionId"], x["statusCode"], x["statusText"])
                    for x in box["acks"]] == [("t4", 200, "OK"), ("t2", 200, "OK"),
                                              ("t3", 200, "OK"), ("t5", 200, "OK")]
            calls = await eido_calls(server)
            assert {k: len(v) for k, v in calls.items()} == {
                a["$id"]: 1, b["$id"]: 1, c["$id"]: 1, d["$id"]: 1}
            assert await eido_events(server) == 4
            for incident, (call_id,) in calls.items():
                view = (await server.client.get(f"/v1/calls/{call_id}")).json()
                assert len(view["events"]) == 1, (incident, view["events"])
                assert len(view["decisions"]) == 1
            state = await health(server)
            assert (state["connects"], state["subscriptions"]) == (2, 2)
            assert state["subscription_id"] == "sub-2" and state["connected"]
            assert state["events"] >= 5 and state["eidos_refused"] == 0
            assert "connection lost" in state["last_error"]
    cad.check()


async def test_terminate_is_answered_and_followed_by_a_new_subscription(
        tmp_path: Any) -> None:
    async def first(peer: Peer) -> None:
        await peer.accept()
        # The first notification of a subscription with no active incident is empty.
        empty = await peer.notify([], transaction="t0")
        assert empty == {"transactionId": "t0", "statusCode": 200, "statusText": "OK"}
        await peer.send({"terminate": {"requestId": "r-x", "subscriptionId": "not-ours"}})
        assert await peer.expect("terminateResponse") == {
            "requestId": "r-x", "subscriptionId": "not-ours", "statusCode": 481,
            "statusText": "Subscription does not exist"}
        await peer.send(terminate("63bfd612-f558-4489-b653-caa76a7edb9b"))
        assert await peer.recv() == terminate_response("63bfd612-f558-4489-b653-caa76a7edb9b")
        # Liaison closes this socket and subscribes again on a new one.
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    cad = FakeCad(first, resubscribed("sub-after"))
    async with cad.running():
        url = f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
        async with running_server(settings(url, cad)) as server:
            cad.mark("server")
            await cad.wait("resubscribed")
            state = await eventually(lambda: until_health(
                server, lambda h: h["subscription_id"] == "sub-after"), "sub-after in health")
            assert state["terminations"] == 1 and state["subscriptions"] == 2
            assert state["connects"] == 2
            assert "terminated by the notifier" in state["last_error"]
    cad.check()


def look_alike() -> dict[str, Any]:
    """A document that merely looks like an EIDO, in the manner of the third-party
    examples in ../shared/eido/third_party_nonconformant: no eidoVersion, free-text
    incident type, components without the standard prologue."""
    at = "2024-05-15T10:30:00-07:00"
    return {
        "$id": "urn:uuid:1a2b3c4d-5e6f-7890-abcd-ef0123456789", "messageKind": "Alert",
        "lastUpdateTimeStamp": at,
        "notesComponent": [{"noteText": "Fire is 5 acres, slow to moderate spread.",
                            "noteDateTimeStamp": at, "componentIdentifier": "note-1"}],
        "agencyComponent": [{"$id": "agency-1", "agencyName": "FIRE DISPATCH"}],
        "incidentComponent": [{"componentIdentifier": "inc-1", "lastUpdateTimeStamp": at,
                               "updatedByAgencyReference": {"$ref": "agency-1"},
                               "incidentTypeCommonRegistryText": "Vegetation Fire",
                               "incidentStatusCommonRegistryText": "Contained"}],
    }


async def test_refused_eidos_are_kept_once_and_answered_400(database_url: str) -> None:
    third_party = look_alike()
    no_id = eido(unique="no-id")
    del no_id["$id"]
    good, other = eido(unique="good"), eido(unique="other-subscription")
    box: dict[str, Any] = {}

    async def cad_side(peer: Peer) -> None:
        await peer.accept()
        await peer.cad.marks["server"].wait()
        server = box["server"]
        bad = await peer.notify([third_party], transaction="t-bad")
        assert bad["transactionId"] == "t-bad" and bad["statusCode"] == 400
        assert bad["statusText"].startswith("Bad Request: 1 of 1 EIDOs refused")
        assert 'notification[0]: eidoVersion: required: "1.0"' in bad["statusText"]
        assert len(bad["statusText"]) <= 500
        box["rejects_after_first"] = (await server.client.get(
            "/v1/cad/rejects", params={"source": "eido"})).json()
        # Sent again (as after a reconnect): answered the same, not kept twice.
        assert await peer.notify([third_party], transaction="t-bad") == bad
        mixed = await peer.notify([good, no_id], transaction="t-mixed")
        assert mixed["statusCode"] == 400
        assert "1 of 2 EIDOs refused" in mixed["statusText"]
        assert "notification[1]: $id" in mixed["statusText"]
        # Not JSON, and an event with nothing to acknowledge it by: kept, not answered;
        # the next event is answered in its turn.
        await peer.send("{not json")
        await peer.send({"event": {"subscriptionId": "sub1234", "notification": [good]}})
        shape = await peer.notify({"not": "an array"}, transaction="t-shape")  # type: ignore[arg-type]
        assert shape["statusCode"] == 400 and "event.notification" in shape["statusText"]
        assert await peer.notify([], transaction="t-empty") == {
            "transactionId": "t-empty", "statusCode": 200, "statusText": "OK"}
        # An event for a subscription Liaison does not hold is not read.
        foreign = await peer.notify([other], transaction="t-foreign", subscription="sub-x")
        assert (foreign["statusCode"], foreign["statusText"]) == (
            481, "Subscription does not exist")
        peer.cad.mark("done")
        await peer.serve_until_closed()

    cad = FakeCad(cad_side)
    async with cad.running():
        async with running_server(settings(database_url, cad)) as server:
            box["server"] = server
            cad.mark("server")
            await cad.wait("done")
            first = box["rejects_after_first"]
            assert first["count"] == 1 and first["data"][0]["path"] == cad.url
            kept = (await server.client.get(f"/v1/cad/rejects/{first['data'][0]['id']}")).json()
            assert json.loads(kept["body"]) == third_party
            assert "incidentComponent.incidentTypeCommonRegistryText" in {
                e["field"] for e in kept["errors"]}
            rejects = (await server.client.get("/v1/cad/rejects",
                                               params={"source": "eido"})).json()
            fields = [[e["field"] for e in r["errors"]] for r in reversed(rejects["data"])]
            assert rejects["count"] == 5, fields
            assert fields[1] == ["$id"]
            assert fields[2:] == [["(message)"], ["event.transactionId"],
                                  ["event.notification"]]
            assert set(await eido_calls(server)) == {good["$id"]}
            assert await eido_events(server) == 1
            state = await health(server)
            assert (state["eidos_stored"], state["eidos_refused"]) == (1, 3)
    cad.check()


async def test_a_refused_subscription_is_retried_after_a_growing_backoff(
        tmp_path: Any) -> None:
    refused: list[float] = []  # when each refusal left the CAD

    async def unavailable(peer: Peer) -> None:
        request = await peer.expect("subscribe")
        refused.append(time.monotonic())
        await peer.send({"subscribeResponse": {
            "requestId": request["requestId"], "statusCode": 503,
            "statusText": "Service Unavailable"}})
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    async def not_implemented(peer: Peer) -> None:
        request = await peer.expect("subscribe")
        refused.append(time.monotonic())
        await peer.send({"response": {"requestId": request["requestId"], "statusCode": 501,
                                      "statusText": "Not implemented"}})
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    async def accepted(peer: Peer) -> None:
        await peer.accept()
        peer.cad.mark("subscribed")
        await peer.serve_until_closed()

    cad = FakeCad(unavailable, not_implemented, accepted)
    async with cad.running():
        url = f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
        async with running_server(settings(url, cad, eido_subscribe_backoff_base=0.2,
                                           eido_subscribe_backoff_cap=5)) as server:
            await cad.wait("subscribed")
            # base·2^(n-1) less up to half: 0.1-0.2 s, then 0.2-0.4 s. Counted from the
            # refusal, which the subscriber reads before it waits: a loaded machine can
            # only make the gap longer (the CAD's own close time may trail the client's).
            assert cad.opened[1] - refused[0] >= 0.1
            assert cad.opened[2] - refused[1] >= 0.2
            state = await eventually(lambda: until_health(
                server, lambda h: h["subscription_id"]), "a subscription in health")
            assert state["subscription_id"] == "sub1234" and state["connects"] == 3
            assert state["last_error"] == "subscribe refused: 501 Not implemented"
    cad.check()


async def test_renewal_and_a_forgotten_subscription(tmp_path: Any) -> None:
    async def cad_side(peer: Peer) -> None:
        await peer.accept("sub-r1", expires=1)
        renewal = await peer.expect("subscribe")
        # A renewal names the subscription and nothing of what it is for.
        assert set(renewal) == {"requestId", "subscriptionId", "expires"}
        assert renewal["subscriptionId"] == "sub-r1"
        await peer.send({"subscribeResponse": {
            "requestId": renewal["requestId"], "subscriptionId": "sub-r1", "expires": 1,
            "statusCode": 200, "statusText": "OK"}})
        renewal = await peer.expect("subscribe")
        assert renewal["subscriptionId"] == "sub-r1"
        await peer.send({"subscribeResponse": {
            "requestId": renewal["requestId"], "statusCode": 481,
            "statusText": "Subscription does not exist"}})
        await peer.accept("sub-r2")  # a new subscription on the same socket
        peer.cad.mark("renewed")
        await peer.serve_until_closed()

    cad = FakeCad(cad_side)
    async with cad.running():
        url = f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
        async with running_server(settings(url, cad)) as server:
            await cad.wait("renewed")
            state = await eventually(lambda: until_health(
                server, lambda h: h["subscription_id"] == "sub-r2"), "sub-r2 in health")
            assert (state["renewals"], state["subscriptions"], state["connects"]) == (1, 2, 1)
            assert state["expires"] == 3600
        assert cad.unsubscribes == ["sub-r2"]
    cad.check()


async def test_no_subscribe_response_and_a_storage_failure_end_the_connection(
        tmp_path: Any) -> None:
    """Used on its own against a running service: a notifier that never answers is left
    after the timeout; an EIDO that cannot be stored is answered 503, never 200, and the
    next subscription's first notification brings it again."""
    incident = eido(unique="after-outage")
    box: dict[str, Any] = {}

    async def silent(peer: Peer) -> None:
        await peer.expect("subscribe")
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    async def outage(peer: Peer) -> None:
        await peer.accept("sub-o1")
        await box["server"].runtime.writer.stop()
        failed = await peer.notify([incident], transaction="t-out", subscription="sub-o1")
        assert failed["statusCode"] == 503, failed
        assert failed["statusText"].startswith("Service Unavailable: storage failed")
        box["server"].runtime.writer.start()
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    async def recovered(peer: Peer) -> None:
        await peer.accept("sub-o2")
        ok = await peer.notify([incident], transaction="t-all", subscription="sub-o2")
        assert ok["statusCode"] == 200, ok
        peer.cad.mark("recovered")
        await peer.serve_until_closed()

    cad = FakeCad(silent, outage, recovered)
    async with cad.running():
        url = f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
        async with running_server(Settings(database_url=url)) as server:
            box["server"] = server
            rt = server.runtime
            assert rt.eido_subscriber is None
            assert (await server.client.get("/v1/health")).json()["eido_subscriber"] is None
            subscriber = EidoSubscriber(cad.url, writer=rt.writer, engine=rt.engine,
                                        policy=rt.policy, response_timeout=0.3,
                                        backoff_base=0.05, backoff_cap=0.2)
            await subscriber.start()
            try:
                await cad.wait("recovered")
                assert list(await eido_calls(server)) == [incident["$id"]]
                assert subscriber.state.connects == 3
                assert subscriber.state.subscription_id == "sub-o2"
            finally:
                await subscriber.stop()
            assert not subscriber.running and not subscriber.state.connected
        assert cad.unsubscribes == ["sub-o2"]
        assert cad.closed[0] - cad.opened[0] >= 0.25  # the timeout, not at once
    cad.check()
