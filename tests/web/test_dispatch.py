"""The dispatcher console in a real browser: decisions, not served, backup, override."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from service.store.tables import CALL, utcnow
from tests.conftest import Server
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(shared_web: Server) -> Server:
    """One server for this module's tests: each looks only at its own calls."""
    return shared_web


async def open_console(browser: Any, server: Server) -> tuple[Any, Any]:
    context, page = await new_page(browser, server, role="dispatcher")
    await page.goto(f"{server.base_url}/dispatch")
    # Caught up: the calls already on the board are drawn, so a click lands on its card.
    await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
    return context, page


async def test_calls_decisions_and_eligible_not_served(browser: Any, web: Server) -> None:
    context, page = await open_console(browser, web)
    try:
        team = (await web.post_event()).json()
        police = (await web.post_event(nature_code="BURGLARY", nature_text="Burglary")).json()
        # Homelessness at 03:00: eligible, but outside the team's hours.
        night = (await web.post_event(nature_code="VAG", nature_text="Sleeping in doorway",
                                      occurred_at="2026-03-10T03:00:00-04:00")).json()
        assert night["decision"]["not_served_reason"] == "off_hours"
        calls = page.locator("#calls")
        for res in (team, police, night):
            c = calls.locator(f'li[data-call-id="{res["call_id"]}"]')
            await c.wait_for()
            assert await c.locator(".dest").text_content() == \
                res["decision"]["destination"].replace("_", " ")
            assert await c.locator(".why").text_content() == res["decision"]["explanation"]
        ns = page.locator(f'#not-served li[data-call-id="{night["call_id"]}"]')
        await ns.wait_for()
        assert "outside the team's hours" in await ns.locator(".not-served").text_content()
        assert await page.locator(f'#not-served li[data-call-id="{team["call_id"]}"]').count() \
            == 0
        # A dispatcher does not read a mental-health call's narrative: the details say so.
        c = calls.locator(f'li[data-call-id="{team["call_id"]}"]')
        await c.get_by_role("button", name="Details").click()
        await c.locator(".details").wait_for()
        assert "Narrativewithheld for your role" in await c.locator(".details").text_content()
        assert page.errors == []
    finally:
        await context.close()


async def request_backup(board: Any, call_id: str, reason: str) -> None:
    """On the team's board: assign, on scene, then ask for police backup."""
    c = board.locator(f'li.card[data-call-id="{call_id}"]')
    await c.get_by_role("button", name="Assign unit").click()
    await c.get_by_role("button", name="Assign", exact=True).click()
    await c.get_by_role("button", name="On scene", exact=True).click()
    await board.locator(f'.lane[data-lane="on_scene"] li[data-call-id="{call_id}"]'
                        ).wait_for()
    await c.get_by_role("button", name="Request police backup").click()
    await c.locator('input[name="reason"]').fill(reason)
    await c.get_by_role("button", name="Request backup").click()
    # Drawn in its lane: the board settles before a next click (a card moving lanes moves
    # the others, and a click could land where a button had been).
    await board.locator(f'.lane[data-lane="backup_requested"] li[data-call-id="{call_id}"]'
                        ).wait_for()


async def test_a_backup_request_reaches_the_console(browser: Any, web: Server) -> None:
    context, console = await open_console(browser, web)
    team, board = await new_page(browser, web, role="call_team")
    try:
        await board.goto(f"{web.base_url}/board")
        # A neighbour dispute: the dispatcher reads why the team asked.
        call_id = (await web.post_event(nature_code="CDX", nature_text="Neighbor dispute")
                   ).json()["call_id"]
        await board.locator(f'li.card[data-call-id="{call_id}"]').wait_for()
        assert await console.locator("#backups li").count() == 0
        await request_backup(board, call_id, "Crowd gathering, getting loud")

        highlighted = console.locator(f'#backups li[data-call-id="{call_id}"]')
        await highlighted.wait_for()
        assert "Crowd gathering, getting loud" in \
            await highlighted.locator(".backup-reason").text_content()
        assert await console.locator(f'#calls li.backup[data-call-id="{call_id}"]').count() == 1
        assert (await console.title()).startswith("(1 backup)")

        # A mental-health call: the request reaches the console, the team's note does not.
        mh = (await web.post_event()).json()["call_id"]
        await request_backup(board, mh, "He says the voices tell him to leave")
        held = console.locator(f'#backups li[data-call-id="{mh}"]')
        await held.wait_for(timeout=2000)
        assert "(reason withheld for your role)" in \
            await held.locator(".backup-reason").text_content()
        assert "voices" not in await console.locator("body").text_content()
        # The team's board, which sees everything, shows it.
        assert "voices tell him" in await board.locator(
            f'li.card[data-call-id="{mh}"] .backup-reason').text_content()
        assert console.errors == [] and board.errors == []
    finally:
        await team.close()
        await context.close()


async def test_an_override_needs_a_reason_and_is_recorded(browser: Any, web: Server) -> None:
    context, page = await open_console(browser, web)
    try:
        call_id = (await web.post_event()).json()["call_id"]
        c = page.locator(f'#calls li[data-call-id="{call_id}"]')
        # The card is drawn again once its unit recommendation comes (recommend.js): waited
        # for, so the form opened below is on the card as it stays.
        await c.wait_for()
        await c.locator(".recommend.pending").wait_for(state="detached")
        await c.get_by_role("button", name="Override…").click()
        form = c.locator("form.override")
        await form.locator('select[name="destination"]').select_option("police")
        await form.get_by_role("button", name="Override").click()
        await page.locator("#flash.error").wait_for()
        assert "needs a reason" in await page.locator("#flash").text_content()
        stored = (await web.client.get(f"/v1/calls/{call_id}")).json()
        assert stored["decision"]["override"] is None

        await form.locator('input[name="reason"]').fill("Caller's brother has a record of "
                                                        "assaulting responders")
        # The optional one-tap answer: was the recommended responder the right one?
        await form.get_by_label("Right responder?").select_option("no")
        await form.get_by_role("button", name="Override").click()
        await c.locator(".override-note").wait_for()
        note = await c.locator(".override-note").text_content()
        assert "assaulting responders" in note and "call team" in note
        assert await c.locator(".dest").text_content() == "police"
        # The call was eligible: now it is eligible-but-not-served, because of the override.
        ns = page.locator(f'#not-served li[data-call-id="{call_id}"]')
        await ns.wait_for()
        assert "overrode" in await ns.locator(".not-served").text_content()

        stored = (await web.client.get(f"/v1/calls/{call_id}")).json()
        assert stored["decision"]["destination"] == "police"
        assert stored["decision"]["override"]["reason"].endswith("assaulting responders")
        assert stored["decision"]["override"]["from_destination"] == "call_team"
        async with web.runtime.engine.connect() as conn:  # kept for the rule scorecard
            answer = (await conn.execute(select(CALL.c.override_right_responder).where(
                CALL.c.id == call_id))).scalar_one()
        assert answer == "no"
        assert page.errors == []
    finally:
        await context.close()


async def test_a_press_on_a_card_is_a_click_even_if_a_message_about_it_comes_meanwhile(
        browser: Any, web: Server) -> None:
    """A dispatcher presses "Override…" and, before the release, a message about the call
    arrives (the CAD updated it). The card is drawn again only after the release
    (keyed.js), so the press and the release land on one button: a click, and the form
    opens. Drawn at once, the press was on a button that was gone and nothing happened."""
    context, page = await new_page(browser, web, role="dispatcher")
    frames: list[str] = []  # what the console's websocket received
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    try:
        await page.goto(f"{web.base_url}/dispatch")
        await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
        incident = f"INC-PRESS-{uuid.uuid4().hex[:6]}"
        call_id = (await web.post_event(incident_id=incident)).json()["call_id"]
        c = page.locator(f'#calls li[data-call-id="{call_id}"]')
        await c.wait_for()
        await c.locator(".recommend.pending").wait_for(state="detached")
        button = c.get_by_role("button", name="Override…")
        await button.scroll_into_view_if_needed()
        box = await button.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await page.mouse.down()
        moved = {"address": "77 Pacing Way", "district": "D2", "lat": 27.77, "lon": -82.65}
        update = await web.post_event(incident_id=incident, type="updated", location=moved)
        assert update.status_code == 202
        # The message has come, and the console has drawn since (in an animation frame).
        deadline = asyncio.get_running_loop().time() + 10
        while not any("77 Pacing Way" in f for f in frames):
            assert asyncio.get_running_loop().time() < deadline, "the update never came"
            await asyncio.sleep(0.05)
        await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => "
                            "requestAnimationFrame(() => setTimeout(r, 50))))")
        await page.mouse.up()
        await c.locator("form.override").wait_for(timeout=5000)
        # Released, the card is drawn again: the update shows, the form stays open.
        await c.locator(".where", has_text="77 Pacing Way").wait_for()
        assert await c.locator("form.override").count() == 1
        assert page.errors == []
    finally:
        await context.close()


async def test_opening_the_console_loads_todays_calls_not_the_whole_history(
        browser: Any, web: Server) -> None:
    """The page asks for the live calls only (scope=live): a call closed three days ago is
    not replayed into it, one closed a minute ago is."""
    ids = {}
    for name in ("old", "recent"):
        incident = f"INC-HIST-{name}-{uuid.uuid4().hex[:6]}"
        ids[name] = (await web.post_event(incident_id=incident)).json()["call_id"]
        assert (await web.post_event(incident_id=incident, type="closed")).status_code == 202
    days_ago = utcnow() - timedelta(days=3)
    async with web.runtime.engine.begin() as conn:
        await conn.execute(update(CALL).where(CALL.c.id == ids["old"])
                           .values(updated_at=days_ago, closed_at=days_ago))
    context, page = await open_console(browser, web)
    try:
        await page.locator(f'#calls li[data-call-id="{ids["recent"]}"]').wait_for()
        # The replay is in seq order and the old call came first: had it been sent, it
        # would be on the page by now.
        assert await page.locator(f'#calls li[data-call-id="{ids["old"]}"]').count() == 0
        assert page.errors == []
    finally:
        await context.close()
