"""The CALL team board in a real browser: live calls, the team's flow, restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select

from rules.load import default_policy_text
from service.settings import Settings
from service.store.tables import CALL
from tests.conftest import Server
from tests.factories import now_iso
from tests.web.conftest import free_port, new_page, serve_on

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(shared_web: Server) -> Server:
    """One server for this module's tests: each looks only at its own calls."""
    return shared_web


def card(page: Any, call_id: str) -> Any:
    return page.locator(f'li.card[data-call-id="{call_id}"]')


async def open_board(browser: Any, server: Server, **kw: Any) -> tuple[Any, Any]:
    context, page = await new_page(browser, server, role="call_team", **kw)
    await page.goto(f"{server.base_url}/board")
    await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
    return context, page


async def test_a_new_call_appears_live_with_an_alert(browser: Any, web: Server) -> None:
    # (How fast: POST-to-board latency in bench/ingest.py; a test waits as long as it
    # must, since a loaded machine is slow, not wrong.)
    context, page = await open_board(browser, web)
    try:
        # A call from before the page opened is on the board, with no alert for it.
        old = (await web.post_event(nature_text="Old call")).json()["call_id"]
        await card(page, old).wait_for()
        await page.locator("#alert-ack").click()
        assert await page.locator("#alert").is_hidden()

        hostile = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
        res = await web.post_event(nature_text=f"Crisis {hostile}",
                                   narrative=f"He wrote {hostile} on the wall",
                                   location={"address": "12 <b>Main</b> St"})
        call_id = res.json()["call_id"]
        await card(page, call_id).wait_for()
        c = card(page, call_id)
        # Data is text, never markup.
        assert hostile in await c.locator(".nature").text_content()
        assert "12 <b>Main</b> St" in await c.locator(".where").text_content()
        assert await c.locator(".cat").text_content() == "mental health"
        assert "mental-health" in await c.locator(".why").text_content()
        assert await c.locator(".age").text_content()
        assert await page.locator("#alert").is_visible()
        assert "Crisis" in await page.locator("#alert-text").text_content()
        assert (await page.title()).startswith("(1) New call")
        # The narrative, in the details, is text too.
        await c.get_by_role("button", name="Details").click()
        await c.locator(".details").wait_for()
        assert hostile in await c.locator(".details").text_content()
        assert await page.evaluate("window.__xss") is None
        assert await page.locator("img[src=x]").count() == 0
        # The age ticks (a crisis-line call: the team's at any hour, opened now).
        now = (await web.post_event(channel="crisis_line", nature_text="Caller in distress",
                                    occurred_at=now_iso())).json()["call_id"]
        await card(page, now).wait_for()
        first = await card(page, now).locator(".age").text_content()
        assert first.startswith("0:0")
        await page.wait_for_function(
            "([id, t]) => document.querySelector(`li[data-call-id='${id}'] .age`)"
            ".textContent !== t", arg=[now, first])
        # A police call is not the team's.
        police = (await web.post_event(nature_code="BURGLARY",
                                       nature_text="Burglary in progress")).json()
        assert police["decision"]["destination"] == "police"
        # A team call after it: once its card is up, the police call's message has been
        # handled too (the board sends in order).
        after = (await web.post_event(channel="crisis_line", nature_text="After the police call"
                                      )).json()["call_id"]
        await card(page, after).wait_for()
        assert await card(page, police["call_id"]).count() == 0
        assert page.errors == []
    finally:
        await context.close()


async def test_the_team_flow_through_clear(browser: Any, web: Server) -> None:
    context, page = await open_board(browser, web, viewport={"width": 390, "height": 844})
    try:
        call_id = (await web.post_event()).json()["call_id"]
        c = card(page, call_id)
        await page.locator(f'.lane[data-lane="queued"] li[data-call-id="{call_id}"]').wait_for()
        assert await page.locator('#units li[data-unit="CALL-1"]').text_content() == \
            "CALL-1 available"

        await c.get_by_role("button", name="Assign unit").click()
        await c.locator('select[name="unit"]').select_option("CALL-2")
        await c.get_by_role("button", name="Assign", exact=True).click()
        await page.locator(f'.lane[data-lane="assigned"] li[data-call-id="{call_id}"]'
                           ).wait_for()
        # The units list is redrawn by its own message, which may come after the card's.
        await page.locator('#units li[data-unit="CALL-2"]', has_text="assigned").wait_for()
        assert "assigned" in await page.locator('#units li[data-unit="CALL-2"]').text_content()

        for button, lane in (("En route", "en_route"), ("On scene", "on_scene")):
            await c.get_by_role("button", name=button, exact=True).click()
            await page.locator(f'.lane[data-lane="{lane}"] li[data-call-id="{call_id}"]'
                               ).wait_for()

        # Backup asks for a reason: without one, the form is not sent.
        backups: list[str] = []
        page.on("request", lambda req: backups.append(req.post_data or "")
                if req.method == "POST" and req.url.endswith(f"/v1/calls/{call_id}/status")
                and "backup_requested" in (req.post_data or "") else None)
        await c.get_by_role("button", name="Request police backup").click()
        await c.get_by_role("button", name="Request backup").click()
        reason = c.locator('input[name="reason"]')
        assert await reason.evaluate("e => e.validity.valueMissing")
        await reason.fill("Man has a bat now")
        await c.get_by_role("button", name="Request backup").click()
        await page.locator(f'.lane[data-lane="backup_requested"] li[data-call-id="{call_id}"]'
                           ).wait_for()
        # The lane moves as soon as the change is queued (web/static/offline.js); the
        # reason comes back with the service's status message, once the request was sent.
        await c.locator(".backup-reason").wait_for()
        assert len(backups) == 1 and "Man has a bat now" in backups[0], backups
        assert "Man has a bat now" in await c.locator(".backup-reason").text_content()

        # Clear needs a disposition, takes an outcome.
        await c.get_by_role("button", name="Clear", exact=True).click()
        await c.locator('select[name="disposition"]').select_option("referred_to_services")
        await c.locator('input[name="outcome"]').fill("Connected with the shelter")
        await c.get_by_label("Right responder?").select_option("yes")  # optional, one tap
        await c.locator("form.clear").get_by_role("button", name="Clear").click()
        await card(page, call_id).wait_for(state="detached")
        assert await page.locator('#units li[data-unit="CALL-2"]').text_content() == \
            "CALL-2 available"

        stored = (await web.client.get(f"/v1/calls/{call_id}")).json()
        assert stored["call"]["team_status"] == "cleared"
        assert stored["call"]["disposition"] == "referred_to_services"
        assert stored["call"]["unit"] == "CALL-2"
        notes = [m.get("note") for m in stored["timeline"] if m["type"] == "status"]
        assert "Man has a bat now" in notes
        async with web.runtime.engine.connect() as conn:  # kept for the rule scorecard
            answer = (await conn.execute(select(CALL.c.team_right_responder).where(
                CALL.c.id == call_id))).scalar_one()
        assert answer == "yes"
        assert page.errors == []
    finally:
        await context.close()


async def test_the_board_recovers_after_a_restart(browser: Any, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}")
    port = free_port()

    async def post(server: Server, text: str) -> str:
        # Crisis-line calls: the team's whatever the hour and however many units are busy.
        res = await server.post_event(channel="crisis_line", nature_text=text)
        return str(res.json()["call_id"])

    async with serve_on(settings, port) as first:
        context, page = await open_board(browser, first)
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        before = [await post(first, f"Before {i}") for i in range(2)]
        for call_id in before:
            await card(page, call_id).wait_for()
        last_seq = (await first.client.get("/v1/health")).json()["board_seq"]
        creds = first.creds  # the same database: the same keys and users
        # Keep the browser off the network while the server is away and calls come in.
        await context.set_offline(True)
    try:
        # The server is gone: the board says so.
        await page.locator('#conn[data-state="offline"]').wait_for()
        assert await page.locator("#conn").text_content() == "offline, reconnecting"
        async with serve_on(settings, port, creds) as second:
            # Posted before the board is back: it must get them from the replay.
            during = [await post(second, f"During {i}") for i in range(3)]
            assert await page.locator("#conn").get_attribute("data-state") == "offline"
            await context.set_offline(False)
            await page.locator('#conn[data-state="online"]').wait_for()
            after = await post(second, "After")
            for call_id in [*before, *during, after]:
                await card(page, call_id).wait_for()
            # One more: once its card is up, everything sent before it has been handled.
            last = await post(second, "Last")
            await card(page, last).wait_for()
            ids = await page.eval_on_selector_all(
                "li.card", "els => els.map(e => e.dataset.callId)")
            # None missed or twice.
            assert sorted(ids) == sorted([*before, *during, after, last])
            # It resumed after the last seq it saw, not from the start.
            assert sockets and sockets[-1].endswith(
                f"/v1/board?after={last_seq}&scope=live&snapshot=true")
            assert page.errors == []
    finally:
        await context.close()



async def test_the_board_reads_its_unit_count_from_what_the_team_may_read(
        browser: Any, tmp_path: Path) -> None:
    """A team member's board asks for nothing it would be refused (no 403 on load), and
    still draws the program's units before any call says how many there are."""
    doc = yaml.safe_load(default_policy_text())
    doc["programs"][0]["units"] = 6  # the CALL field team: the programs' units in all
    policy = tmp_path / "six-units.yaml"
    policy.write_text(yaml.safe_dump(doc))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'units.db'}",
                        policy=str(policy))
    async with serve_on(settings, free_port()) as server:
        context, page = await new_page(browser, server, role="call_team")
        answers: list[tuple[int, str]] = []
        page.on("response", lambda r: answers.append((r.status, r.url)))
        try:
            await page.goto(f"{server.base_url}/board")
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            await page.wait_for_function(
                "() => document.querySelectorAll('#units li').length === 6")
            assert [await li.get_attribute("data-unit")
                    for li in await page.locator("#units li").all()] == [
                f"CALL-{i}" for i in range(1, 7)]
            assert any(url.endswith("/v1/program") and status == 200
                       for status, url in answers), answers
            assert [a for a in answers if a[0] >= 400] == []
            assert page.errors == []
        finally:
            await context.close()
