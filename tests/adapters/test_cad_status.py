"""The team's status back to the CAD, through the signed webhook outbox: each status
change is a delivery written with it, in the call's one sequence with its decisions, as
docs/webhook.md's tables say. A real HTTP server plays the CAD (tests/fakes.py); Liaison
is a real uvicorn on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from service.store.tables import OUTBOX
from tests.conftest import Server, running_server
from tests.factories import ROOT, event
from tests.fakes import Attempt, cad, deliveries, settings_for, until

pytestmark = pytest.mark.asyncio

DOC = ROOT / "docs" / "webhook.md"
DISPUTE = {"nature_code": "CDX", "nature_text": "Neighbor dispute"}  # not protected
EARLIER = "2026-03-10T18:04:30+00:00"  # a time the team gives for a change (in the past)


def documented_members(doc: Path = DOC) -> dict[str, set[str]]:
    """The members docs/webhook.md's "What is sent" tables name: every body's, a
    decision's and a status's (the first cell of each row, every `name` in it)."""
    section = doc.read_text().split("## What is sent", 1)[1].split("\n## ", 1)[0]
    tables: list[set[str]] = []
    current: set[str] | None = None
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| member") \
                and not line.startswith("| ---"):
            if current is None:
                current = set()
                tables.append(current)
            current.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
        elif not line.startswith("|"):
            current = None
    every, decision, status = tables[:3]
    return {"every": every, "decision": decision, "status": status}


def check_against_the_doc(body: dict[str, Any]) -> None:
    """A body has every member its type's tables name, and no other (`withheld` only
    when something was held back)."""
    members = documented_members()
    expected = members["every"] | members[body["type"]]
    if "withheld" not in body:
        expected.discard("withheld")
    assert set(body) == expected, (body["type"], set(body) ^ expected)


async def team_call(server: Server, **fields: Any) -> tuple[str, str]:
    body = event(**fields)
    r = await server.client.post("/v1/cad/events", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["decision"]["destination"] == "call_team", r.json()
    return str(r.json()["call_id"]), body["incident_id"]


async def status(server: Server, call_id: str, new: str, expect: int = 200,
                 **more: Any) -> dict[str, Any]:
    r = await server.client.post(f"/v1/calls/{call_id}/status", json={"status": new, **more})
    assert r.status_code == expect, r.text
    return dict(r.json())


def kinds(got: list[Attempt]) -> list[str]:
    """Each delivery as the CAD reads it: a decision's cause, or a status."""
    return [f"status:{a.body['status']}" if a.body["type"] == "status"
            else f"decision:{a.cause}" for a in got]


async def count_rows(server: Server, call_id: str, cause: str) -> int:
    async with server.runtime.engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(OUTBOX)
            .where(OUTBOX.c.call_id == call_id, OUTBOX.c.cause == cause))).scalar_one())


async def test_the_documented_tables_are_read() -> None:
    # The parser above is what checks bodies against the doc: it must find the tables.
    members = documented_members()
    assert {"sequence", "type", "delivery_id", "call_id", "time"} <= members["every"]
    assert members["decision"] == {"cause", "event_id", "decision"}
    assert members["status"] == {"status", "previous", "unit", "at", "disposition",
                                 "disposition_code", "reason"}


async def test_team_statuses_reach_the_cad_in_order_between_the_decisions(
        database_url: str) -> None:
    async with cad() as the_cad, running_server(settings_for(database_url, the_cad)) as server:
        call_id, incident = await team_call(server, **DISPUTE)
        await status(server, call_id, "assigned", unit="CALL-3")
        await status(server, call_id, "en_route", at=EARLIER)
        # A dispatcher's override between two statuses: a decision in the same sequence.
        r = await server.client.post(f"/v1/calls/{call_id}/override", json={
            "destination": "joint", "by": "disp-7", "reason": "Known address, officer safety"})
        assert r.status_code == 200, r.text
        await status(server, call_id, "on_scene")
        await status(server, call_id, "on_scene", expect=409)  # a repeat: refused, no row
        await status(server, call_id, "backup_requested", note="Man now holding a bottle")
        await status(server, call_id, "cleared", disposition="transported",
                     outcome="Taken to the crisis centre")
        expected = ["decision:event", "status:assigned", "status:en_route",
                    "decision:override", "status:on_scene", "status:backup_requested",
                    "decision:backup", "status:cleared"]
        await until(lambda: len(the_cad.delivered(call_id)) == len(expected),
                    "every delivery of the call")
        got = the_cad.delivered(call_id)
        assert kinds(got) == expected
        assert [a.sequence for a in got] == sorted({a.sequence for a in got})
        assert all(a.signature_ok for a in got)
        assert len(the_cad.attempts) == len(expected), "each sent once"

        statuses = [a.body for a in got if a.body["type"] == "status"]
        assert [(b["previous"], b["status"]) for b in statuses] == [
            ("queued", "assigned"), ("assigned", "en_route"), ("en_route", "on_scene"),
            ("on_scene", "backup_requested"), ("backup_requested", "cleared")]
        for body in statuses:
            assert (body["call_id"], body["incident_id"], body["source"]) == (
                call_id, incident, "generic")
            assert body["unit"] == "CALL-3"
            check_against_the_doc(body)
        for body in (a.body for a in got if a.body["type"] == "decision"):
            check_against_the_doc(body)
        assert statuses[1]["at"] == EARLIER  # the time the team gave
        assert [b["disposition"] for b in statuses] == [None] * 4 + ["transported"]
        assert [b["disposition_code"] for b in statuses] == [None] * 4 + ["16"]
        assert [b["reason"] for b in statuses] == [None, None, None,
                                                   "Man now holding a bottle", None]
        assert all("withheld" not in b for b in statuses)
        # The sequence header is the body's, and the deliveries list names each.
        assert all(a.headers["liaison-sequence"] == str(a.sequence) for a in got)
        await until(lambda: _all_delivered(server, call_id), "the deliveries recorded")
        listed = await deliveries(server, call_id)
        assert [(d["sequence"], d["cause"]) for d in listed] == [
            (a.sequence, a.cause) for a in got]
        assert await count_rows(server, call_id, "status") == 5


async def _all_delivered(server: Server, call_id: str) -> bool:
    return {d["status"] for d in await deliveries(server, call_id)} == {"delivered"}


async def test_a_backup_reason_on_a_behavioural_health_call_is_withheld_from_the_cad(
        database_url: str) -> None:
    async with cad() as the_cad, running_server(settings_for(database_url, the_cad)) as server:
        call_id, _ = await team_call(server)  # MNTL: mental health, protected
        await status(server, call_id, "assigned", unit="CALL-1")
        await status(server, call_id, "on_scene")
        await status(server, call_id, "backup_requested", note="He says he has a knife")
        await until(lambda: len(the_cad.delivered(call_id)) == 5, "5 deliveries")
        got = the_cad.delivered(call_id)
        assert kinds(got) == ["decision:event", "status:assigned", "status:on_scene",
                              "status:backup_requested", "decision:backup"]
        backup = got[3].body
        assert backup["reason"] is None and backup["withheld"] == ["backup_reason"]
        check_against_the_doc(backup)
        assert got[4].body["decision"]["backup"]["reason"] is None
        assert all("knife" not in str(a.body) for a in got)
        # The team sees it (the reason was kept, only not sent).
        view = (await server.client.get(f"/v1/calls/{call_id}")).json()
        assert view["call"]["backup_reason"] == "He says he has a knife"


async def test_without_a_webhook_no_status_is_queued(server: Server) -> None:
    call_id, _ = await team_call(server, **DISPUTE)
    await status(server, call_id, "assigned", unit="CALL-1")
    await status(server, call_id, "cleared", disposition="gone_on_arrival")
    async with server.runtime.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(OUTBOX))).scalar() == 0


@pytest.mark.postgres
async def test_two_instances_on_one_postgres_deliver_each_status_once_in_order(
        postgres_url: str) -> None:
    async with (cad(delay=0.01) as the_cad,
                running_server(settings_for(postgres_url, the_cad)) as one,
                running_server(settings_for(postgres_url, the_cad)) as two):
        steps = [("assigned", {"unit": "CALL-1"}), ("en_route", {}), ("on_scene", {}),
                 ("cleared", {"disposition": "resolved_on_scene"})]
        calls: list[str] = []

        async def lane(lane: int) -> None:
            # Two lanes at once, a call at a time each: never more calls than units.
            for i in range(3):
                call_id, _ = await team_call((one, two)[(lane + i) % 2], priority=1,
                                             **DISPUTE)
                calls.append(call_id)
                for n, (new, more) in enumerate(steps):
                    # Each step through either instance: the call's rows come from both.
                    await status((one, two)[(lane + i + n) % 2], call_id, new, **more)

        await asyncio.gather(lane(0), lane(1))
        total = len(calls) * (1 + len(steps))
        await until(lambda: len(the_cad.delivered()) == total, f"{total} deliveries")
        ids = [a.delivery_id for a in the_cad.attempts]
        assert len(ids) == len(set(ids)) == total, "each row sent once, by one instance"
        for call_id in calls:
            got = the_cad.delivered(call_id)
            assert kinds(got) == ["decision:event", "status:assigned", "status:en_route",
                                  "status:on_scene", "status:cleared"]
            assert [a.sequence for a in got] == sorted(a.sequence for a in got)
            assert got[-1].body["disposition_code"] == "18"
