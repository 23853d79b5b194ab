"""A call's crisis plan and premise caution on the board (issue 16), in Chromium: shown on
the card's details to a team member (and the look audited), never to a dispatcher, who is
refused (and audited) when asking anyway."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.access.auth import Role
from service.store.tables import AUDIT, utcnow
from tests.conftest import Server
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")

HELPS = "Speak slowly <b>and</b> offer water"
CAUTION = "Large dog in the yard"


def card(page: Any, call_id: str) -> Any:
    return page.locator(f'li.card[data-call-id="{call_id}"]')


async def keep_plan_and_caution(web: Server, address: str) -> tuple[str, str]:
    later = (utcnow() + timedelta(days=90)).isoformat()
    async with httpx.AsyncClient(base_url=web.base_url, timeout=30,
                                 headers=web.creds.bearer(Role.call_team)) as team:
        r = await team.post("/v1/crisis-plans", json={
            "person": "Sam R.", "address": address, "helps": HELPS, "avoid": "Sirens",
            "contacts": "Sister Ana", "expires_at": later,
            "consent": {"given_by": "Sam R.", "at": utcnow().isoformat(), "how": "written"}})
        assert r.status_code == 201, r.text
        c = await team.post("/v1/premise-cautions", json={
            "address": address, "text": CAUTION, "expires_at": later})
        assert c.status_code == 201, c.text
    return str(r.json()["id"]), str(c.json()["id"])


async def reads(web: Server, call_id: str) -> list[tuple[str, str, Any]]:
    async with web.runtime.engine.connect() as conn:
        rows = await conn.execute(select(AUDIT.c.actor, AUDIT.c.outcome, AUDIT.c.detail)
                                  .where(AUDIT.c.action == "crisis_plan.read",
                                         AUDIT.c.call_id == call_id).order_by(AUDIT.c.id))
    return [(a, o, json.loads(d) if d else None) for a, o, d in rows]


async def open_details(page: Any, web: Server, call_id: str) -> Any:
    await page.goto(f"{web.base_url}/board")
    await page.locator('#conn[data-state="online"]').wait_for()
    c = card(page, call_id)
    await c.get_by_role("button", name="Details").click()
    await c.locator(".details").first.wait_for()
    return c


async def test_the_team_member_sees_the_plan_and_the_dispatcher_is_refused(
        browser: Any, web: Server) -> None:
    plan_id, caution_id = await keep_plan_and_caution(web, "40 Plan Ave N")
    call_id = (await web.post_event(location={"address": "40 PLAN AVE. N"})).json()["call_id"]

    context, page = await new_page(browser, web, role="call_team")
    try:
        c = await open_details(page, web, call_id)
        plan = c.locator(f'.plans .plan[data-plan-id="{plan_id}"]')
        await plan.wait_for()
        assert HELPS in await plan.text_content()  # text, never markup
        assert await c.locator(".plans b").count() == 0
        assert "Sister Ana" in await plan.text_content()
        assert CAUTION in await c.locator(
            f'.plans .caution[data-caution-id="{caution_id}"]').text_content()
        assert page.errors == []
    finally:
        await context.close()
    assert await reads(web, call_id) == [
        (web.creds.users[Role.call_team], "ok",
         {"plan_ids": [plan_id], "caution_ids": [caution_id]})]

    context, page = await new_page(browser, web, role="dispatcher")
    try:
        c = await open_details(page, web, call_id)
        # The details are up (the positive signal); no plans box was drawn or asked for.
        assert await c.locator(".plans").count() == 0
        assert HELPS not in await page.content()
        # Asking anyway, from the dispatcher's logged-in page: refused.
        got = await page.evaluate(
            "async (id) => { const r = await fetch(`/v1/calls/${id}/plans`);"
            " return [r.status, await r.text()]; }", call_id)
        assert got[0] == 403 and "Sam" not in got[1] and HELPS not in got[1]
        assert page.errors == []
    finally:
        await context.close()
    assert await reads(web, call_id) == [
        (web.creds.users[Role.call_team], "ok",
         {"plan_ids": [plan_id], "caution_ids": [caution_id]}),
        (web.creds.users[Role.dispatcher], "denied", None)]
