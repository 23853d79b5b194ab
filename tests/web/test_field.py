"""The field workflow on the board: check-ins, follow-ups, repeat contact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.access.auth import Role
from service.settings import Settings
from tests.conftest import Server, running_server
from tests.factories import always_open_policy
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def to_on_scene(server: Server, call_id: str, unit: str) -> None:
    for body in ({"status": "assigned", "unit": unit}, {"status": "on_scene"}):
        r = await server.client.post(f"/v1/calls/{call_id}/status", json=body)
        assert r.status_code == 200, r.text


async def test_check_ins_follow_ups_and_repeat_contact_on_the_board(
        browser: Any, tmp_path: Path) -> None:
    # Round the clock: the follow-up is made now, whenever the suite runs.
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}",
                        policy=always_open_policy(tmp_path),
                        checkin_interval_seconds=1.0, field_sweep_seconds=0.2)
    async with running_server(settings) as web:
        context, page = await new_page(browser, web, role=Role.call_team)
        try:
            await page.goto(f"{web.base_url}/board")
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            person = {"id": "MNI-9", "name": "Sam"}
            first = (await web.post_event(person=person)).json()["call_id"]
            c = page.locator(f'li.card[data-call-id="{first}"]')
            await c.wait_for()
            await to_on_scene(web, first, "CALL-1")

            # Nobody checked in within the interval: the board says so, loudly.
            await c.locator(".checkin-alert").wait_for()
            assert await page.locator("#safety").is_visible()
            assert "CALL-1" in await page.locator("#safety-text").text_content()
            await c.get_by_role("button", name="Check in").click()
            await page.locator("#flash.ok").filter(has_text="checked in").wait_for()
            await c.locator(".checkin-alert").wait_for(state="detached")

            # Clear with a follow-up in a day, from the board.
            await c.get_by_role("button", name="Clear", exact=True).click()
            form = c.locator("form.clear")
            await form.locator('select[name="disposition"]').select_option("resolved_on_scene")
            await form.locator('input[name="outcome"]').fill("Calmed down, stayed home")
            await form.locator('select[name="follow_up"]').select_option("24")
            await form.locator('input[name="follow_up_note"]').fill("See how the week went")
            await form.get_by_role("button", name="Clear").click()
            await c.wait_for(state="detached")
            fus = (await web.client.get("/v1/follow-ups", params={"call_id": first})).json()
            [fu] = fus["follow_ups"]
            assert fu["note"] == "See how the week went" and fu["status"] == "scheduled"
            due = datetime.fromisoformat(fu["due_at"])
            assert timedelta(hours=23) < due - datetime.now(UTC) <= timedelta(hours=24)
            assert await page.locator("#followups-box").is_hidden()  # not due yet

            # The same person again: the new call shows the history.
            second = (await web.post_event(person=person, location={"address": "9 Elm St"},
                                           occurred_at="2026-03-10T15:00:00-04:00")
                      ).json()["call_id"]
            c2 = page.locator(f'li.card[data-call-id="{second}"]')
            await c2.locator(".history").wait_for()
            history = await c2.locator(".history").text_content()
            assert "1 call about this person" in history
            assert "resolved on scene: Calmed down, stayed home" in history

            # A follow-up that falls due shows in its own queue and opens as a call.
            await to_on_scene(web, second, "CALL-2")
            soon = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
            r = await web.client.post(f"/v1/calls/{second}/status", json={
                "status": "cleared", "disposition": "referred_to_services",
                "outcome": "Counselor on Friday", "follow_up_at": soon,
                "follow_up_note": "Did the counselor visit happen?"})
            assert r.status_code == 200, r.text
            item = page.locator("#followups li.followup")
            await item.wait_for()
            assert "Did the counselor visit happen?" in await item.text_content()
            assert "Counselor on Friday" in await item.locator(".history").text_content()
            await item.get_by_role("button", name="Open as a call").click()
            await page.locator("#followups-box").wait_for(state="hidden")
            opened = page.locator('.lane[data-lane="queued"] li.card',
                                  has_text="Follow-up:")
            await opened.wait_for()
            assert "2 calls about this person" in await opened.locator(".history").text_content()
            assert page.errors == []
        finally:
            await context.close()
