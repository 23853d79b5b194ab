"""The crisis centre's /transfers page in Chromium (issue 16): a counsellor accepts an
offered transfer and returns it to 911 with a reason (the call is decided again: the
team), declines another (a reason required); a dispatcher reads the queue without the
buttons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from service.settings import Settings
from tests.api.test_queue import policy_file
from tests.api.test_transfers import CENTRE, PROGRAMS
from tests.conftest import Server, running_server
from tests.factories import event, now_iso
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """A crisis centre (counsellors enough for every test's calls, in any order) and a
    field team, both on shift round the clock: calls are made now, whenever the suite
    runs."""
    folder = tmp_path_factory.mktemp("transfers")
    async with running_server(Settings(database_url=f"sqlite+aiosqlite:///{folder / 'l.db'}",
                                       policy=policy_file(folder, [{**CENTRE, "units": 5},
                                                                   *PROGRAMS[1:]]))) as s:
        yield s


async def transferred(web: Server, narrative: str) -> dict[str, Any]:
    r = await web.client.post("/v1/cad/events", json=event(
        occurred_at=now_iso(), narrative=narrative,
        person={"name": "Sam", "phone": "555-0100"}))
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    assert body["decision"]["destination"] == "crisis_center", body["decision"]["explanation"]
    return body


async def test_a_counsellor_accepts_then_returns_a_transfer_and_declines_another(
        browser: Any, web: Server) -> None:
    first = await transferred(web, "Caller wants to talk about her brother")
    context, page = await new_page(browser, web, role="crisis_center")
    try:
        await page.goto(f"{web.base_url}/transfers")
        card = page.locator("#transfers li[data-status=offered]",
                            has_text="Caller wants to talk about her brother")
        await card.wait_for()
        assert "Callback: Sam, 555-0100" in await card.text_content()
        assert "988 transfer" in await card.text_content()
        await card.locator("button[data-step=accepted]").click()
        accepted = page.locator("#transfers li[data-status=accepted]",
                                has_text="Caller wants to talk about her brother")
        await accepted.wait_for()
        # Returning needs a reason: refused on the page, nothing sent.
        await accepted.locator("button[data-step=returned]").click()
        await page.locator("#flash.error", has_text="Say why").wait_for()
        await accepted.locator("input[name=reason]").fill("Needs someone in person tonight")
        await accepted.locator("button[data-step=returned]").click()
        await page.locator("#flash.ok", has_text="now goes to call team").wait_for()
        # Off the open list; the call is the team's now, the reason in its explanation.
        await accepted.wait_for(state="detached")
        call = (await web.client.get(f"/v1/calls/{first['call_id']}")).json()
        assert call["decision"]["destination"] == "call_team"
        assert "Needs someone in person tonight" in call["decision"]["explanation"]

        # The next call is offered, and declined.
        await transferred(web, "Caller asks for a listening ear")
        offered = page.locator("#transfers li[data-status=offered]",
                               has_text="Caller asks for a listening ear")
        await offered.wait_for()  # the page's own refresh brings it
        await offered.locator("input[name=reason]").fill("No counsellor with Spanish free")
        await offered.locator("button[data-step=declined]").click()
        await offered.wait_for(state="detached")
        await page.select_option("#status", "declined")
        await page.locator("#transfers li[data-status=declined]",
                           has_text="No counsellor with Spanish free").wait_for()
        assert page.errors == []
    finally:
        await context.close()


async def test_a_dispatcher_reads_the_transfers_without_the_buttons(
        browser: Any, web: Server) -> None:
    await transferred(web, "Dispatcher-visible transfer")
    context, page = await new_page(browser, web, role="dispatcher")
    try:
        await page.goto(f"{web.base_url}/transfers")
        card = page.locator("#transfers li", has_text="Mental person non-violent").first
        await card.wait_for()
        assert await page.locator("#transfers button").count() == 0
        assert page.errors == []
    finally:
        await context.close()


async def test_a_counsellor_hands_the_caller_to_the_warm_line_from_the_card(
        browser: Any, web: Server) -> None:
    r = await web.client.put("/v1/providers/peer-line", json={
        "name": "Peer Warm Line", "services": ["warm_line", "peer_support"]})
    assert r.status_code == 200, r.text
    call = await transferred(web, "Caller would like someone to talk to tomorrow")
    context, page = await new_page(browser, web, role="crisis_center")
    try:
        await page.goto(f"{web.base_url}/transfers")
        card = page.locator("#transfers li[data-status]",
                            has_text="Caller would like someone to talk to tomorrow")
        await card.locator("button[data-step=accepted]").click()
        accepted = page.locator("#transfers li[data-status=accepted]",
                                has_text="Caller would like someone to talk to tomorrow")
        await accepted.get_by_role("button", name="Warm line or care…").click()
        await accepted.locator("select[name=provider_id] option[value=peer-line]").wait_for(
            state="attached")
        await accepted.locator("select[name=provider_id]").select_option("peer-line")
        await accepted.get_by_role("button", name="Refer").click()
        await accepted.locator(".care-item[data-kind=warm_line]",
                               has_text="Peer Warm Line").wait_for()
        # Recorded as a handoff of the call, by the counsellor.
        r = await web.client.get(f"/v1/calls/{call['call_id']}/care")
        [handoff] = r.json()["referrals"]
        assert (handoff["kind"], handoff["status"], handoff["offered_by"]) \
            == ("warm_line", "offered", "test-crisis_center")
        # The line connects: the counsellor records it from the same form.
        await accepted.locator(f'.care-steps[data-referral="{handoff["id"]}"] '
                               "button[data-step=connected]").click()
        await accepted.locator(".care-item.care-connected").wait_for()
        assert page.errors == []
    finally:
        await context.close()
