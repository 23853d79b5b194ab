"""The officer referral form on a phone, and the officer's list of outcomes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from service.settings import Settings
from tests.conftest import Server, running_server
from tests.factories import always_open_policy
from tests.web.conftest import PHONE, new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """One server for this module's tests (each looks only at its own calls), its team on
    shift round the clock: a referral is made now, whenever the suite runs."""
    folder = tmp_path_factory.mktemp("refer")
    async with running_server(Settings(database_url=f"sqlite+aiosqlite:///{folder / 'l.db'}",
                                       policy=always_open_policy(folder))) as s:
        yield s


async def test_a_referral_from_a_phone_becomes_a_call_and_shows_its_outcome(
        browser: Any, web: Server) -> None:
    context, page = await new_page(browser, web, role="officer", viewport=PHONE)
    try:
        await page.goto(f"{web.base_url}/refer")
        # Readable on a phone: nothing wider than the screen.
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        officer = page.locator("#officer")
        if not await officer.input_value():
            await officer.fill("ofc-117")
        who = await officer.input_value()

        # Consent is required: nothing is sent without it.
        await page.locator("#who-field").fill("Dana, about 40, <b>red coat</b>")
        await page.locator("#where").fill("Williams Park, 350 2nd Ave N")
        await page.locator("#concern").select_option("homelessness")
        await page.locator("#what").fill("Sleeping on the bench, asked for help with a bed.")
        await page.locator("#refer-submit").click()
        await page.locator("#flash.error").wait_for()
        mine = await web.client.get("/v1/referrals", params={"officer": who})
        assert mine.json()["referrals"] == []

        await page.locator("#consent").check()
        await page.locator("#contact").fill("727-555-0100")
        await page.locator("#refer-submit").click()
        await page.locator("#flash.ok").wait_for()
        assert "call team" in await page.locator("#result .dest").text_content()

        referrals = (await web.client.get("/v1/referrals", params={"officer": who})).json()
        [ref] = referrals["referrals"]
        stored = (await web.client.get(f"/v1/calls/{ref['call_id']}")).json()
        assert stored["call"]["channel"] == "officer_referral"
        assert stored["call"]["category"] == "homelessness"
        assert stored["call"]["narrative"] == "Sleeping on the bench, asked for help with a bed."

        # The team works it and clears it; the officer sees what happened.
        post = web.client.post
        call = f"/v1/calls/{ref['call_id']}/status"
        assert (await post(call, json={"status": "assigned", "unit": "CALL-1"})).is_success
        assert (await post(call, json={"status": "on_scene"})).is_success
        assert (await post(call, json={"status": "cleared", "disposition":
                                       "referred_to_services",
                                       "outcome": "Bed at the shelter tonight"})).is_success

        await page.get_by_role("link", name="My referrals and what happened").click()
        await page.wait_for_url("**/refer/mine")
        item = page.locator(f'#referrals li[data-call-id="{ref["call_id"]}"]')
        await item.wait_for()
        assert await item.locator(".status").text_content() == "cleared"
        outcome = await item.locator(".outcome").text_content()
        assert "referred to services" in outcome and "Bed at the shelter tonight" in outcome
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # An officer sees their own referrals only, whatever they ask for.
        other = await context.request.get(f"{web.base_url}/v1/referrals?officer=someone-else")
        assert (await other.json())["officer"] == who
        assert page.errors == []
    finally:
        await context.close()


async def test_the_referral_api_refuses_without_consent(web: Server) -> None:
    res = await web.client.post("/v1/referrals", json={
        "officer": "ofc-1", "who": "x", "where": "y", "what": "z", "consent": False})
    assert res.status_code == 422
    assert res.json()["detail"][0]["field"] == "consent"
    bad = await web.client.post("/v1/referrals", json={
        "officer": "no spaces allowed", "who": "x", "where": "y", "what": "z",
        "consent": True})
    assert bad.status_code == 422
