"""The provider directory page in a real browser (issue 16): a supervisor adds a provider,
edits it, imports a CSV file (a bad one first: each bad row listed, nothing imported) and
retires one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def listed(server: Server) -> dict[str, dict[str, Any]]:
    r = await server.client.get("/v1/providers")
    assert r.status_code == 200, r.text
    return {p["id"]: p for p in r.json()["providers"]}


async def test_a_supervisor_keeps_the_directory_on_its_page(browser: Any, web: Server,
                                                            tmp_path: Path) -> None:
    context, page = await new_page(browser, web, role="supervisor")
    try:
        await page.goto(f"{web.base_url}/providers")
        form = page.locator("#provider-form")
        await form.locator('[name="id"]').fill("crisis-stab")
        await form.locator('[name="name"]').fill("Crisis Stabilization Unit")
        await form.locator('button[type="submit"]').click()
        # No service ticked: refused, naming the field.
        await page.locator("#flash.error", has_text="services").wait_for()
        assert await listed(web) == {}

        await form.locator('input[name="service"][value="mental_health"]').check()
        await form.locator('input[name="service"][value="warm_line"]').check()
        await form.locator('[name="capacity"]').fill("3")
        await form.locator('button[type="submit"]').click()
        row = page.locator('#providers tr[data-provider="crisis-stab"]')
        await row.wait_for()
        assert "warm line" in await row.locator(".services").text_content()
        assert (await listed(web))["crisis-stab"]["capacity"] == 3

        await row.locator('[data-act="edit"]').click()
        assert await form.locator('[name="name"]').input_value() == "Crisis Stabilization Unit"
        await form.locator('[name="capacity"]').fill("")
        await form.locator('button[type="submit"]').click()
        await row.locator(".capacity", has_text="not known").wait_for()
        assert (await listed(web))["crisis-stab"]["capacity"] is None

        bad = tmp_path / "bad.csv"
        bad.write_text("id,name,services\nfood-bank,Food Bank,food\nbeds,Beds,dentistry\n")
        good = tmp_path / "good.csv"
        good.write_text("id,name,services,capacity\nfood-bank,Food Bank,food,40\n"
                        "beds,Beds,shelter;housing,\n")
        imp = page.locator("#import-form")
        await imp.locator('[name="file"]').set_input_files(str(bad))
        await imp.locator('button[type="submit"]').click()
        await page.locator("#import-problems li", has_text="line 3, services[0]").wait_for()
        assert set(await listed(web)) == {"crisis-stab"}

        await imp.locator('[name="file"]').set_input_files(str(good))
        await imp.locator('button[type="submit"]').click()
        await page.locator("#flash.ok", has_text="Imported 2 providers").wait_for()
        await page.locator('#providers tr[data-provider="beds"]').wait_for()
        assert await page.locator("#import-problems li").count() == 0
        assert set(await listed(web)) == {"crisis-stab", "food-bank", "beds"}

        await row.locator('[data-act="retire"]').click()
        await row.wait_for(state="detached")
        assert set(await listed(web)) == {"food-bank", "beds"}
        assert page.errors == []
    finally:
        await context.close()
