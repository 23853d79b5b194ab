"""The live board stream: replay from the database after `after`, then live, no gaps,
no repeats."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from api.access import COOKIE, WS_UNAUTHENTICATED, Principal, Role, allow, bearer_token
from service.auth import SessionLimits, session_principal
from service.board import read_after
from service.tables import utcnow
from service.visibility import audience_of

router = APIRouter(tags=["board"])
SEND_TIMEOUT = 10.0


@router.websocket("/v1/board")
async def board(ws: WebSocket,
                who: Annotated[Principal, allow(Role.call_team, Role.dispatcher, Role.supervisor)],
                after: int | None = Query(default=None, ge=0, le=2**63 - 1),
                scope: Literal["all", "live"] = "all") -> None:
    """`after`: replay the messages after that seq first (none: live from now on).
    `scope=live`: replay only the live calls' messages (service/board.live_calls), so a
    page opening with after=0 gets what is on the board now, not the whole history."""
    rt = ws.app.state.runtime
    live_since = (utcnow() - timedelta(hours=rt.settings.board_replay_hours)
                  if scope == "live" else None)
    await ws.accept()
    # Subscribe before replaying: whatever commits meanwhile arrives on the queue, and
    # the seq check drops what the replay already sent.
    # Dispatchers get each message's restricted form (service/visibility.py).
    audience = audience_of(who)
    sub = rt.hub.subscribe(audience)
    last = sub.position if after is None else after

    async def pump() -> None:
        nonlocal last
        if after is not None:
            while True:
                rows = await read_after(rt.engine, last, live_since=live_since)
                for row in rows:
                    await ws.send_text(row.text(audience))
                    last = row.seq
                if len(rows) < 500:
                    break
        while True:
            # No task or timer per message: the overflow watch below stops a stuck send.
            seq, text = await sub.queue.get()
            if seq > last:
                await ws.send_text(text)
                last = seq

    pumping = asyncio.create_task(pump())
    receiving = asyncio.create_task(_drain_client(ws))
    overflow = asyncio.create_task(sub.overflowed.wait())
    ended = asyncio.create_task(_until_credentials_end(ws, who))
    try:
        done, _ = await asyncio.wait({pumping, receiving, overflow, ended},
                                     return_when=asyncio.FIRST_COMPLETED)
        if ended in done and not receiving.done():
            await ws.close(code=WS_UNAUTHENTICATED, reason="the session has ended")
        if overflow in done and not receiving.done():
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
            # Fell behind: say where to resume from and let the client reconnect.
            await asyncio.wait_for(ws.send_text(json.dumps({
                "type": "resync", "seq": last, "call_id": None,
                "reason": f"this client fell behind; reconnect with ?after={last}"})),
                SEND_TIMEOUT)
            await ws.close(code=1013)
    except (WebSocketDisconnect, TimeoutError, RuntimeError):
        pass
    finally:
        rt.hub.unsubscribe(sub)
        for task in (pumping, receiving, overflow, ended):
            task.cancel()
        for task in (pumping, receiving, overflow, ended):
            with contextlib.suppress(BaseException):
                await task


async def _until_credentials_end(ws: WebSocket, who: Principal) -> None:
    """Return once the session (logout, idle, lifetime, disabled user) or the key
    (revoked, expired) behind this connection is no longer good."""
    rt = ws.app.state.runtime
    limits = SessionLimits.from_settings(rt.settings)
    token = ws.cookies.get(COOKIE)
    key = bearer_token(ws)
    while True:
        await asyncio.sleep(rt.settings.session_recheck_seconds)
        if who.kind == "user" and token:
            # Watching the board is not activity: it does not keep the session alive.
            if await session_principal(rt.engine, token, limits, touch=False) is None:
                return
        elif who.kind == "key" and key and await rt.keys.principal(key) is None:
            return


async def _drain_client(ws: WebSocket) -> None:
    """Notice a departed client; clients have nothing to say to the board, so a message
    over `board_max_client_message` bytes closes the connection with 1009 (too big).
    (`liaison serve` also caps every websocket message at uvicorn's ws_max_size.)"""
    limit = ws.app.state.runtime.settings.board_max_client_message
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
            data = msg.get("bytes") or (msg.get("text") or "").encode()
            if len(data) > limit:
                await ws.close(code=1009, reason=f"board clients send nothing over {limit} "
                                                 "bytes")
                return
