"""The CADs the tests play (outside the system, so played by a test): a CAD's webhook
endpoint that receives Liaison's signed decisions, and a CAD's EIDO WebSocket service
(NENA-STA-024) that a subscriber connects to."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import func, select
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from adapters.eido.subscriber import SUBPROTOCOL
from service.settings import Settings
from service.store.tables import CAD_EVENT, CALL
from tests.conftest import WAIT, Server, eventually, free_port

SECRET = "test-secret-shared-with-the-cad"


def signed_right(raw: bytes, header: str | None) -> bool:
    """The CAD's own check of `Liaison-Signature`, written from the contract."""
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


@dataclass
class Attempt:
    """One request the CAD received."""

    delivery_id: str
    sequence: int
    call_id: str
    incident_id: str
    cause: str  # a team status's: "status"
    answered: int
    signature_ok: bool
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    received: datetime  # the same moment by the wall clock (Liaison's times are UTC)


class Cad:
    """A CAD's webhook endpoint on a real port; it may be started, stopped and restarted."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/liaison/decisions"
        self.answer = 200
        self.failing_incidents: set[str] = set()
        # Per body: a status to answer instead of `answer` (None: `answer`).
        self.answer_for: Callable[[dict[str, Any]], int | None] = lambda doc: None
        self.delay = delay
        # Run when a body arrives, before it is answered (a test's doing: stop a database).
        self.on_receive: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.attempts: list[Attempt] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        app = FastAPI()

        @app.post("/liaison/decisions")
        async def receive(request: Request) -> Response:
            raw = await request.body()
            ok = signed_right(raw, request.headers.get("liaison-signature"))
            doc = json.loads(raw)
            if self.on_receive is not None:
                await self.on_receive(doc)
            if self.delay:
                await asyncio.sleep(self.delay)
            status = (401 if not ok else 500 if doc["incident_id"] in self.failing_incidents
                      else self.answer_for(doc) or self.answer)
            self.attempts.append(Attempt(
                doc["delivery_id"], doc["sequence"], doc["call_id"], doc["incident_id"],
                doc.get("cause") or doc["type"], status, ok, dict(request.headers), doc,
                time.monotonic(), datetime.now(UTC)))
            return Response(status_code=status,
                            content=b"" if status < 300 else b"CAD is not taking updates")

        self.app = app

    async def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server and self._task:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, 10)
            self._server = self._task = None

    def delivered(self, call_id: str | None = None) -> list[Attempt]:
        return [a for a in self.attempts
                if 200 <= a.answered < 300 and (call_id is None or a.call_id == call_id)]

    def tried(self, call_id: str) -> list[Attempt]:
        return [a for a in self.attempts if a.call_id == call_id]


@contextlib.asynccontextmanager
async def cad(*, up: bool = True, delay: float = 0.0) -> AsyncIterator[Cad]:
    c = Cad(delay=delay)
    if up:
        await c.start()
    try:
        yield c
    finally:
        await c.stop()


def settings_for(database_url: str, the_cad: Cad, **more: Any) -> Settings:
    return Settings(database_url=database_url, webhook_url=the_cad.url, webhook_secret=SECRET,
                    webhook_backoff_base=0.05, webhook_backoff_cap=0.25,
                    webhook_poll_interval=0.1, webhook_timeout=3, **more)


async def until(check: Callable[[], bool | Awaitable[bool]], what: str,
                within: float = WAIT) -> None:
    await eventually(check, what, within=within)


async def deliveries(server: Server, call_id: str) -> list[dict[str, Any]]:
    r = await server.client.get(f"/v1/calls/{call_id}/deliveries")
    assert r.status_code == 200, r.text
    assert r.json()["call_id"] == call_id
    return list(r.json()["deliveries"])


# The CAD's side of NENA-STA-024, in the samples' shapes (test_the_sample_messages_...
# checks them against PhrSite's files where ../shared is present).
def subscribe_response(request_id: str, subscription: str = "sub1234",
                       expires: int = 3600) -> dict[str, Any]:
    return {"subscribeResponse": {"requestId": request_id, "subscriptionId": subscription,
                                  "expires": expires, "statusCode": 200, "statusText": "OK"}}


def notify_with_eido(eidos: list[Any], *, transaction: str, subscription: str = "sub1234"
                     ) -> dict[str, Any]:
    """A CAD's NotifyWithEido message carrying these EIDOs."""
    return {"event": {"subscriptionId": subscription, "transactionId": transaction,
                      "notification": eidos}}


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
        await self.send(subscribe_response(request["requestId"], subscription,
                                           3600 if expires is None else expires))
        return request

    async def notify(self, eidos: list[Any], *, transaction: str,
                     subscription: str = "sub1234") -> dict[str, Any]:
        """The sample NotifyWithEido with these EIDOs; returns the eventResponse."""
        await self.send(notify_with_eido(eidos, transaction=transaction, subscription=subscription))
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
