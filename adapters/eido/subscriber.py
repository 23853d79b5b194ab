"""NENA-STA-024 EIDO conveyance with Liaison as the subscriber: a standing WebSocket
subscription to a CAD's new incidents (`liaison serve --eido-subscribe wss://…`), each
EIDO stored before it is acknowledged, renewed before it expires, resubscribed with
backoff after a drop or a terminate. The conversation, what is acknowledged when, and what
is not done: docs/eido.md "The subscription".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake
from websockets.typing import Subprotocol

from adapters.eido.ingest import SOURCE, keep_reject, prepare
from adapters.eido.mapping import MappingInvalid
from adapters.eido.parse import EidoRejected
from adapters.outbound import backoff
from service.policy.holder import PolicyHolder
from service.policy.region import Region
from service.settings import Settings
from service.store.tables import REJECT
from service.writing.writer import Writer

log = logging.getLogger("liaison.eido.subscriber")

SUBPROTOCOL = Subprotocol("emergency-ent1.0")
ACCEPTS = 'application/emergency.eido+json; version="1"'
# EIDO notes may be large, and the first notification holds every active incident.
MAX_MESSAGE = 16 * 1024 * 1024
MAX_STATUS_TEXT = 500
_MAX_REJECT_BODY = 1_000_000  # what RecordReject keeps
SENDER = "subscriber"  # who its rejects name as their sender (cad_reject.sender)


class SessionEnded(Exception):
    """The connection is to be closed and opened again after a backoff."""


@dataclass
class SubscriberState:
    """What the subscriber is doing, for /v1/health and the logs."""

    url: str
    connected: bool = False
    subscription_id: str | None = None
    subscribed_at: str | None = None
    expires: int | None = None
    last_event_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    next_attempt_at: str | None = None
    connects: int = 0          # WebSocket connections opened
    subscriptions: int = 0     # new subscriptions accepted
    renewals: int = 0          # renewals accepted
    events: int = 0            # event notifications answered
    eidos_stored: int = 0      # EIDOs committed (a repeat of a stored one counts again)
    eidos_refused: int = 0     # EIDOs refused and kept as rejects
    terminations: int = 0      # terminate messages for our subscription
    ignored: int = 0           # messages of kinds a subscriber does not act on


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _public_url(url: str) -> str:
    """The URL without credentials or query, fit for logs, health and reject paths."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _text(issues: list[dict[str, Any]]) -> str:
    return "; ".join(f"{i['field']}: {i['reason']}" for i in issues)


class EidoSubscriber:
    """Keeps one subscription to a CAD's EIDO WebSocket service for as long as it runs."""

    def __init__(self, url: str, *, writer: Writer, engine: AsyncEngine, policy: PolicyHolder,
                 mapping_path: str = "", strict: bool = False, expires: int = 3600,
                 backoff_base: float = 1.0, backoff_cap: float = 60.0,
                 response_timeout: float = 10.0,
                 rand: Callable[[], float] = random.random,
                 max_message: int = MAX_MESSAGE, rejects_kept: int | None = None,
                 region: Region | None = None) -> None:
        self.url = url
        # Several agencies (issue 17): each EIDO's call is claimed as a CAD event's is.
        self.region = region
        self.writer = writer
        self.engine = engine
        self.policy = policy
        self.mapping_path = mapping_path
        self.strict = strict
        self.expires = expires
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.response_timeout = response_timeout
        self.rand = rand
        # A message over this many bytes closes the connection (1009) and is not read.
        self.max_message = max_message
        # Refused documents kept, the newest this many (LIAISON_REJECTS_PER_KEY).
        self.rejects_kept = rejects_kept
        self.state = SubscriberState(url=_public_url(url))
        self.reject_path = self.state.url[:200]
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        # Per connection:
        self._pending: tuple[str, bool, float] | None = None  # request id, renewal, deadline
        self._renew_at: float | None = None
        self._healthy = False
        self._started = 0.0
        self._unsubscribed = asyncio.Event()

    @classmethod
    def from_settings(cls, settings: Settings, *, writer: Writer, engine: AsyncEngine,
                      policy: PolicyHolder, region: Region | None = None
                      ) -> EidoSubscriber | None:
        if not settings.eido_subscribe:
            return None
        return cls(settings.eido_subscribe, writer=writer, engine=engine, policy=policy,
                   region=region,
                   mapping_path=settings.eido_mapping, strict=settings.eido_strict,
                   expires=settings.eido_subscribe_expires,
                   backoff_base=settings.eido_subscribe_backoff_base,
                   backoff_cap=settings.eido_subscribe_backoff_cap,
                   max_message=settings.eido_subscribe_max_message,
                   rejects_kept=settings.rejects_per_key)

    # --- life --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def status(self) -> dict[str, Any]:
        return {"running": self.running, **asdict(self.state)}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="liaison-eido-subscriber")

    async def stop(self) -> None:
        """Unsubscribe (briefly waiting for the answer), then close."""
        ws, subscription = self._ws, self.state.subscription_id
        if ws is not None and subscription is not None and self.running:
            self._unsubscribed.clear()
            with contextlib.suppress(Exception):
                await ws.send(json.dumps({"unsubscribe": {
                    "requestId": str(uuid.uuid4()), "subscriptionId": subscription}}))
                await asyncio.wait_for(self._unsubscribed.wait(), 1.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.state.connected = False
        self.state.next_attempt_at = None

    async def _run(self) -> None:
        failures = 0
        while True:
            self._healthy = False
            try:
                await self._session()
                reason = "the notifier closed the connection"
            except asyncio.CancelledError:
                raise
            except ConnectionClosedOK as exc:
                reason = f"the notifier closed the connection ({exc})"
            except ConnectionClosed as exc:
                reason = f"connection lost ({exc})"
            except (SessionEnded, OSError, TimeoutError, InvalidHandshake) as exc:
                reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SessionEnded) \
                    else str(exc)
            except Exception as exc:  # noqa: BLE001 - the subscriber must outlive any fault
                log.exception("EIDO subscriber failed")
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
                self._pending = None
                self._renew_at = None
                self.state.connected = False
                self.state.subscription_id = None
            failures = 1 if self._healthy else failures + 1
            delay = backoff(failures, self.backoff_base, self.backoff_cap, self.rand)
            self._error(reason)
            self.state.next_attempt_at = (datetime.now(UTC) + timedelta(seconds=delay)
                                          ).isoformat(timespec="milliseconds")
            log.warning("EIDO subscription to %s ended (%s); subscribing again in %.2f s",
                        self.state.url, reason, delay)
            await asyncio.sleep(delay)

    def _error(self, reason: str) -> None:
        self.state.last_error = reason[:500]
        self.state.last_error_at = _now()

    # --- one connection ----------------------------------------------------------------

    async def _session(self) -> None:
        async with connect(self.url, subprotocols=[SUBPROTOCOL], max_size=self.max_message,
                           open_timeout=self.response_timeout, close_timeout=2,
                           user_agent_header="Liaison-EIDO-Subscriber/0.1") as ws:
            self._ws = ws
            self._started = time.monotonic()
            self.state.connected = True
            self.state.connects += 1
            self.state.next_attempt_at = None
            await self._subscribe(ws, renewal=False)
            while True:
                message = await self._receive(ws)
                if message is not None:
                    await self._handle(ws, message)

    async def _receive(self, ws: ClientConnection) -> str | bytes | None:
        """The next message, or None when a deadline passed and was dealt with."""
        now = time.monotonic()
        deadlines = [d for d in (self._pending[2] if self._pending else None,
                                 self._renew_at if self._pending is None else None)
                     if d is not None]
        if not deadlines:
            return await ws.recv()
        try:
            return await asyncio.wait_for(ws.recv(), max(0.0, min(deadlines) - now))
        except TimeoutError:
            pass
        now = time.monotonic()
        if self._pending is not None and now >= self._pending[2]:
            raise SessionEnded(f"no subscribeResponse within {self.response_timeout:g} s")
        if self._pending is None and self._renew_at is not None and now >= self._renew_at:
            await self._subscribe(ws, renewal=True)
        return None

    async def _subscribe(self, ws: ClientConnection, *, renewal: bool) -> None:
        request_id = str(uuid.uuid4())
        body: dict[str, Any]
        if renewal and self.state.subscription_id:
            # A renewal names the subscription and nothing of what it is for.
            body = {"requestId": request_id, "subscriptionId": self.state.subscription_id,
                    "expires": self.expires}
        else:
            renewal = False
            body = {"requestId": request_id, "requestType": "EIDO", "requestSubType": "new",
                    "requestAccepts": ACCEPTS, "expires": self.expires}
        self._pending = (request_id, renewal, time.monotonic() + self.response_timeout)
        self._renew_at = None
        await ws.send(json.dumps({"subscribe": body}))

    async def _handle(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            await self._keep(raw.decode("utf-8", "replace"),  # type: ignore[union-attr]
                             [{"field": "(message)", "reason": f"not UTF-8 text: {exc}"}])
            return
        try:
            message = json.loads(text, parse_constant=_no_constants)
        except (ValueError, RecursionError) as exc:
            await self._keep(text, [{"field": "(message)",
                                     "reason": f"not a JSON document: {exc}"}])
            return
        if not isinstance(message, dict):
            await self._keep(text, [{"field": "(message)",
                                     "reason": "not a JSON object with one member"}])
            return
        if "event" in message:
            await self._on_event(ws, message["event"], text)
        elif "subscribeResponse" in message:
            await self._on_subscribe_response(ws, message["subscribeResponse"])
        elif "terminate" in message:
            await self._on_terminate(ws, message["terminate"])
        elif "response" in message:
            self._on_response(message["response"])
        elif "unsubscribeResponse" in message:
            self._unsubscribed.set()
        else:
            self.state.ignored += 1
            log.warning("EIDO subscriber: ignored a message of kind %s",
                        ", ".join(map(str, message))[:80] or "(empty)")

    # --- subscriptions -----------------------------------------------------------------

    async def _on_subscribe_response(self, ws: ClientConnection, body: Any) -> None:
        if not isinstance(body, dict) or self._pending is None \
                or body.get("requestId") != self._pending[0]:
            log.warning("EIDO subscriber: a subscribeResponse to no pending request: %s",
                        json.dumps(body)[:200])
            return
        _, renewal, _ = self._pending
        code, text = body.get("statusCode"), body.get("statusText")
        if code != 200:
            self._pending = None
            if renewal and code == 481:
                log.warning("EIDO subscription %s is unknown to the notifier; subscribing "
                            "anew", self.state.subscription_id)
                self.state.subscription_id = None
                await self._subscribe(ws, renewal=False)
                return
            raise SessionEnded(f"subscribe refused: {code} {text}"[:300])
        subscription = body.get("subscriptionId") or (
            self.state.subscription_id if renewal else None)
        if not isinstance(subscription, str) or not subscription:
            raise SessionEnded("subscribeResponse 200 without a subscriptionId")
        self._pending = None
        granted = body.get("expires")
        expires = granted if isinstance(granted, int) and not isinstance(granted, bool) \
            and granted > 0 else self.expires
        self._renew_at = time.monotonic() + 0.75 * expires
        self.state.expires = expires
        if renewal:
            self.state.renewals += 1
        else:
            self.state.subscriptions += 1
            self.state.subscribed_at = _now()
            log.info("EIDO subscription %s to %s for %d s", subscription, self.state.url,
                     expires)
        self.state.subscription_id = subscription

    def _on_response(self, body: Any) -> None:
        """`response` (501 Not implemented) to one of our requests."""
        if isinstance(body, dict) and self._pending is not None \
                and body.get("requestId") == self._pending[0]:
            self._pending = None
            raise SessionEnded(f"subscribe refused: {body.get('statusCode')} "
                               f"{body.get('statusText')}"[:300])
        self.state.ignored += 1

    async def _on_terminate(self, ws: ClientConnection, body: Any) -> None:
        body = body if isinstance(body, dict) else {}
        subscription = body.get("subscriptionId")
        ours = subscription is not None and subscription == self.state.subscription_id
        await ws.send(json.dumps({"terminateResponse": {
            "requestId": body.get("requestId", ""), "subscriptionId": subscription or "",
            "statusCode": 200 if ours else 481,
            "statusText": "OK" if ours else "Subscription does not exist"}}))
        if not ours:
            return
        self.state.terminations += 1
        self.state.subscription_id = None
        self._renew_at = None
        if time.monotonic() - self._started < self.backoff_cap:
            self._healthy = False  # a notifier that ends every subscription at once waits longer
        raise SessionEnded(f"subscription {subscription} terminated by the notifier")

    # --- notifications -----------------------------------------------------------------

    def _ours(self, subscription: Any) -> bool:
        if subscription == self.state.subscription_id and subscription is not None:
            return True
        # A notifier may send the first notification before its subscribeResponse.
        return self.state.subscription_id is None and self._pending is not None

    async def _on_event(self, ws: ClientConnection, body: Any, text: str) -> None:
        transaction = body.get("transactionId") if isinstance(body, dict) else None
        if not isinstance(transaction, str) or not transaction:
            # Nothing to acknowledge it with: keep it for an operator and go on.
            await self._keep(text, [{"field": "event.transactionId",
                                     "reason": "required: the id to acknowledge the event with"}])
            return
        if not self._ours(body.get("subscriptionId")):
            await self._ack(ws, transaction, 481, "Subscription does not exist")
            return
        documents = body.get("notification")
        if documents is None:
            documents = []
        if not isinstance(documents, list):
            problem = [{"field": "event.notification", "reason": "must be an array of EIDOs"}]
            await self._keep(text, problem)
            await self._ack(ws, transaction, 400, f"Bad Request: {_text(problem)}")
            return
        try:
            stored, refused = await self._store(documents)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the event is not stored
            reason = ("the EIDO mapping file is broken" if isinstance(exc, MappingInvalid)
                      else f"storage failed ({type(exc).__name__}: {exc})")
            log.error("EIDO event %s not stored: %s", transaction, exc)
            with contextlib.suppress(Exception):
                await self._ack(ws, transaction, 503, f"Service Unavailable: {reason}")
            raise SessionEnded(f"event {transaction} not stored: {reason}"[:300]) from exc
        self.state.events += 1
        self.state.eidos_stored += stored
        self.state.eidos_refused += len(refused)
        self.state.last_event_at = _now()
        self._healthy = True
        if refused:
            first = refused[0]
            await self._ack(ws, transaction, 400,
                            f"Bad Request: {len(refused)} of {len(documents)} EIDOs refused "
                            f"(kept for an operator); notification[{first[0]}]: "
                            f"{_text(first[1])}")
        else:
            await self._ack(ws, transaction, 200, "OK")

    async def _store(self, documents: list[Any]
                     ) -> tuple[int, list[tuple[int, list[dict[str, Any]]]]]:
        """Commit every acceptable EIDO and keep every refused one; raise if either fails."""
        policy = self.policy.compiled
        commands = []
        refused: list[tuple[int, list[dict[str, Any]]]] = []
        for i, document in enumerate(documents):
            try:
                command, _ = await prepare(document, engine=self.engine, policy=policy,
                                           mapping_path=self.mapping_path,
                                           strict=self.strict, deadline=self.writer.patience,
                                           region=self.region.view() if self.region
                                           else None)
            except EidoRejected as rejected:
                refused.append((i, [e.as_dict() for e in rejected.errors]))
                await self._keep(json.dumps(document, ensure_ascii=False),
                                 [e.as_dict() for e in rejected.errors], raise_errors=True)
                continue
            commands.append(command)
        # Queued in the notification's order and committed together (group commit).
        results = await asyncio.gather(*(self.writer.submit(c) for c in commands),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return len(commands), refused

    async def _keep(self, body: str, errors: list[dict[str, Any]], *,
                    raise_errors: bool = False) -> None:
        """Keep a refused document once: the same body sent again finds its reject."""
        body = body.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold a NUL
        try:
            async with self.engine.connect() as conn:
                found = (await conn.execute(select(REJECT.c.id).where(
                    REJECT.c.source == SOURCE, REJECT.c.path == self.reject_path,
                    REJECT.c.body == body[:_MAX_REJECT_BODY]).limit(1))).first()
            if found is None:
                await keep_reject(self.writer, path=self.reject_path, errors=errors, body=body,
                                  sender=SENDER, keep=self.rejects_kept)
            log.warning("EIDO from %s refused%s: %s", self.state.url,
                        " again" if found else "", _text(errors)[:300])
        except Exception:
            if raise_errors:
                raise
            log.exception("could not keep a refused EIDO message")

    async def _ack(self, ws: ClientConnection, transaction: str, code: int, text: str) -> None:
        await ws.send(json.dumps({"eventResponse": {
            "transactionId": transaction, "statusCode": code,
            "statusText": text[:MAX_STATUS_TEXT]}}))
