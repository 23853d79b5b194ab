"""The field board without a connection, in Chromium with its service worker: three
status changes made offline wait on the card, survive a reload (the shell from the
worker's cache, the queue from IndexedDB), and reach the service in order, once each, with
the time the member acted; a change the call has moved past meanwhile is explained."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from service.access.auth import Role
from service.settings import Settings
from tests.conftest import WAIT, Server, eventually, running_server
from tests.factories import always_open_policy
from tests.web.conftest import DESKTOP, login

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHELL_KEPT = """async () => Boolean(navigator.serviceWorker.controller
    && await caches.match('/board') && await caches.match('/static/board.js')
    && await caches.match('/static/offline.js'))"""
# The ids of the calls in the board the device keeps (written a second after a change).
BOARD_KEPT = """() => new Promise((resolve) => {
  const req = indexedDB.open('liaison-field');
  req.onsuccess = () => {
    const get = req.result.transaction('kept').objectStore('kept').get('board');
    get.onsuccess = () => resolve(((get.result || {}).entries || []).map((e) => e.id));
    get.onerror = () => resolve([]);
  };
  req.onerror = () => resolve([]);
})"""
# [shell caches, workers registered, records in the board's IndexedDB]
KEPT_ON_DEVICE = """async () => {
  const caches_ = (await caches.keys()).filter((k) => k.startsWith('liaison-')).length;
  const workers = (await navigator.serviceWorker.getRegistrations()).length;
  const db = await new Promise((ok, no) => {
    const req = indexedDB.open('liaison-field', 1);
    req.onupgradeneeded = () => { req.result.createObjectStore('actions',
      { keyPath: 'seq', autoIncrement: true }); req.result.createObjectStore('kept'); };
    req.onsuccess = () => ok(req.result); req.onerror = () => no(req.error); });
  const count = (name) => new Promise((ok) => {
    const r = db.transaction(name).objectStore(name).count(); r.onsuccess = () => ok(r.result); });
  const records = (await count('actions')) + (await count('kept'));
  db.close();
  return [caches_, workers, records];
}"""


@contextlib.asynccontextmanager
async def board_messages(server: Server) -> AsyncIterator[list[dict[str, Any]]]:
    """Every board message from now on, as a websocket client gets them."""
    got: list[dict[str, Any]] = []
    async with server.connect_board() as ws:
        async def read() -> None:
            async for raw in ws:
                got.append(json.loads(raw))

        task = asyncio.create_task(read())
        try:
            yield got
        finally:
            task.cancel()


async def statuses_up_to_a_marker(server: Server, got: list[dict[str, Any]],
                                  call_id: str) -> list[str]:
    """The call's status messages, once everything before a new call's decision has come
    (the board sends in seq order: the marker is the positive signal)."""
    marker = (await server.post_event(nature_code="BURGLARY")).json()["call_id"]
    await eventually(lambda: any(m.get("call_id") == marker for m in got),
                     "the marker call on the board")
    return [m["status"] for m in got if m["type"] == "status" and m["call_id"] == call_id]


async def _holds(page: Any, *call_ids: str) -> bool:
    return set(call_ids) <= set(await page.evaluate(BOARD_KEPT))


async def timeline(server: Server, call_id: str) -> dict[str, Any]:
    r = await server.client.get(f"/v1/calls/{call_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_three_changes_offline_arrive_in_order_once_and_a_stale_one_is_explained(
        browser: Any, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}",
                        policy=always_open_policy(tmp_path))
    async with running_server(settings) as web, board_messages(web) as got:
        context = await browser.new_context(viewport=DESKTOP, service_workers="allow")
        context.set_default_timeout(WAIT * 1000)
        await login(context, web, Role.call_team)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
                and "Content Security Policy" in msg.text else None)
        try:
            first = (await web.post_event()).json()["call_id"]
            second = (await web.post_event(nature_code="MNTL")).json()["call_id"]
            await page.goto(f"{web.base_url}/board")
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            card = page.locator(f'li.card[data-call-id="{first}"]')
            other = page.locator(f'li.card[data-call-id="{second}"]')
            await card.wait_for()
            # The worker has kept the shell after this one visit.
            await eventually(lambda: page.evaluate(SHELL_KEPT), "the shell in the cache")

            # The other call is taken now, online, and sent at once.
            await other.get_by_role("button", name="Assign unit").click()
            await other.locator("form.assign").get_by_role("button", name="Assign").click()
            await page.locator(f'.lane[data-lane="assigned"] li.card[data-call-id="{second}"]'
                               ).wait_for()
            await other.locator(".pending").wait_for(state="detached")

            await context.set_offline(True)
            await card.get_by_role("button", name="Assign unit").click()
            await card.locator("form.assign").get_by_role("button", name="Assign").click()
            await card.get_by_role("button", name="En route").click()
            await card.get_by_role("button", name="On scene").click()
            await card.locator('.pending[data-pending="3"]').wait_for()
            assert "Waiting to send (3)" in await card.locator(".pending").text_content()
            # Offline too: en route on the other call, which someone else clears meanwhile.
            await other.get_by_role("button", name="En route").click()
            await other.locator('.pending[data-pending="1"]').wait_for()
            r = await web.client.post(f"/v1/calls/{second}/status", json={
                "status": "cleared", "disposition": "resolved_on_scene"})
            assert r.status_code == 200, r.text

            # A reload without a connection: the board from the worker's cache, the
            # queue from the device. The board is kept a second after a change: reload
            # once it holds both calls, as a person would come back to it later.
            await eventually(lambda: _holds(page, first, second), "the board kept on the device")
            await page.reload()
            await card.locator('.pending[data-pending="3"]').wait_for()
            assert await page.locator(
                f'.lane[data-lane="on_scene"] li.card[data-call-id="{first}"]').count() == 1
            assert (await timeline(web, first))["call"]["team_status"] is None  # not sent

            back = datetime.now(UTC)
            await context.set_offline(False)
            await card.locator(".pending").wait_for(state="detached")
            await page.locator('#conn[data-state="online"]').wait_for()

            # In order, once each, with the time each was made (before the connection
            # came back), not when it arrived.
            view = await timeline(web, first)
            assert [m["status"] for m in view["timeline"] if m["type"] == "status"] == [
                "assigned", "en_route", "on_scene"]
            for s in ("assigned", "en_route", "on_scene"):
                assert datetime.fromisoformat(view["call"][f"{s}_at"]) < back, s
            assert await statuses_up_to_a_marker(web, got, first) == [
                "assigned", "en_route", "on_scene"]
            await page.locator(
                f'.lane[data-lane="on_scene"] li.card[data-call-id="{first}"]').wait_for()

            # The stale one: said on the page, and dropped from the queue.
            note = page.locator("#not-sent li")
            await note.wait_for()
            text = await note.text_content()
            assert "had already cleared this call" in text, text
            assert "your 'en route' at" in text and "was not recorded" in text, text
            assert await page.locator(".pending").count() == 0
            assert [m["status"] for m in (await timeline(web, second))["timeline"]
                    if m["type"] == "status"] == ["assigned", "cleared"]
            assert errors == []

            # Logging out leaves nothing of the board on the device.
            assert await page.evaluate(KEPT_ON_DEVICE) != [0, 0, 0]
            await page.locator("#who").get_by_role("button", name="Log out").click()
            await page.wait_for_url("**/login**")
            assert await page.evaluate(KEPT_ON_DEVICE) == [0, 0, 0]
        finally:
            await context.close()


async def test_changes_left_by_another_person_are_never_sent_under_the_new_name(
        browser: Any, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}",
                        policy=always_open_policy(tmp_path))
    async with running_server(settings) as web:
        context = await browser.new_context(viewport=DESKTOP, service_workers="allow")
        context.set_default_timeout(WAIT * 1000)
        await login(context, web, Role.call_team)
        page = await context.new_page()
        try:
            call_id = (await web.post_event()).json()["call_id"]
            await page.goto(f"{web.base_url}/board")
            # Online is the socket open; the call comes after, in the snapshot. Offline
            # before it is drawn, the card would never come.
            await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
            card = page.locator(f'li.card[data-call-id="{call_id}"]')
            await card.wait_for()
            await context.set_offline(True)
            await card.get_by_role("button", name="Assign unit").click()
            await card.locator("form.assign").get_by_role("button", name="Assign").click()
            await card.locator('.pending[data-pending="1"]').wait_for()
            # Meanwhile a supervisor logs in on this device (another tab, say).
            await login(context, web, Role.supervisor)
            await context.set_offline(False)
            await page.locator("#flash.error").filter(has_text="discarded").wait_for()
            await card.locator(".pending").wait_for(state="detached")
            # The marker: a change made now, as the supervisor, is sent and recorded; the
            # team member's assignment before it never was.
            await card.get_by_role("button", name="Assign unit").click()
            await card.locator("form.assign").get_by_role("button", name="Assign").click()

            async def recorded() -> list[tuple[str, str]]:
                return [(m["status"], m["by"]) for m in (await timeline(web, call_id))[
                    "timeline"] if m["type"] == "status"]

            assert await eventually(recorded, "the supervisor's assignment") == [
                ("assigned", "test-supervisor")]
        finally:
            await context.close()
