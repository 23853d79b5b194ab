"""Screenshots of every page at phone (390x844) and desktop (1280x800) width.

Starts `liaison demo` (SQLite in a temporary directory, a seeded CAD feed) on a free
port, adds referrals, a backup request and an override so every section has something
to show, lets calls come in, and writes docs/screenshots/<page>-<phone|desktop>.png
with Debian's Chromium through Playwright. Run it within the shipped policy's team
hours (08:00-24:00 New York time), or the team's calls go to police.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--warmup 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LIAISON_CHROMIUM", "/usr/bin/chromium")
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
sys.path.insert(0, str(ROOT))
from api.layout import PAGES  # noqa: E402  (the one list of pages)

# Each shell page, as <name>-<size>.png (/refer/mine: refer-mine), opened as a role it is
# for (the role that lands there first); /login without one.
SHOTS = {p.path.strip("/").replace("/", "-"): (p.path, (p.home_of or p.roles or (None,))[0])
         for p in PAGES if p.shell}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_demo(db: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes],
                                                      dict[str, tuple[str, str]]]:
    """The demo, and its accounts: role -> (user name, password), as it prints them."""
    cmd = [sys.executable, "-m", "api.cli", "demo", "--port", str(port),
           "--database-url", f"sqlite+aiosqlite:///{db}", "--rate", "40", "--seed", "7",
           "--log-level", "warning"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"liaison demo exited:\n{log.read_text()}")
        text = log.read_text(errors="replace")
        if "Liaison demo on" in text:
            accounts = {}
            for line in text.splitlines():
                parts = line.split()
                if len(parts) == 3 and line.startswith("  ") and parts[1].startswith("demo-"):
                    accounts[parts[0]] = (parts[1], parts[2])
            return proc, accounts
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("liaison demo did not start")


async def _read(response: httpx.Response) -> None:
    await response.aread()
    if response.is_error:
        raise SystemExit(f"{response.request.method} {response.request.url}: "
                         f"{response.status_code} {response.text}")


async def cad_key(db: Path) -> str:
    """A CAD key for posting events (straight into the demo's database)."""
    from service.access.auth import Role, create_key
    from service.store.db import create_engine

    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        token, _ = await create_key(engine, "screenshots", role=Role.cad)
        return token
    finally:
        await engine.dispose()


async def stage(base: str, db: Path, accounts: dict[str, tuple[str, str]]) -> None:
    """Referrals, a backup request and an override, through the API."""
    cad = {"authorization": f"Bearer {await cad_key(db)}"}
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 event_hooks={"response": [_read]}) as client:
        name, password = accounts["supervisor"]
        await client.post("/v1/session", json={"username": name, "password": password})
        first = (await client.post("/v1/referrals", json={
            "officer": accounts["officer"][0], "concern": "homelessness", "who": "Dana, about 40",
            "where": "Williams Park, 350 2nd Ave N", "consent": True,
            "what": "Sleeping on a bench, asked for help finding a bed."})).json()
        steps = [{"status": "assigned", "unit": "CALL-1"}, {"status": "on_scene"},
                 {"status": "cleared", "disposition": "referred_to_services",
                  "outcome": "Bed at the shelter tonight; case manager tomorrow"}]
        for step in steps:
            await client.post(f"/v1/calls/{first['call_id']}/status", json=step)
        await client.post("/v1/referrals", json={
            "officer": accounts["officer"][0], "concern": "mental_health",
            "who": "Young man, grey hoodie",
            "where": "Central Ave & 8th St", "consent": True, "contact": "727-555-0100",
            "what": "Talking to himself, scared, no weapons."})
        event = {
            "type": "created", "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                            time.gmtime()),
            "channel": "crisis_line", "nature_code": "SUICTHRT",
            "nature_text": "Caller in distress", "location": {"address": "By phone"},
        }
        await client.post("/v1/cad/events", headers=cad, json={
            **event, "event_id": "shot-1", "incident_id": "SHOT-1"})
        backup = (await client.post("/v1/cad/events", headers=cad, json={
            **event, "event_id": "shot-2", "incident_id": "SHOT-2", "channel": "911",
            "nature_code": "CDX", "nature_text": "Neighbor dispute, shouting",
            "location": {"address": "2400 5th Ave S", "district": "D3"}})).json()
        call = f"/v1/calls/{backup['call_id']}/status"
        if backup["decision"]["destination"] in ("call_team", "joint"):
            await client.post(call, json={"status": "assigned", "unit": "CALL-4"})
            await client.post(call, json={"status": "on_scene"})
            await client.post(call, json={"status": "backup_requested",
                                          "note": "One of them went to get a bat"})
        # An override of the newest team call.
        over = (await client.post("/v1/cad/events", headers=cad, json={
            **event, "event_id": "shot-3", "incident_id": "SHOT-3", "channel": "911",
            "nature_code": "WELFARE", "nature_text": "Welfare check, elderly man",
            "location": {"address": "901 34th St N", "district": "D1"}})).json()
        await client.post(f"/v1/calls/{over['call_id']}/override", json={
            "destination": "police", "reason": "Known history of assaulting responders"})


async def capture(base: str, out: Path, accounts: dict[str, tuple[str, str]]) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        for size, viewport in SIZES.items():
            for name, (path, role) in SHOTS.items():
                context = await browser.new_context(viewport=viewport, device_scale_factor=1)
                if role:
                    user, password = accounts[role.value]
                    await context.request.post(f"{base}/v1/session",
                                               data={"username": user, "password": password})
                page = await context.new_page()
                await page.goto(f"{base}{path}")
                if name == "policy":
                    # The structured editor's rules, once checked (the checks' line above).
                    await page.locator("tr.rule").first.wait_for()
                    await page.locator("#checks-summary p").wait_for()
                    await page.evaluate("""() => {
                        document.querySelector('#rules').scrollIntoView();
                        window.scrollBy(0, -90); }""")
                await page.wait_for_timeout(1500)
                file = out / f"{name}-{size}.png"
                await page.screenshot(path=str(file))
                print(file.relative_to(ROOT) if file.is_relative_to(ROOT) else file)
                await context.close()
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="seconds of demo traffic before the screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        db = Path(tmp) / "liaison.db"
        proc, accounts = start_demo(db, port, Path(tmp) / "demo.log")
        base = f"http://127.0.0.1:{port}"
        try:
            asyncio.run(stage(base, db, accounts))  # first, while team units are free
            time.sleep(args.warmup)
            asyncio.run(capture(base, args.out, accounts))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
