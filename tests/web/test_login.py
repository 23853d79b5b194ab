"""Logging in from the browser: a page without a session goes to /login and comes back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio

from service.access.auth import Role
from tests.conftest import Server
from tests.web.conftest import DESKTOP

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(shared_web: Server) -> Server:
    """One server for this module's tests: each looks only at its own calls."""
    return shared_web


async def test_a_page_without_a_session_logs_in_and_returns(browser: Any, web: Server) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        await page.goto(f"{web.base_url}/dispatch")
        await page.wait_for_url("**/login?next=%2Fdispatch")

        await page.locator("#username").fill(web.creds.users[Role.dispatcher])
        await page.locator("#password").fill("not the password at all")
        await page.locator("#login-submit").click()
        await page.locator("#flash.error").wait_for()
        assert "Wrong user name or password" in await page.locator("#flash").text_content()

        # Straight away may be too soon after a failure: the page says how long to wait,
        # and the server's Retry-After says the same.
        await page.locator("#password").fill(web.creds.password)
        for _ in range(5):
            async with page.expect_response(lambda r: r.url.endswith("/v1/session")
                                            and r.request.method == "POST") as answer:
                await page.locator("#login-submit").click()
            res = await answer.value
            if res.status == 200:
                break
            assert res.status == 429, res.status
            wait = res.headers["retry-after"]
            await page.locator("#flash").filter(
                has_text=f"Too many attempts: try again in {wait} seconds").wait_for()
            await asyncio.sleep(float(wait))  # the server's own answer: then it lets us in
        await page.wait_for_url(f"{web.base_url}/dispatch")
        await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
        assert web.creds.users[Role.dispatcher] in await page.locator("#who").text_content()

        # Log out: the next API call is refused and the page goes back to /login.
        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_url("**/login")
        await page.goto(f"{web.base_url}/board")
        await page.wait_for_url("**/login?next=%2Fboard")
    finally:
        await context.close()


async def test_without_next_a_role_lands_on_its_page(browser: Any, web: Server) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    try:
        page = await context.new_page()
        for role, home in ((Role.officer, "/refer"), (Role.call_team, "/board"),
                           (Role.dispatcher, "/dispatch"), (Role.analyst, "/metrics")):
            await page.goto(f"{web.base_url}/login")
            await page.locator("#username").fill(web.creds.users[role])
            await page.locator("#password").fill(web.creds.password)
            await page.locator("#login-submit").click()
            await page.wait_for_url(f"{web.base_url}{home}")
        # ?next= only ever leads to this site.
        await page.goto(f"{web.base_url}/login?next=//evil.example/x")
        await page.locator("#username").fill(web.creds.users[Role.supervisor])
        await page.locator("#password").fill(web.creds.password)
        await page.locator("#login-submit").click()
        await page.wait_for_url(f"{web.base_url}/policy")
    finally:
        await context.close()
