"""NENA-STA-024 with Liaison as the notifier: a CAD key subscribes over a WebSocket
(subprotocol `emergency-ent1.0`) and is sent its calls as EIDOs whenever they change. The
conversation is adapters/eido/notifier.py's; this route carries it and feeds it the board
hub's changes (written by any instance). docs/eido.md "Liaison as the notifier"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from adapters.eido.notifier import CHANGES, NotifierSession, Subscription
from adapters.eido.subscriber import SUBPROTOCOL
from api.access import WS_UNAUTHENTICATED, CredentialsFirst, Principal, Role, allow, record
from api.board import WS_TRY_AGAIN_LATER
from api.board import _until_credentials_end as until_credentials_end
from service.calls.visibility import Audience
from service.store.db import is_outage

router = APIRouter(tags=["eido"], route_class=CredentialsFirst)
log = logging.getLogger("liaison.eido.notifier")
# A subscriber's messages are small (subscribe, eventResponse, …): one over this is refused.
MAX_CLIENT_MESSAGE = 64 * 1024


@router.websocket("/v1/eido/subscriptions")
async def eido_subscriptions(ws: WebSocket,
                             who: Annotated[Principal, allow(Role.cad)]) -> None:
    """A CAD's EIDO subscriptions: `subscribe` (requestSubType `new` or `single`),
    renewal, `unsubscribe`; `event`s with its calls' EIDOs, in the order they changed."""
    rt = ws.app.state.runtime
    if SUBPROTOCOL not in ws.scope.get("subprotocols", []):
        await ws.close(code=1002, reason=f"the subprotocol is {SUBPROTOCOL}")
        return
    await ws.accept(subprotocol=SUBPROTOCOL)
    # Subscribe to the hub before any subscription's first state is read: a change that
    # commits meanwhile is sent after it (the same state twice is sent once).
    hub = rt.hub.subscribe(Audience.full)  # read here for the call id; never sent on
    timeout = rt.settings.board_send_timeout

    async def send(message: dict[str, Any]) -> None:
        await asyncio.wait_for(ws.send_text(json.dumps(message)), timeout)

    async def subscribed(sub: Subscription) -> None:
        await record(ws, who, "eido.subscribe", call_id=sub.call_id,
                     target=f"{sub.kind}:{sub.id}")

    session = NotifierSession(who, engine=rt.engine, agency_id=rt.settings.eido_agency_id,
                              send=send, on_subscribed=subscribed)
    receiving = asyncio.create_task(ws.receive())
    changed = asyncio.create_task(hub.queue.get())
    overflow = asyncio.create_task(hub.overflowed.wait())
    ended = asyncio.create_task(until_credentials_end(ws, who))
    try:
        while True:
            done, _ = await asyncio.wait({receiving, changed, overflow, ended},
                                         timeout=await session.expire(),
                                         return_when=asyncio.FIRST_COMPLETED)
            if receiving in done:
                message = receiving.result()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text") or (message.get("bytes") or b"").decode(
                    "utf-8", "replace")
                if len(text) > MAX_CLIENT_MESSAGE:
                    await ws.close(code=1009, reason="a subscriber's message is at most "
                                                     f"{MAX_CLIENT_MESSAGE} bytes")
                    return
                await session.on_message(text)
                receiving = asyncio.create_task(ws.receive())
            if changed in done:
                _, body = changed.result()
                change = json.loads(body)
                if change.get("type") in CHANGES and change.get("call_id"):
                    await session.on_change(str(change["call_id"]))
                changed = asyncio.create_task(hub.queue.get())
            if overflow in done:
                # Too far behind to catch up: over; a new subscription is sent every active
                # incident's state again.
                await session.terminate_all()
                await ws.close(code=WS_TRY_AGAIN_LATER, reason="this subscriber fell behind")
                return
            if ended in done:
                await session.terminate_all()
                await ws.close(code=WS_UNAUTHENTICATED, reason="the key is no longer good")
                return
    except (WebSocketDisconnect, TimeoutError, RuntimeError):
        pass  # gone, or not reading what it is sent
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("EIDO notifier: the database is not answering; closing %s", who.actor)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=WS_TRY_AGAIN_LATER,
                                            reason="the database is not answering"), timeout)
    finally:
        rt.hub.unsubscribe(hub)
        tasks = (receiving, changed, overflow, ended)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
