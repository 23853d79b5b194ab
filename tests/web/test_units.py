"""Units in a real browser (issue 14): a team member signs a unit on from the board and
shares its position (Chromium's geolocation, opted in), which stops on signing off; the
board names the roster's units instead of made-up ones; a supervisor keeps the roster
on its page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, eventually
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")

HERE = {"latitude": 27.7731, "longitude": -82.6400, "accuracy": 15}
THERE = {"latitude": 27.7900, "longitude": -82.6600, "accuracy": 8}


async def unit(server: Server, unit_id: str) -> dict[str, Any]:
    r = await server.client.get(f"/v1/units/{unit_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_sign_on_share_the_position_and_sign_off_from_the_board(
        browser: Any, web: Server) -> None:
    for n, duty in ((1, False), (2, True)):
        r = await web.client.put(f"/v1/units/CALL-{n}", json={
            "program_id": "call", "call_sign": f"CALL {n}", "on_duty": duty})
        assert r.status_code == 200, r.text
    context, page = await new_page(browser, web, role="call_team", geolocation=HERE,
                                   permissions=["geolocation"])
    posted: list[str] = []
    page.on("request", lambda req: posted.append(req.url)
            if req.method == "POST" and req.url.endswith("/position") else None)
    try:
        await page.goto(f"{web.base_url}/board")
        # Caught up: the snapshot, which brings the roster, is drawn (before it the board
        # shows units made up from the policy's count, CALL-2 among them).
        await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
        # The board's units are the roster's on duty, not CALL-1…4 made up from a count.
        await page.locator('#units li[data-unit="CALL-2"]').wait_for()
        assert await page.locator("#units li").evaluate_all(
            "ls => ls.map(l => l.dataset.unit)") == ["CALL-2"]

        control = page.locator("#duty")
        await control.locator('select[name="my-unit"]').select_option("CALL-1")
        await control.locator('[data-act="sign-on"]').click()
        await eventually(lambda: _on_duty(web, "CALL-1", True), "CALL-1 signed on")
        # Signed on elsewhere too: the board's units follow the `unit` message.
        await page.locator('#units li[data-unit="CALL-1"]').wait_for()
        assert posted == [], "no position is shared before the member opts in"

        await control.locator('input[name="share-position"]').check()
        await eventually(lambda: _at(web, "CALL-1", HERE), "the device's position stored")
        got = (await unit(web, "CALL-1"))["position"]
        assert (got["source"], got["accuracy_m"]) == ("device", 15.0)

        await control.locator('[data-act="sign-off"]').click()
        await eventually(lambda: _on_duty(web, "CALL-1", False), "CALL-1 signed off")
        await page.locator('[data-role="sharing"]', has_text="not sharing").wait_for()
        sent_before = len(posted)
        await context.set_geolocation(THERE)
        # Signing on again (still opted in) shares again: the positive signal that
        # nothing was sent while off duty is that the next one is THERE, sent after it.
        await control.locator('[data-act="sign-on"]').click()
        await eventually(lambda: _at(web, "CALL-1", THERE), "sharing again once on duty")
        assert len(posted) == sent_before + 1, posted
        assert page.errors == []
    finally:
        await context.close()


async def _on_duty(server: Server, unit_id: str, on: bool) -> bool:
    return bool((await unit(server, unit_id))["on_duty"] is on)


async def _at(server: Server, unit_id: str, where: dict[str, float]) -> bool:
    p = (await unit(server, unit_id))["position"]
    return bool(p and (p["lat"], p["lon"]) == (where["latitude"], where["longitude"]))


async def test_a_supervisor_keeps_the_roster_on_its_page(browser: Any, web: Server) -> None:
    context, page = await new_page(browser, web, role="supervisor")
    try:
        await page.goto(f"{web.base_url}/units")
        form = page.locator("#unit-form")
        await form.locator('[name="id"]').fill("CALL-7")
        await form.locator('[name="program_id"]').fill("call")
        await form.locator('[name="members"]').fill("A. Rivera, J. Okafor")
        await form.locator('[name="capabilities"]').fill("clinician, Youth Trained")
        await form.locator('button[type="submit"]').click()
        await page.locator("#flash.error", has_text="capabilities[1]").wait_for()
        assert (await web.client.get("/v1/units/CALL-7")).status_code == 404

        await form.locator('[name="capabilities"]').fill("clinician, youth_trained")
        await form.locator('[name="on_duty"]').check()
        await form.locator('button[type="submit"]').click()
        row = page.locator('#roster tr[data-unit="CALL-7"]')
        await row.wait_for()
        assert "youth trained" in await row.text_content()
        saved = await unit(web, "CALL-7")
        assert (saved["members"], saved["capabilities"], saved["on_duty"]) == (
            ["A. Rivera", "J. Okafor"], ["clinician", "youth_trained"], True)

        await row.locator('[data-act="duty"]').click()
        await row.locator(".status", has_text="off duty").wait_for()
        assert (await unit(web, "CALL-7"))["on_duty"] is False

        retention = page.locator("#retention-form")
        await retention.locator('[name="hours"]').fill("6")
        await retention.locator('button[type="submit"]').click()
        await page.locator("#flash.ok", has_text="kept 6 h").wait_for()
        r = await web.client.get("/v1/roster/retention")
        assert r.json()["position_retention_hours"] == 6

        await row.locator('[data-act="retire"]').click()
        await row.wait_for(state="detached")
        assert (await web.client.get("/v1/units/CALL-7")).status_code == 404
        assert page.errors == []
    finally:
        await context.close()
