"""A call's crisis plan and premise caution on the board (issue 16), in Chromium: shown on
the card's details to a team member (and the look audited), never to a dispatcher, who is
refused (and audited) when asking anyway."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.access.auth import Role
from service.store.tables import AUDIT, utcnow
from tests.conftest import Server
from tests.web.conftest import PHONE, new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")

HELPS = "Speak slowly <b>and</b> offer water"
CAUTION = "Large dog in the yard"


def card(page: Any, call_id: str) -> Any:
    return page.locator(f'li.card[data-call-id="{call_id}"]')


async def keep_plan_and_caution(web: Server, address: str) -> tuple[str, str]:
    later = (utcnow() + timedelta(days=90)).isoformat()
    async with httpx.AsyncClient(base_url=web.base_url, timeout=30,
                                 headers=web.creds.bearer(Role.call_team)) as team:
        r = await team.post("/v1/crisis-plans", json={
            "person": "Sam R.", "address": address, "helps": HELPS, "avoid": "Sirens",
            "contacts": "Sister Ana", "expires_at": later,
            "consent": {"given_by": "Sam R.", "at": utcnow().isoformat(), "how": "written"}})
        assert r.status_code == 201, r.text
        c = await team.post("/v1/premise-cautions", json={
            "address": address, "text": CAUTION, "expires_at": later})
        assert c.status_code == 201, c.text
    return str(r.json()["id"]), str(c.json()["id"])


async def reads(web: Server, call_id: str) -> list[tuple[str, str, Any]]:
    async with web.runtime.engine.connect() as conn:
        rows = await conn.execute(select(AUDIT.c.actor, AUDIT.c.outcome, AUDIT.c.detail)
                                  .where(AUDIT.c.action == "crisis_plan.read",
                                         AUDIT.c.call_id == call_id).order_by(AUDIT.c.id))
    return [(a, o, json.loads(d) if d else None) for a, o, d in rows]


async def open_details(page: Any, web: Server, call_id: str) -> Any:
    await page.goto(f"{web.base_url}/board")
    # The replay drawn: the cards no longer move under the click (earlier calls' cards are
    # drawn above this one as they come).
    await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
    c = card(page, call_id)
    await c.get_by_role("button", name="Details").click()
    await c.locator(".details").first.wait_for()
    return c


async def test_the_team_member_sees_the_plan_and_the_dispatcher_is_refused(
        browser: Any, web: Server) -> None:
    plan_id, caution_id = await keep_plan_and_caution(web, "40 Plan Ave N")
    call_id = (await web.post_event(location={"address": "40 PLAN AVE. N"})).json()["call_id"]

    context, page = await new_page(browser, web, role="call_team")
    try:
        c = await open_details(page, web, call_id)
        plan = c.locator(f'.plans .plan[data-plan-id="{plan_id}"]')
        await plan.wait_for()
        assert HELPS in await plan.text_content()  # text, never markup
        assert await c.locator(".plans b").count() == 0
        assert "Sister Ana" in await plan.text_content()
        assert CAUTION in await c.locator(
            f'.plans .caution[data-caution-id="{caution_id}"]').text_content()
        assert page.errors == []
    finally:
        await context.close()
    assert await reads(web, call_id) == [
        (web.creds.users[Role.call_team], "ok",
         {"plan_ids": [plan_id], "caution_ids": [caution_id]})]

    context, page = await new_page(browser, web, role="dispatcher")
    try:
        c = await open_details(page, web, call_id)
        # The details are up (the positive signal); no plans box was drawn or asked for.
        assert await c.locator(".plans").count() == 0
        assert await c.get_by_role("button", name="Add crisis plan").count() == 0
        assert await c.locator("form.plan-form").count() == 0
        assert HELPS not in await page.content()
        # Asking anyway, from the dispatcher's logged-in page: refused.
        got = await page.evaluate(
            "async (id) => { const r = await fetch(`/v1/calls/${id}/plans`);"
            " return [r.status, await r.text()]; }", call_id)
        assert got[0] == 403 and "Sam" not in got[1] and HELPS not in got[1]
        assert page.errors == []
    finally:
        await context.close()
    assert await reads(web, call_id) == [
        (web.creds.users[Role.call_team], "ok",
         {"plan_ids": [plan_id], "caution_ids": [caution_id]}),
        (web.creds.users[Role.dispatcher], "denied", None)]


async def call_plans(web: Server, call_id: str) -> dict[str, Any]:
    """What the service keeps for the call, asked through the API (audited as any look)."""
    async with httpx.AsyncClient(base_url=web.base_url, timeout=30,
                                 headers=web.creds.bearer(Role.call_team)) as team:
        r = await team.get(f"/v1/calls/{call_id}/plans")
        assert r.status_code == 200, r.text
        return dict(r.json())


async def reason_for(form: Any, label: str) -> str:
    """The reason shown beside a field (the element its aria-describedby names)."""
    control = form.get_by_label(label, exact=True)
    # Waits for it: a refusal from the service comes a moment after sending.
    await form.locator(f'#{await control.get_attribute("id")}[aria-invalid="true"]').wait_for()
    where = await control.get_attribute("aria-describedby")
    return str(await form.locator(f"#{where}").text_content())


async def press(page: Any, control: Any, key: str = "Enter") -> None:
    await control.focus()
    await page.keyboard.press(key)


async def type_into(page: Any, control: Any, text: str) -> None:
    await control.focus()
    await page.keyboard.press("ControlOrMeta+A")
    await page.keyboard.type(text)


# What the device keeps of the page: web storage and every IndexedDB store's records.
KEPT = """async () => {
  const out = [JSON.stringify(localStorage), JSON.stringify(sessionStorage)];
  for (const info of await indexedDB.databases()) {
    const db = await new Promise((ok, no) => {
      const r = indexedDB.open(info.name); r.onsuccess = () => ok(r.result); r.onerror = no; });
    for (const name of db.objectStoreNames) {
      const all = db.transaction(name).objectStore(name).getAll();
      const rows = await new Promise((ok) => { all.onsuccess = () => ok(all.result); });
      out.push(JSON.stringify(rows));
    }
    db.close();
  }
  return out.join("\\n");
}"""


async def test_a_team_member_writes_plans_and_cautions_on_the_card(
        browser: Any, web: Server) -> None:
    incident = f"INC-{uuid.uuid4().hex[:10]}"
    call_id = (await web.post_event(
        incident_id=incident, location={"address": "41 Form Ave N"},
        person={"name": "Sam", "phone": "(727) 555-0141"})).json()["call_id"]
    context, page = await new_page(browser, web, role="call_team", viewport=PHONE)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(f"{r.method} {r.url}")
            if "/v1/crisis-plans" in r.url or "/v1/premise-cautions" in r.url else None)
    try:
        c = await open_details(page, web, call_id)
        box = c.locator(".plans")
        await box.locator(".plans-none").wait_for()
        await press(page, box.get_by_role("button", name="Add crisis plan"))
        form = box.locator('form[data-form="plan"]')
        await form.wait_for()
        # Prefilled from the call; every control has a label; a phone's width is enough.
        assert await form.get_by_label("Address").input_value() == "41 Form Ave N"
        assert await form.get_by_label("Phone").input_value() == "(727) 555-0141"
        assert await form.get_by_label("When").input_value() != ""  # now, by default
        assert await form.evaluate("f => [...f.querySelectorAll('input, select, textarea')]"
                                   ".filter((x) => !x.labels.length).map((x) => x.name)") == []
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # Keyboard only: the form opened with the focus on the person's name.
        assert await page.evaluate("document.activeElement.name") == "person"
        await page.keyboard.type("Sam R.")
        await type_into(page, form.get_by_label("What helps"), HELPS)
        await type_into(page, form.get_by_label("Who to call"), "Sister Ana")
        # A message about the call builds its card again: the form goes along, as typed.
        r = await web.post_event(incident_id=incident, type="updated", nature_text="Now calm",
                                 occurred_at="2026-03-10T14:05:00-04:00",
                                 location={"address": "41 Form Ave N"})
        assert r.status_code < 300, r.text
        await page.evaluate("document.activeElement.blur()")  # the board waits for this
        await c.locator(".nature", has_text="Now calm").wait_for()
        assert await form.get_by_label("Person").input_value() == "Sam R."
        assert await form.get_by_label("Who to call").input_value() == "Sister Ana"
        # No consent: the form says why beside the fields and sends nothing.
        await press(page, form.get_by_label("Person"))
        assert "consent is required" in await reason_for(form, "Given by")
        assert "consent is required" in await reason_for(form, "How")
        assert "Not sent" in await form.get_by_role("status").text_content()
        assert sent == []
        assert (await call_plans(web, call_id))["plans"] == []

        # The service's own refusal (consent in the future) is shown beside its field.
        await type_into(page, form.get_by_label("Given by"), "Sam R.")
        await press(page, form.get_by_label("How"), "v")  # a closed select's type-ahead
        assert await form.get_by_label("How").input_value() == "verbal"
        later = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT12:00")
        await form.get_by_label("When").fill(later)
        await press(page, form.get_by_label("Given by"))
        assert "future" in await reason_for(form, "When")
        assert sent == [f"POST {web.base_url}/v1/crisis-plans"]
        assert (await call_plans(web, call_id))["plans"] == []

        before = (utcnow() - timedelta(days=2)).strftime("%Y-%m-%dT12:00")
        await form.get_by_label("When").fill(before)
        await press(page, form.get_by_label("Given by"))
        plan = box.locator(".plan")
        await plan.wait_for()
        assert HELPS in await plan.text_content()
        assert await form.count() == 0
        [kept] = (await call_plans(web, call_id))["plans"]
        assert (kept["person"], kept["address"], kept["phone"], kept["helps"],
                kept["contacts"]) == ("Sam R.", "41 Form Ave N", "(727) 555-0141", HELPS,
                                      "Sister Ana")
        assert (kept["consent"]["given_by"], kept["consent"]["how"]) == ("Sam R.", "verbal")
        assert 88 <= (datetime.fromisoformat(kept["expires_at"]) - utcnow()).days <= 90

        # Edit: the whole plan again (PUT), prefilled.
        await press(page, box.get_by_role("button", name="Edit the crisis plan for Sam R."))
        await form.wait_for()
        assert await form.get_by_label("What helps").input_value() == HELPS
        assert await form.get_by_label("Given by").input_value() == "Sam R."
        await type_into(page, form.get_by_label("What to avoid"), "No sirens")
        await press(page, form.get_by_role("button", name="Save"))
        await box.locator(".plan", has_text="No sirens").wait_for()
        [edited] = (await call_plans(web, call_id))["plans"]
        assert (edited["id"], edited["avoid"], edited["helps"]) == (kept["id"], "No sirens", HELPS)
        assert edited["updated_by"] == web.creds.users[Role.call_team]

        # A caution for the address, then deleted (after saying yes).
        await press(page, box.get_by_role("button", name="Add caution"))
        cform = box.locator('form[data-form="caution"]')
        await cform.wait_for()
        assert await cform.get_by_label("Address").input_value() == "41 Form Ave N"
        await page.keyboard.type(CAUTION)
        expiry = cform.get_by_label("Expires on (at most a year)")
        default = await expiry.input_value()
        await expiry.fill((utcnow() + timedelta(days=400)).strftime("%Y-%m-%d"))
        await press(page, cform.get_by_role("button", name="Save"))
        assert "365 days" in await reason_for(cform, "Expires on (at most a year)")
        assert (await call_plans(web, call_id))["cautions"] == []
        await expiry.fill(default)
        await press(page, cform.get_by_role("button", name="Save"))
        await box.locator(".caution", has_text=CAUTION).wait_for()
        [caution] = (await call_plans(web, call_id))["cautions"]
        assert caution["text"] == CAUTION
        await press(page, box.get_by_role("button", name="Delete this caution"))
        await press(page, box.get_by_role("button", name="Yes, delete"))
        await box.locator(".plans-status", has_text="Deleted.").wait_for()
        await box.locator(".caution").wait_for(state="detached")
        got = await call_plans(web, call_id)
        assert got["cautions"] == [] and [p["id"] for p in got["plans"]] == [kept["id"]]

        assert "Sister Ana" not in await page.evaluate(KEPT)  # nothing kept on the device
        assert page.errors == []
    finally:
        await context.close()
    # The board's: the opening and a read after each of the four writes (this test's own
    # looks are its key's).
    board = [r for r in await reads(web, call_id) if r[0] == web.creds.users[Role.call_team]]
    assert [o for _, o, _ in board] == ["ok"] * 5
    assert board[-1][2] == {"plan_ids": [kept["id"]], "caution_ids": []}
