"""The live board stream: replay from the database after `after`, then live, no gaps,
no repeats."""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from service.board import message_text, read_after

router = APIRouter(tags=["board"])
SEND_TIMEOUT = 10.0


@router.websocket("/v1/board")
async def board(ws: WebSocket, after: int | None = Query(default=None, ge=0)) -> None:
    rt = ws.app.state.runtime
    await ws.accept()
    # Subscribe before replaying: whatever commits meanwhile arrives on the queue, and
    # the seq check below drops what the replay already sent.
    sub = rt.hub.subscribe()
    last = sub.position if after is None else after
    receiver = asyncio.create_task(_drain_client(ws))
    try:
        if after is not None:
            while True:
                rows = await read_after(rt.engine, last)
                for seq, body in rows:
                    await asyncio.wait_for(ws.send_text(message_text(seq, body)), SEND_TIMEOUT)
                    last = seq
                if len(rows) < 500:
                    break
        overflow = asyncio.create_task(sub.overflowed.wait())
        while not receiver.done():
            # Send whatever is queued without a task per message; wait only when idle.
            while not sub.queue.empty() and not sub.overflowed.is_set():
                seq, text = sub.queue.get_nowait()
                if seq > last:
                    await asyncio.wait_for(ws.send_text(text), SEND_TIMEOUT)
                    last = seq
            if sub.overflowed.is_set():
                # Fell behind: say where to resume from and let the client reconnect.
                await asyncio.wait_for(ws.send_text(json.dumps({
                    "type": "resync", "seq": last, "call_id": None,
                    "reason": f"this client fell behind; reconnect with ?after={last}"})),
                    SEND_TIMEOUT)
                await ws.close(code=1013)
                break
            get = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait({get, overflow, receiver},
                                         return_when=asyncio.FIRST_COMPLETED)
            if get in done:
                seq, text = get.result()
                if seq > last:
                    await asyncio.wait_for(ws.send_text(text), SEND_TIMEOUT)
                    last = seq
            else:
                get.cancel()
        overflow.cancel()
    except (WebSocketDisconnect, TimeoutError, RuntimeError):
        pass
    finally:
        rt.hub.unsubscribe(sub)
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver


async def _drain_client(ws: WebSocket) -> None:
    """Notice a departed client; clients have nothing to say to the board."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
