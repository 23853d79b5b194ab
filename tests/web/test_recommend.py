"""The recommended unit in a real browser: units placed (positions posted), the nearest
lacking the capability the call's category asks for; the board recommends the nearest
able one, follows a unit's move live, one tap assigns it, and the stored assignment says
the recommendation was taken.
The dispatcher console shows the same recommendation, without the button (assigning is
the team's)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.store.tables import ASSIGNMENT
from tests.api.test_recommend import north, roster, team_call
from tests.conftest import Server, eventually
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def place(web: Server, unit_id: str, km: float) -> None:
    """An AVL report: the unit `km` north of the calls, now."""
    r = await web.client.post("/v1/units/positions", json={"positions": [
        {"unit_id": unit_id, **north(km), "accuracy_m": 10,
         "at": datetime.now(UTC).isoformat()}]})
    assert r.status_code in (200, 202), r.text


def card(page: Any, call_id: str) -> Any:
    return page.locator(f'li.card[data-call-id="{call_id}"]')


async def test_one_tap_assigns_the_recommended_unit(browser: Any, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}"
    async with roster(url, tmp_path) as web:
        board_ctx, board = await new_page(browser, web, role="call_team")
        console_ctx, console = await new_page(browser, web, role="dispatcher")
        try:
            await board.goto(f"{web.base_url}/board")
            await board.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            await console.goto(f"{web.base_url}/dispatch")
            await console.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            call_id = await team_call(web)  # mental health: needs youth_trained
            rec = card(board, call_id).locator('.recommend[data-unit="CALL-2"]')
            await rec.wait_for()
            assert await rec.locator(".recommend-text").text_content() == (
                "Recommended: CALL-2 — 2.0 km, about 4 min, youth_trained; CALL-1 is "
                "nearer but lacks youth_trained")
            # The console shows it too; a dispatcher may not assign.
            shown = card(console, call_id).locator('.recommend[data-unit="CALL-2"]')
            await shown.wait_for()
            assert await shown.locator("button").count() == 0

            # A unit moves (AVL): the board asks again and the recommendation follows.
            await place(web, "CALL-3", 1.0)
            rec = card(board, call_id).locator('.recommend[data-unit="CALL-3"]')
            await rec.wait_for()
            assert await rec.locator(".recommend-text").text_content() == (
                "Recommended: CALL-3 — 1.0 km, about 2 min, youth_trained; CALL-1 is "
                "nearer but lacks youth_trained")
            # Moved back: CALL-2 again (the one tapped below).
            await place(web, "CALL-3", 6.0)
            rec = card(board, call_id).locator('.recommend[data-unit="CALL-2"]')
            await rec.wait_for()
            await rec.get_by_role("button", name="Assign CALL-2").click()
            assigned = board.locator(
                f'.lane[data-lane="assigned"] li[data-call-id="{call_id}"]')
            await assigned.wait_for()
            assert await assigned.locator(".unit-tag").text_content() == "CALL-2"
            assert await assigned.locator(".recommend").count() == 0

            async def stored() -> Any:
                async with web.runtime.engine.connect() as conn:
                    return (await conn.execute(select(ASSIGNMENT).where(
                        ASSIGNMENT.c.call_id == call_id))).mappings().first()
            row = await eventually(stored, "the assignment stored")
            assert (row["assigned_unit"], row["recommended_unit"], row["taken"]) == (
                "CALL-2", "CALL-2", True)
            assert board.errors == [] and console.errors == []
        finally:
            await board_ctx.close()
            await console_ctx.close()
