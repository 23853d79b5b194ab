"""The /metrics page and the monthly report in headless Chromium: charts drawn, numbers
there for screen readers, equity gaps flagged, nothing blocked by the CSP, readable on a
phone, printable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from service.access.auth import Role
from service.store.tables import CALL
from tests.conftest import Server
from tests.factories import call_row, gap_history, history, uniform
from tests.web.conftest import PHONE, new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def seed(web: Server) -> None:
    async with web.runtime.engine.begin() as conn:
        await conn.execute(insert(CALL), uniform([*history(), *gap_history()]))


def watch_console(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type in ("error", "warning") else None)
    return problems


async def test_metrics_page_on_a_phone(browser: Any, web: Server) -> None:
    await seed(web)
    context, page = await new_page(browser, web, role=Role.supervisor, viewport=PHONE)
    try:
        console = watch_console(page)
        res = await page.goto(f"{web.base_url}/metrics?from=2026-09-01&to=2026-10-01")
        assert res is not None and res.status == 200
        assert await page.title() == "Program figures · Liaison"
        # The stylesheets applied (a CSP refusal would leave the hidden tables visible).
        kpi = page.locator(".kpi").first
        assert await kpi.evaluate("e => getComputedStyle(e).borderStyle") == "solid"
        assert not [c for c in console if "Content Security Policy" in c], console
        assert page.errors == []

        # Readable on a phone: the page is no wider than the screen.
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # Equity gap flagged.
        flag = page.locator(".flags .flag").first
        await flag.wait_for()
        assert "district D1" in (await flag.text_content() or "")

        # Charts drawn and named; their numbers in tables screen readers can reach.
        charts = page.locator("svg.chart")
        assert await charts.count() >= 6
        assert await charts.first.is_visible()
        reasons = page.get_by_role("table", name="Not served, by reason")
        assert await reasons.count() == 1
        text = await reasons.text_content() or ""
        assert "Off hours" in text and "12" in text
        wrapper = await reasons.locator("xpath=..").bounding_box()
        assert wrapper is not None and wrapper["width"] <= 1  # shown only to screen readers
        heat = page.get_by_role("img", name="Not served, by hour of week (local time)")
        assert await heat.count() == 1

        # The filter form: one district.
        await page.locator("input[name=district]").fill("D2")
        await page.locator("form.filters button[type=submit]").click()
        await page.wait_for_url("**district=D2**")
        assert "district D2" in (await page.locator(".scope").text_content() or "")

        # The monthly report, printed: the numbers tables are shown.
        await page.goto(f"{web.base_url}/reports/monthly?month=2026-09")
        await page.emulate_media(media="print")
        table = page.get_by_role("table", name="Not served, by reason")
        assert await table.is_visible()
        assert not await page.locator("header.top").count()
        assert page.errors == []
    finally:
        await context.close()


async def test_analysts_see_aggregates_only(browser: Any, web: Server) -> None:
    await seed(web)
    context, page = await new_page(browser, web, role=Role.analyst)
    try:
        res = await page.goto(f"{web.base_url}/metrics?from=2026-10-31&to=2026-11-03")
        assert res is not None and res.status == 200
        body = await page.content()
        assert "Referrals per unit" in body
        assert "Referrals per officer" not in body and "badge-1" not in body
        assert "Overrides by dispatcher" not in body and "disp-7" not in body
    finally:
        await context.close()
    context, page = await new_page(browser, web, role=Role.officer)
    try:
        res = await page.goto(f"{web.base_url}/metrics")
        assert res is not None and res.status == 403
    finally:
        await context.close()


async def test_programs_section_shows_reach_and_waits_escaped(browser: Any, web: Server
                                                              ) -> None:
    """Two calls that waited for a program whose id holds markup, 5 and 15 minutes, both
    served: reach 100%, median 10.0, 90th percentile 5 + 0.9 * 10 = 14.0; the id is shown
    as text. Analysts see the section (aggregates)."""
    opened = datetime(2026, 11, 1, 15, tzinfo=UTC)
    rows = [call_row(f"w{i}", opened, program_id="street <i>team</i>", wait_kind="queued",
                     waited_from=opened, wait_ended_at=opened + timedelta(minutes=m),
                     wait_outcome="served") for i, m in enumerate((5, 15))]
    async with web.runtime.engine.begin() as conn:
        await conn.execute(insert(CALL), uniform(rows))
    context, page = await new_page(browser, web, role=Role.analyst)
    try:
        res = await page.goto(f"{web.base_url}/metrics?from=2026-10-31&to=2026-11-03")
        assert res is not None and res.status == 200
        assert await page.get_by_role("heading", name="Programs").count() == 1
        table = page.get_by_role("table", name="Reach and queue by program")
        row = table.locator("tbody tr", has_text="street <i>team</i>")
        assert await row.count() == 1
        cells = [c.strip() for c in await row.locator("th, td").all_text_contents()]
        # (no unit held; a program the policy in force does not have and no roster: no
        # unit-hours available)
        assert cells == ["street <i>team</i>", "2", "2", "100%", "2", "0", "2", "0",
                         "10.0", "14.0", "0.0", "–", "–"], cells
        assert await table.locator("i").count() == 0  # the id is text, not markup
        link = page.locator("a[href^='/v1/metrics/programs.csv']")
        assert await link.count() == 1
    finally:
        await context.close()
