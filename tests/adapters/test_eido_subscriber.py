"""NENA-STA-024 with Liaison as the subscriber, against a real WebSocket server playing the
CAD with PhrSite EidoLib's sample messages (read in place from ../shared/eido): the
handshake, notifications stored before they are acknowledged, drops and redelivery
(nothing lost, nothing doubled), terminate, refusals with backoff, renewals, refused EIDOs
kept and answered 400, storage failures answered 503; once on SQLite and PostgreSQL where
it touches storage."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from adapters.eido.parse import document_event_id
from adapters.eido.subscriber import ACCEPTS, SUBPROTOCOL, EidoSubscriber
from service.settings import Settings
from service.tables import CAD_EVENT, CALL
from tests.adapters.test_eido_support import THIRD_PARTY, eido, shared_json
from tests.conftest import WAIT, Server, eventually, running_server

pytestmark = pytest.mark.asyncio

WS_FILES = "PhrSite-EidoLib/Testing/EidoUnitTests/WebSocketTestFiles"


def ws_sample(name: str) -> dict[str, Any]:
    """One of PhrSite EidoLib's NENA-STA-024 messages, e.g. NotifyWithEido."""
    message: dict[str, Any] = shared_json(f"{WS_FILES}/{name}.json")
    return message


class Peer:
    """One subscriber connection as the CAD sees it."""

    def __init__(self, ws: ServerConnection, cad: FakeCad) -> None:
        self.ws = ws
        self.cad = cad

    async def recv(self, within: float = WAIT) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), within))
        return message

    async def expect(self, kind: str, within: float = WAIT) -> dict[str, Any]:
        message = await self.recv(within)
        assert list(message) == [kind], message
        body: dict[str, Any] = message[kind]
        return body

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def accept(self, subscription: str = "sub1234",
                     expires: int | None = None) -> dict[str, Any]:
        """Take a new subscription and answer it with the sample subscribeResponse."""
        request = await self.expect("subscribe")
        assert "subscriptionId" not in request, request
        response = ws_sample("BasicSubscribeResponse")
        response["subscribeResponse"].update(requestId=request["requestId"],
                                             subscriptionId=subscription)
        if expires is not None:
            response["subscribeResponse"]["expires"] = expires
        await self.send(response)
        return request

    async def notify(self, eidos: list[Any], *, transaction: str,
                     subscription: str = "sub1234") -> dict[str, Any]:
        """The sample NotifyWithEido with these EIDOs; returns the eventResponse."""
        await self.send(event(eidos, transaction=transaction, subscription=subscription))
        return await self.expect("eventResponse")

    async def serve_until_closed(self) -> None:
        """Answer an unsubscribe (as at Liaison's shutdown) until the connection ends."""
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                message = json.loads(raw)
                if "unsubscribe" in message:
                    body = message["unsubscribe"]
                    self.cad.unsubscribes.append(body["subscriptionId"])
                    await self.send({"unsubscribeResponse": {
                        "requestId": body["requestId"], "subscriptionId": body["subscriptionId"],
                        "statusCode": 200, "statusText": "OK"}})
                else:
                    self.cad.unexpected.append(message)


Script = Callable[[Peer], Awaitable[None]]


class FakeCad:
    """A NENA-STA-024 notifier on a free port; connection n runs scripts[n]."""

    def __init__(self, *scripts: Script) -> None:
        self.scripts = scripts
        self.opened: list[float] = []
        self.closed: list[float] = []
        self.subprotocols: list[str | None] = []
        self.failures: list[BaseException] = []
        self.unsubscribes: list[str] = []
        self.unexpected: list[Any] = []
        self.marks: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.url = ""

    async def _handler(self, ws: ServerConnection) -> None:
        n = len(self.opened)
        self.opened.append(time.monotonic())
        self.subprotocols.append(ws.subprotocol)
        try:
            if n >= len(self.scripts):
                raise AssertionError(f"unexpected connection #{n + 1}")
            await self.scripts[n](Peer(ws, self))
        # pytest.raises' "DID NOT RAISE" is no Exception: caught too, so wait() reports
        # the script's own failure rather than the websocket's 1011 and a reconnection.
        except (Exception, pytest.fail.Exception) as exc:  # noqa: BLE001
            self.failures.append(exc)
        finally:
            self.closed.append(time.monotonic())

    def mark(self, name: str) -> None:
        self.marks[name].set()

    async def wait(self, name: str, within: float = WAIT) -> None:
        """Until a script marks `name`; a failed script fails the test at once."""
        deadline = time.monotonic() + within
        while not self.marks[name].is_set():
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the CAD never reached {name!r}")
            await asyncio.sleep(0.02)
        self.check()

    def check(self) -> None:
        if self.failures:
            raise self.failures[0]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeCad]:
        async with serve(self._handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/IncidentData/ent"
            yield self


def event(eidos: list[Any], *, transaction: str, subscription: str = "sub1234"
          ) -> dict[str, Any]:
    message = copy.deepcopy(ws_sample("NotifyWithEido"))
    message["event"].update(subscriptionId=subscription, transactionId=transaction,
                            notification=eidos)
    return message


def settings(database_url: str, cad: FakeCad, **extra: Any) -> Settings:
    fields: dict[str, Any] = {"eido_subscribe_backoff_base": 0.05,
                              "eido_subscribe_backoff_cap": 0.5, **extra}
    return Settings(database_url=database_url, eido_subscribe=cad.url, **fields)


async def scalar(server: Server, query: Any) -> Any:
    async with server.runtime.engine.connect() as conn:
        return (await conn.execute(query)).scalar_one()


async def eido_calls(server: Server) -> dict[str, list[str]]:
    """Call ids by incident, for calls that came as EIDOs."""
    async with server.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(CALL.c.incident_id, CALL.c.id).where(
            CALL.c.source == "eido"))).all()
    out: dict[str, list[str]] = defaultdict(list)
    for incident, call_id in rows:
        out[incident].append(call_id)
    return out


async def eido_events(server: Server) -> int:
    return int(await scalar(server, select(func.count()).select_from(CAD_EVENT).where(
        CAD_EVENT.c.source == "eido")))


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
    """The handshake in the samples' shapes; the sample NotifyWithEido is committed before
    its eventResponse, which is exactly the sample NotifyResponse."""
    notify = ws_sample("NotifyWithEido")
    sample = notify["event"]["notification"][0]
    box: dict[str, Any] = {}

    async def cad_side(peer: Peer) -> None:
        request = await peer.expect("subscribe")
        basic = ws_sample("BasicSubscribe")["subscribe"]
        assert uuid.UUID(request["requestId"])
        assert request["requestType"] == basic["requestType"] == "EIDO"
        assert request["requestSubType"] == basic["requestSubType"] == "new"
        assert request["requestAccepts"].split(";")[0] == \
            basic["requestAccepts"].split(";")[0] == "application/emergency.eido+json"
        assert request["requestAccepts"] == ACCEPTS
        assert request["expires"] == 3600
        assert "subscriptionId" not in request and "incidentId" not in request
        response = ws_sample("BasicSubscribeResponse")
        response["subscribeResponse"]["requestId"] = request["requestId"]
        await peer.send(response)
        await peer.cad.marks["server"].wait()
        await peer.send(notify)
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
            assert box["ack"] == ws_sample("NotifyResponse")
            assert list(box["calls_at_ack"]) == [sample["$id"]]
            call_id = box["calls_at_ack"][sample["$id"]][0]
            r = await server.client.get(f"/v1/calls/{call_id}")
            assert r.status_code == 200
            call = r.json()
            assert call["call"]["source"] == "eido"
            assert call["call"]["nature_code"] == "TROUBLE"
            assert call["decision"]["destination"] == "police"
            assert [e["event_id"] for e in call["events"]] == [document_event_id(sample)]
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
        await peer.send(event([b], transaction="t2", subscription="sub-1"))
        # b is stored, its acknowledgement never read
        await eventually(lambda: stored(box["server"], b["$id"]), "b stored")
        await peer.send(event([d], transaction="t3", subscription="sub-1"))
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
        await peer.send(ws_sample("TerminateRequest"))
        assert await peer.recv() == ws_sample("TerminateResponse")
        # Liaison closes this socket and subscribes again on a new one.
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    async def second(peer: Peer) -> None:
        request = await peer.accept("sub-after")
        assert request["requestType"] == "EIDO" and "subscriptionId" not in request
        peer.cad.mark("resubscribed")
        await peer.serve_until_closed()

    cad = FakeCad(first, second)
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


async def test_refused_eidos_are_kept_once_and_answered_400(database_url: str) -> None:
    third_party = shared_json(THIRD_PARTY[0])
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
    async def unavailable(peer: Peer) -> None:
        request = await peer.expect("subscribe")
        response = ws_sample("BasicSubscribeResponse")["subscribeResponse"]
        del response["subscriptionId"], response["expires"]
        response.update(requestId=request["requestId"], statusCode=503,
                        statusText="Service Unavailable")
        await peer.send({"subscribeResponse": response})
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    async def not_implemented(peer: Peer) -> None:
        request = await peer.expect("subscribe")
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
            # base·2^(n-1) less up to half: 0.1-0.2 s, then 0.2-0.4 s.
            assert cad.opened[1] - cad.closed[0] >= 0.09
            assert cad.opened[2] - cad.closed[1] >= 0.19
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
