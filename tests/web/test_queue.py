"""Calls waiting for a team, in a real browser (issue 13): the queue on the board and the
dispatcher console (age, time left, the warning, positions, per program), deferred
referrals "scheduled for 08:00" there and on the officer's pages, and calls leaving the
queue as later decisions (a unit came free, the wait limit passed) arrive.

Every waiting call here is made through the real CAD route (or the referral form) under a
policy of programs; nothing is written into the database by hand.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service.settings import Settings
from tests.conftest import WAIT, Server
from tests.factories import OUT_OF_TOWN, now_iso, programs_doc, write_policy
from tests.web.conftest import PHONE, free_port, new_page, serve_on

pytestmark = pytest.mark.asyncio(loop_scope="module")

ZONE = ZoneInfo("America/New_York")  # programs_doc's
LONG = WAIT * 5 * 1000  # for what waits on a wait limit or a shift's start (ms)


def policy_file(folder: Path, hours: dict[str, list[str]],
                queue: list[dict[str, Any]], timezone: str | None = None) -> str:
    """programs_doc with the field team's hours and wait limits replaced (two units,
    referrals and follow-ups deferred), written beside the test's database."""
    doc = programs_doc()
    if timezone:
        doc["program"]["timezone"] = timezone
    field = doc["programs"][0]
    field.update(hours=hours, queue=queue)
    field.pop("dates_off", None)
    return write_policy(folder / "programs.yaml", doc)


def settings(folder: Path, policy: str) -> Settings:
    # The sweeper settles the queue (wait limits passed, a shift begun): every 0.2 s, so
    # the tests that wait for those do not wait up to 5 s more for the next sweep.
    return Settings(database_url=f"sqlite+aiosqlite:///{folder / 'l.db'}", policy=policy,
                    field_sweep_seconds=0.2)


async def post(server: Server, at: str | None = None, **fields: Any) -> dict[str, Any]:
    res = await server.post_event(occurred_at=at or now_iso(), priority=3, **fields)
    assert res.status_code in (200, 201, 202), res.text
    return dict(res.json())


async def fill_field_units(server: Server, at: str | None = None) -> list[dict[str, Any]]:
    """Two homelessness calls (now, or at `at`) take the field team's two units."""
    held = [await post(server, at, nature_code="VAG", nature_text=f"Holding {i}")
            for i in range(2)]
    for h in held:
        d = h["decision"]
        assert d["destination"] == "call_team" and d["program"]["id"] == "field", d
        assert d["queued"] is None and d["needs_field_unit"], d
    return held


async def close(server: Server, call_id: str) -> None:
    """The CAD closes a call: the unit it held comes free."""
    incident = (await server.client.get(f"/v1/calls/{call_id}")).json()["call"]["incident_id"]
    res = await server.post_event(incident_id=incident, type="closed", occurred_at=now_iso())
    assert res.is_success, res.text


async def open_page(browser: Any, server: Server, role: str, path: str, **kw: Any
                    ) -> tuple[Any, Any]:
    context, page = await new_page(browser, server, role=role, **kw)
    await page.goto(f"{server.base_url}{path}")
    if path in ("/board", "/dispatch"):
        await page.locator('#conn[data-state="online"][data-caught-up]').wait_for()
    return context, page


def waiting(page: Any, call_id: str) -> Any:
    return page.locator(f'#queue-box li[data-call-id="{call_id}"]')


async def test_queued_calls_on_the_board_and_console_until_a_unit_frees_or_the_limit_passes(
        browser: Any, tmp_path: Path) -> None:
    policy = policy_file(tmp_path, {"daily": ["00:00-24:00"]}, [
        {"category": "homelessness", "max_wait_minutes": 60},
        {"category": "welfare", "max_wait_minutes": 0.75}])
    async with serve_on(settings(tmp_path, policy), free_port()) as server:
        board_ctx, board = await open_page(browser, server, "call_team", "/board")
        con_ctx, console = await open_page(browser, server, "dispatcher", "/dispatch")
        try:
            held = await fill_field_units(server)
            hostile = '<img src=x onerror="window.__xss=1">'
            first = await post(server, nature_code="VAG", nature_text="First in line")
            second = await post(server, nature_code="VAG", nature_text=f"Second {hostile}",
                                location={"address": f"9 {hostile} St", "district": "D1"})
            for answer, position in ((first, 1), (second, 2)):
                q = answer["decision"]["queued"]
                assert q is not None and q["position"] == position, answer["decision"]
                assert q["wait_limit_s"] == 3600
                assert answer["decision"]["needs_field_unit"] is False

            for page in (board, console):
                one, two = waiting(page, first["call_id"]), waiting(page, second["call_id"])
                await two.wait_for()
                box = page.locator("#queue-box")
                assert await box.is_visible()
                group = box.locator('section.q-group[data-program="field"]')
                # The program is named: the policy has several.
                assert await group.locator("h3").text_content() == "Field team"
                assert await one.locator(".q-position").text_content() == "position 1"
                assert await two.locator(".q-position").text_content() == "position 2"
                left = await one.locator(".q-left").text_content()
                assert re.fullmatch(r"falls back in (59:[0-5]\d|60:00)", left), left
                assert "soon" not in (await one.get_attribute("class") or "")
                # Data is text, never markup.
                assert hostile in await two.locator(".nature").text_content()
                assert hostile in await two.locator(".where").text_content()
                assert await page.locator("img[src=x]").count() == 0
                # Its age and time left tick.
                age = await one.locator(".q-age").text_content()
                await page.wait_for_function(
                    "([id, t]) => document.querySelector("
                    "`#queue-box li[data-call-id='${id}'] .q-age`).textContent !== t",
                    arg=[first["call_id"], age])
            # Waiting calls are not in the team's lanes: nobody has them yet.
            assert await board.locator(f'.lane li[data-call-id="{first["call_id"]}"]'
                                       ).count() == 0
            assert "Queued for Field team" in await console.locator(
                f'#calls li[data-call-id="{first["call_id"]}"] .waiting-note').text_content()

            # A call with a limit of 45 seconds: warned at once, then it falls back.
            short = await post(server, nature_code="WELFARE", nature_text="Check on neighbour")
            assert short["decision"]["queued"]["wait_limit_s"] == 45, short["decision"]
            for page in (board, console):
                card = waiting(page, short["call_id"])
                await card.wait_for()
                assert await card.locator(".q-position").text_content() == "position 3"
                await page.locator(f'#queue-box li.soon[data-call-id="{short["call_id"]}"]'
                                   ).wait_for()
                left = await card.locator(".q-left").text_content()
                assert re.fullmatch(r"falls back soon: in 0:[0-4]\d", left), left

            # A unit comes free (the CAD closes a call it held): the first in line is taken.
            await close(server, held[0]["call_id"])
            await waiting(board, first["call_id"]).wait_for(state="detached")
            await board.locator(f'.lane[data-lane="queued"] li[data-call-id="{first["call_id"]}"]'
                                ).wait_for()
            await waiting(console, first["call_id"]).wait_for(state="detached")
            # The team is alerted as for any new call of theirs.
            assert "First in line" in await board.locator("#alert-text").text_content()
            for page in (board, console):
                await page.locator(f'#queue-box li[data-call-id="{second["call_id"]}"] '
                                   '.q-position', has_text="position 1").wait_for()
            taken = (await server.client.get(f"/v1/calls/{first['call_id']}")).json()
            assert [d["cause"] for d in taken["decisions"]][-1] == "unit_free", taken["decisions"]

            # The limit passes: it falls back to police, and the console says why.
            await waiting(console, short["call_id"]).wait_for(state="detached", timeout=LONG)
            await waiting(board, short["call_id"]).wait_for(state="detached")
            not_served = console.locator(f'#not-served li[data-call-id="{short["call_id"]}"]')
            await not_served.wait_for()
            assert "waited for the team past its wait limit" in \
                await not_served.locator(".not-served").text_content()
            assert "police" in await not_served.locator(".dest").text_content()
            # A call outside every program's area: police, and the console says why.
            away = await post(server, nature_code="VAG", nature_text="Out of town",
                              location={"address": "1 Far Rd", "district": "D9",
                                        **OUT_OF_TOWN})
            assert away["decision"]["not_served_reason"] == "outside_area", away["decision"]
            outside = console.locator(f'#not-served li[data-call-id="{away["call_id"]}"]')
            await outside.wait_for()
            assert "outside every team's service area" in \
                await outside.locator(".not-served").text_content()
            assert await board.evaluate("window.__xss") is None
            assert board.errors == [] and console.errors == []
        finally:
            await board_ctx.close()
            await con_ctx.close()


def _noon_zone(now: datetime) -> tuple[str, ZoneInfo]:
    """A zone where it is about noon now, so a day of two shifts around now never
    crosses midnight (Etc/GMT-N is N hours east of UTC)."""
    east = max(-12, min(14, 12 - now.astimezone(ZONE).astimezone(ZoneInfo("UTC")).hour))
    name = "Etc/GMT" if east == 0 else f"Etc/GMT{'-' if east > 0 else '+'}{abs(east)}"
    return name, ZoneInfo(name)


def _gap_hours(now: datetime, zone: ZoneInfo) -> tuple[dict[str, list[str]], datetime]:
    """Hours whose first shift ended this minute and whose second starts two minutes
    later: a referral now is off hours, scheduled for the second's start."""
    end = now.astimezone(zone).replace(second=0, microsecond=0)
    start = end + timedelta(minutes=2)
    hours = {"daily": [f"00:00-{end:%H:%M}", f"{start:%H:%M}-24:00"]}
    return hours, start


async def test_a_deferred_referral_is_scheduled_then_the_days_first_work(
        browser: Any, tmp_path: Path) -> None:
    now = datetime.now(ZONE)
    zone_name, zone = _noon_zone(now)
    hours, start = _gap_hours(now, zone)
    policy = policy_file(tmp_path, hours, [{"category": "homelessness",
                                            "max_wait_minutes": 60}], timezone=zone_name)
    at = f"{start:%H:%M}"
    async with serve_on(settings(tmp_path, policy), free_port()) as server:
        # Taken in the first shift, ten minutes ago: both units are still out.
        held = await fill_field_units(server, (now - timedelta(minutes=10)).isoformat())
        board_ctx, board = await open_page(browser, server, "call_team", "/board")
        con_ctx, console = await open_page(browser, server, "dispatcher", "/dispatch")
        ofc_ctx, officer = await open_page(browser, server, "officer", "/refer",
                                           viewport=PHONE)
        try:
            # The officer refers someone between shifts (every unit out too): it waits
            # for the next shift instead of going to police.
            # An officer refers as themselves: the page fills in (and locks) their id.
            await officer.wait_for_function(
                "() => document.querySelector('#officer').readOnly")
            await officer.locator("#concern").select_option("welfare")
            await officer.locator("#who-field").fill("Mr <b>Lee</b>")
            await officer.locator("#where").fill("4 Pine St")
            await officer.locator("#what").fill("Has not been seen for days.")
            await officer.locator("#consent").check()
            await officer.locator("#refer-submit").click()
            await officer.locator("#flash.ok").wait_for()
            note = await officer.locator("#result .waiting-note").text_content()
            assert note == f"scheduled for {at} ({zone_name} time)", note
            who = await officer.locator("#officer").input_value()
            [ref] = (await server.client.get("/v1/referrals", params={"officer": who})
                     ).json()["referrals"]
            assert ref["deferred_until"] is not None and ref["queued"] is None, ref
            assert datetime.fromisoformat(ref["deferred_until"]) == start

            await officer.goto(f"{server.base_url}/refer/mine")
            mine = officer.locator(f'#referrals li[data-call-id="{ref["call_id"]}"]')
            await mine.wait_for()
            assert await mine.locator(".status").text_content() == \
                f"scheduled for {at} ({zone_name} time)"

            for page in (board, console):
                card = waiting(page, ref["call_id"])
                await card.wait_for()
                assert await card.get_attribute("data-wait") == "deferred"
                assert await card.locator(".q-scheduled").text_content() == \
                    f"scheduled for {at} ({zone_name} time)"
                assert await page.locator("#queue-box .q-first").count() == 0

            # The shift begins with every unit still busy: the referral stays, on top, as
            # the day's first work.
            for page in (board, console):
                first = page.locator(f'#queue-box .q-first li[data-call-id="{ref["call_id"]}"]')
                await first.wait_for(timeout=LONG)
                assert (await first.locator(".q-scheduled").text_content()).startswith(
                    "Today's first work: was scheduled for")
            await officer.reload()
            await mine.wait_for()
            assert (await mine.locator(".status").text_content()).startswith(
                "the team's first work now (was scheduled for")

            # A unit comes free: it takes the referral, which leaves the queue.
            await close(server, held[1]["call_id"])
            await board.locator(f'.lane[data-lane="queued"] li[data-call-id="{ref["call_id"]}"]'
                                ).wait_for()
            await waiting(board, ref["call_id"]).wait_for(state="detached")
            await waiting(console, ref["call_id"]).wait_for(state="detached")
            assert await board.locator("#queue-box").is_hidden()
            stored = (await server.client.get(f"/v1/calls/{ref['call_id']}")).json()
            assert stored["decisions"][-1]["cause"] in ("unit_free", "shift_start")
            assert board.errors == [] and console.errors == [] and officer.errors == []
        finally:
            for ctx in (board_ctx, con_ctx, ofc_ctx):
                await ctx.close()


async def test_time_left_is_counted_on_the_queues_clock_in_a_replay(
        browser: Any, tmp_path: Path) -> None:
    """Calls of last March replayed now: the queue's clock runs with the feed, so the page
    counts the wait from the calls' own times, not from the browser's today."""
    policy = policy_file(tmp_path, {"daily": ["00:00-24:00"]}, [
        {"category": "homelessness", "max_wait_minutes": 60}])
    async with serve_on(settings(tmp_path, policy), free_port()) as server:
        then = "2026-03-10T14:00:00-04:00"
        for i in range(2):
            held = (await server.post_event(occurred_at=then, nature_code="VAG", priority=3,
                                            nature_text=f"Holding {i}")).json()
            assert held["decision"]["needs_field_unit"], held["decision"]
        res = (await server.post_event(occurred_at=then, nature_code="VAG", priority=3,
                                       nature_text="Replayed, waiting")).json()
        assert res["decision"]["queued"]["since"] == then, res["decision"]
        for role, path in (("call_team", "/board"), ("dispatcher", "/dispatch")):
            context, page = await open_page(browser, server, role, path)
            try:
                card = waiting(page, res["call_id"])
                await card.locator(".q-left", has_text="falls back in").wait_for()
                left = await card.locator(".q-left").text_content()
                assert re.fullmatch(r"falls back in (59:[0-5]\d|60:00)", left), left
                assert "overdue" not in (await card.get_attribute("class") or "")
                assert re.fullmatch(r"0:[0-5]\d", await card.locator(".q-age").text_content())
                assert page.errors == []
            finally:
                await context.close()
