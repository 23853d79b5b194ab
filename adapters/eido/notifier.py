"""NENA-STA-024 EIDO conveyance with Liaison as the notifier: a CAD subscribes over a
WebSocket (`/v1/eido/subscriptions`, api/eido_subscriptions.py) and is sent an EIDO of
each of its calls whenever Liaison decides or the team's status changes, in order. The
mirror of adapters/eido/subscriber.py; the conversation: docs/eido.md "Liaison as the
notifier".

One `NotifierSession` per connection, free of any web framework: messages in through
`on_message`, a changed call through `on_change`, the clock through `expire`; everything
it says goes out through `send`, in the order it is said.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eido.emit import call_to_eido
from service.access.auth import Principal
from service.calls.visibility import call_view, may_read
from service.errors import NotFound
from service.lifecycle.queries import get_call
from service.lifecycle.team import DISPOSITIONS
from service.store.tables import CALL

log = logging.getLogger("liaison.eido.notifier")

EIDO_MEDIA = "application/emergency.eido+json"
DEFAULT_EXPIRES = 3600      # seconds, when a subscribe names none
MAX_EXPIRES = 86_400        # a longer request is granted this long
MAX_SUBSCRIPTIONS = 100     # per connection
MAX_STATUS_TEXT = 200
_REMEMBERED_TRANSACTIONS = 10_000
# Board messages that change what a call's EIDO says (service/calls/visibility.py
# MESSAGE_TYPES lists them all; check-ins and follow-up notes change nothing in it).
CHANGES = frozenset({"decision", "call_updated", "call_closed", "status"})
_INCIDENT_PREFIX = "urn:emergency:uid:incidentid:"

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Subscription:
    id: str
    kind: str                    # "new": every call of the key's; "single": one call
    expires_at: float            # time.monotonic()
    call_id: str | None = None   # for "single"
    # The last EIDO sent of each call, to send a state once (a backup request is a status
    # and a decision in one commit: one state).
    sent: dict[str, str] = field(default_factory=dict)

    def covers(self, call_id: str) -> bool:
        return self.kind == "new" or self.call_id == call_id


class NotifierSession:
    """The subscriptions of one CAD connection, and what is sent to it."""

    def __init__(self, who: Principal, *, engine: AsyncEngine, agency_id: str,
                 send: Send, clock: Callable[[], float] = time.monotonic,
                 on_subscribed: Callable[[Subscription], Awaitable[None]] | None = None
                 ) -> None:
        self.who = who
        self.on_subscribed = on_subscribed  # e.g. to audit it
        self.engine = engine
        self.agency_id = agency_id
        self.send = send
        self.clock = clock
        self.subscriptions: dict[str, Subscription] = {}
        # transactionId -> subscriptionId, to act on a 481 in its eventResponse.
        self._transactions: OrderedDict[str, str] = OrderedDict()

    # --- what the CAD says ---------------------------------------------------------------

    async def on_message(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or len(message) != 1:
            await self._not_implemented("", "not a JSON object with one member")
            return
        [(kind, body)] = message.items()
        body = body if isinstance(body, dict) else {}
        if kind == "subscribe":
            await self._on_subscribe(body)
        elif kind == "unsubscribe":
            await self._on_unsubscribe(body)
        elif kind == "eventResponse":
            self._on_event_response(body)
        elif kind == "terminateResponse":
            log.info("EIDO subscriber %s: terminateResponse %s", self.who.actor,
                     body.get("statusCode"))
        else:
            await self._not_implemented(_text(body.get("requestId")), f"{kind[:40]} messages")

    async def _not_implemented(self, request_id: str, what: str) -> None:
        log.warning("EIDO subscriber %s sent what Liaison does not implement: %s",
                    self.who.actor, what)
        await self.send({"response": {"requestId": request_id, "statusCode": 501,
                                      "statusText": "Not implemented"}})

    async def _answer(self, request_id: str, code: int, text: str,
                      **more: Any) -> None:
        await self.send({"subscribeResponse": {"requestId": request_id, **more,
                                               "statusCode": code,
                                               "statusText": text[:MAX_STATUS_TEXT]}})

    async def _on_subscribe(self, body: dict[str, Any]) -> None:
        request_id = body.get("requestId")
        if not isinstance(request_id, str) or not request_id:
            await self._answer("", 400, "Bad Request: requestId is required")
            return
        expires = body.get("expires", DEFAULT_EXPIRES)
        if not isinstance(expires, int) or isinstance(expires, bool) or expires <= 0:
            await self._answer(request_id, 400, "Bad Request: expires must be a positive "
                                                "number of seconds")
            return
        granted = min(expires, MAX_EXPIRES)
        if "subscriptionId" in body:  # a renewal names the subscription only
            sub = self.subscriptions.get(_text(body["subscriptionId"]))
            if sub is None:
                await self._answer(request_id, 481, "Subscription does not exist")
                return
            sub.expires_at = self.clock() + granted
            await self._answer(request_id, 200, "OK", subscriptionId=sub.id, expires=granted)
            return
        if body.get("requestType") != "EIDO":
            await self._answer(request_id, 400, 'Bad Request: requestType must be "EIDO"')
            return
        sub_type = body.get("requestSubType")
        if sub_type == "resource" or "qualFilter" in body or "unitId" in body:
            # Unit subscriptions and filters: not done (docs/eido.md).
            await self._not_implemented(request_id, "resource subscriptions and filters")
            return
        if sub_type not in ("new", "single"):
            await self._answer(request_id, 400, 'Bad Request: requestSubType must be "new" '
                                                'or "single"')
            return
        accepts = body.get("requestAccepts")
        if accepts is not None and EIDO_MEDIA not in str(accepts):
            await self._answer(request_id, 406, f"Not Acceptable: Liaison sends {EIDO_MEDIA}")
            return
        call_id = None
        if sub_type == "single":
            call_id = await self._call_of(_text(body.get("incidentId")))
            if call_id is None:
                await self._answer(request_id, 404, "Not Found: no such incident")
                return
        elif "incidentId" in body:
            await self._answer(request_id, 400, "Bad Request: incidentId is for a "
                                                '"single" subscription')
            return
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            await self._answer(request_id, 503, "Service Unavailable: at most "
                                                f"{MAX_SUBSCRIPTIONS} subscriptions a "
                                                "connection")
            return
        sub = Subscription(id=str(uuid.uuid4()), kind=sub_type,
                           expires_at=self.clock() + granted, call_id=call_id)
        self.subscriptions[sub.id] = sub
        if self.on_subscribed is not None:
            await self.on_subscribed(sub)
        await self._answer(request_id, 200, "OK", subscriptionId=sub.id, expires=granted)
        # At once, the current state: every active incident (a "new" subscription,
        # NENA-STA-024 §2.1.1), or the one incident asked for.
        calls = [call_id] if call_id else await self._active_calls()
        await self._notify(sub, calls, first=True)

    async def _on_unsubscribe(self, body: dict[str, Any]) -> None:
        sub_id = _text(body.get("subscriptionId"))
        found = self.subscriptions.pop(sub_id, None)
        await self.send({"unsubscribeResponse": {
            "requestId": _text(body.get("requestId")), "subscriptionId": sub_id,
            "statusCode": 200 if found else 481,
            "statusText": "OK" if found else "Subscription does not exist"}})

    def _on_event_response(self, body: dict[str, Any]) -> None:
        sub_id = self._transactions.pop(_text(body.get("transactionId")), None)
        code = body.get("statusCode")
        if code == 200:
            return
        log.warning("EIDO subscriber %s answered an event %s: %s", self.who.actor, code,
                    _text(body.get("statusText"))[:200])
        if code == 481 and sub_id is not None:
            self.subscriptions.pop(sub_id, None)  # it does not know the subscription

    # --- what changed ----------------------------------------------------------------------

    async def on_change(self, call_id: str) -> None:
        """A call changed (a board message of a type in CHANGES): its state to every
        subscription that covers it, if the key may read it."""
        subs = [s for s in self.subscriptions.values() if s.covers(call_id)]
        for sub in subs:
            if sub.id in self.subscriptions:
                await self._notify(sub, [call_id], first=False)

    async def expire(self) -> float | None:
        """End the subscriptions whose time ran out (a terminate for each); the seconds
        until the next one will (None: there is none)."""
        now = self.clock()
        for sub in [s for s in self.subscriptions.values() if s.expires_at <= now]:
            del self.subscriptions[sub.id]
            await self.send({"terminate": {"requestId": str(uuid.uuid4()),
                                           "subscriptionId": sub.id}})
        if not self.subscriptions:
            return None
        return max(0.0, min(s.expires_at for s in self.subscriptions.values()) - now)

    async def terminate_all(self) -> None:
        """Say each subscription is over (the connection is about to close)."""
        for sub_id in list(self.subscriptions):
            del self.subscriptions[sub_id]
            await self.send({"terminate": {"requestId": str(uuid.uuid4()),
                                           "subscriptionId": sub_id}})

    # --- the EIDOs -------------------------------------------------------------------------

    async def _notify(self, sub: Subscription, call_ids: list[str], *, first: bool) -> None:
        documents = []
        for call_id in call_ids:
            doc = await self._eido(call_id)
            if doc is None:
                continue
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            if sub.sent.get(call_id) == text:
                continue  # this state was sent already
            sub.sent[call_id] = text
            documents.append(doc)
        if not documents and not first:
            return
        transaction = str(uuid.uuid4())
        self._transactions[transaction] = sub.id
        while len(self._transactions) > _REMEMBERED_TRANSACTIONS:
            self._transactions.popitem(last=False)
        # An empty first notification says "no active incident" (as a CAD's does).
        await self.send({"event": {"subscriptionId": sub.id, "transactionId": transaction,
                                   "notification": documents}})

    async def _eido(self, call_id: str) -> dict[str, Any] | None:
        """The call's EIDO as the key may see it (service/calls/visibility.py), or None
        when it may not see the call at all."""
        try:
            view = await get_call(self.engine, call_id)
        except NotFound:
            return None
        if not may_read(view["call"], self.who):
            return None
        return call_to_eido(call_view(view, self.who), agency_id=self.agency_id,
                            dispositions=DISPOSITIONS)

    async def _active_calls(self) -> list[str]:
        """The open calls the key may read, oldest first."""
        c = CALL.c
        stmt = select(c.id).where(c.closed_at.is_(None)).order_by(c.opened_at, c.id)
        if self.who.source and self.who.source != "*":
            stmt = stmt.where(c.source == self.who.source)
        async with self.engine.connect() as conn:
            return list((await conn.execute(stmt)).scalars())

    async def _call_of(self, incident_id: str) -> str | None:
        """The call an EIDO incident id names, as Liaison's EIDOs give it (the `$id`):
        `urn:emergency:uid:incidentid:<call id>:<agency>` for Liaison's own calls, the
        CAD's own for a call that came as an EIDO. None unless the key may read it."""
        c = CALL.c
        own = f":{self.agency_id}"
        if incident_id.startswith(_INCIDENT_PREFIX) and incident_id.endswith(own):
            where = c.id == incident_id[len(_INCIDENT_PREFIX):-len(own)]
        else:
            where = (c.source == "eido") & (c.incident_id == incident_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(c.id, c.source, c.referred_by).where(where))
                   ).mappings().first()
        if row is None or not may_read(dict(row), self.who):
            return None
        return str(row["id"])


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
