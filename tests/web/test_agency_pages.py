"""A regional person's pages over two agencies (issue 17), in a real Chromium: the board
and the console offer a labelled choice of agency, kept in the URL; each card says whose
call it is; choosing one agency narrows the board stream to its calls; the figures page
chooses through its form. A person of one agency gets no choice.

The two agencies of tests/api/test_agencies.py: `default` (New York) and `west` (Chicago),
both teams on duty at the factories' Tuesday afternoon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.access.auth import Role, add_user
from tests.api.test_agencies import post, region, where
from tests.conftest import Server
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def regional_page(browser: Any, s: Server, role: Role) -> tuple[Any, Any]:
    """A browser logged in as a regional person (agency `*`) of `role`."""
    name = f"regional-{role.value}"
    await add_user(s.runtime.engine, name, role, s.creds.password, agency="*")
    context, page = await new_page(browser, s, role=role)  # the test user's cookie ...
    await context.clear_cookies()  # ... replaced by the regional person's
    res = await context.request.post(f"{s.base_url}/v1/session",
                                     data={"username": name, "password": s.creds.password})
    assert res.ok, await res.text()
    return context, page


def card(page: Any, call_id: str) -> Any:
    return page.locator(f'li.card[data-call-id="{call_id}"]')


async def test_a_regional_board_picks_one_agency(browser: Any, tmp_path: Path) -> None:
    async with region(f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}") as s:
        east = (await post(s, location=where("D2"))).json()["call_id"]
        west = (await post(s, location=where("W1", 38.5, -90.5))).json()["call_id"]
        context, page = await regional_page(browser, s, Role.supervisor)
        try:
            await page.goto(f"{s.base_url}/board")
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            # Every agency's calls, each saying whose.
            await card(page, east).wait_for()
            assert await card(page, east).locator(".agency-tag").text_content() == "default"
            assert await card(page, west).locator(".agency-tag").text_content() == "west"
            # A labelled choice, by keyboard: West County.
            choice = page.get_by_label("Agency")
            assert await choice.input_value() == ""
            await choice.focus()
            await choice.select_option("west")
            await page.wait_for_url("**/board?agency=west")
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            await card(page, west).wait_for()
            # A later call of each: west's arriving is the sign the other was passed over.
            later_east = (await post(s, location=where("D3"))).json()["call_id"]
            later_west = (await post(s, location=where("W2", 38.5, -90.5))).json()["call_id"]
            await card(page, later_west).wait_for()
            assert await card(page, east).count() == 0
            assert await card(page, later_east).count() == 0
            assert await page.get_by_label("Agency").input_value() == "west"
            # Reloaded: the choice is the URL's.
            await page.reload()
            await card(page, later_west).wait_for()
            assert await page.get_by_label("Agency").input_value() == "west"
            assert await card(page, east).count() == 0

            # The console: the same choice, the same narrowing.
            await page.goto(f"{s.base_url}/dispatch?agency=default")
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            await page.locator(f'#calls li[data-call-id="{later_east}"]').wait_for()
            assert await page.locator(f'#calls li[data-call-id="{west}"]').count() == 0
            assert await page.get_by_label("Agency").input_value() == "default"

            # The figures page: its form's choice, side by side without one.
            await page.goto(f"{s.base_url}/metrics?from=2026-03-01&to=2026-04-01")
            assert await page.locator("#by-agency tbody tr").count() == 2
            await page.get_by_label("Agency").select_option("west")
            await page.get_by_role("button", name="Show").click()
            await page.wait_for_url("**agency=west**")
            assert "America/Chicago" in await page.locator(".scope").text_content()
            assert await page.locator("#by-agency").count() == 0
            assert page.errors == []
        finally:
            await context.close()


async def test_a_person_of_one_agency_has_no_choice(browser: Any, tmp_path: Path) -> None:
    async with region(f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}") as s:
        east = (await post(s, location=where("D2"))).json()["call_id"]
        west = (await post(s, location=where("W1", 38.5, -90.5))).json()["call_id"]
        # The test users are the default agency's.
        context, page = await new_page(browser, s, role=Role.dispatcher)
        try:
            await page.goto(f"{s.base_url}/dispatch")
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            last = (await post(s, location=where("D3"))).json()["call_id"]
            await page.locator(f'#calls li[data-call-id="{last}"]').wait_for()
            await page.locator(f'#calls li[data-call-id="{east}"]').wait_for()
            assert await page.locator(f'#calls li[data-call-id="{west}"]').count() == 0
            assert await page.locator("#agency-choice").is_hidden()
            assert await page.locator(".agency-tag").count() == 0
            # Another agency's board by URL: refused, and said so.
            await page.goto(f"{s.base_url}/dispatch?agency=west")
            await page.locator('#conn[data-state="forbidden"]').wait_for()
            assert page.errors == []
        finally:
            await context.close()
