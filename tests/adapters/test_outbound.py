"""Decisions back to the CAD by signed webhook, through the durable outbox.

A real HTTP server plays the CAD: it checks every signature as a CAD would, from the
contract alone (HMAC-SHA256 of the raw body with the shared secret, not Liaison's code), and
answers as the test tells it (up, 503, failing for one incident, refusing some bodies for
good, or not listening at all). Liaison is a real uvicorn on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, update

from adapters.outbound import DeliveryWorker, WebhookConfig, give_up_reason
from service.access.auth import Role
from service.outbox.rows import outbox_row
from service.store.db import create_engine, migrate
from service.store.tables import OUTBOX, utcnow
from tests.conftest import Server, free_port, running_server
from tests.factories import event
from tests.fakes import SECRET, Attempt, cad, deliveries, settings_for, until

T0 = "2026-03-10T14:00:00-04:00"


async def settled(*servers: Server) -> None:
    """Until no delivery is pending and no worker has one in flight. From then on nothing
    reaches the CAD unless something new is decided or a delivery is retried by hand: the
    positive signal that "nothing more arrives" waits for, instead of a sleep."""
    async def done() -> bool:
        # (The worker's in-flight set is private; a test may look.)
        if any(s.runtime.delivery._inflight for s in servers):
            return False
        async with servers[0].runtime.engine.connect() as conn:
            pending = (await conn.execute(select(func.count()).select_from(OUTBOX)
                                          .where(OUTBOX.c.status == "pending"))).scalar_one()
        return bool(pending == 0)

    await until(done, "every delivery settled")


async def recorded_delivered(server: Server, call_id: str) -> bool:
    return {d["status"] for d in await deliveries(server, call_id)} == {"delivered"}


async def new_call(server: Server, **fields: Any) -> tuple[str, str]:
    """Post a `created` event; the call id and incident id."""
    body = event(**fields)
    r = await server.client.post("/v1/cad/events", json=body)
    assert r.status_code == 202, r.text
    return r.json()["call_id"], body["incident_id"]


async def weapon_seen(server: Server, incident_id: str, minute: int = 3) -> None:
    """An update that makes a team call a police call: a changed decision."""
    r = await server.post_event(incident_id=incident_id, type="updated",
                                occurred_at=f"2026-03-10T14:{minute:02d}:00-04:00",
                                flags=["weapon"])
    assert r.status_code == 202, r.text


async def override(server: Server, call_id: str, destination: str = "police") -> None:
    r = await server.client.post(f"/v1/calls/{call_id}/override", json={
        "destination": destination, "by": "disp-7", "reason": "Known address, officer safety"})
    assert r.status_code == 200, r.text


def sequences(attempts: list[Attempt]) -> list[int]:
    return [a.sequence for a in attempts]


async def statuses_are(server: Server, call_id: str, expected: list[str]) -> bool:
    """The database's record, not the CAD's receipt: the worker records the answer after
    the CAD has the body."""
    return [d["status"] for d in await deliveries(server, call_id)] == expected


async def listed(server: Server, **params: Any) -> dict[str, Any]:
    r = await server.client.get("/v1/deliveries", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def retry(server: Server, delivery_id: str) -> httpx.Response:
    return await server.client.post(f"/v1/deliveries/{delivery_id}/retry")


pytestmark = pytest.mark.asyncio


# -- end to end ---------------------------------------------------------------------------

async def test_every_decision_and_change_reaches_the_cad_signed_and_in_order(
        database_url: str) -> None:
    async with cad() as the_cad, running_server(settings_for(database_url, the_cad)) as server:
        a, inc_a = await new_call(server)
        await weapon_seen(server, inc_a)                        # A: team, then police
        await server.post_event(incident_id=inc_a, type="updated",  # same decision: nothing
                                occurred_at="2026-03-10T14:05:00-04:00", priority=2,
                                flags=["weapon"])
        b, _ = await new_call(server, nature_code="VAG", nature_text="Panhandler")
        await override(server, b, "joint")                      # B: a decision, an override
        c, _ = await new_call(server, nature_code="ALRBA", nature_text="Alarm",
                              narrative=None)                   # C: one decision
        await until(lambda: len(the_cad.delivered()) == 5, "5 deliveries")
        await settled(server)  # and nothing more arrives

        assert len(the_cad.attempts) == 5
        assert all(x.signature_ok for x in the_cad.attempts)
        assert len({x.delivery_id for x in the_cad.attempts}) == 5
        for call_id, causes in ((a, ["event", "event"]), (b, ["event", "override"]),
                                (c, ["event"])):
            got = the_cad.delivered(call_id)
            assert [x.cause for x in got] == causes
            assert sequences(got) == sorted(sequences(got))
            assert len(set(sequences(got))) == len(got)
            record = (await server.client.get(f"/v1/calls/{call_id}")).json()
            # What the CAD got is every decision the call had, in the same order.
            assert [x.body["decision"] for x in got] == [d["decision"]
                                                         for d in record["decisions"]]
            assert [(d["sequence"], d["status"], d["attempts"], d["last_error"])
                    for d in record["deliveries"]] == [
                        (x.sequence, "delivered", 1, None) for x in got]
            assert record["deliveries"] == await deliveries(server, call_id)
            assert all(d["delivered_at"] and d["next_attempt_at"] is None
                       for d in record["deliveries"])

        first = the_cad.delivered(a)[0]
        assert first.body["incident_id"] == inc_a and first.body["source"] == "generic"
        assert first.body["type"] == "decision" and first.body["event_id"]
        assert first.body["decision"]["destination"] == "call_team"
        assert the_cad.delivered(a)[1].body["decision"]["destination"] == "police"
        assert the_cad.delivered(b)[1].body["event_id"] is None
        assert the_cad.delivered(b)[1].body["decision"]["override"]["by"] == "test-supervisor"
        h = first.headers
        assert h["liaison-delivery-id"] == first.delivery_id
        assert h["liaison-sequence"] == str(first.sequence)
        assert h["liaison-signature"].startswith("sha256=")
        assert abs(int(h["liaison-timestamp"]) - time.time()) < 60
        assert h["content-type"] == "application/json"

        missing = await server.client.get("/v1/calls/nope/deliveries")
        assert missing.status_code == 404


async def test_cad_answering_503_makes_deliveries_wait_then_arrive_in_order(
        database_url: str) -> None:
    async with cad() as the_cad, running_server(settings_for(database_url, the_cad)) as server:
        the_cad.answer = 503
        a, inc_a = await new_call(server)
        await weapon_seen(server, inc_a, minute=3)
        await override(server, a, "joint")
        b, _ = await new_call(server)
        await until(lambda: len(the_cad.tried(a)) >= 3 and len(the_cad.tried(b)) >= 3,
                    "retries of both calls' first deliveries")

        # A's later decisions are held back while its first one is pending.
        assert len(set(sequences(the_cad.tried(a)))) == 1
        state = await deliveries(server, a)
        assert [d["status"] for d in state] == ["pending"] * 3
        head = state[0]
        assert head["attempts"] >= 2 and head["last_status_code"] == 503
        assert head["last_error"] == "HTTP 503: CAD is not taking updates"
        assert head["next_attempt_at"] and head["delivered_at"] is None
        assert [d["attempts"] for d in state[1:]] == [0, 0]
        # Backing off, not a tight loop: the n-th retry comes at least half of
        # base·2^(n-1) (at most the cap) after the attempt before it (backoff's jitter takes
        # off up to half; 0.9 for clock rounding). A lower bound: a slow machine only adds.
        arrived = [x.at for x in the_cad.tried(a)]
        for n, (before, after) in enumerate(zip(arrived, arrived[1:], strict=False), 1):
            least = 0.5 * min(0.25, 0.05 * 2 ** (n - 1))
            assert after - before >= 0.9 * least, (n, after - before, arrived)

        the_cad.answer = 200
        await until(lambda: len(the_cad.delivered()) == 4, "the 4 deliveries")
        for call_id, n in ((a, 3), (b, 1)):
            got = sequences(the_cad.delivered(call_id))
            assert len(got) == n and got == sorted(got)
            # Every attempt for the call, failed or not, went in order.
            tried = sequences(the_cad.tried(call_id))
            assert tried == sorted(tried)
        # The CAD has the body before the worker records the answer: wait for the record.
        await until(lambda: recorded_delivered(server, a), "the deliveries recorded")
        state = await deliveries(server, a)
        assert [d["status"] for d in state] == ["delivered"] * 3
        assert state[0]["attempts"] >= 3 and state[0]["last_status_code"] == 200
        assert state[0]["last_error"] == "HTTP 503: CAD is not taking updates"  # kept
        assert [d["attempts"] for d in state[1:]] == [1, 1]
        assert all(x.signature_ok for x in the_cad.attempts)


async def test_one_call_failing_does_not_hold_back_the_others(database_url: str) -> None:
    async with cad() as the_cad, running_server(settings_for(database_url, the_cad)) as server:
        the_cad.failing_incidents.add(stuck_incident := f"STUCK-{free_port()}")
        stuck, _ = await new_call(server, incident_id=stuck_incident)
        await weapon_seen(server, stuck_incident)
        others = [(await new_call(server))[0] for _ in range(3)]
        await until(lambda: all(the_cad.delivered(o) for o in others),
                    "the other calls' deliveries")
        await until(lambda: len(the_cad.tried(stuck)) >= 2, "retries of the stuck call")
        assert not the_cad.delivered(stuck)
        assert len(set(sequences(the_cad.tried(stuck)))) == 1

        the_cad.failing_incidents.clear()
        await until(lambda: len(the_cad.delivered(stuck)) == 2, "the stuck call's deliveries")
        got = sequences(the_cad.delivered(stuck))
        assert got == sorted(got)


async def test_cad_down_and_liaison_restarted_loses_nothing(database_url: str) -> None:
    async with cad(up=False) as the_cad:
        settings = settings_for(database_url, the_cad)
        async with running_server(settings) as first:
            a, inc_a = await new_call(first)
            await weapon_seen(first, inc_a)
            b, _ = await new_call(first)
            await override(first, b)

            async def refused() -> bool:
                heads = [(await deliveries(first, c))[0] for c in (a, b)]
                return all(h["attempts"] >= 2 for h in heads)

            await until(refused, "failed attempts while the CAD is not listening")
            before = {c: await deliveries(first, c) for c in (a, b)}
        for state in before.values():
            assert [d["status"] for d in state] == ["pending", "pending"]
            assert "ConnectError" in (state[0]["last_error"] or "")
            assert state[0]["last_status_code"] is None
        assert the_cad.attempts == []

        await the_cad.start()
        async with running_server(settings) as second:
            await until(lambda: len(the_cad.delivered()) == 4,
                        "the 4 deliveries made by the restarted Liaison")
            # New decisions after the restart come after the old ones.
            c, _ = await new_call(second)
            await override(second, a, "joint")
            await until(lambda: len(the_cad.delivered()) == 6, "2 more deliveries")
            for call_id in (a, b):
                got = sequences(the_cad.delivered(call_id))
                assert got[:2] == [d["sequence"] for d in before[call_id]]
                assert got == sorted(got)
                await until(partial(recorded_delivered, second, call_id),
                            "the deliveries recorded")
                after = await deliveries(second, call_id)
                # Attempts made before the restart are kept.
                assert after[0]["attempts"] > before[call_id][0]["attempts"]
            assert len(the_cad.delivered(a)) == 3 and len(the_cad.delivered(c)) == 1
            assert len({x.delivery_id for x in the_cad.attempts}) == len(the_cad.attempts)
            assert all(x.signature_ok for x in the_cad.attempts)


async def test_without_a_webhook_nothing_is_queued(server: Server) -> None:
    call_id = (await server.post_event()).json()["call_id"]
    assert server.runtime.delivery is None
    assert (await server.client.get(f"/v1/calls/{call_id}")).json()["deliveries"] == []
    async with server.runtime.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(OUTBOX))).scalar() == 0


@pytest.mark.postgres
async def test_two_instances_on_one_postgres_deliver_each_row_once_in_order(
        postgres_url: str) -> None:
    async with (cad(delay=0.01) as the_cad,
                running_server(settings_for(postgres_url, the_cad)) as one,
                running_server(settings_for(postgres_url, the_cad)) as two):
        incidents: list[tuple[str, str]] = []
        for i in range(12):
            server = (one, two)[i % 2]
            # Priority 1: none waits for a unit (a unit freed would take a queued call:
            # another delivery).
            incidents.append(await new_call(server, priority=1))
        await asyncio.gather(*(weapon_seen((two, one)[i % 2], inc)
                               for i, (_, inc) in enumerate(incidents)))
        await until(lambda: len(the_cad.delivered()) == 24, "24 deliveries")
        await settled(one, two)  # and nothing more arrives
        ids = [x.delivery_id for x in the_cad.attempts]
        assert len(ids) == len(set(ids)) == 24, "each row sent once, by one instance"
        for call_id, _ in incidents:
            got = the_cad.delivered(call_id)
            # Created (to the team, or to police once all units are busy), then a weapon.
            assert [x.cause for x in got] == ["event", "event"]
            assert got[1].body["decision"]["basis"] == "exclusion"
            assert sequences(got) == sorted(sequences(got))


# -- given up: dead letters, listed, sent again by hand ---------------------------------

async def test_a_body_the_cad_refuses_for_good_is_given_up_and_the_call_moves_on(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async with cad() as the_cad, running_server(settings_for(database_url, the_cad)) as server:
        incident = f"REFUSED-{free_port()}"

        def refuse_team_routings(doc: dict[str, Any]) -> int | None:
            # This CAD will never take the first decision (to the team); police it takes.
            return 422 if (doc["incident_id"] == incident
                           and doc["decision"]["destination"] == "call_team") else None

        the_cad.answer_for = refuse_team_routings
        with caplog.at_level(logging.WARNING, logger="liaison.outbound"):
            a, _ = await new_call(server, incident_id=incident)
            await weapon_seen(server, incident)
            other, _ = await new_call(server)
            await until(partial(statuses_are, server, a, ["failed", "delivered"]),
                        "the refused delivery given up and the next one delivered")
            await until(partial(statuses_are, server, other, ["delivered"]),
                        "the other call's delivery")
            await settled(server)  # and the refused one is not tried again

        looked = datetime.now(UTC)
        refused, later = await deliveries(server, a)
        assert sequences(the_cad.tried(a)) == [refused["sequence"], later["sequence"]]
        assert the_cad.delivered(a)[0].body["decision"]["destination"] == "police"
        assert refused["attempts"] == 1 and refused["last_status_code"] == 422
        assert refused["last_error"] == "HTTP 422: CAD is not taking updates"
        assert refused["failed_at"] and refused["next_attempt_at"] is None
        assert refused["delivered_at"] is None and later["failed_at"] is None
        # Logged once at ERROR, with ids and the status code; never what the CAD said.
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert all(x in errors[0] for x in (refused["delivery_id"], a, "HTTP 422"))
        assert not any("not taking updates" in r.getMessage() for r in caplog.records)

        # Listed with the failed ones only: not the delivered ones of either call.
        page = await listed(server, status="failed")
        # Failed when its one attempt's answer came back: after the CAD had it, before we
        # looked; the same moment in the listing as in the call's view.
        failed_at = datetime.fromisoformat(refused["failed_at"])
        assert the_cad.tried(a)[0].received <= failed_at <= looked
        assert datetime.fromisoformat(page["deliveries"][0]["failed_at"]) == failed_at
        assert page == {"next_after": None, "deliveries": [{
            "delivery_id": refused["delivery_id"], "call_id": a,
            "sequence": refused["sequence"], "cause": "event", "status": "failed",
            "attempts": 1, "last_error": "HTTP 422: CAD is not taking updates",
            "last_status_code": 422, "failed_at": page["deliveries"][0]["failed_at"],
            "next_attempt_at": None}]}
        assert page == await listed(server)  # failed is the default
        # A dispatcher reads what failed, not the CAD's words (they may echo the body).
        as_dispatcher = server.creds.bearer(Role.dispatcher)
        for path in ("/v1/deliveries", f"/v1/calls/{a}/deliveries", f"/v1/calls/{a}"):
            r = await server.client.get(path, headers=as_dispatcher)
            assert r.status_code == 200, r.text
            assert [d["last_error"] for d in r.json()["deliveries"]
                    if d["status"] == "failed"] == ["HTTP 422"], path

        # Sent again while the CAD still refuses it: given up again after one more try.
        r = await retry(server, refused["delivery_id"])
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["attempts"], r.json()["failed_at"]) == (
            "pending", 1, None)

        async def failed_twice() -> bool:
            head = (await deliveries(server, a))[0]
            return head["status"] == "failed" and head["attempts"] == 2

        await until(failed_twice, "the retried delivery refused again")

        # The CAD takes it now: delivered, after the call's later decision.
        the_cad.answer_for = lambda doc: None
        assert (await retry(server, refused["delivery_id"])).status_code == 200
        await until(partial(recorded_delivered, server, a), "the retried delivery recorded")
        assert sequences(the_cad.delivered(a)) == [later["sequence"], refused["sequence"]]
        assert (await listed(server))["deliveries"] == []

        # Only a failed delivery is retried; an unknown one is not found.
        again = await retry(server, later["delivery_id"])
        assert again.status_code == 409
        assert again.json()["status"] == "delivered"
        assert "only a failed delivery can be retried" in again.json()["message"]
        assert (await retry(server, "0" * 32)).status_code == 404
        assert (await retry(server, "not-an-id")).status_code == 422
        # Each retry is on the audit record, with its call; the refused one is not.
        audit = await server.client.get("/v1/audit", params={"action": "delivery.retry"})
        assert [(e["call_id"], e["target"], e["outcome"]) for e in audit.json()] == [
            (a, f"delivery:{refused['delivery_id']}", "ok")] * 2


async def test_a_delivery_failing_past_give_up_after_is_given_up_then_retried(
        database_url: str) -> None:
    async with cad() as the_cad, running_server(
            settings_for(database_url, the_cad, webhook_give_up_after=1.0)) as server:
        the_cad.answer = 503
        a, _ = await new_call(server)
        b, _ = await new_call(server)
        await until(lambda: len(the_cad.tried(a)) >= 2, "retries of a 503")
        head = (await deliveries(server, a))[0]
        assert head["status"] == "pending" and head["failed_at"] is None
        assert head["next_attempt_at"] and head["last_status_code"] == 503

        for call_id in (a, b):
            await until(partial(statuses_are, server, call_id, ["failed"]),
                        "given up after a second of 503s")
        tried = the_cad.tried(a)
        assert len(tried) >= 3, "retried until the give-up time passed"
        assert tried[-1].at - tried[0].at >= 0.9
        await settled(server)
        assert len(the_cad.tried(a)) == len(tried), "not tried once given up"
        head = (await deliveries(server, a))[0]
        assert head["attempts"] == len(tried) and head["last_status_code"] == 503
        assert head["last_error"] == "HTTP 503: CAD is not taking updates"
        assert head["failed_at"] and head["next_attempt_at"] is None

        # Paged in sequence order: `after` is the last sequence of the page before.
        first = await listed(server, limit=1)
        assert [d["call_id"] for d in first["deliveries"]] == [a]
        second = await listed(server, limit=1, after=first["next_after"])
        assert [d["call_id"] for d in second["deliveries"]] == [b]
        assert (await listed(server, limit=1, after=second["next_after"])) == {
            "deliveries": [], "next_after": None}
        assert (await listed(server, status="pending"))["deliveries"] == []
        assert (await server.client.get("/v1/deliveries",
                                        params={"limit": 501})).status_code == 422

        # Back in line, due now, with a fresh give-up clock: failing again, it is tried
        # more than once before it is given up again.
        before = len(the_cad.tried(b))
        assert (await retry(server, (await deliveries(server, b))[0]["delivery_id"])
                ).status_code == 200
        await until(lambda: len(the_cad.tried(b)) >= before + 2, "retries after the retry")
        assert (await deliveries(server, b))[0]["status"] == "pending"
        await until(partial(statuses_are, server, b, ["failed"]), "given up again")

        # Delivered once the CAD takes it.
        the_cad.answer = 200
        assert (await retry(server, head["delivery_id"])).status_code == 200
        await until(partial(recorded_delivered, server, a), "the retried delivery")
        assert (await deliveries(server, b))[0]["status"] == "failed"
        assert [d["call_id"] for d in (await listed(server))["deliveries"]] == [b]


@pytest.mark.parametrize(("status", "failing_for", "give_up_after", "gives_up"), [
    (400, 0, 3600, True), (404, 0, 3600, True), (410, 0, 0, True), (413, 0, 3600, True),
    (422, 0, 3600, True),
    # A refused signature or key is Liaison's configuration, not the body: retried.
    (401, 0, 3600, False), (403, 0, 3600, False), (401, 4000, 3600, True),
    (408, 0, 3600, False), (409, 0, 3600, False), (425, 0, 3600, False),
    (429, 0, 3600, False), (500, 0, 3600, False), (503, 3599, 3600, False),
    (None, 3599, 3600, False),
    (503, 3600, 3600, True), (429, 4000, 3600, True), (None, 4000, 3600, True),
    (503, 10**7, 0, False), (None, 10**7, 0, False),  # 0: never on transient failures
    (302, 10, 5, True),
])
async def test_which_failures_give_a_delivery_up(status: int | None, failing_for: float,
                                                 give_up_after: float, gives_up: bool) -> None:
    assert (give_up_reason(status, failing_for, give_up_after) is not None) is gives_up


# -- the worker's claims: in line per call, leased, shared between instances ------------

async def test_claims_take_each_calls_first_pending_row_under_a_lease(
        database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        rows = [outbox_row({"id": call, "incident_id": f"I-{call}", "source": "generic"},
                           {"destination": "police"}, cause="event", event_id=f"e-{n}")
                for n, call in enumerate(["A", "B", "A", "C", "A"])]
        async with engine.begin() as conn:
            await conn.execute(insert(OUTBOX), rows)
        config = WebhookConfig(url="http://127.0.0.1:9/never", secret=SECRET)
        w1 = DeliveryWorker(engine, config, owner="w1")
        w2 = DeliveryWorker(engine, config, owner="w2")

        async def set_rows(ids: list[int], **values: Any) -> None:
            async with engine.begin() as conn:
                await conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(**values))

        if database_url.startswith("postgresql"):
            # Both at once: SKIP LOCKED gives each row to one of them.
            got1, got2 = await asyncio.gather(w1.claim(10), w2.claim(10))
            claimed = sorted([r.id for r in got1] + [r.id for r in got2])
            assert claimed == [1, 2, 4]
            await set_rows([1, 2, 4], lease_owner=None, lease_until=None)

        heads = await w1.claim(10)
        assert [(r.id, r.call_id) for r in heads] == [(1, "A"), (2, "B"), (4, "C")]
        assert await w2.claim(10) == [], "leased rows are not claimed again"

        await set_rows([1], status="delivered", lease_owner=None, lease_until=None)
        assert [r.id for r in await w2.claim(10)] == [3], "A's next row, now first in line"
        assert await w1.claim(10) == [], "A's third row waits for its second"

        # A holder that died: its leases run out and another worker takes the rows.
        await set_rows([2, 4], lease_until=utcnow() - timedelta(seconds=1))
        assert [r.id for r in await w2.claim(10)] == [2, 4]

        # Not yet due (backing off): not claimed.
        await set_rows([3], lease_owner=None, lease_until=None,
                       next_attempt_at=utcnow() + timedelta(minutes=5))
        assert await w1.claim(10) == []
        await set_rows([3], next_attempt_at=utcnow())
        assert [r.id for r in await w1.claim(1)] == [3]
    finally:
        await engine.dispose()


async def test_a_failed_row_holds_back_nothing_and_is_never_claimed(database_url: str
                                                                    ) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        rows = [outbox_row({"id": "A", "incident_id": "I-A", "source": "generic"},
                           {"destination": "police"}, cause="event", event_id=f"e-{n}")
                for n in range(3)]
        async with engine.begin() as conn:
            await conn.execute(insert(OUTBOX), rows)
            await conn.execute(update(OUTBOX).where(OUTBOX.c.id == 1).values(status="failed"))
        worker = DeliveryWorker(engine, WebhookConfig(url="http://127.0.0.1:9/never",
                                                      secret=SECRET), owner="w1")
        assert [r.id for r in await worker.claim(10)] == [2], "the next pending row goes"
        async with engine.begin() as conn:
            await conn.execute(update(OUTBOX).where(OUTBOX.c.id == 2).values(
                status="failed", lease_owner=None, lease_until=None))
        assert [r.id for r in await worker.claim(10)] == [3]
    finally:
        await engine.dispose()
