"""Script tags and HTML sent through every way in (generic CAD events, NENA EIDO notes,
a CAD export replay) come back from the API as inert JSON text and are shown on the
pages as text: nothing runs, no element is made from them, and the CSP reports nothing."""

from __future__ import annotations

import html
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from sqlalchemy import select

from adapters.exports.mapping import Mapper
from adapters.exports.replay import replay_export
from service.settings import Settings
from service.store.tables import CALL
from tests.conftest import Server, running_server
from tests.factories import eido, everywhere_policy, make_profile, row, write_export
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def web(tmp_path: Path) -> AsyncIterator[Server]:
    """A real Liaison on SQLite whose field team serves every district: the generic call
    carries hostile text as its district and must still reach the team's board."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}",
                        policy=everywhere_policy(tmp_path))
    async with running_server(settings) as s:
        yield s

SCRIPT = "<script>window.__xss='script'</script>"
IMG = "<img src=x onerror=\"window.__xss='img'\">"
SVG = "<svg onload=\"window.__xss='svg'\"></svg>"
LINK = "<a href=\"javascript:window.__xss='a'\">click</a>"
HOSTILE = f"{SCRIPT}{IMG}{SVG}{LINK}"


async def send_every_way(server: Server, tmp_path: Path) -> dict[str, dict[str, str]]:
    """One team call per adapter, carrying hostile text in every free-text field; returns
    {call_id: {field: the text the call must show}}."""
    sent: dict[str, dict[str, str]] = {}
    # Generic CAD events: nature_text, narrative, address, district.
    r = await server.post_event(nature_text=f"Crisis {IMG}", narrative=f"Wrote {HOSTILE}",
                                location={"address": f"12 {SCRIPT} St", "district": SVG,
                                          "lat": 27.77, "lon": -82.65})
    assert r.status_code == 202, r.text
    sent[r.json()["call_id"]] = {"nature_text": f"Crisis {IMG}",
                                 "narrative": f"Wrote {HOSTILE}",
                                 "address": f"12 {SCRIPT} St"}
    # NENA EIDO: notes are HTML in the standard, so markup in them is dropped, and
    # escaped markup (&lt;...&gt;) is text that shows as "<...>"; the internal text is text.
    doc = eido(unique="xss1", internal_text=f"Mental {IMG}",
               notes=[f"<p>He said {html.escape(HOSTILE)}</p>{SCRIPT}{IMG}"])
    r = await server.client.post("/v1/cad/eido", json=doc)
    assert r.status_code == 202, r.text
    sent[r.json()["call_id"]] = {"nature_text": f"Mental {IMG}",
                                 "narrative": f"He said {HOSTILE}"}
    assert SCRIPT + IMG not in r.text, "markup in an EIDO note is dropped, not kept"
    # A CAD export replayed (liaison replay): the call type text and the street.
    export = write_export(tmp_path / "xss.csv", [row(call_no="XSS-1",
                                                     type_desc=f"MENTAL {SVG}",
                                                     street=f"MAIN {SCRIPT} ST")])
    creds = getattr(server, "creds", None)  # with authentication: the replay's CAD key
    with pytest.MonkeyPatch.context() as mp:
        if creds is not None:
            mp.setenv("LIAISON_TOKEN", creds.keys["cad"])
        summary = await replay_export(export, Mapper(make_profile(), lookup_dirs=[]),
                                      url=server.base_url, progress=None)
    assert summary.accepted == 1, summary.to_dict()
    async with server.runtime.engine.connect() as conn:
        replayed = (await conn.execute(select(CALL.c.id).where(
            CALL.c.incident_id == "XSS-1"))).scalar_one()
    sent[replayed] = {"nature_text": f"MENTAL {SVG}", "address": f"MAIN {SCRIPT} ST"}
    return sent


async def call_json(server: Server, call_id: str) -> dict[str, Any]:
    r = await server.client.get(f"/v1/calls/{call_id}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    return r.json()  # type: ignore[no-any-return]


def texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    return []



async def test_the_api_returns_hostile_text_as_inert_json(web: Server, tmp_path: Path) -> None:
    sent = await send_every_way(web, tmp_path)
    for call_id, fields in sent.items():
        view = await call_json(web, call_id)
        strings = texts(view["call"])
        for name, text in fields.items():
            assert any(text in s for s in strings), (call_id, name, text, view["call"])
        # Handed back as an EIDO, the narrative is escaped into the note's HTML.
        r = await web.client.get(f"/v1/calls/{call_id}/eido")
        assert r.status_code == 200, r.text
        assert r.headers["x-content-type-options"] == "nosniff"
        notes = " ".join(n["notesActionComments"] for n in r.json().get("notesComponent", []))
        assert "<script" not in notes and "<img" not in notes and "<svg" not in notes
        if "narrative" in fields:
            assert html.escape(fields["narrative"], quote=False) in html.escape(
                html.unescape(notes), quote=False)


def csp_reports(page: Any) -> list[str]:
    reports: list[str] = []
    page.on("console", lambda m: reports.append(m.text)
            if "Content Security Policy" in m.text else None)
    return reports


async def assert_inert(page: Any, reports: list[str]) -> None:
    # A message logged now and seen: every console message before it (a CSP report) has
    # arrived too, and the page has run what it had queued (instead of waiting a while).
    token = f"settled-{uuid.uuid4().hex}"
    async with page.expect_console_message(lambda m: m.text == token):
        await page.evaluate("t => setTimeout(() => console.log(t), 0)", token)
    assert await page.evaluate("window.__xss") is None, "hostile text ran"
    assert await page.locator("img[src=x], svg[onload], a[href^=javascript]").count() == 0
    assert await page.evaluate(
        "[...document.scripts].filter(s => s.textContent.includes('__xss')).length") == 0
    assert reports == [], reports
    assert page.errors == []


async def test_the_pages_show_hostile_text_as_text(browser: Any, web: Server,
                                                   tmp_path: Path) -> None:
    from playwright.async_api import expect

    board_ctx, board = await new_page(browser, web, role="call_team")
    console_ctx, console = await new_page(browser, web, role="dispatcher")
    try:
        board_reports, console_reports = csp_reports(board), csp_reports(console)
        await board.goto(f"{web.base_url}/board")
        await console.goto(f"{web.base_url}/dispatch")
        # The board stream is a websocket to the page's own origin: connect-src 'self'
        # lets it through (the CSP would report it otherwise).
        for page in (board, console):
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
        sent = await send_every_way(web, tmp_path)
        # Override the replayed call (it has no narrative, which only the board shows: a
        # dispatcher does not see a mental-health call's narrative).
        overridden = list(sent)[-1]
        r = await web.client.post(f"/v1/calls/{overridden}/override", json={
            "destination": "police", "reason": f"Because {IMG}", "by": f"disp {SCRIPT}"})
        assert r.status_code in (200, 201, 202), r.text
        for page, selector in ((board, "li.card[data-call-id='{}']"),
                               (console, "#calls li[data-call-id='{}']")):
            for call_id, fields in sent.items():
                if page is board and call_id == overridden:
                    continue  # overridden to police: off the team's board
                card = page.locator(selector.format(call_id)).first
                await card.wait_for()
                await expect(card).to_contain_text(fields["nature_text"])
                if "address" in fields:
                    await expect(card).to_contain_text(fields["address"])
                if "narrative" in fields and page is board:
                    await card.get_by_role("button", name="Details").click()
                    await expect(card).to_contain_text(fields["narrative"])
        await expect(console.locator(f"#calls li[data-call-id='{overridden}']")
                     ).to_contain_text(
            f"Because {IMG}")
        await assert_inert(board, board_reports)
        await assert_inert(console, console_reports)
    finally:
        await board_ctx.close()
        await console_ctx.close()


async def test_the_figures_pages_escape_hostile_text(browser: Any, web: Server,
                                                     tmp_path: Path) -> None:
    """/metrics and /reports/monthly are rendered on the server: CAD text (a district) and
    what the address bar says (?district=) are escaped there."""
    await send_every_way(web, tmp_path)
    pages = [f"/metrics?from=2026-03-01&to=2026-04-01&district={quote(SVG)}",
             "/metrics?from=2026-03-01&to=2026-04-01",
             f"/reports/monthly?month=2026-03&district={quote(SCRIPT)}",
             "/reports/monthly?month=2026-03"]
    for path in pages:
        r = await web.client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        for hostile in (SCRIPT, IMG, SVG, LINK):
            assert hostile not in r.text, (path, hostile)
    context, page = await new_page(browser, web, role="supervisor")
    try:
        reports = csp_reports(page)
        for path in pages:
            await page.goto(f"{web.base_url}{path}")
            await page.wait_for_load_state("load")
            await assert_inert(page, reports)
    finally:
        await context.close()
