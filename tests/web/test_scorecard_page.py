"""The rule scorecard on the figures page, in headless Chromium: a history made through
the real API, the over-broad and too-narrow rules flagged with their reasons, the figures
in a table screen readers can reach, nothing blocked by the CSP."""

from __future__ import annotations

from typing import Any

import pytest

from service.access.auth import Role
from tests.api.test_scorecard import seed
from tests.conftest import Server
from tests.web.conftest import PHONE, new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize("role", [Role.supervisor, Role.analyst])
async def test_figures_page_shows_the_flagged_rules(browser: Any, web: Server,
                                                    role: Role) -> None:
    await seed(web)
    context, page = await new_page(browser, web, role=role, viewport=PHONE)
    try:
        res = await page.goto(f"{web.base_url}/metrics?from=2026-03-10&to=2026-03-11")
        assert res is not None and res.status == 200
        section = page.locator("#scorecard")
        await section.wait_for()
        heading = await page.locator("#h-scorecard").text_content() or ""
        assert "st-petersburg-call@1" in heading
        over = section.locator('li[data-rule="mental-health"][data-flag="over_broad"]')
        assert "3 of the 11 calls it sent to the team (27%)" in (
            await over.text_content() or "")
        narrow = section.locator('li[data-rule="weapon"][data-flag="too_narrow"]')
        assert "3 calls it kept from the team" in (await narrow.text_content() or "")
        table = page.get_by_role("table", name="Each rule and exclusion: how its calls went")
        row = table.get_by_role("row", name="mental-health")
        cells = [(await c.text_content() or "") for c in await row.locator("td").all()]
        assert cells[:3] == ["rule", "11", "5"]  # kind, decided, matched not deciding
        assert cells[-1] == "over-broad"
        link = section.get_by_role("link", name="Download the scorecard (CSV)")
        assert "format=csv" in (await link.get_attribute("href") or "")
        assert page.errors == []
    finally:
        await context.close()
