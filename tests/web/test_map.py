"""The map on the board and the dispatcher console, in Chromium: a marker per located call
in its status's colour, live; a click opens the call; calls without a location counted;
the toggle; tiles from another origin under the CSP; no tiles, a plain background."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from service.settings import Settings
from tests.conftest import Server, running_server
from tests.factories import now_iso
from tests.web.conftest import new_page

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOSTILE = '<img src=x onerror="window.__xss=1">'


@pytest_asyncio.fixture(loop_scope="module")
async def web(tmp_path: Path) -> AsyncIterator[Server]:
    """A fresh Liaison per test: the map counts every call the page holds."""
    async with running_server(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
                              ) as s:
        yield s


def marker(page: Any, call_id: str) -> Any:
    return page.locator(f'#map-box .map-call[data-call-id="{call_id}"]')


async def open_page(browser: Any, server: Server, path: str, role: str) -> tuple[Any, Any]:
    context, page = await new_page(browser, server, role=role)
    await page.goto(f"{server.base_url}{path}")
    # Caught up: the replay and the snapshot (the roster's units) drawn. A page still
    # drawing them would build its cards again under a test's feet.
    await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
    return context, page


async def post(server: Server, *, lat: float | None, lon: float | None, **kw: Any) -> str:
    location: dict[str, Any] = {"address": kw.pop("address", "1300 1st Ave N"), "district": "D2"}
    if lat is not None:
        location |= {"lat": lat, "lon": lon}
    r = await server.post_event(location=location, **kw)
    assert r.status_code == 202, r.text
    return str(r.json()["call_id"])


async def test_the_board_map_draws_each_located_call_live_and_opens_it(
        browser: Any, web: Server) -> None:
    first = await post(web, lat=27.771, lon=-82.641)
    nowhere = await post(web, lat=None, lon=None, nature_text="Mental person, no location")
    context, page = await open_page(browser, web, "/board", "call_team")
    try:
        # The call from before the page opened, in the queue's colour; the one without
        # coordinates is on the board but not on the map, and counted.
        await marker(page, first).wait_for()
        assert "call-queued" in (await marker(page, first).get_attribute("class")).split()
        await page.locator(f'li.card[data-call-id="{nowhere}"]').wait_for()
        assert await marker(page, nowhere).count() == 0
        assert await page.locator("#map-box .map-unlocated").text_content() == \
            "1 call without a location"
        # No tiles configured: a plain background, a scale bar, no attribution, no tile.
        assert await page.locator("#map-box .map.map-plain").count() == 1
        assert await page.locator("#map-box .leaflet-control-scale").count() == 1
        assert await page.locator("#map-box .leaflet-tile").count() == 0

        # A new call appears live; its address is text in its label, never markup.
        second = await post(web, lat=27.78, lon=-82.66, address=f"9 Main St {HOSTILE}")
        await marker(page, second).wait_for()
        label = await marker(page, second).locator(".sr-only").text_content()
        assert label.startswith("Call ") and HOSTILE in label
        assert await page.locator("#map-box h2 .count") \
            .text_content() == "2 calls"
        assert "Team call, no unit yet (2)" in await page.locator(".map-legend").text_content()

        # A status change recolours the marker.
        r = await web.client.post(f"/v1/calls/{first}/status",
                                  json={"status": "assigned", "unit": "CALL-2"})
        assert r.status_code == 200, r.text
        await page.locator(f'#map-box .map-call.call-assigned[data-call-id="{first}"]'
                           ).wait_for()

        # A click opens the call as its card's Details button does.
        await marker(page, second).click()
        await page.locator(f'li.card[data-call-id="{second}"] .details').wait_for()
        # Enter on a focused marker too.
        await marker(page, first).focus()
        await page.keyboard.press("Enter")
        await page.locator(f'li.card[data-call-id="{first}"] .details').wait_for()

        # Cleared, the call leaves the board and the map.
        for status in ("en_route", "on_scene"):
            r = await web.client.post(f"/v1/calls/{first}/status", json={"status": status})
            assert r.status_code == 200, r.text
        r = await web.client.post(f"/v1/calls/{first}/status",
                                  json={"status": "cleared", "disposition": "resolved_on_scene"})
        assert r.status_code == 200, r.text
        await marker(page, first).wait_for(state="detached")
        assert await page.evaluate("window.__xss") is None
        assert await page.locator("img[src=x]").count() == 0
        assert page.errors == []
    finally:
        await context.close()


async def test_the_toggle_hides_the_map_and_is_remembered(browser: Any, web: Server) -> None:
    call_id = await post(web, lat=27.77, lon=-82.64)
    context, page = await open_page(browser, web, "/board", "call_team")
    try:
        await marker(page, call_id).wait_for()
        toggle = page.locator("#map-box .map-toggle")
        assert await toggle.get_attribute("aria-expanded") == "true"
        await toggle.click()
        assert await toggle.text_content() == "Show map"
        assert await toggle.get_attribute("aria-expanded") == "false"
        assert await page.locator("#map-body").is_hidden()
        # A call arriving while the map is hidden is drawn once it is shown again.
        later = await post(web, lat=27.76, lon=-82.63)
        await page.locator(f'li.card[data-call-id="{later}"]').wait_for()
        await page.reload()
        await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
        await page.locator(f'li.card[data-call-id="{later}"]').wait_for()
        assert await page.locator("#map-body").is_hidden()
        await page.locator("#map-box .map-toggle").click()
        await marker(page, later).wait_for()
        assert await marker(page, call_id).count() == 1
        assert page.errors == []
    finally:
        await context.close()


async def test_the_dispatch_map_shows_police_calls_and_opens_them(
        browser: Any, web: Server) -> None:
    context, page = await open_page(browser, web, "/dispatch", "dispatcher")
    try:
        police = await post(web, lat=27.8, lon=-82.7, nature_code="BURGLARY",
                            nature_text="Burglary in progress")
        team = await post(web, lat=27.79, lon=-82.69)
        await page.locator(f'#map-box .map-call.call-police[data-call-id="{police}"]').wait_for()
        await page.locator(f'#map-box .map-call.call-queued[data-call-id="{team}"]').wait_for()
        await marker(page, police).click()
        await page.locator(f'#calls li.card[data-call-id="{police}"] .details').wait_for()
        legend = await page.locator(".map-legend").text_content()
        assert "Police (1)" in legend and "Team call, no unit yet (1)" in legend
        assert page.errors == []
    finally:
        await context.close()


PNG = bytes.fromhex(  # a 1x1 grey PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5f6a0c50000000049454e44ae426082")


class _Tiles(http.server.BaseHTTPRequestHandler):
    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        type(self).asked.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.send_header("content-length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def tile_server() -> Iterator[str]:
    """A tile provider (outside the system), on its own port: another origin."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_tiles_from_the_setting_load_under_the_csp(browser: Any, tmp_path: Path) -> None:
    with tile_server() as origin:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
                            map_tiles=f"{origin}/tiles/{{z}}/{{x}}/{{y}}.png",
                            map_attribution=f"© Test tiles {HOSTILE}")
        async with running_server(settings) as server:
            call_id = await post(server, lat=27.77, lon=-82.64)
            context, page = await open_page(browser, server, "/board", "call_team")
            try:
                await marker(page, call_id).wait_for()
                await page.locator("#map-box img.leaflet-tile-loaded").first.wait_for()
                assert any(p.startswith("/tiles/") for p in _Tiles.asked)
                assert await page.locator("#map-box .map.map-plain").count() == 0
                attribution = page.locator("#map-box .leaflet-control-attribution")
                assert f"© Test tiles {HOSTILE}" in await attribution.text_content()
                assert await page.locator("img[src=x]").count() == 0
                assert page.errors == []
            finally:
                await context.close()


def unit_marker(page: Any, unit_id: str) -> Any:
    return page.locator(f'#map-box .map-unit[data-unit-id="{unit_id}"]')


async def avl(server: Server, unit_id: str, lat: float, lon: float) -> None:
    r = await server.client.post("/v1/units/positions", json={"positions": [
        {"unit_id": unit_id, "lat": lat, "lon": lon, "accuracy_m": 8, "at": now_iso()}]})
    assert r.status_code == 200, r.text


async def test_units_on_duty_are_drawn_by_status_and_move_with_their_positions(
        browser: Any, web: Server) -> None:
    # One unit on duty with a position before the page opens (the opening snapshot)...
    r = await web.client.put("/v1/units/CALL-1", json={"program_id": "call",
                                                       "call_sign": "CALL 1", "on_duty": True})
    assert r.status_code == 200, r.text
    await avl(web, "CALL-1", 27.77, -82.64)
    call_id = await post(web, lat=27.78, lon=-82.63)
    context, page = await open_page(browser, web, "/board", "call_team")
    try:
        one = unit_marker(page, "CALL-1")
        await one.wait_for()
        assert "unit-available" in (await one.get_attribute("class")).split()
        assert await one.locator(".map-unit-sign").text_content() == "CALL 1"
        assert "Unit CALL 1, available" in await one.locator(".sr-only").text_content()
        # ...one signed on after (the `unit` messages), off duty not drawn, then placed.
        r = await web.client.put("/v1/units/CALL-2", json={"program_id": "call",
                                                           "call_sign": "CALL 2"})
        assert r.status_code == 200, r.text
        r = await web.client.post("/v1/units/CALL-2/duty", json={"on_duty": True})
        assert r.status_code == 200, r.text
        await page.locator("#map-box .map-unlocated", has_text="1 unit on duty without a "
                           "position").wait_for()
        assert await unit_marker(page, "CALL-2").count() == 0
        await avl(web, "CALL-2", 27.75, -82.62)
        await unit_marker(page, "CALL-2").wait_for()

        # A new position moves the marker (on the plain map, its pixel place changes).
        before = await one.get_attribute("style")
        await avl(web, "CALL-1", 27.76, -82.635)
        await page.wait_for_function(
            "([sel, was]) => document.querySelector(sel).getAttribute('style') !== was",
            arg=['#map-box .map-unit[data-unit-id="CALL-1"]', before])
        # Its status follows the team's: assigned to the call.
        r = await web.client.post(f"/v1/calls/{call_id}/status",
                                  json={"status": "assigned", "unit": "CALL-1"})
        assert r.status_code == 200, r.text
        await page.locator('#map-box .map-unit.unit-assigned[data-unit-id="CALL-1"]').wait_for()
        legend = await page.locator(".map-legend").text_content()
        assert "Unit assigned (1)" in legend and "Unit available (1)" in legend
        # Signed off: off the map.
        r = await web.client.post("/v1/units/CALL-2/duty", json={"on_duty": False})
        assert r.status_code == 200, r.text
        await unit_marker(page, "CALL-2").wait_for(state="detached")
        assert page.errors == []
    finally:
        await context.close()
