"""Every page is readable on a 360 px wide phone: nothing wider than the screen; the
navigation shows each role the pages it may open."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from api.layout import PAGES
from service.access.auth import Role
from tests.conftest import Server
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")

NARROW = {"width": 360, "height": 740}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(shared_web: Server) -> Server:
    return shared_web


# Every page of the list (a new one is checked too), as a role that lands on it or may
# open it; /login as anyone.
@pytest.mark.parametrize("path, role", [
    (p.path, (*p.home_of, *p.roles, Role.supervisor)[0]) for p in PAGES if p.shell])
async def test_no_page_is_wider_than_a_360px_phone(browser: Any, web: Server, path: str,
                                                    role: Role) -> None:
    long_text = "Long-unbroken-incident-text-" * 6
    await web.post_event(nature_text=long_text, location={"address": long_text})
    context, page = await new_page(browser, web, role=role, viewport=NARROW)
    try:
        await page.goto(f"{web.base_url}{path}")
        await page.wait_for_load_state("networkidle")
        if path in ("/board", "/dispatch"):
            await page.locator("li.card").first.wait_for()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"{path} is {width}px wide on a 360px screen"
        assert page.errors == []
    finally:
        await context.close()


# SECURITY.md "Roles", as the nav should show it (written here, not read from api/layout.py).
NAV = {
    Role.dispatcher: ("/dispatch", ["Board", "Dispatch", "Transfers"]),
    Role.call_team: ("/board", ["Board", "Dispatch"]),
    Role.officer: ("/refer", ["Refer", "My referrals"]),
    Role.supervisor: ("/policy", ["Board", "Dispatch", "Refer", "My referrals", "Policy",
                                  "Units", "Providers", "Transfers", "Figures"]),
    Role.crisis_center: ("/transfers", ["Transfers"]),
}


@pytest.mark.parametrize("role", list(NAV))
async def test_the_nav_shows_a_role_its_pages(browser: Any, web: Server, role: Role) -> None:
    path, shown = NAV[role]
    context, page = await new_page(browser, web, role=role)
    try:
        await page.goto(f"{web.base_url}{path}")
        await page.locator("#who .user").wait_for()  # the session is known: the nav tidied
        links = page.locator("nav.site a:visible")
        assert await links.all_text_contents() == shown
        assert await page.locator('nav.site a[aria-current="page"]').get_attribute(
            "href") == path
        assert page.errors == []
    finally:
        await context.close()
