"""The field board's actions, once each (service/lifecycle/field_keys.py): a status change
or check-in sent again with its Idempotency-Key gets the first answer and records nothing;
the key with another body is refused; an action the call has moved past gets a 409 that
says what happened. Real uvicorn, real websockets, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from service.access.auth import Role
from service.store.tables import BOARD, FIELD_ACTION
from tests.api.test_field import get_call, recv, status, team_call
from tests.conftest import Server, start_subprocess
from tests.factories import event

pytestmark = pytest.mark.asyncio



def acted_minutes_ago(minutes: int = 5) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


async def keyed(server: Server, call_id: str, key: str, body: dict[str, Any] | str,
                *, role: Role = Role.call_team, path: str = "status") -> Any:
    """A field action as the board sends it: a team member's key, the Idempotency-Key."""
    headers = {**server.creds.bearer(role), "idempotency-key": key}
    if isinstance(body, str):  # a body spelled differently, byte for byte
        headers["content-type"] = "application/json"
        return await server.client.post(f"/v1/calls/{call_id}/{path}", content=body,
                                        headers=headers)
    return await server.client.post(f"/v1/calls/{call_id}/{path}", json=body, headers=headers)


async def count(server: Server, table: Any, *where: Any) -> int:
    async with server.runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))
                    ).scalar_one())


def statuses(view: dict[str, Any]) -> list[str]:
    return [m["status"] for m in view["timeline"] if m["type"] == "status"]


async def test_the_same_key_twice_is_one_change_and_one_board_message(server: Server) -> None:
    call_id = await team_call(server)
    acted = acted_minutes_ago()
    body = {"status": "assigned", "unit": "CALL-2", "at": acted.isoformat()}
    async with server.connect_board() as ws:
        first = await keyed(server, call_id, "7b1c7f0e-1d2a-4c39-9d55-5f2b8a0c1e01", body)
        assert first.status_code == 200, first.text
        assert "idempotent-replayed" not in first.headers
        # The retry of an answer lost on the way: the same JSON, spelled otherwise.
        again = await keyed(server, call_id, '"7b1c7f0e-1d2a-4c39-9d55-5f2b8a0c1e01"',
                            f'{{ "at": "{acted:%Y-%m-%dT%H:%M:%SZ}", "unit": "CALL-2", '
                            '"status": "assigned" }')
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        # The board got the change once: everything up to the marker call's decision (the
        # board sends in seq order) holds one status message.
        marker = await team_call(server, nature_code="MNTL")
        seen = []
        while (msg := await recv(ws))["call_id"] != marker:
            if msg["type"] == "status":
                seen.append((msg["call_id"], msg["status"]))
        assert seen == [(call_id, "assigned")], seen
    view = await get_call(server, call_id)
    assert statuses(view) == ["assigned"]
    # When the member acted, not when the change came.
    assert datetime.fromisoformat(view["call"]["assigned_at"]) == acted
    assert await count(server, BOARD, BOARD.c.call_id == call_id,
                       BOARD.c.type == "status") == 1
    assert await count(server, FIELD_ACTION) == 1

    # A check-in, once too.
    await status(server, call_id, "on_scene")
    key = "c0ffee00-0000-4000-8000-000000000001"
    one = await keyed(server, call_id, key, {"note": "all calm"}, path="checkin")
    two = await keyed(server, call_id, key, {"note": "all calm"}, path="checkin")
    assert one.status_code == two.status_code == 200, two.text
    assert two.json() == one.json() and two.headers["idempotent-replayed"] == "true"
    assert await count(server, BOARD, BOARD.c.call_id == call_id,
                       BOARD.c.type == "checkin") == 1


async def test_a_key_with_another_body_is_refused_and_records_nothing(server: Server) -> None:
    call_id = await team_call(server)
    key = "11111111-2222-4333-8444-555555555555"
    assert (await keyed(server, call_id, key, {"status": "assigned", "unit": "CALL-1"})
            ).status_code == 200
    other = await keyed(server, call_id, key, {"status": "en_route"})
    assert other.status_code == 422, other.text
    assert other.json()["error"] == "idempotency_key_reused"
    assert "already used for another request" in other.json()["message"]
    assert statuses(await get_call(server, call_id)) == ["assigned"]
    # Keys are each person's own: another member's same key is another action.
    theirs = await keyed(server, call_id, key, {"status": "en_route"}, role=Role.supervisor)
    assert theirs.status_code == 200, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert statuses(await get_call(server, call_id)) == ["assigned", "en_route"]
    # A key that is no key.
    bad = await keyed(server, call_id, "not a key!", {"status": "on_scene"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "header.Idempotency-Key"


async def test_a_stale_action_gets_a_409_that_says_what_happened(server: Server) -> None:
    call_id = await team_call(server)
    # Another member took the call and cleared it while this one was offline.
    await status(server, call_id, "assigned", unit="CALL-2")
    await status(server, call_id, "cleared", disposition="resolved_on_scene")
    key = "22222222-2222-4333-8444-555555555555"
    on_scene = {"status": "on_scene", "at": acted_minutes_ago().isoformat()}
    late = await keyed(server, call_id, key, on_scene)
    assert late.status_code == 409, late.text
    body = late.json()
    assert body["error"] == "stale"
    assert (body["current"], body["asked"], body["unit"]) == ("cleared", "on_scene", "CALL-2")
    assert body["changed_by"] == "test-supervisor" and body["allowed"] == []
    # In the program's time zone, as the team's clocks show it.
    zone = server.runtime.policy.compiled.zone
    cleared = datetime.fromisoformat(body["changed_at"]).astimezone(zone)
    acted = datetime.fromisoformat(on_scene["at"]).astimezone(zone)
    assert body["message"] == (
        f"CALL-2 (test-supervisor) had already cleared this call at {cleared:%H:%M}: "
        f"your 'on scene' at {acted:%H:%M} was not recorded.")
    # Nothing was kept for the key: its retry is judged again, and refused again.
    assert (await keyed(server, call_id, key, on_scene)).status_code == 409
    assert await count(server, FIELD_ACTION) == 0
    # A check-in on the cleared call, too.
    checkin = await keyed(server, call_id, "33333333-2222-4333-8444-555555555555", {},
                          path="checkin")
    assert checkin.status_code == 409, checkin.text
    assert checkin.json()["message"].endswith("your 'check-in' was not recorded.")
    assert statuses(await get_call(server, call_id)) == ["assigned", "cleared"]

    # Not stale, only incomplete: the plain conflict, as before.
    other = await team_call(server, nature_code="MNTL")
    await status(server, other, "assigned", unit="CALL-1")
    plain = await keyed(server, other, "44444444-2222-4333-8444-555555555555",
                        {"status": "cleared"})
    assert plain.status_code == 409 and plain.json()["error"] == "conflict"


async def test_a_dispatchers_override_is_named_when_it_made_the_action_stale(
        server: Server) -> None:
    call_id = await team_call(server)
    r = await server.client.post(f"/v1/calls/{call_id}/override", json={
        "destination": "police", "reason": "weapon seen"},
        headers=server.creds.bearer(Role.dispatcher))
    assert r.status_code == 200, r.text
    late = await keyed(server, call_id, "55555555-2222-4333-8444-555555555555",
                       {"status": "assigned", "unit": "CALL-1"})
    assert late.status_code == 409, late.text
    body = late.json()
    assert body["error"] == "stale" and body["changed_by"] == "test-dispatcher"
    assert body["message"].startswith("A dispatcher (test-dispatcher) sent this call to police")


async def test_a_change_queued_offline_for_hours_keeps_its_time(server: Server) -> None:
    call_id = await team_call(server)
    acted = datetime.now(UTC) - timedelta(hours=3)  # far beyond the 120 s ahead allowed
    r = await keyed(server, call_id, "66666666-2222-4333-8444-555555555555",
                    {"status": "assigned", "unit": "CALL-3", "at": acted.isoformat()})
    assert r.status_code == 200, r.text
    view = await get_call(server, call_id)
    assert datetime.fromisoformat(view["call"]["assigned_at"]) == acted


async def test_old_keys_are_pruned_as_new_ones_are_stored(server: Server) -> None:
    hours = server.runtime.settings.field_key_hours
    async with server.runtime.engine.begin() as conn:
        await conn.execute(insert(FIELD_ACTION), [
            {"actor": "test-call_team", "key": name, "call_id": "x", "action": "status",
             "request_sha256": "0" * 64, "response": json.dumps({}),
             "created_at": datetime.now(UTC) - timedelta(hours=age)}
            for name, age in (("old", hours + 1), ("young", hours - 1))])
    call_id = await team_call(server)
    r = await keyed(server, call_id, "77777777-2222-4333-8444-555555555555",
                    {"status": "assigned", "unit": "CALL-1"})
    assert r.status_code == 200, r.text
    async with server.runtime.engine.connect() as conn:
        kept = set((await conn.execute(select(FIELD_ACTION.c.key))).scalars())
    assert kept == {"young", "77777777-2222-4333-8444-555555555555"}


@pytest.mark.postgres
async def test_two_instances_record_a_key_sent_to_both_once(postgres_url: str,
                                                            tmp_path: Path) -> None:
    # A device that lost its answer may retry through another instance behind the load
    # balancer, even while the first is still busy with it: the writer's lock across
    # instances makes one of them record it and the other give the first answer.
    a = start_subprocess(postgres_url, tmp_path)
    b = start_subprocess(postgres_url, tmp_path, creds=a.creds)
    try:
        async with a.client() as ca, b.client() as cb:
            for n in range(5):
                r = await ca.post("/v1/cad/events", json=event())
                assert r.status_code == 202, r.text
                call_id = r.json()["call_id"]
                body = {"status": "assigned", "unit": f"CALL-{n}"}
                headers = {"idempotency-key": f"both-{n}"}
                one, two = await asyncio.gather(
                    *(c.post(f"/v1/calls/{call_id}/status", json=body, headers=headers)
                      for c in (ca, cb)))
                assert one.status_code == two.status_code == 200, (one.text, two.text)
                assert one.json() == two.json()
                replayed = [r.headers.get("idempotent-replayed") for r in (one, two)]
                assert sorted(replayed, key=str) == [None, "true"], replayed
                view = (await cb.get(f"/v1/calls/{call_id}")).json()
                assert [m["status"] for m in view["timeline"] if m["type"] == "status"] \
                    == ["assigned"]
    finally:
        a.stop()
        b.stop()
