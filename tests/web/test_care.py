"""Warm handoffs to care on the board's call card, in a real browser (issue 16): a handoff
made elsewhere shows on the card live; the team refers the person to the warm line from
the card and records its steps, and declines another with why."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from service.access.auth import Role
from tests.conftest import Server
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(shared_web: Server) -> Server:
    return shared_web


async def handoffs(server: Server, call_id: str) -> list[dict[str, Any]]:
    r = await server.client.get(f"/v1/calls/{call_id}/care")
    assert r.status_code == 200, r.text
    return list(r.json()["referrals"])


async def test_the_team_refers_and_records_the_steps_from_the_card(browser: Any,
                                                                   web: Server) -> None:
    for pid, name, services in (("peer-line", "Peer Warm Line", ["warm_line"]),
                                ("safe-harbor", "Safe Harbor", ["shelter"]),
                                ("food-bank", "Food Bank", ["food"])):
        r = await web.client.put(f"/v1/providers/{pid}", json={"name": name,
                                                               "services": services})
        assert r.status_code == 200, r.text
    call_id = (await web.post_event(nature_text="Care on the card")).json()["call_id"]
    context, page = await new_page(browser, web, role="call_team")
    try:
        await page.goto(f"{web.base_url}/board")
        await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
        card = page.locator(f'li.card[data-call-id="{call_id}"]')
        await card.wait_for()
        # A handoff recorded elsewhere (a supervisor's) comes to the card live.
        r = await web.client.post(f"/v1/calls/{call_id}/care",
                                  json={"provider_id": "food-bank"})
        assert r.status_code == 201, r.text
        await card.locator(".care-item", has_text="Care: Food Bank · offered").wait_for()

        await card.get_by_role("button", name="Care", exact=True).click()
        form = card.locator("form.care")
        await form.locator('select[name="provider_id"] option[value="peer-line"]').wait_for(
            state="attached")
        await form.locator('select[name="provider_id"]').select_option("peer-line")
        await form.locator('input[name="note"]').fill("ask for Dana")
        await form.locator('button[type="submit"]').click()
        warm = card.locator('.care-item[data-kind="warm_line"]')
        await warm.wait_for()
        assert "Warm line: Peer Warm Line · offered" in await warm.text_content()
        [_, made] = await handoffs(web, call_id)
        assert (made["provider_id"], made["note"], made["offered_by"]) == (
            "peer-line", "ask for Dana", web.creds.users[Role.call_team])

        steps = card.locator(f'.care-steps[data-referral="{made["id"]}"]')
        await steps.locator('[data-step="accepted"]').click()
        await warm.filter(has_text="accepted").wait_for()
        await steps.locator('[data-step="connected"]').click()
        await warm.filter(has_text="connected").wait_for()
        assert await steps.count() == 0, "a connected handoff takes no more steps"

        food = card.locator(".care-steps", has_text="Food Bank")
        await food.locator('[data-step="declined"]').click()  # no reason yet: not sent
        await food.locator('input[name="reason"]').fill("no places today")
        await food.locator('[data-step="declined"]').click()
        await card.locator(".care-item.care-declined",
                           has_text="Food Bank · declined").wait_for()
        got = {h["provider_id"]: (h["status"], h["declined_reason"], len(h["steps"]))
               for h in await handoffs(web, call_id)}
        assert got == {"food-bank": ("declined", "no places today", 2),
                       "peer-line": ("connected", None, 3)}
        assert page.errors == []
    finally:
        await context.close()


async def test_a_reopened_board_shows_the_handoffs_made_before(browser: Any,
                                                               web: Server) -> None:
    r = await web.client.put("/v1/providers/warm", json={"name": "Warm Line",
                                                         "services": ["warm_line"]})
    assert r.status_code == 200, r.text
    call_id = (await web.post_event(nature_text="Handed over before")).json()["call_id"]
    r = await web.client.post(f"/v1/calls/{call_id}/care", json={"provider_id": "warm"})
    assert r.status_code == 201, r.text
    context, page = await new_page(browser, web, role="call_team")
    try:
        await page.goto(f"{web.base_url}/board")
        card = page.locator(f'li.card[data-call-id="{call_id}"]')
        await card.locator(".care-item", has_text="Warm line: Warm Line · offered").wait_for()
        assert page.errors == []
    finally:
        await context.close()


async def test_the_officer_sees_on_their_page_that_care_was_reached(browser: Any,
                                                                    web: Server) -> None:
    r = await web.client.put("/v1/providers/peers", json={"name": "Peer Center",
                                                          "services": ["peer_support"]})
    assert r.status_code == 200, r.text
    context, page = await new_page(browser, web, role="officer")
    try:
        res = await context.request.post(f"{web.base_url}/v1/referrals", data={
            "who": "Sam", "where": "Mirror Lake", "what": "Wants someone to talk to",
            "concern": "mental_health", "consent": True})
        assert res.ok, await res.text()
        call_id = (await res.json())["call_id"]
        r = await web.client.post(f"/v1/calls/{call_id}/care", json={"provider_id": "peers"})
        assert r.status_code == 201, r.text
        r = await web.client.post(f"/v1/care/{r.json()['id']}/steps",
                                  json={"status": "connected"})
        assert r.status_code == 200, r.text
        await page.goto(f"{web.base_url}/refer/mine")
        item = page.locator(f'#referrals li[data-call-id="{call_id}"]')
        await item.locator(".care.reached", has_text="Care reached: peer support").wait_for()
        assert "Peer Center" not in await item.text_content()
        assert page.errors == []
    finally:
        await context.close()


async def test_a_dispatcher_on_the_board_is_not_shown_the_handoffs(browser: Any,
                                                                   web: Server) -> None:
    r = await web.client.put("/v1/providers/detox", json={"name": "Detox Center",
                                                          "services": ["substance_use"]})
    assert r.status_code == 200, r.text
    call_id = (await web.post_event(nature_text="Not the dispatcher's")).json()["call_id"]
    context, page = await new_page(browser, web, role="dispatcher")
    asked: list[str] = []
    page.on("request", lambda req: asked.append(req.url) if "/v1/" in req.url
            and "/care" in req.url else None)
    try:
        await page.goto(f"{web.base_url}/board")
        await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
        card = page.locator(f'li.card[data-call-id="{call_id}"]')
        await card.wait_for()
        r = await web.client.post(f"/v1/calls/{call_id}/care", json={"provider_id": "detox"})
        assert r.status_code == 201, r.text
        # A later call's card up: the handoff's message, before it, has been handled.
        later = (await web.post_event(nature_text="Later")).json()["call_id"]
        await page.locator(f'li.card[data-call-id="{later}"]').wait_for()
        assert await card.locator(".care-item").count() == 0
        assert "Detox" not in await card.text_content()
        assert asked == [], "the board asks for no handoffs it may not read"
        assert page.errors == []
    finally:
        await context.close()
