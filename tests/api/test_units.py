"""Units as records (issue 14) over a real server on both databases: the roster, duty,
positions (a device's and an AVL feed's), their retention, the `unit` board message and
the opening snapshot, and capacity from the units on duty."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, update

from service.access.auth import Role
from service.settings import Settings
from service.store.tables import AUDIT, BOARD, DECISION, UNIT_POSITION, utcnow
from tests.conftest import WAIT, Server, eventually, running_server
from tests.factories import one_team_doc

pytestmark = pytest.mark.asyncio

TUESDAY = "2026-03-10T{}:00-04:00"  # within the shipped CALL field team's hours


async def recv(ws: Any, wait: float = WAIT) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), wait)))


async def recv_type(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        msg = await recv(ws)
        if msg["type"] == kind:
            return msg


async def put(s: Server, unit_id: str, status: int = 200, **body: Any) -> dict[str, Any]:
    r = await s.client.put(f"/v1/units/{unit_id}", json={"program_id": "call", **body})
    assert r.status_code == status, r.text
    return dict(r.json())


async def duty(s: Server, unit_id: str, on: bool) -> dict[str, Any]:
    r = await s.client.post(f"/v1/units/{unit_id}/duty", json={"on_duty": on})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def post_call(s: Server, hhmm: str, **fields: Any) -> dict[str, Any]:
    r = await s.post_event(occurred_at=TUESDAY.format(hhmm), **fields)
    assert r.status_code == 202, r.text
    return dict(r.json())


async def audit_actions(s: Server) -> list[str]:
    async with s.runtime.engine.connect() as conn:
        rows = await conn.execute(select(AUDIT.c.action).where(AUDIT.c.action.like("unit.%"))
                                  .order_by(AUDIT.c.id))
    return list(rows.scalars())


async def test_a_supervisor_keeps_the_roster_and_the_board_hears_each_change(
        server: Server) -> None:
    s = server
    async with s.connect_board() as ws:
        saved = await put(s, "CALL-3", call_sign="CALL 3", members=["A. Rivera", "J. Okafor"],
                          capabilities=["youth_trained", "clinician", "peer", "clinician"])
        assert saved["created"] is True
        unit = saved["unit"]
        assert unit == {"id": "CALL-3", "agency": "default", "program_id": "call",
                        "call_sign": "CALL 3",
                        "members": ["A. Rivera", "J. Okafor"],
                        "capabilities": ["clinician", "peer", "youth_trained"],
                        "on_duty": False, "duty_since": None, "status": "off_duty",
                        "call_id": None, "position": None}
        msg = await recv(ws)
        assert (msg["type"], msg["call_id"], msg["unit"]) == ("unit", None, unit)
        assert isinstance(msg["seq"], int)

        on = await duty(s, "CALL-3", True)
        assert on["on_duty"] is True and on["status"] == "available" and on["duty_since"]
        assert (await recv(ws))["unit"] == on

        r = await s.client.post("/v1/units/CALL-3/position", json={
            "lat": 27.77, "lon": -82.64, "accuracy_m": 12.0, "at": utcnow().isoformat()})
        assert r.status_code == 200, r.text
        placed = (await recv(ws))["unit"]
        assert placed == r.json()
        assert placed["position"]["lat"] == 27.77 and placed["position"]["source"] == "device"

        again = await put(s, "CALL-3", members=["A. Rivera"], capabilities=["emt"])
        assert again["created"] is False
        # An update that does not name its duty keeps it (and when it began).
        assert again["unit"]["on_duty"] is True
        assert again["unit"]["duty_since"] == on["duty_since"]
        assert (await recv(ws))["unit"]["capabilities"] == ["emt"]

        listed = (await s.client.get("/v1/units", params={"program": "call"})).json()
        assert [u["id"] for u in listed["units"]] == ["CALL-3"]
        assert (await s.client.get("/v1/units", params={"on_duty": "false"})).json() == {
            "units": []}

        r = await s.client.delete("/v1/units/CALL-3")
        assert r.status_code == 200 and r.json()["status"] == "off_duty"
        gone = await recv(ws)
        assert gone["retired"] is True and gone["unit"]["id"] == "CALL-3"
    assert (await s.client.get("/v1/units")).json() == {"units": []}
    assert (await s.client.get("/v1/units/CALL-3")).status_code == 404
    assert (await s.client.post("/v1/units/CALL-3/duty", json={"on_duty": True})
            ).status_code == 404
    assert await audit_actions(s) == ["unit.add", "unit.duty", "unit.position",
                                      "unit.update", "unit.retire"]


async def test_bad_input_is_refused_naming_the_field(server: Server) -> None:
    s = server

    async def refused(r: Any, field: str) -> str:
        assert r.status_code == 422, r.text
        [err] = [d for d in r.json()["detail"] if d["field"] == field]
        return str(err["reason"])

    r = await s.client.put("/v1/units/CALL-1", json={"program_id": "nowhere"})
    assert "call, crisis-line" in await refused(r, "program_id")
    r = await s.client.put("/v1/units/CALL-1", json={"program_id": "call",
                                                     "capabilities": ["Youth Trained"]})
    await refused(r, "capabilities[0]")
    r = await s.client.put("/v1/units/bad%20id", json={"program_id": "call"})
    assert r.status_code == 422
    await put(s, "CALL-1", on_duty=True)
    now = utcnow()
    for body, field in (({"lat": 91, "lon": 0}, "lat"), ({"lat": 0, "lon": -181}, "lon"),
                        ({"lat": 0, "lon": 0, "accuracy_m": -1}, "accuracy_m")):
        r = await s.client.post("/v1/units/CALL-1/position",
                                json={**body, "at": now.isoformat()})
        await refused(r, field)
    ahead = (now + timedelta(minutes=5)).isoformat()
    r = await s.client.post("/v1/units/CALL-1/position", json={"lat": 0, "lon": 0, "at": ahead})
    assert "future" in await refused(r, "at")
    # Two minutes ahead is a device's clock running a little fast: taken.
    r = await s.client.post("/v1/units/CALL-1/position", json={
        "lat": 0, "lon": 0, "at": (now + timedelta(seconds=60)).isoformat()})
    assert r.status_code == 200, r.text
    r = await s.client.post("/v1/units/positions", json={"positions": [
        {"unit_id": "CALL-1", "lat": 27.7, "lon": -82.6, "at": now.isoformat()},
        {"unit_id": "CALL-9", "lat": 27.7, "lon": -82.6, "at": now.isoformat()}]})
    assert "CALL-9" in await refused(r, "positions[1].unit_id")
    async with s.runtime.engine.connect() as conn:
        kept = (await conn.execute(select(func.count()).select_from(UNIT_POSITION))).scalar()
    assert kept == 1, "a refused feed batch keeps none of its positions"


async def test_a_device_shares_a_position_only_while_on_duty_an_avl_feed_any_time(
        server: Server) -> None:
    s = server
    await put(s, "CALL-1")
    at = utcnow().isoformat()
    r = await s.client.post("/v1/units/CALL-1/position", json={"lat": 27.7, "lon": -82.6,
                                                               "at": at})
    assert r.status_code == 409 and "off duty" in r.json()["message"]
    r = await s.client.post("/v1/units/positions", json={"positions": [
        {"unit_id": "CALL-1", "lat": 27.71, "lon": -82.61, "accuracy_m": 5, "at": at}]})
    assert r.status_code == 200, r.text
    # Off duty, where the unit is is nobody's business on the board.
    assert r.json()["units"][0]["position"] is None
    on = await duty(s, "CALL-1", True)
    assert on["position"] == {"lat": 27.71, "lon": -82.61, "accuracy_m": 5.0,
                              "at": on["position"]["at"], "source": "avl"}


async def test_a_units_status_and_call_follow_the_teams_status_changes(server: Server) -> None:
    s = server
    await put(s, "CALL-1", on_duty=True)
    call_id = (await post_call(s, "14:00"))["call_id"]
    async with s.connect_board() as ws:
        for step, status in (("assigned", "assigned"), ("en_route", "en_route"),
                             ("on_scene", "on_scene")):
            r = await s.client.post(f"/v1/calls/{call_id}/status",
                                    json={"status": step, "unit": "CALL-1"})
            assert r.status_code == 200, r.text
            msg = await recv_type(ws, "unit")
            assert (msg["unit"]["status"], msg["unit"]["call_id"]) == (status, call_id)
        r = await s.client.post(f"/v1/calls/{call_id}/status", json={
            "status": "cleared", "disposition": "resolved_on_scene"})
        assert r.status_code == 200, r.text
        msg = await recv_type(ws, "unit")
        assert (msg["unit"]["status"], msg["unit"]["call_id"]) == ("available", None)
        # A unit nobody keeps on the roster: the call moves, no unit message.
        other = (await post_call(s, "14:05"))["call_id"]
        assert (await recv(ws))["call_id"] == other
        await s.client.post(f"/v1/calls/{other}/status",
                            json={"status": "assigned", "unit": "VAN-7"})
        after = await recv(ws)
        assert after["type"] == "status" and after["unit"] == "VAN-7"
        marker = (await post_call(s, "14:06"))["call_id"]
        nxt = await recv(ws)
        assert (nxt["type"], nxt["call_id"]) == ("decision", marker)
    [unit] = (await s.client.get("/v1/units")).json()["units"]
    assert unit["status"] == "available"


async def test_the_opening_snapshot_carries_the_units(server: Server) -> None:
    s = server
    await put(s, "CALL-1", on_duty=True)
    await put(s, "CALL-2")
    async with s.connect_board("?after=0&scope=live&snapshot=true", role=Role.dispatcher) as ws:
        snap = await recv(ws)
        assert snap["type"] == "snapshot" and snap["seq"] is None
        assert [(u["id"], u["status"]) for u in snap["units"]] == [("CALL-1", "available"),
                                                                   ("CALL-2", "off_duty")]
        await duty(s, "CALL-2", True)
        live = await recv(ws)
        assert live["type"] == "unit" and live["unit"]["on_duty"] is True


async def test_capacity_comes_from_the_units_on_duty(server: Server) -> None:
    """The shipped policy says 4 units; the roster keeps one on duty: the second call
    queues. Signing a second unit on takes it, as a unit freeing would (`unit_free`)."""
    s = server
    await put(s, "CALL-1", on_duty=True)
    await put(s, "CALL-2")  # on the roster, off duty: not counted
    first = (await post_call(s, "14:00"))["decision"]
    assert (first["program"]["id"], first["program"]["units_total"]) == ("call", 1)
    assert first["program"]["units_from"] == "roster"
    assert "1 of 1 units free" in first["explanation"]
    second = await post_call(s, "14:01")
    assert second["decision"]["queued"]["position"] == 1, second["decision"]["explanation"]
    programs = (await s.client.get("/v1/programs")).json()["programs"]
    call = next(p for p in programs if p["id"] == "call")
    assert (call["units_total"], call["units_from"], call["queued"]) == (1, "roster", 1)
    async with s.connect_board() as ws:
        await duty(s, "CALL-2", True)
        taken = await recv_type(ws, "decision")
    assert (taken["call_id"], taken["cause"]) == (second["call_id"], "unit_free")
    assert taken["decision"]["queued"] is None
    async with s.runtime.engine.connect() as conn:
        causes = list((await conn.execute(select(DECISION.c.cause).where(
            DECISION.c.call_id == second["call_id"]).order_by(DECISION.c.id))).scalars())
    assert causes == ["event", "unit_free"]
    # No roster for the crisis line: its policy's count, said so.
    call = next(p for p in (await s.client.get("/v1/programs")).json()["programs"]
                if p["id"] == "crisis-line")
    assert call["units_from"] == "policy"


async def test_positions_are_kept_for_the_retention_a_supervisor_sets(
        database_url: str) -> None:
    settings = Settings(database_url=database_url, field_sweep_seconds=0.1)
    async with running_server(settings) as s:
        r = await s.client.get("/v1/roster/retention")
        assert r.json()["position_retention_hours"] == 24
        await put(s, "CALL-1", on_duty=True)
        await put(s, "CALL-2", on_duty=True)
        now = utcnow()
        old = [(now - timedelta(hours=h)).isoformat() for h in (3, 2)]
        r = await s.client.post("/v1/units/positions", json={"positions": [
            {"unit_id": u, "lat": 27.7, "lon": -82.6, "at": at}
            for u in ("CALL-1", "CALL-2") for at in old]})
        assert r.status_code == 200, r.text
        await duty(s, "CALL-2", False)

        async def kept() -> list[tuple[str, str]]:
            async with s.runtime.engine.connect() as conn:
                rows = await conn.execute(select(UNIT_POSITION.c.unit_id, UNIT_POSITION.c.at)
                                          .order_by(UNIT_POSITION.c.unit_id,
                                                    UNIT_POSITION.c.at))
                return [(u, at.isoformat()) for u, at in rows]

        assert len(await kept()) == 4, "within 24 h: all kept"
        # The board's unit messages carry positions too: made 3 hours old here, with a
        # call's message as old, which is not the roster's to delete.
        call_id = (await post_call(s, "14:00"))["call_id"]
        b = BOARD.c
        async with s.runtime.engine.begin() as conn:
            await conn.execute(update(BOARD).where(b.type.in_(["unit", "decision"]))
                               .values(created_at=now - timedelta(hours=3)))

        async def board_types() -> list[str]:
            async with s.runtime.engine.connect() as conn:
                return list((await conn.execute(select(b.type).order_by(b.seq))).scalars())

        assert "unit" in await board_types()
        r = await s.client.put("/v1/roster/retention", json={"position_retention_hours": 2.5})
        assert r.status_code == 200 and r.json()["updated_by"]
        await eventually(lambda: _len_is(kept, 2), "the 3-hour-old positions deleted")
        await eventually(lambda: _none_of(board_types, "unit"), "old unit messages deleted")
        assert await board_types() == ["decision"]
        async with s.runtime.engine.connect() as conn:
            assert (await conn.execute(select(b.call_id))).scalar() == call_id
        r = await s.client.put("/v1/roster/retention", json={"position_retention_hours": 0})
        # 0: none but the latest of a unit on duty; CALL-2 is off duty and keeps none.
        await eventually(lambda: _len_is(kept, 1), "only CALL-1's latest kept")
        [(unit, _)] = await kept()
        assert unit == "CALL-1"
        assert (await audit_actions(s)).count("unit.retention") == 2
        r = await s.client.put("/v1/roster/retention", json={"position_retention_hours": -1})
        assert r.status_code == 422


async def test_a_call_after_the_newest_unit_messages_went_old_reaches_the_boards(
        database_url: str) -> None:
    """The board's newest messages are a unit's, and every one of them outlives the
    retention (a team's shift over, a quiet night): the sweep deletes them but the newest,
    so the next call's message is numbered after every one a board has seen. (SQLite
    numbers a row one past the largest left: with the newest gone, the next call took a
    seq the board had already seen, and the live boards never got it.)"""
    settings = Settings(database_url=database_url, field_sweep_seconds=0.1)
    async with running_server(settings) as s:
        await put(s, "CALL-1", on_duty=True)
        async with s.connect_board() as ws:
            await duty(s, "CALL-1", False)
            seen = await recv_type(ws, "unit")
            b = BOARD.c
            async with s.runtime.engine.begin() as conn:
                await conn.execute(update(BOARD).values(created_at=utcnow() - timedelta(hours=3)))

            async def units_left() -> int:
                async with s.runtime.engine.connect() as conn:
                    return int((await conn.execute(select(func.count()).where(
                        b.type == "unit"))).scalar_one())

            before = await units_left()
            assert before >= 2
            r = await s.client.put("/v1/roster/retention", json={"position_retention_hours": 0})
            assert r.status_code == 200, r.text
            await eventually(lambda: _fewer(units_left, before), "old unit messages deleted")
            call_id = (await post_call(s, "14:00"))["call_id"]
            got = await recv_type(ws, "decision")
        assert got["call_id"] == call_id and got["seq"] > seen["seq"]


async def _fewer(read: Any, than: int) -> bool:
    return int(await read()) < than


async def _len_is(read: Any, n: int) -> bool:
    return len(await read()) == n


async def _none_of(read: Any, kind: str) -> bool:
    return kind not in await read()


async def test_a_one_team_policy_counts_its_team_roster(database_url: str,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "one-team.yaml"
    path.write_text(yaml.safe_dump(one_team_doc(), sort_keys=False), encoding="utf-8")
    async with running_server(Settings(database_url=database_url, policy=str(path))) as s:
        r = await s.client.put("/v1/units/CALL-1", json={"program_id": "call"})
        assert r.status_code == 422 and "one of: team" in r.text
        await put(s, "CALL-1", program_id="team", on_duty=True)
        first = (await post_call(s, "14:00"))["decision"]
        assert first["destination"] == "call_team", first["explanation"]
        assert (first["program"]["units_total"], first["program"]["units_from"]) == (1, "roster")
        second = (await post_call(s, "14:01"))["decision"]
        assert (second["destination"], second["not_served_reason"]) == ("police", "units_busy")
        assert "All 1 team units are busy" in second["explanation"]


async def test_two_instances_count_one_roster(postgres_url: str) -> None:
    """A unit signed on through one instance is capacity on the other."""
    settings = Settings(database_url=postgres_url)
    async with running_server(settings) as a, running_server(settings, creds=a.creds) as b:
        await put(a, "CALL-1", on_duty=True)
        first = (await post_call(b, "14:00"))["decision"]
        assert (first["program"]["units_total"], first["program"]["units_from"]) == (1, "roster")
        queued = await post_call(b, "14:01")
        assert queued["decision"]["queued"] is not None
        async with b.connect_board() as ws:
            await put(a, "CALL-2", on_duty=True)
            taken = await recv_type(ws, "decision")
        assert (taken["call_id"], taken["cause"]) == (queued["call_id"], "unit_free")
        listed = (await b.client.get("/v1/units", params={"on_duty": "true"})).json()
        assert [u["id"] for u in listed["units"]] == ["CALL-1", "CALL-2"]
