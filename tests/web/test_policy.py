"""The supervisor's policy page: edit a draft, check it, test it, publish, roll back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from tests.conftest import Server, eventually
from tests.factories import programs_doc, write_policy
from tests.web.conftest import free_port, new_page, serve_on

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_policy_is_edited_tested_and_published_from_the_page(
        browser: Any, web: Server) -> None:
    await web.post_event()  # history for the what-if
    context, page = await new_page(browser, web, role="supervisor")
    try:
        await page.goto(f"{web.base_url}/policy")
        doc = page.locator("#doc")
        await page.wait_for_function("() => document.querySelector('#doc').value.length > 100")
        published = await doc.input_value()
        assert 'version: "1"' in published
        # The YAML is the Advanced view; the structured editor is the default one.
        await page.locator("#view-yaml").click()
        await doc.wait_for()
        assert await page.locator("#in-force").text_content() == "st-petersburg-call@1"

        # A broken draft: every error with its path.
        await doc.fill(published.replace("  phase: 2", "  phase: 7", 1))
        await page.locator("#validate").click()
        await page.locator("#validation h3.bad").wait_for()
        assert "program.phase" in await page.locator("#validation ul.errors").text_content()

        # The real change: a new version, the team starting an hour earlier.
        draft = published.replace('version: "1"', 'version: "2"', 1)
        draft = draft.replace('daily: ["08:00-24:00"]', 'daily: ["07:00-24:00"]', 1)
        assert draft.count('daily: ["07:00-24:00"]') == 1
        # Its own cases of work deferred to the next shift (an officer's referral, a 988
        # centre's request for a visit) follow the change.
        assert draft.count('deferred_until: "2026-03-11T08:00:00"') == 2
        draft = draft.replace('deferred_until: "2026-03-11T08:00:00"',
                              'deferred_until: "2026-03-11T07:00:00"')
        await doc.fill(draft)
        await page.locator("#comment").fill("team starts at 7")
        await page.locator("#save").click()
        await page.locator("#flash.ok").wait_for()
        assert await page.locator("#draft-label").text_content() == "st-petersburg-call@2"
        assert "Valid" in await page.locator("#validation h3").text_content()

        await page.locator("#run-tests").click()
        await page.locator("#tests h3.ok").wait_for()
        assert "tests pass" in await page.locator("#tests h3").text_content()

        await page.locator("#diff").click()
        await page.locator("#diff-out").wait_for()
        assert await page.locator("#diff-out span.add").filter(
            has_text='"07:00-24:00"').count() == 1
        assert await page.locator("#diff-out span.del").filter(
            has_text='"08:00-24:00"').count() == 1

        await page.locator("#wi-from").fill("2026-03-01")
        await page.locator("#wi-to").fill("2026-04-01")
        await page.locator("#whatif").click()
        await page.locator("#whatif-out table.whatif").wait_for()
        assert "1 stored calls" in await page.locator("#whatif-out h3").text_content()

        await page.locator("#publish").click()
        await page.locator("#in-force").filter(has_text="st-petersburg-call@2").wait_for()
        health = (await web.client.get("/v1/health")).json()
        assert health["policy"]["version"] == "st-petersburg-call@2"
        early = (await web.post_event(occurred_at="2026-03-10T07:30:00-04:00")).json()
        assert early["decision"]["destination"] == "call_team"

        # And back, in one click.
        await page.locator('tr[data-label="st-petersburg-call@1"] button').click()
        await page.locator("#in-force").filter(has_text="st-petersburg-call@1").wait_for()
        health = (await web.client.get("/v1/health")).json()
        assert health["policy"]["version"] == "st-petersburg-call@1"
        # The text area is read again after the roll back is shown: wait for it.
        await page.wait_for_function(
            # A function, not an expression: the page's CSP forbids the eval an expression needs.
            """() => document.querySelector('#doc').value.includes('version: "1"')""")
        assert 'version: "1"' in await doc.input_value()
        assert page.errors == []
    finally:
        await context.close()


async def test_scheduled_publishes_are_shown_and_can_be_cancelled(
        browser: Any, web: Server) -> None:
    c = web.client
    shipped = (await c.get("/v1/policies/1")).json()["document"]
    for n in ("2", "3", "4"):
        r = await c.post("/v1/policies", content=shipped.replace('version: "1"',
                                                                  f'version: "{n}"', 1),
                         headers={"content-type": "text/yaml"})
        assert r.status_code == 201, r.text
    # @2 comes due after @4 is published now. The margin is wide because a loaded machine
    # may take seconds over the two requests between; the check after says if it did not.
    soon = datetime.now(UTC) + timedelta(seconds=10)
    assert (await c.post("/v1/policies/2/publish", json={"at": soon.isoformat()})
            ).status_code == 200
    assert (await c.post("/v1/policies/3/publish", json={"at": "2099-01-01T08:00:00Z"})
            ).status_code == 200
    r = await c.post("/v1/policies/4/publish", json={})
    assert r.status_code == 200
    published = datetime.fromisoformat(r.json()["published_at"])
    assert published < soon, "the scenario needs @4 published before @2 comes due"

    async def handled() -> bool:
        return bool((await c.get("/v1/policies/2")).json()["publish_at"] is None)

    await eventually(handled, "the due publish to be handled", every=0.2)

    context, page = await new_page(browser, web, role="supervisor")
    try:
        await page.goto(f"{web.base_url}/policy")
        two = page.locator('tr[data-label="st-petersburg-call@2"]')
        await two.wait_for()
        # Due after @4 went in: not published, and the page says why.
        assert "st-petersburg-call@4 was published after this was scheduled" in \
            await two.locator(".note").text_content()
        three = page.locator('tr[data-label="st-petersburg-call@3"]')
        assert "publishes" in await three.locator(".scheduled").text_content()
        await three.get_by_role("button", name="Cancel scheduled publish").click()
        await page.locator("#flash.ok").wait_for()
        await three.locator(".scheduled").wait_for(state="detached")
        assert (await c.get("/v1/policies/3")).json()["publish_at"] is None
        assert await page.locator("#in-force").text_content() == "st-petersburg-call@4"
        assert page.errors == []
    finally:
        await context.close()


async def test_the_dry_run_says_what_each_program_did_with_the_call(
        browser: Any, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
                        policy=write_policy(tmp_path / "programs.yaml", programs_doc()))
    async with serve_on(settings, free_port()) as server:
        context, page = await new_page(browser, server, role="supervisor")
        try:
            await page.goto(f"{server.base_url}/policy")
            await page.locator("#in-force").filter(has_text="three-programs@1").wait_for()
            hostile = '<img src=x onerror="window.__xss=1">'
            call = {"nature_code": "MNTL", "nature_text": hostile, "priority": 3,
                    "district": "D1", "occurred_at": "2026-03-10T14:00:00-04:00"}
            await page.locator("#dry-call").fill(json.dumps(call))

            # The field team's units are busy: the co-response unit takes it.
            await page.locator("#dry-state").fill('{"field": {"units_busy": 2}}')
            await page.locator("#dry-run").click()
            out = page.locator("#dry-out")
            await out.locator("h3", has_text="joint, Co-response").wait_for()
            field = out.locator('li.program[data-program="field"]')
            assert await field.get_attribute("data-outcome") == "refused"
            assert "did not take the call" in await field.locator(".outcome").text_content()
            assert "all 2 of its units are busy" in await field.locator(".factors").text_content()
            assert "units 2 of 2 busy: police respond (units busy)" in \
                await field.locator(".shaped").text_content()
            co = out.locator('li.program[data-program="co-response"]')
            assert await co.get_attribute("data-outcome") == "took"
            assert "takes the call" in await co.locator(".factors").text_content()
            line = out.locator('li.program[data-program="line"]')
            assert await line.locator(".outcome").text_content() == \
                "does not take this category"

            # Both busy: it waits for the field team, as the live service would keep it.
            await page.locator("#dry-state").fill(
                '{"field": {"units_busy": 2, "queued": 1}, "co-response": {"units_busy": 1}}')
            await page.locator("#dry-run").click()
            await out.locator("h3", has_text="queued").wait_for()
            assert await field.get_attribute("data-outcome") == "queued"
            assert "Queued for program 'field' (Field team): position 2" in \
                await field.locator(".factors").text_content()
            assert await co.get_attribute("data-outcome") == "refused"
            assert await page.locator("img[src=x]").count() == 0
            assert page.errors == []
        finally:
            await context.close()
