"""The ways in and out that run on their own, through a PostgreSQL crash: the NENA-STA-024
subscriber answers 503 while nothing can be stored and, once the database is back, every
notified incident is stored exactly once; the webhook outbox resumes, and an answer the
CAD gave while the database was down is recorded afterwards instead of being sent again.

The database is a private cluster of the test's own (tests/pgcluster.py), killed with
SIGKILL and started again (it recovers from its WAL); the CAD is played by a real
WebSocket server and a real HTTP server (the same ones as test_eido_subscriber.py and
test_outbound.py); Liaison is a real uvicorn.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.settings import Settings
from tests.conftest import Server, running_server
from tests.factories import eido, event
from tests.fakes import FakeCad, Peer, cad, deliveries, eido_calls, eido_events, settings_for, until
from tests.fakes import settings as subscriber_settings
from tests.pgcluster import PgCluster

pytestmark = [pytest.mark.asyncio, pytest.mark.postgres]

WAIT = 60.0


async def taken(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    """Post until 202, as a CAD retries on 503 (the first requests after the database
    comes back may meet connections it dropped)."""
    answer: dict[str, Any] = {}

    async def accepted() -> bool:
        r = await server.client.post("/v1/cad/events", json=body)
        assert r.status_code in (202, 503), (r.status_code, r.text)
        answer.update(r.json())
        return r.status_code == 202

    await until(accepted, f"event {body['event_id']} to be taken", within=WAIT)
    return answer


async def test_the_eido_subscriber_loses_nothing_and_doubles_nothing_through_a_crash(
        pg_cluster: PgCluster, pg_cluster_url: str) -> None:
    a, b, c = (eido(unique=f"outage-{x}", code=code)
               for x, code in (("a", "MNTL"), ("b", "WELFARE"), ("c", "EDP")))
    box: dict[str, Any] = {}

    async def first(peer: Peer) -> None:
        await peer.accept("sub-1")
        await peer.cad.marks["server"].wait()
        assert (await peer.notify([a], transaction="t1", subscription="sub-1"))[
            "statusCode"] == 200
        await pg_cluster.acrash()
        failed = await peer.notify([b], transaction="t2", subscription="sub-1")
        # Not stored, so not acknowledged: 503, and Liaison leaves to subscribe again.
        assert failed["statusCode"] == 503, failed
        assert failed["statusText"].startswith("Service Unavailable: storage failed")
        await asyncio.wait_for(peer.ws.wait_closed(), WAIT)

    async def again(peer: Peer) -> None:
        """Every later connection: a new subscription is sent every active incident, and
        the unacknowledged t2 is redelivered."""
        n = len(peer.cad.opened)
        await peer.accept(f"sub-{n}")
        initial = await peer.notify([a, b], transaction=f"t-all-{n}", subscription=f"sub-{n}")
        if initial["statusCode"] != 200:
            assert initial["statusCode"] == 503, initial
            peer.cad.mark("refused while down")
            await asyncio.wait_for(peer.ws.wait_closed(), WAIT)
            return
        box["acks"] = [initial,
                       await peer.notify([b], transaction="t2", subscription=f"sub-{n}"),
                       await peer.notify([c], transaction="t3", subscription=f"sub-{n}")]
        peer.cad.mark("done")
        await peer.serve_until_closed()

    the_cad = FakeCad(first, *[again] * 200)
    async with the_cad.running():
        async with running_server(subscriber_settings(pg_cluster_url, the_cad)) as server:
            the_cad.mark("server")
            await the_cad.wait("refused while down", within=WAIT)
            await pg_cluster.restart()
            await the_cad.wait("done", within=WAIT)
            assert [(x["statusCode"], x["statusText"]) for x in box["acks"]] == [
                (200, "OK")] * 3
            calls = await eido_calls(server)
            assert {k: len(v) for k, v in calls.items()} == {
                a["$id"]: 1, b["$id"]: 1, c["$id"]: 1}
            assert await eido_events(server) == 3
            for call_ids in calls.values():
                view = (await server.client.get(f"/v1/calls/{call_ids[0]}")).json()
                assert len(view["events"]) == 1 and len(view["decisions"]) == 1
            state = (await server.client.get("/v1/health")).json()["eido_subscriber"]
            assert state["connected"] and state["connects"] >= 3
            print(f"\nsubscriber: {state['connects']} connections through the outage")
    the_cad.check()


async def test_webhook_deliveries_resume_after_a_crash_and_none_is_sent_twice(
        pg_cluster: PgCluster, pg_cluster_url: str) -> None:
    """The CAD takes call B's first delivery just as the database dies: its 200 cannot be
    recorded then. It is recorded once the database is back; B's next decision follows
    it, and nothing is sent twice (with a lease of 16 s, sending it again would be the
    easy way out)."""
    async with cad() as the_cad:
        settings: Settings = settings_for(pg_cluster_url, the_cad)
        async with running_server(settings) as server:
            a = (await taken(server, event()))["call_id"]
            await until(lambda: len(the_cad.delivered(a)) == 1, "A's delivery")
            b_event = event()
            box: list[str] = []  # B's first delivery id, once the CAD has it

            async def crash_on_b(doc: dict[str, Any]) -> None:
                if doc["incident_id"] == b_event["incident_id"] and not box:
                    box.append(doc["delivery_id"])
                    await pg_cluster.acrash()

            the_cad.on_receive = crash_on_b
            b = (await taken(server, b_event))["call_id"]
            await until(lambda: len(the_cad.delivered(b)) == 1, "B's first delivery")
            # While the database is down nothing is taken.
            r = await server.post_event()
            assert r.status_code == 503, r.text
            await pg_cluster.restart()
            # B changes: a weapon. Its delivery goes out only after the first is recorded.
            await taken(server, event(incident_id=b_event["incident_id"], type="updated",
                                      occurred_at="2026-03-10T14:03:00-04:00",
                                      flags=["weapon"]))
            c = (await taken(server, event()))["call_id"]
            await until(lambda: len(the_cad.delivered(b)) == 2, "B's second delivery",
                        within=WAIT)
            await until(lambda: len(the_cad.delivered(c)) == 1, "C's delivery", within=WAIT)
            ids = [x.delivery_id for x in the_cad.attempts]
            assert len(ids) == len(set(ids)) == 4, f"a delivery was sent twice: {ids}"
            assert the_cad.delivered(b)[0].delivery_id == box[0]
            for call_id, count in ((a, 1), (b, 2), (c, 1)):
                got = the_cad.delivered(call_id)
                assert [x.sequence for x in got] == sorted(x.sequence for x in got)

                async def recorded(call_id: str = call_id, count: int = count) -> bool:
                    rows = await deliveries(server, call_id)
                    return [(d["status"], d["attempts"]) for d in rows] == [
                        ("delivered", 1)] * count

                await until(recorded, f"{call_id}'s deliveries recorded, each once")
