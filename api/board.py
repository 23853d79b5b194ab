"""The live board stream: replay from the database after `after`, then live, no gaps,
no repeats. The protocol (messages, order, resync, close codes): docs/board.md."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from api.access import (
    COOKIE,
    WS_UNAUTHENTICATED,
    CredentialsFirst,
    Principal,
    Role,
    allow,
    bearer_token,
    record,
)
from service.access.auth import SessionLimits, session_principal
from service.calls.visibility import audience_of, sees_agency
from service.errors import Unavailable
from service.live.board import agency_only
from service.live.replay import Page
from service.live.stream import Frames, Message, frames_of
from service.live.websocket import FRAMES
from service.store.db import is_outage
from service.store.tables import ANY_AGENCY, utcnow
from service.units.queries import list_units

router = APIRouter(tags=["board"], route_class=CredentialsFirst)
log = logging.getLogger("liaison.board")
WS_TRY_AGAIN_LATER = 1013
WS_NOT_FOUND = 4404  # another agency's board (issue 17)


@router.websocket("/v1/board")
async def board(ws: WebSocket,
                who: Annotated[Principal, allow(Role.call_team, Role.dispatcher, Role.supervisor)],
                after: int | None = Query(default=None, ge=0, le=2**63 - 1),
                scope: Literal["all", "live"] = "all", snapshot: bool = False,
                agency: str | None = Query(default=None, min_length=1, max_length=40)
                ) -> None:
    """`after`: replay the messages after that seq first (none: live from now on).
    `scope=live`: replay only the live calls' messages (service/board.live_calls), so a
    page opening with after=0 gets what is on the board now, not the whole history.
    `snapshot=true`: after the replay, one `snapshot` message (no seq) with the roster's
    units as they are now; `unit` messages keep it current (docs/board.md).
    `agency`: a regional person's board of one agency; another agency than a person's
    own is closed at once with 4404 (audited)."""
    rt = ws.app.state.runtime
    live_since = (utcnow() - timedelta(hours=rt.settings.board_replay_hours)
                  if scope == "live" else None)
    await ws.accept()
    if agency is not None and not sees_agency(who, agency):
        await record(ws, who, "board.agency", outcome="denied", target=agency)
        await ws.close(code=WS_NOT_FOUND, reason=f"no agency {agency!r}")
        return
    # A person of one agency gets its calls' messages only (issue 17); a regional person
    # may narrow to one agency's.
    agency = agency or who.agency
    # Subscribe before replaying: whatever commits meanwhile arrives on its feed, and
    # the seq check drops what the replay already sent.
    # Dispatchers get each message's restricted form (service/calls/visibility.py).
    audience = audience_of(who)
    frames: Frames | None = ws.scope.get("extensions", {}).get(FRAMES)
    feed = rt.hub.feed(audience, frames, agency_only(agency))
    if after is not None:
        feed.last = after
    send_timeout = rt.settings.board_send_timeout
    sending_since: float | None = None  # loop time the send under way began

    async def send(text: str) -> None:
        nonlocal sending_since
        sending_since = asyncio.get_running_loop().time()
        await ws.send_text(text)
        sending_since = None

    async def send_all(batch: list[Message], page: Page | None = None) -> None:
        """In order, as one write of their frames when the connection takes frames; a
        replay page in its pieces (made once for every board that shares it), each
        written once the transport takes more, so a board's unsent replay stays small."""
        nonlocal sending_since
        if frames is None:
            for message in batch:
                await send(message.text)
            return
        pieces = page.pieces if page is not None else [(batch, None)]
        for i, (messages, data) in enumerate(pieces):
            sending_since = asyncio.get_running_loop().time()
            await frames.writable()
            if not frames.is_open():
                # Closing: fails as a send on a closed websocket does.
                for rest, _ in pieces[i:]:
                    for message in rest:
                        await send(message.text)
                return
            frames.write(data if data is not None else frames_of(messages))
            sending_since = None

    async def pump() -> None:
        if after is not None:
            while True:
                # Shared with the boards opening at the same moment (service/live/replay.py).
                page = await rt.replays.page(feed.last, live_since=live_since,
                                             agency=agency, audience=audience)
                if page.messages:
                    await send_all(page.messages, page)
                    feed.last = page.messages[-1].seq
                if not page.more:
                    break
        if snapshot:
            await send(await _snapshot(rt.engine, agency))
        while True:
            # What came while this client was behind, then straight from the hub (no
            # task switch, no frame per client) until it falls behind again.
            batch = feed.take()
            if batch:
                await send_all(batch)
                feed.last = batch[-1].seq
                continue
            feed.go_live()
            await feed.wake.wait()
            feed.wake.clear()

    async def stalled() -> None:
        """Return once a send has waited longer than board_send_timeout: the client has
        stopped reading (its buffers, and the kernel's, are full)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(send_timeout / 4)
            began = sending_since
            if began is not None and loop.time() - began > send_timeout:
                break
        log.warning("a board client stopped reading (a send waited over %g s); closed",
                    send_timeout)

    pumping = asyncio.create_task(pump())
    receiving = asyncio.create_task(_drain_client(ws))
    overflow = asyncio.create_task(feed.overflowed.wait())
    stuck = asyncio.create_task(stalled())
    ended = asyncio.create_task(_until_credentials_end(ws, who))
    tasks = (pumping, receiving, overflow, stuck, ended)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        rt.hub.unsubscribe(feed)  # nothing more is written to it but what follows
        if ended in done and not receiving.done():
            await ws.close(code=WS_UNAUTHENTICATED, reason="the session has ended")
        if (overflow in done or stuck in done) and not receiving.done():
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumping
            # Fell behind: say where to resume from and let the client reconnect. A client
            # that reads nothing gets neither; the server cuts it off after the close
            # timeout (service/live/websocket.py).
            await asyncio.wait_for(_resync_and_close(ws, feed.last), send_timeout)
        failed = pumping.exception() if pumping in done and not pumping.cancelled() else None
        if failed is not None and is_outage(failed) and not receiving.done():
            await asyncio.wait_for(ws.close(code=WS_TRY_AGAIN_LATER,
                                            reason="the database is not answering"),
                                   send_timeout)
    except (WebSocketDisconnect, TimeoutError, RuntimeError):
        pass
    finally:
        rt.hub.unsubscribe(feed)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def _snapshot(engine: Any, agency: str) -> str:
    """The opening snapshot: the units on the roster now (the replay leaves unit messages
    out of `scope=live`; this is where a board gets them), the agency's only."""
    units = await list_units(engine, agency=None if agency == ANY_AGENCY else agency)
    return json.dumps({"type": "snapshot", "seq": None, "call_id": None,
                       "units": [u.model_dump(mode="json") for u in units]},
                      separators=(",", ":"))


async def _resync_and_close(ws: WebSocket, last: int) -> None:
    await ws.send_text(json.dumps({
        "type": "resync", "seq": last, "call_id": None,
        "reason": f"this client fell behind; reconnect with ?after={last}"}))
    await ws.close(code=WS_TRY_AGAIN_LATER)


async def _until_credentials_end(ws: WebSocket, who: Principal) -> None:
    """Return once the session (logout, idle, lifetime, disabled user) or the key
    (revoked, expired) behind this connection is no longer good."""
    rt = ws.app.state.runtime
    limits = SessionLimits.from_settings(rt.settings)
    token = ws.cookies.get(COOKIE)
    key = bearer_token(ws)
    while True:
        await asyncio.sleep(rt.settings.session_recheck_seconds)
        try:
            if who.kind == "user" and token:
                # Watching the board is not activity: it does not keep the session alive.
                if await session_principal(rt.engine, token, limits, touch=False,
                                           deadline=rt.writer.patience) is None:
                    return
            elif who.kind == "key" and key and await rt.keys.principal(key) is None:
                return
        except Unavailable as exc:
            # The database away is not a logged-out person: keep the board (nothing can end
            # a session while nothing can be written) and check again next time.
            log.warning("could not re-check a board's credentials: %s", exc.message)


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
