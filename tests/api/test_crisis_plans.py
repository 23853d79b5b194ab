"""Crisis plans and premise cautions (issue 16) through the real routes on both databases:
written by the team with consent and an expiry, found for a call by its folded address
(a plan also by phone), every look audited with the ids only, refused and audited for
roles without need, in no other output of the call, and deleted by the sweeper once
expired."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select, update

from service.access.auth import Role
from service.settings import Settings
from service.store.tables import AUDIT, CRISIS_PLAN, PREMISE_CAUTION, utcnow
from tests.conftest import Server, eventually, running_server

pytestmark = pytest.mark.asyncio

HELPS = "HELPS-MARKER speak slowly, offer water"
AVOID = "AVOID-MARKER no sirens, do not touch"
CAUTION = "CAUTION-MARKER large dog in the yard"


@pytest_asyncio.fixture
async def server(database_url: str) -> AsyncIterator[Server]:
    # A quick sweeper, so an expired plan is seen to go.
    settings = Settings(database_url=database_url, field_sweep_seconds=0.2)
    async with running_server(settings) as s:
        yield s


def as_role(s: Server, role: Role) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=s.base_url, timeout=30, headers=s.creds.bearer(role))


def in_days(days: float) -> str:
    return (utcnow() + timedelta(days=days)).isoformat()


def plan(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person": "Sam R.", "address": "1300 1st Ave N", "phone": "(727) 555-0100",
        "helps": HELPS, "avoid": AVOID, "contacts": "Sister Ana 727-555-0199",
        "consent": {"given_by": "Sam R.", "at": utcnow().isoformat(), "how": "verbal"},
        "expires_at": in_days(180)}
    body.update(fields)
    return body


async def create(c: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await c.post(path, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def audit_rows(s: Server, action: str) -> list[Any]:
    async with s.runtime.engine.connect() as conn:
        return list((await conn.execute(select(AUDIT).where(AUDIT.c.action == action)
                                        .order_by(AUDIT.c.id))).mappings())


async def new_call(s: Server, **fields: Any) -> str:
    r = await s.post_event(**fields)
    assert r.status_code == 202, r.text
    return str(r.json()["call_id"])


async def test_the_team_sees_a_calls_plans_and_cautions_and_each_look_is_audited(
        server: Server) -> None:
    s = server
    async with as_role(s, Role.call_team) as team:
        kept = await create(team, "/v1/crisis-plans", plan())
        assert kept["consent"]["how"] == "verbal" and kept["created_by"] == "key:" + (
            s.creds.keys[Role.call_team][3:].split(".")[0])
        # Found by phone alone: another address, the same number spelled otherwise.
        by_phone = await create(team, "/v1/crisis-plans", plan(
            address="77 Elsewhere St", phone="+1 727 555 0100"))
        # Neither the address nor the phone: not this call's.
        await create(team, "/v1/crisis-plans", plan(address="9 Other Rd", phone=None))
        caution = await create(team, "/v1/premise-cautions", {
            "address": "1300 1ST AVE. N.", "text": CAUTION, "expires_at": in_days(30)})
        await create(team, "/v1/premise-cautions", {
            "address": "9 Other Rd", "text": "not here", "expires_at": in_days(30)})

        # The call spells the address its own way; the folded key is the same.
        call_id = await new_call(s, location={"address": "1300  1st ave n"},
                                 person={"name": "Sam", "phone": "727.555.0100"})
        r = await team.get(f"/v1/calls/{call_id}/plans")
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["call_id"] == call_id
        assert [(p["id"], p["matched_by"]) for p in got["plans"]] == [
            (kept["id"], ["address", "phone"]), (by_phone["id"], ["phone"])]
        assert got["plans"][0]["helps"] == HELPS and got["plans"][0]["avoid"] == AVOID
        assert [c["id"] for c in got["cautions"]] == [caution["id"]]
        assert got["cautions"][0]["text"] == CAUTION

    # A supervisor reads them too. A call without an address or phone has none.
    r = await s.client.get(f"/v1/calls/{call_id}/plans")
    assert r.status_code == 200 and len(r.json()["plans"]) == 2
    bare = await new_call(s, location=None)
    assert (await s.client.get(f"/v1/calls/{bare}/plans")).json() == {
        "call_id": bare, "plans": [], "cautions": []}
    assert (await s.client.get("/v1/calls/nope/plans")).status_code == 404

    reads = await audit_rows(s, "crisis_plan.read")
    assert [(r["role"], r["call_id"], r["outcome"]) for r in reads] == [
        ("call_team", call_id, "ok"), ("supervisor", call_id, "ok"),
        ("supervisor", bare, "ok"), ("supervisor", "nope", "failed")]
    assert json.loads(reads[0]["detail"]) == {
        "plan_ids": [kept["id"], by_phone["id"]], "caution_ids": [caution["id"]]}
    # Ids only: no text of a plan in the log.
    for row in await audit_rows(s, "crisis_plan.read") + await audit_rows(
            s, "crisis_plan.create"):
        assert "MARKER" not in json.dumps({k: str(v) for k, v in row.items()})


async def test_roles_without_need_are_refused_and_the_refusal_audited(server: Server) -> None:
    s = server
    async with as_role(s, Role.call_team) as team:
        await create(team, "/v1/crisis-plans", plan())
    call_id = await new_call(s)
    for role in (Role.dispatcher, Role.officer, Role.analyst, Role.cad):
        async with as_role(s, role) as c:
            r = await c.get(f"/v1/calls/{call_id}/plans")
            assert r.status_code == 403, (role, r.text)
            assert "MARKER" not in r.text
            assert r.json()["allowed_roles"] == ["call_team", "supervisor"]
            assert (await c.post("/v1/crisis-plans", json=plan())).status_code == 403
    denied = [r for r in await audit_rows(s, "crisis_plan.read") if r["outcome"] == "denied"]
    assert [(r["role"], r["call_id"]) for r in denied] == [
        ("dispatcher", call_id), ("officer", call_id), ("analyst", call_id), ("cad", call_id)]


async def test_plans_are_in_no_other_output_of_the_call(server: Server) -> None:
    s = server
    async with as_role(s, Role.call_team) as team:
        await create(team, "/v1/crisis-plans", plan())
        await create(team, "/v1/premise-cautions", {
            "address": "1300 1st Ave N", "text": CAUTION, "expires_at": in_days(3)})
    call_id = await new_call(s, person={"name": "Sam", "phone": "727-555-0100"})
    assert (await s.client.get(f"/v1/calls/{call_id}/plans")).status_code == 200
    outputs = [await s.client.get(f"/v1/calls/{call_id}"),
               await s.client.get(f"/v1/calls/{call_id}/eido"),
               await s.client.get("/v1/calls"),
               await s.client.get("/v1/metrics"),
               await s.client.get("/v1/audit/export.jsonl")]
    for r in outputs:
        assert r.status_code == 200, r.text
        assert "MARKER" not in r.text, r.request.url
    async with s.connect_board("?after=0") as ws:
        later = await new_call(s)  # a later message to wait on: all before it were sent
        seen = []
        while not seen or json.loads(seen[-1])["call_id"] != later:
            seen.append(await ws.recv())
    assert not any("MARKER" in m for m in seen)


async def test_consent_and_expiry_are_required_and_bounded(server: Server) -> None:
    s = server

    async def refused(r: httpx.Response, field: str) -> str:
        assert r.status_code == 422, r.text
        [err] = [d for d in r.json()["detail"] if d["field"] == field]
        return str(err["reason"])

    async with as_role(s, Role.call_team) as team:
        body = plan()
        del body["consent"]
        assert "required" in (await refused(await team.post("/v1/crisis-plans", json=body),
                                            "consent")).lower()
        body = plan()
        del body["expires_at"]
        await refused(await team.post("/v1/crisis-plans", json=body), "expires_at")
        r = await team.post("/v1/crisis-plans", json=plan(expires_at=in_days(366)))
        assert "365 days" in await refused(r, "expires_at")
        r = await team.post("/v1/crisis-plans", json=plan(expires_at=in_days(-1)))
        assert "future" in await refused(r, "expires_at")
        r = await team.post("/v1/crisis-plans", json=plan(consent={
            "given_by": "Sam", "at": in_days(1), "how": "verbal"}))
        assert "future" in await refused(r, "consent.at")
        for at in ("0001-01-01T00:00:00+01:00", "1999-12-31T23:59:59Z"):
            r = await team.post("/v1/crisis-plans", json=plan(consent={
                "given_by": "Sam", "at": at, "how": "verbal"}))
            await refused(r, "consent.at")
        r = await team.post("/v1/crisis-plans", json=plan(expires_at="9999-12-31T23:59:59-01:00"))
        await refused(r, "expires_at")
        r = await team.post("/v1/crisis-plans", json=plan(consent={
            "given_by": "Sam", "at": utcnow().isoformat(), "how": "telepathy"}))
        await refused(r, "consent.how")
        r = await team.post("/v1/crisis-plans", json=plan(phone="call me"))
        await refused(r, "phone")
        r = await team.post("/v1/premise-cautions", json={
            "address": "...", "text": "x", "expires_at": in_days(1)})
        assert "letters or digits" in await refused(r, "address")
    async with s.runtime.engine.connect() as conn:
        assert (await conn.execute(select(CRISIS_PLAN))).first() is None
        assert (await conn.execute(select(PREMISE_CAUTION))).first() is None


async def test_plans_are_replaced_and_deleted_and_the_sweeper_deletes_expired_ones(
        server: Server) -> None:
    s = server
    async with as_role(s, Role.call_team) as team:
        kept = await create(team, "/v1/crisis-plans", plan())
        r = await team.put(f"/v1/crisis-plans/{kept['id']}", json=plan(helps="quiet room"))
        assert r.status_code == 200, r.text
        assert r.json()["helps"] == "quiet room" and r.json()["updated_at"]
        assert r.json()["created_at"] == kept["created_at"]
        caution = await create(team, "/v1/premise-cautions", {
            "address": "1300 1st Ave N", "text": CAUTION, "expires_at": in_days(1)})
        r = await team.put(f"/v1/premise-cautions/{caution['id']}", json={
            "address": "1300 1st Ave N", "text": "gone dog", "expires_at": in_days(2)})
        assert r.status_code == 200 and r.json()["text"] == "gone dog"
        r = await team.delete(f"/v1/premise-cautions/{caution['id']}")
        assert (r.status_code, r.json()) == (200, {"id": caution["id"], "deleted": True})
        assert (await team.delete(f"/v1/premise-cautions/{caution['id']}")).status_code == 404
        missing = "0" * 32
        assert (await team.put(f"/v1/crisis-plans/{missing}", json=plan())).status_code == 404

        # Expired (its expiry moved back, as time would): not shown, then swept away.
        expiring = await create(team, "/v1/crisis-plans", plan(address="5 Short St"))
        short = await create(team, "/v1/premise-cautions", {
            "address": "5 Short St", "text": "soon gone", "expires_at": in_days(1)})
        call_id = await new_call(s, location={"address": "5 Short St"})
        assert len((await team.get(f"/v1/calls/{call_id}/plans")).json()["plans"]) == 1
        past = utcnow() - timedelta(seconds=1)
        async with s.runtime.engine.begin() as conn:
            for t, rid in ((CRISIS_PLAN, expiring["id"]), (PREMISE_CAUTION, short["id"])):
                await conn.execute(update(t).where(t.c.id == rid).values(expires_at=past))

        async def ids() -> set[str]:
            async with s.runtime.engine.connect() as conn:
                return {*(await conn.execute(select(CRISIS_PLAN.c.id))).scalars(),
                        *(await conn.execute(select(PREMISE_CAUTION.c.id))).scalars()}

        await eventually(lambda: _gone(ids, {expiring["id"], short["id"]}),
                         "the sweeper deleting the expired plan and caution")
        assert await ids() == {kept["id"]}
        assert (await team.get(f"/v1/calls/{call_id}/plans")).json()["plans"] == []
        assert (await team.delete(f"/v1/crisis-plans/{kept['id']}")).status_code == 200
    actions = [r["action"] for r in await audit_rows(s, "crisis_plan.update")] + [
        r["action"] for r in await audit_rows(s, "crisis_plan.delete")] + [
        r["action"] for r in await audit_rows(s, "premise_caution.delete")]
    assert actions == ["crisis_plan.update", "crisis_plan.delete", "premise_caution.delete"]


async def _gone(ids: Any, which: set[str]) -> bool:
    return not (await ids()) & which
