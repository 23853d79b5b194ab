"""The live board over a real websocket: replay after N, then live; no gaps, no repeats;
a client that falls behind is told to resync and the others keep going."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
import websockets
from sqlalchemy import insert, update

from service.settings import Settings
from service.store.tables import CALL, FOLLOW_UP, utcnow
from tests.conftest import WAIT, Server, eventually, running_server
from tests.factories import event

pytestmark = pytest.mark.asyncio


async def recv(ws: Any, wait: float = WAIT) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), wait)))


async def recv_until(ws: Any, n: int, wait: float = WAIT) -> list[dict[str, Any]]:
    return [await recv(ws, wait) for _ in range(n)]


async def next_is_a_new_call(server: Server, ws: Any) -> dict[str, Any]:
    """Post a new call and return the next message, which must be its decision: the
    positive signal that nothing else was on its way (a board sends in seq order)."""
    call_id = (await server.post_event()).json()["call_id"]
    msg = await recv(ws)
    assert (msg["type"], msg["call_id"]) == ("decision", call_id), msg
    return msg


async def test_a_posted_call_arrives_with_its_decision(server: Server) -> None:
    async with server.connect_board() as ws:
        r = await server.post_event(nature_code="VAG", nature_text="Panhandler")
        msg = await recv(ws)
    assert msg["type"] == "decision"
    assert msg["call_id"] == r.json()["call_id"]
    assert isinstance(msg["seq"], int) and msg["seq"] >= 1
    assert msg["decision"] == r.json()["decision"]
    assert msg["call"]["nature_code"] == "VAG"
    assert "narrative" not in msg["call"]


async def test_replay_after_n_then_live_without_gaps_or_repeats(server: Server) -> None:
    first = [await server.post_event() for _ in range(5)]
    assert all(r.status_code == 202 for r in first)
    async with server.connect_board("?after=0") as ws:
        replayed = await recv_until(ws, 5)
        seqs = [m["seq"] for m in replayed]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert [m["call_id"] for m in replayed] == [r.json()["call_id"] for r in first]
        cut = seqs[2]
    # Reconnect from the middle while new calls keep coming in.
    posting = asyncio.gather(*(server.post_event() for _ in range(20)))
    async with server.connect_board(f"?after={cut}") as ws:
        await posting
        got = await recv_until(ws, 2 + 20)
        got.append(await next_is_a_new_call(server, ws))
    seqs = [m["seq"] for m in got]
    assert seqs == list(range(cut + 1, cut + 1 + 23)), "every seq after the cut, once, in order"


async def test_updates_status_and_close_are_pushed(server: Server) -> None:
    async with server.connect_board() as ws:
        ev = event()
        call_id = (await server.client.post("/v1/cad/events", json=ev)).json()["call_id"]
        await server.client.post(f"/v1/calls/{call_id}/status",
                                 json={"status": "assigned", "unit": "CALL-1"})
        await server.post_event(incident_id=ev["incident_id"], type="updated",
                                occurred_at="2026-03-10T14:03:00-04:00", flags=["weapon"])
        await server.post_event(incident_id=ev["incident_id"], type="closed",
                                occurred_at="2026-03-10T14:30:00-04:00")
        msgs = await recv_until(ws, 5)
    assert [m["type"] for m in msgs] == ["decision", "status", "decision", "call_updated",
                                         "call_closed"]
    assert {m["call_id"] for m in msgs} == {call_id}
    assert msgs[1]["status"] == "assigned" and msgs[1]["unit"] == "CALL-1"
    assert msgs[2]["decision"]["destination"] == "police"
    assert [m["seq"] for m in msgs] == sorted(m["seq"] for m in msgs)


async def test_many_clients_see_the_same_feed(server: Server) -> None:
    clients = [await server.connect_board() for _ in range(20)]
    try:
        await asyncio.gather(*(server.post_event() for _ in range(10)))
        feeds = await asyncio.gather(*(recv_until(c, 10) for c in clients))
    finally:
        for c in clients:
            await c.close()
    first = [m["seq"] for m in feeds[0]]
    assert first == sorted(first) and len(set(first)) == 10
    assert all([m["seq"] for m in f] == first for f in feeds)


async def test_hub_marks_a_subscriber_that_falls_behind(database_url: str) -> None:
    settings = Settings(database_url=database_url, board_queue_size=5)
    async with running_server(settings) as server:
        hub = server.runtime.hub
        stuck, keeping_up = hub.subscribe(), hub.subscribe()
        received: list[int] = []

        async def drain() -> None:
            while True:
                received.append((await keeping_up.queue.get())[0])

        reader = asyncio.create_task(drain())
        try:
            for _ in range(4):
                await asyncio.gather(*(server.post_event() for _ in range(5)))
            await eventually(lambda: len(received) >= 20, "20 messages to the subscriber")
        finally:
            reader.cancel()
            hub.unsubscribe(stuck)
            hub.unsubscribe(keeping_up)
        assert stuck.overflowed.is_set() and stuck.queue.qsize() == 5
        assert not keeping_up.overflowed.is_set()
        assert received == sorted(received) and len(set(received)) == 20


async def test_a_client_that_falls_behind_gets_resync_and_others_go_on(server: Server) -> None:
    hub = server.runtime.hub
    slow = await server.connect_board()
    await server.post_event()
    last = (await recv(slow))["seq"]
    (slow_sub,) = hub.subscribers
    other = await server.connect_board()
    try:
        # The slow client's server-side queue overflows (the hub test above shows when).
        slow_sub.overflowed.set()
        resync = await recv(slow)
        assert resync == {"type": "resync", "seq": last, "call_id": None,
                          "reason": f"this client fell behind; reconnect with ?after={last}"}
        with pytest.raises(websockets.ConnectionClosed):
            await recv(slow)
        assert slow.close_code == 1013
        await server.post_event()
        assert (await recv(other))["seq"] == last + 1
    finally:
        await slow.close()
        await other.close()


async def test_departed_clients_are_noticed(server: Server) -> None:
    ws = await server.connect_board()
    await server.post_event()
    await recv(ws)
    assert len(server.runtime.hub.subscribers) == 1
    await ws.close()
    await eventually(lambda: not server.runtime.hub.subscribers, "the hub to let go of it")


async def test_scope_live_replays_only_the_calls_on_the_board_now(server: Server) -> None:
    """A page opening with ?after=0&scope=live gets the open calls, the recent ones and
    those with a follow-up to do, not the whole history; then live as usual."""
    async def new_call(**fields: Any) -> str:
        r = await server.post_event(**fields)
        assert r.status_code == 202, r.text
        return str(r.json()["call_id"])

    async def close(incident: str) -> None:
        r = await server.post_event(incident_id=incident, type="closed")
        assert r.status_code == 202, r.text

    open_call = await new_call(incident_id="INC-OPEN")
    recent = await new_call(incident_id="INC-RECENT")
    await close("INC-RECENT")
    old = await new_call(incident_id="INC-OLD")
    await close("INC-OLD")
    old_with_follow_up = await new_call(incident_id="INC-OLD-FU")
    await close("INC-OLD-FU")
    # Two of them are from three days ago; one of those has a follow-up still to do.
    days_ago = utcnow() - timedelta(days=3)
    async with server.runtime.engine.begin() as conn:
        await conn.execute(update(CALL).where(CALL.c.id.in_([old, old_with_follow_up]))
                           .values(opened_at=days_ago, closed_at=days_ago,
                                   updated_at=days_ago))
        await conn.execute(insert(FOLLOW_UP).values(
            id="fu-1", call_id=old_with_follow_up, due_at=utcnow() + timedelta(days=1),
            created_at=days_ago, status="scheduled"))

    async with server.connect_board("?after=0&scope=live") as ws:
        # A decision for each call, and a close message for the closed ones.
        got = await recv_until(ws, 5)
        marker = await next_is_a_new_call(server, ws)  # and nothing more was replayed
        assert {m["call_id"] for m in got} == {open_call, recent, old_with_follow_up}
        assert marker["seq"] > max(m["seq"] for m in got)
        seqs = [m["seq"] for m in got]
        assert seqs == sorted(seqs)
        # Live after the replay, old calls included.
        r = await server.post_event(incident_id="INC-OLD", type="updated", flags=["weapon"])
        assert r.status_code == 202, r.text
        msg = await recv(ws)
        assert msg["call_id"] == old and msg["seq"] > seqs[-1]
    # Without scope, after=0 is the whole history, as before.
    last = (await server.client.get("/v1/health")).json()["board_seq"]
    async with server.connect_board("?after=0") as ws:
        every = [await recv(ws)]
        while every[-1]["seq"] < last:
            every.append(await recv(ws))
    assert [m["seq"] for m in every] == list(range(1, last + 1))
    assert {m["call_id"] for m in every} == {open_call, recent, old, old_with_follow_up,
                                             marker["call_id"]}


async def test_scope_must_be_all_or_live(server: Server) -> None:
    with pytest.raises(websockets.InvalidStatus):
        async with server.connect_board("?after=0&scope=everything"):
            pass
