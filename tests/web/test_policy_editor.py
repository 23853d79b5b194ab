"""The structured policy editor on /policy: the program settings as a form, the exclusions
("Always win"), the rules as an ordered table with chips; editing them, the checks as you
type, trying a call, the what-if, saving, publishing and the YAML both ways."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from rules.load import default_policy_text
from service.settings import Settings
from tests.conftest import Server
from tests.factories import one_team_doc, write_policy
from tests.web.conftest import PHONE, free_port, new_page, serve_on

# The shipped policy's rules in order, read from its file (not from the page's code).
SHIPPED_RULES = [r["id"] for r in yaml.safe_load(default_policy_text())["rules"]]
MH = SHIPPED_RULES.index("mental-health")
SU = SHIPPED_RULES.index("substance-use")
NEXT = len(SHIPPED_RULES)  # the index of a rule added at the end

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web(shared_web: Server) -> Server:
    return shared_web


async def open_editor(browser: Any, web: Server, **options: Any) -> tuple[Any, Any]:
    context, page = await new_page(browser, web, role="supervisor", **options)
    # What the page sent to be checked: the object the form holds, as the server reads it.
    page.sent = []
    page.on("request", lambda r: page.sent.append(json.loads(r.post_data))
            if r.url.endswith("/v1/policies/validate") and r.method == "POST"
            and (r.headers.get("content-type") or "").startswith("application/json")
            else None)
    await page.goto(f"{web.base_url}/policy")
    await page.locator("tr.rule").first.wait_for()
    return context, page


async def rule_ids(page: Any) -> list[str]:
    return list(await page.locator("tr.rule").evaluate_all(
        "rows => rows.map(r => r.dataset.ruleId)"))


async def last_sent(page: Any, check: Any) -> dict[str, Any]:
    """The latest object sent to be checked once `check(doc)` holds (the checks are
    debounced: the edit is sent a moment after it is made)."""
    for _ in range(600):
        if page.sent and check(page.sent[-1]["document"]):
            return dict(page.sent[-1]["document"])
        await page.wait_for_timeout(100)
    raise AssertionError(f"no checked document matched; last: {page.sent[-1:]}")


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "390px"])
async def test_the_structured_view_shows_the_published_policy(
        browser: Any, web: Server, viewport: dict[str, int] | None) -> None:
    context, page = await open_editor(browser, web, viewport=viewport)
    try:
        assert await page.locator("#view-form").get_attribute("aria-pressed") == "true"
        assert await page.locator("#yaml-view").is_hidden()
        # Program settings as a form.
        assert await page.locator("#f-phase").input_value() == "2"
        assert await page.locator("#f-timezone").input_value() == "America/New_York"
        field_team = page.locator('fieldset.program[data-program="call"]')
        assert await field_team.get_by_label("Units").input_value() == "4"
        assert await field_team.get_by_label("Max queued").input_value() == "6"
        assert await field_team.get_by_label("Districts of its area").input_value() == \
            "D1, D2, D3, D4"
        assert await field_team.get_by_label("CALL field team: shifts on daily").input_value() \
            == "08:00-24:00"
        assert await field_team.get_by_label("CALL field team takes truancy").is_checked()
        assert not await field_team.get_by_label("CALL field team takes crisis_line").is_checked()
        line = page.locator('fieldset.program[data-program="crisis-line"]')
        assert await line.get_by_label("Mode").input_value() == "phone"

        # The exclusions first, under "Always win", with their conditions as chips.
        headings = await page.locator("#form-view h3").all_text_contents()
        assert headings.index("Always win") < headings.index("Rules")
        weapon = page.locator('li.exclusion[data-rule-id="weapon"]')
        assert "any of:" in await weapon.text_content()
        assert await weapon.locator(".chip", has_text="flag weapon").count() == 1
        assert await weapon.locator(".chip", has_text="says “machete”").count() == 1

        # The rules in order, each a row: id, category, action, chips.
        assert await rule_ids(page) == SHIPPED_RULES
        assert SHIPPED_RULES[:3] == ["follow-up", "crisis-line-visit", "crisis-line"]
        mh = page.locator('tr.rule[data-rule-id="mental-health"]')
        assert await mh.get_by_label("Rule mental-health category").input_value() == \
            "mental_health"
        assert await mh.get_by_label("Rule mental-health action").input_value() == "team"
        assert await page.get_by_label("Rule follow-up description").input_value() == \
            "Proactive follow-ups with people the team has met."
        assert await mh.locator(".group").count() == 2  # any of: codes, or words
        codes = await mh.locator(".chip.k-nature_code .chip-text").all_text_contents()
        # Each code, with its calls of the last 90 days when there were some ("MNTL · 3").
        assert [c.split(" · ")[0] for c in codes] == ["EDP", "MNTL", "SUICTHRT", "SCRM"]
        assert await mh.locator(".chip.k-text_any", has_text="“hearing voices”").count() == 1
        # A group deeper than chips (all: inside any:) is shown, read-only, and kept.
        su = page.locator('tr.rule[data-rule-id="substance-use"]')
        assert await su.locator(".chip.advanced").text_content() == \
            "advanced condition (all) — edit in YAML"

        # Every control has a name a screen reader says (a label, aria-label or text).
        unnamed = await page.evaluate("""() => [...document.querySelectorAll(
            'main input, main select, main textarea, main button')].filter((c) =>
            !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
            && !(c.tagName === 'BUTTON' && c.textContent.trim())).map((c) => c.outerHTML)""")
        assert unnamed == []
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= (viewport or {"width": 1280})["width"], f"{width}px wide"
        assert page.errors == []
    finally:
        await context.close()


async def test_rules_and_chips_are_edited_with_mouse_and_keyboard(
        browser: Any, web: Server) -> None:
    context, page = await open_editor(browser, web)
    try:
        # A chip added by keyboard only: pick the kind, type the value, Enter.
        mh = page.locator('tr.rule[data-rule-id="mental-health"]')
        await mh.get_by_label("Rule mental-health, group 1: kind of condition").select_option(
            "nature_code")
        box = mh.get_by_label("Rule mental-health, group 1: nature code")
        await box.fill("psych")
        await box.press("Enter")
        await mh.locator(".chip.k-nature_code", has_text="PSYCH").wait_for()
        # The focus stays in the box, ready for the next code.
        assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == \
            "Rule mental-health, group 1: nature code"
        doc = await last_sent(page, lambda d: "PSYCH" in d["rules"][MH]["when"]["any"][0][
            "nature_code"])
        assert doc["rules"][MH]["when"]["any"][0]["nature_code"] == \
            ["EDP", "MNTL", "SUICTHRT", "SCRM", "PSYCH"]
        # Removed again.
        await mh.get_by_label("Rule mental-health, group 1: remove nature code: SCRM").click()
        doc = await last_sent(page, lambda d: "SCRM" not in d["rules"][MH]["when"]["any"][0][
            "nature_code"])
        assert doc["rules"][MH]["when"]["any"][0]["nature_code"] == \
            ["EDP", "MNTL", "SUICTHRT", "PSYCH"]
        # The group kept as it was (all: inside any:) travels untouched.
        assert doc["rules"][SU]["when"]["any"][1] == {
            "all": [{"nature_code": ["DISORD"]},
                    {"text_any": ["intoxicated", "drunk", "impaired", "high"]}]}

        # Add a rule, give it a priority range, a flag it must not carry and a time.
        await page.locator("#add-rule").click()
        new = page.locator('tr.rule[data-rule-id="new-rule"]')
        assert (await rule_ids(page))[-1] == "new-rule"
        assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == \
            f"Rule {NEXT + 1} id"
        # A rule without a condition is an error, shown beside it.
        error = new.locator(".checks li.error")
        await error.wait_for()
        assert (await error.get_attribute("data-path")).startswith(f"rules[{NEXT}].when")
        # Tried as it is, the call is refused with that error, said once.
        await page.locator("#try-run").click()
        flash = await page.locator("#flash.error").text_content()
        assert flash.startswith("the policy is invalid") and flash.count(f"rules[{NEXT}].when") == 1
        await new.get_by_label(f"Rule {NEXT + 1} id").fill("late-noise")
        group = "Rule new-rule"  # the labels follow the new id when the row is drawn again
        await new.get_by_label(f"{group}: kind of condition").select_option("priority")
        await new.get_by_label(f"{group}: priority from").fill("3")
        await new.get_by_label(f"{group}: priority to").fill("5")
        await new.get_by_label(f"{group}: add condition").click()
        row = page.locator('tr.rule[data-rule-id="late-noise"]')
        await row.locator(".chip", has_text="priority 3–5").wait_for()
        group = "Rule late-noise"
        await row.get_by_label(f"{group}: kind of condition").select_option("flags_none")
        await row.get_by_label(f"{group}: not flag").select_option("weapon")
        await row.get_by_label(f"{group}: add condition").click()
        await row.locator(".chip", has_text="no flag weapon").wait_for()
        await row.get_by_label(f"{group}: kind of condition").select_option("time_of_day")
        await row.get_by_label(f"{group}: from").fill("22:00")
        await row.get_by_label(f"{group}: to").fill("06:00")
        await row.get_by_label(f"{group}: add condition").click()
        await row.locator(".chip", has_text="from 22:00–06:00").wait_for()
        await row.get_by_label("Rule late-noise action").select_option("police")
        await row.get_by_label("Rule late-noise description").fill("Late noise, police")
        await last_sent(page, lambda d: d["rules"][-1].get("description") == "Late noise, police")
        await row.get_by_label("Rule late-noise description").fill("")  # left out again
        doc = await last_sent(page, lambda d: d["rules"][-1].get("action") == "police"
                              and "time_of_day" in d["rules"][-1]["when"]
                              and "description" not in d["rules"][-1])
        assert doc["rules"][-1] == {
            "id": "late-noise", "category": "mental_health", "action": "police",
            "when": {"priority": {"min": 3, "max": 5}, "flags_none": ["weapon"],
                     "time_of_day": {"start": "22:00", "end": "06:00"}}}

        # An "or" group: the rule's chips become "any of" two groups, and back.
        await row.get_by_label('Rule late-noise: add an "or" group').click()
        assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == \
            "Rule late-noise, group 2: kind of condition"
        await page.keyboard.press("Tab")  # to the value: the kind's default, a nature code
        await page.keyboard.type("NOISE")
        await page.keyboard.press("Enter")
        await row.locator(".any-of .chip", has_text="NOISE").wait_for()
        doc = await last_sent(page, lambda d: d["rules"][-1]["when"].get("any", [{}, {}])[1]
                              != {})  # the group is sent empty first, when typing is slow
        assert doc["rules"][-1]["when"] == {"any": [
            {"priority": {"min": 3, "max": 5}, "flags_none": ["weapon"],
             "time_of_day": {"start": "22:00", "end": "06:00"}},
            {"nature_code": ["NOISE"]}]}
        await row.get_by_label("Rule late-noise: remove group 2").click()
        doc = await last_sent(page, lambda d: "any" not in d["rules"][-1]["when"])
        assert doc["rules"][-1]["when"] == {
            "priority": {"min": 3, "max": 5}, "flags_none": ["weapon"],
            "time_of_day": {"start": "22:00", "end": "06:00"}}

        # Duplicate, disable, delete.
        await row.get_by_role("button", name="Duplicate: late-noise").click()
        copy = page.locator('tr.rule[data-rule-id="late-noise-copy"]')
        await copy.wait_for()
        await copy.get_by_label("Disable late-noise-copy").check()
        await page.locator("tr.rule.disabled[data-rule-id='late-noise-copy']").wait_for()
        doc = await last_sent(page, lambda d: d["rules"][-1].get("disabled") is True)
        assert doc["rules"][-1]["id"] == "late-noise-copy"
        assert doc["rules"][-1]["when"] == doc["rules"][-2]["when"]
        await page.get_by_role("button", name="Delete: late-noise-copy").click()
        await copy.wait_for(state="detached")

        # Reorder by keyboard: focus Move up, press Enter; the focus follows the rule.
        up = row.get_by_role("button", name="Move up: late-noise")
        await up.focus()
        await page.keyboard.press("Enter")
        await page.keyboard.press("Enter")
        ids = await rule_ids(page)
        assert ids[-3:] == ["late-noise", "homelessness", "call-for-assistance"]
        assert await page.evaluate("document.activeElement.getAttribute('aria-label')") == \
            "Move up: late-noise"
        # And by dragging: follow-up dropped on the next row swaps the first two.
        await page.locator('tr.rule[data-rule-id="follow-up"] .grip').drag_to(
            page.locator('tr.rule[data-rule-id="crisis-line-visit"]'))
        await page.locator("tr.rule").first.and_(
            page.locator('[data-rule-id="crisis-line-visit"]')).wait_for()
        doc = await last_sent(page, lambda d: d["rules"][0]["id"] == "crisis-line-visit")
        assert [r["id"] for r in doc["rules"]][:3] == ["crisis-line-visit", "follow-up",
                                                       "crisis-line"]
        assert [r["id"] for r in doc["rules"]][-3:] == ["late-noise", "homelessness",
                                                        "call-for-assistance"]
        # Whatever the form does not show is kept: descriptions, queue limits, deferrals.
        assert doc["rules"][2]["needs_field_unit"] is False  # crisis-line
        assert doc["programs"][0]["deferrable"] == ["officer_referral", "follow_up",
                                                    "crisis_line"]
        assert len(doc["programs"][0]["queue"]) == 14
        assert doc["exclusions"][0]["description"] == "A weapon is reported."
        assert page.errors == []
    finally:
        await context.close()


def days_ago_in_hours(days: int) -> str:
    """A time `days` ago, 18:00 UTC: inside the shipped team's hours (08:00-24:00 New York)."""
    at = datetime.now(UTC).replace(hour=18, minute=0, second=0, microsecond=0)
    return (at - timedelta(days=days)).isoformat()


async def try_call(page: Any, code: str, text: str) -> str:
    """Try a call on the page; the id of the rule row marked as deciding it."""
    await page.locator("#try-code").fill(code)
    await page.locator("#try-text").fill(text)
    await page.locator("#try-when").fill("2026-03-10T14:00")  # a Tuesday, in hours
    before = await page.locator("#try-out h3").count()
    if before:
        await page.evaluate("document.querySelector('#try-out').replaceChildren()")
    await page.locator("#try-run").click()
    await page.locator("#try-out h3.decision").wait_for()
    return str(await page.locator("tr.rule.decided").get_attribute("data-rule-id"))


async def test_a_supervisor_adds_a_rule_without_yaml_and_publishes_it(
        browser: Any, web: Server, tmp_path: Path) -> None:
    """The issue's scenario: a rule with a nature-code chip and a word; a static-check
    warning appears and goes away; a call tried; the what-if's count; saved, tested,
    published; the export holds the rule; a reorder changes the deciding rule."""
    for n in range(2):  # calls of a code no rule names, in the what-if's window
        r = await web.post_event(nature_code="HOARD", nature_text="Hoarding complaint",
                                 occurred_at=days_ago_in_hours(3 + n),
                                 location={"address": f"{n} 1st Ave N", "district": "D1"})
        assert r.status_code in (200, 201, 202), r.text
    context, page = await open_editor(browser, web, timezone_id="America/New_York")
    try:
        # The nature codes seen in stored calls feed the picker, with their counts.
        option = page.locator('#nature-codes option[value="HOARD"]')
        await option.wait_for(state="attached")
        assert "(2 calls)" in str(await option.get_attribute("label"))
        await page.locator("#checks-summary li.warning[data-kind='gap']").wait_for()

        await page.locator("#f-version").fill("2")
        await page.locator("#add-rule").click()
        new = page.locator('tr.rule[data-rule-id="new-rule"]')
        await new.get_by_label(f"Rule {NEXT + 1} id").fill("hoarding")
        # A code an earlier rule takes first: the rule could never match.
        await new.get_by_label("Rule new-rule: nature code").fill("MNTL")
        await new.get_by_label("Rule new-rule: add condition").click()
        row = page.locator('tr.rule[data-rule-id="hoarding"]')
        await row.get_by_label("Rule hoarding: kind of condition").select_option("text_any")
        await row.get_by_label("Rule hoarding: word or phrase").fill("hoarding")
        await row.get_by_label("Rule hoarding: word or phrase").press("Enter")
        warning = row.locator(".checks li.warning[data-kind='shadowed']")
        await warning.wait_for()
        assert "can never match" in await warning.text_content()
        # The right code instead, picked from those seen: the warning goes away.
        await row.get_by_label("Rule hoarding: remove nature code: MNTL").click()
        await row.get_by_label("Rule hoarding: kind of condition").select_option("nature_code")
        await row.get_by_label("Rule hoarding: nature code").fill("HOARD")
        await row.get_by_label("Rule hoarding: add condition").click()
        await row.locator(".chip.k-nature_code", has_text="HOARD · 2").wait_for()
        await warning.wait_for(state="detached")
        await page.locator("#checks-summary li.warning[data-kind='gap']").wait_for(
            state="detached")
        assert await page.locator("#checks-summary p.ok").text_content() == \
            "Checked: valid, no warnings"

        # Try a call: the new rule decides it, and its row says so.
        assert await try_call(page, "HOARD", "Hoarding complaint") == "hoarding"
        assert "call team, decided by rule hoarding" in \
            await page.locator("#try-out h3").text_content()

        # What changes over the last 30 days: the two stored calls go to the team.
        await page.locator("#wc-days").fill("30")
        await page.locator("#wc-run").click()
        count = page.locator("#wc-out h3.changed-count")
        await count.wait_for()
        assert await count.get_attribute("data-changed") == "2"
        assert (await count.text_content()).startswith("2 calls would change")
        assert "police → call team (hoarding" in await page.locator("#wc-out ul.changes")\
            .text_content()

        # The test cases gate publishing: a disabled rule fails one, shown in the table.
        mh = page.locator('tr.rule[data-rule-id="mental-health"]')
        await mh.get_by_label("Disable mental-health").check()
        await page.locator("#run-cases").click()
        case = page.locator('#cases tr[data-case="mental health crisis in hours goes to the '
                            'team with police standby"] td.result')
        await case.locator("text=✗ fails").wait_for()
        await page.locator('tr.rule[data-rule-id="mental-health"]').get_by_label(
            "Disable mental-health").uncheck()
        # The results shown are from before this edit, and say so until run again.
        await page.locator("#cases caption.stale-note").wait_for()
        await page.locator("#run-cases").click()
        await case.locator("text=✓ passes").wait_for()
        assert await page.locator("#cases caption.stale-note").count() == 0
        assert await page.locator("#cases td.result.bad").count() == 0

        # Saved (the YAML made from the form), its tests pass, published.
        await page.locator("#comment").fill("hoarding calls to the team")
        await page.locator("#save").click()
        await page.locator("#draft-label").filter(has_text="st-petersburg-call@2").wait_for()
        await page.locator("#run-tests").click()
        await page.locator("#tests h3.ok").wait_for()
        await page.locator("#publish").click()
        await page.locator("#in-force").filter(has_text="st-petersburg-call@2").wait_for()
        stored = (await web.client.get("/v1/policies/2")).json()
        assert stored["parsed"]["rules"][-1] == {
            "id": "hoarding", "category": "mental_health", "action": "team",
            "when": {"text_any": ["hoarding"], "nature_code": ["HOARD"]}}
        # The comments of the version it was drafted from are still there.
        assert "# Every exclusion is tested on every call and wins over any rule below." \
            in stored["document"]
        live = (await web.post_event(nature_code="HOARD", nature_text="Hoarding complaint",
                                     occurred_at="2026-03-10T14:00:00-04:00")).json()
        assert live["decision"]["matched_rules"] == ["hoarding"]

        # The YAML export holds the rule.
        async with page.expect_download() as info:
            await page.locator("#export").click()
        download = await info.value
        assert download.suggested_filename == "st-petersburg-call-2.yaml"
        saved = tmp_path / "export.yaml"
        await download.save_as(saved)
        exported = yaml.safe_load(saved.read_text(encoding="utf-8"))
        assert exported["rules"][-1]["id"] == "hoarding"
        assert exported["rules"][-1]["when"]["nature_code"] == ["HOARD"]

        # A call both rules take: the earlier one decides, until the rule is moved up.
        both = "Hoarding, and a mental health crisis"
        assert await try_call(page, "HOARD", both) == "mental-health"
        # Up by keyboard to just below mental-health, then dragged onto its row. The row is
        # taller than half the view: its top is brought into view first, so that the drag
        # needs no scrolling (one that does is not replayed by the browser's driver).
        await page.get_by_role("button", name="Move up: hoarding").focus()
        for _ in range(NEXT - MH - 1):
            await page.keyboard.press("Enter")
        await page.locator("tr.rule").nth(MH + 1).and_(
            page.locator('[data-rule-id="hoarding"]')).wait_for()
        assert await try_call(page, "HOARD", both) == "mental-health"
        await mh.evaluate("row => row.scrollIntoView()")
        await page.locator('tr.rule[data-rule-id="hoarding"] .grip').drag_to(
            mh, target_position={"x": 20, "y": 60})  # below the sticky header
        await page.locator("tr.rule").nth(MH).and_(
            page.locator('[data-rule-id="hoarding"]')).wait_for()
        assert await try_call(page, "HOARD", both) == "hoarding"
        assert page.errors == []
    finally:
        await context.close()


async def test_form_to_yaml_to_form_loses_nothing_on_a_phone(
        browser: Any, web: Server, tmp_path: Path) -> None:
    context, page = await open_editor(browser, web, viewport=PHONE)
    try:
        first = await last_sent(page, lambda d: True)
        mh = page.locator('tr.rule[data-rule-id="mental-health"]')
        await mh.get_by_label("Rule mental-health, group 1: nature code").fill("PSYCH")
        await mh.get_by_label("Rule mental-health, group 1: add condition").click()
        edited = await last_sent(page, lambda d: "PSYCH" in d["rules"][MH]["when"]["any"][0][
            "nature_code"])
        assert {k: v for k, v in edited.items() if k != "rules"} == \
            {k: v for k, v in first.items() if k != "rules"}

        # Form → YAML: the edit is there, and so are the comments.
        await page.locator("#view-yaml").click()
        doc = page.locator("#doc")
        await doc.wait_for()
        text = await doc.input_value()
        assert yaml.safe_load(text) == edited
        assert "# St. Petersburg, FL — CALL" in text
        assert "  phase: 2            # 1 joint response" in text
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{width}px wide"

        # YAML → form: an edit made in the text comes back in the form, nothing lost.
        page.sent.clear()
        changed = text.replace("name: CALL field team", "name: CALL east team", 1)
        await doc.fill(changed)
        await page.locator("#view-form").click()
        await page.locator("#form-view").wait_for()
        field_team = page.locator('fieldset.program[data-program="call"]')
        assert await field_team.get_by_label("Name").input_value() == "CALL east team"
        back = await last_sent(page, lambda d: d["programs"][0]["name"] == "CALL east team")
        assert back == yaml.safe_load(changed)

        # A file imported goes to the Advanced view, then to the form.
        imported = tmp_path / "mine.yaml"
        # (Whatever version the module's server has published by now.)
        imported.write_text(re.sub(r'version: "\d+"', 'version: "9"', changed, count=1),
                            encoding="utf-8")
        await page.locator("#view-yaml").click()
        await page.locator("#doc").wait_for()  # the form's YAML is there: now the file
        await page.locator("#import").set_input_files(str(imported))
        await page.wait_for_function(
            """() => document.querySelector('#doc').value.includes('version: "9"')""")
        assert await page.locator("#view-yaml").get_attribute("aria-pressed") == "true"
        await page.locator("#view-form").click()
        await page.locator("#form-view").wait_for()
        assert await page.locator("#f-version").input_value() == "9"
        assert page.errors == []
    finally:
        await context.close()


async def test_a_one_team_policy_has_its_hours_and_units_in_the_form(
        browser: Any, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
                        policy=write_policy(tmp_path / "one-team.yaml", one_team_doc()))
    async with serve_on(settings, free_port()) as server:
        context, page = await open_editor(browser, server)
        try:
            assert await page.locator("fieldset.program").count() == 0
            settings_form = page.locator("fieldset.settings")
            assert await settings_form.get_by_label("Units").input_value() == "4"
            assert await settings_form.get_by_label("Team starts").input_value() == "08:00"
            assert await settings_form.get_by_label("Team ends").input_value() == "24:00"
            first = await last_sent(page, lambda d: True)

            await settings_form.get_by_label("Team starts").fill("7")
            await page.locator("#checks-summary li.error[data-path='program.hours.start']"
                               ).wait_for()
            await settings_form.get_by_label("Team starts").fill("07:00")
            await settings_form.get_by_label("Units").fill("5")
            await page.locator("#f-phase").select_option("3")
            doc = await last_sent(page, lambda d: d["program"]["phase"] == 3
                                  and d["program"]["hours"]["start"] == "07:00"
                                  and d["program"]["units"] == 5)
            # Only what was typed changed; the days the form does not show are kept.
            assert doc["program"] == {**first["program"], "phase": 3, "units": 5,
                                      "hours": {**first["program"]["hours"], "start": "07:00"}}
            assert {k: v for k, v in doc.items() if k != "program"} == \
                {k: v for k, v in first.items() if k != "program"}
            await page.locator("#checks-summary p.ok").wait_for()
            assert page.errors == []
        finally:
            await context.close()
