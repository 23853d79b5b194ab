"""Acknowledged means stored: a `liaison serve` killed with SIGKILL in the middle of a
burst of concurrent POSTs loses none of the events it answered 202 for, and a retry of
any of them after the restart is answered the same way without touching the board.

Runs against a real subprocess, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from service.store.db import create_engine
from tests.conftest import WAIT, Subprocess, start_subprocess
from tests.factories import event

TOTAL = 400  # events in the burst
CONCURRENCY = 20  # requests in flight at once
KILL_AFTER = 150  # 202s received before the SIGKILL


def burst_bodies() -> list[dict[str, Any]]:
    """Pairs of events per incident: `created`, then an `updated` five minutes later, so
    the burst both opens calls and changes calls that other requests are opening."""
    bodies: list[dict[str, Any]] = []
    for _ in range(TOTAL // 2):
        created = event()
        bodies.append(created)
        bodies.append(event(incident_id=created["incident_id"], type="updated",
                            occurred_at="2026-03-10T14:05:00-04:00", priority=2,
                            narrative="Update: he is calmer, sitting on the porch."))
    return bodies


class Burst:
    """Fire the bodies with CONCURRENCY workers; SIGKILL the server at KILL_AFTER acks."""

    def __init__(self, sp: Subprocess) -> None:
        self.sp = sp
        self.acked: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.attempted: list[str] = []
        self.transport_errors = 0
        self.unexpected: list[str] = []
        self.in_flight = 0
        self.in_flight_at_kill = -1
        self.killed = False

    async def run(self, bodies: list[dict[str, Any]]) -> None:
        pending = iter(bodies)  # shared by the workers: each body is sent once
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with self.sp.client(limits=limits) as client:

            async def worker() -> None:
                for body in pending:
                    if self.killed:
                        return
                    self.attempted.append(body["event_id"])
                    self.in_flight += 1
                    try:
                        r = await client.post("/v1/cad/events", json=body)
                    except httpx.TransportError:
                        self.transport_errors += 1
                        continue
                    finally:
                        self.in_flight -= 1
                    if r.status_code != 202:
                        self.unexpected.append(f"{r.status_code} {r.text[:300]}")
                        continue
                    self.acked[body["event_id"]] = (body, r.json())
                    if len(self.acked) >= KILL_AFTER and not self.killed:
                        # Synchronously, from inside the burst: the others are mid-request.
                        self.in_flight_at_kill = self.in_flight
                        self.killed = True
                        self.sp.proc.send_signal(signal.SIGKILL)

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        self.sp.proc.wait(10)


async def post_all(sp: Subprocess, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    sem = asyncio.Semaphore(CONCURRENCY)
    async with sp.client() as client:

        async def one(body: dict[str, Any]) -> httpx.Response:
            async with sem:
                return await client.post("/v1/cad/events", json=body)

        return list(await asyncio.gather(*(one(b) for b in bodies)))


async def get_calls(sp: Subprocess, call_ids: set[str]) -> dict[str, dict[str, Any]]:
    sem = asyncio.Semaphore(CONCURRENCY)
    async with sp.client() as client:

        async def one(call_id: str) -> tuple[str, dict[str, Any]]:
            async with sem:
                r = await client.get(f"/v1/calls/{call_id}")
            assert r.status_code == 200, (
                f"call {call_id} named in a 202 is not there after the restart: "
                f"{r.status_code} {r.text}")
            return call_id, r.json()

        return dict(await asyncio.gather(*(one(c) for c in sorted(call_ids))))


async def sql(database_url: str, query: str) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(query))]
    finally:
        await engine.dispose()


async def health(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        r = await client.get("/v1/health")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.asyncio
async def test_sigkill_mid_burst_loses_no_acknowledged_event(database_url: str,
                                                            tmp_path: Path) -> None:
    first = start_subprocess(database_url, tmp_path)
    burst = Burst(first)
    try:
        await burst.run(burst_bodies())
    finally:
        first.kill()

    assert not burst.unexpected, f"non-202 answers before the kill: {burst.unexpected[:5]}"
    assert burst.killed, f"only {len(burst.acked)} acks; the server was never killed"
    assert len(burst.acked) >= KILL_AFTER
    # The kill really landed mid-burst: requests were on the wire and some of them died.
    assert burst.in_flight_at_kill >= 1, burst.in_flight_at_kill
    assert burst.transport_errors >= 1, "no request was cut off by the kill"
    assert len(burst.attempted) < TOTAL, "the whole burst finished before the kill"
    assert first.proc.returncode == -signal.SIGKILL

    second = start_subprocess(database_url, tmp_path, creds=first.creds)
    try:
        # 1. Every acknowledged event is stored, in the call its 202 named.
        acked_calls = {resp["call_id"] for _, resp in burst.acked.values()}
        calls = await get_calls(second, acked_calls)
        for event_id, (body, resp) in burst.acked.items():
            assert resp["event_id"] == event_id
            got = calls[resp["call_id"]]
            assert event_id in [e["event_id"] for e in got["events"]], (
                f"acknowledged event {event_id} is missing from call {resp['call_id']}")
            assert got["call"]["incident_id"] == body["incident_id"]
            assert got["decision"]["policy_version"] == resp["decision"]["policy_version"]
            assert got["decisions"], f"call {resp['call_id']} has no decision record"
            assert any(m["type"] == "decision" for m in got["timeline"]), (
                f"call {resp['call_id']} never reached the board")

        # 2. A retry of every acknowledged event: the first answer, and no board message.
        before = await health(second.base_url)
        board_seq = before["board_seq"]
        assert board_seq > 0
        async with second.connect_board(f"?after={board_seq}") as ws:
            retried = list(burst.acked.values())
            answers = await post_all(second, [body for body, _ in retried])
            for (body, resp), r in zip(retried, answers, strict=True):
                assert r.status_code == 202, (body["event_id"], r.status_code, r.text)
                again = r.json()
                assert again["call_id"] == resp["call_id"], body["event_id"]
                assert again["event_id"] == resp["event_id"]
                assert again["decision"] == resp["decision"], body["event_id"]
            # Then one new event: its decision must be the very next board message, so
            # nothing came of the retries (a board sends in seq order).
            async with second.client() as client:
                marker = await client.post("/v1/cad/events", json=event())
            assert marker.status_code == 202, marker.text
            burst.attempted.append(marker.json()["event_id"])  # sent, if not by the burst
            extra = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert extra["call_id"] == marker.json()["call_id"], (
                f"a retried event produced a board message: {extra!r}")
        # (Its seq may skip a few on PostgreSQL: a sequence keeps no values the killed
        # server's unfinished transactions took.)
        assert (await health(second.base_url))["board_seq"] == extra["seq"] > board_seq
        after = await get_calls(second, acked_calls)
        for call_id in acked_calls:
            assert len(after[call_id]["timeline"]) == len(calls[call_id]["timeline"]), call_id
            assert len(after[call_id]["events"]) == len(calls[call_id]["events"]), call_id
    finally:
        second.stop()

    # 3. The database itself: no duplicate, nothing half-written, acked or not.
    counts = await sql(database_url, "SELECT event_id, COUNT(*) FROM cad_event "
                                     "GROUP BY event_id HAVING COUNT(*) > 1")
    assert counts == [], f"duplicated events: {counts[:5]}"
    stored = {eid for (eid,) in await sql(database_url, "SELECT event_id FROM cad_event")}
    assert set(burst.acked) <= stored
    assert stored <= set(burst.attempted), "an event that was never sent is stored"
    orphans = await sql(database_url, "SELECT e.event_id FROM cad_event e "
                                      "LEFT JOIN call c ON c.id = e.call_id WHERE c.id IS NULL")
    assert orphans == [], f"events without their call: {orphans[:5]}"
    dup_calls = await sql(database_url, "SELECT source, incident_id, COUNT(*) FROM call "
                                        "GROUP BY source, incident_id HAVING COUNT(*) > 1")
    assert dup_calls == []
    mismatched = await sql(database_url, "SELECT e.event_id FROM cad_event e JOIN call c "
                                         "ON c.id = e.call_id "
                                         "WHERE c.incident_id <> e.incident_id")
    assert mismatched == []
    rows = await sql(database_url, """
        SELECT c.id, c.decision, c.policy_version,
               (SELECT COUNT(*) FROM cad_event e WHERE e.call_id = c.id),
               (SELECT COUNT(*) FROM decision d WHERE d.call_id = c.id),
               (SELECT COUNT(*) FROM board_message b
                 WHERE b.call_id = c.id AND b.type = 'decision')
        FROM call c""")
    assert {r[0] for r in rows} >= acked_calls
    for call_id, decision, policy_version, n_events, n_decisions, n_board in rows:
        assert n_events >= 1, f"call {call_id} has no event"
        assert n_decisions >= 1, f"call {call_id} has no decision record"
        assert n_board >= 1, f"call {call_id} has no decision on the board"
        assert json.loads(decision)["policy_version"] == policy_version
    # Every response kept for retries names the call the event is filed under.
    for event_id, call_id, response in await sql(
            database_url, "SELECT event_id, call_id, response FROM cad_event"):
        kept = json.loads(response)
        assert (kept["event_id"], kept["call_id"]) == (event_id, call_id)
