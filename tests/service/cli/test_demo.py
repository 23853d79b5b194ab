"""`liaison demo` (what `make run` runs): the simulator feeds the real endpoint and a board
client sees calls arrive with their decisions, team calls moving through their flow. The
demo is a region of two agencies in two time zones (issue 17): a regional supervisor sees
both agencies' calls, another agency's dispatcher its own only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import websockets
from sqlalchemy import select

from service.access.auth import PEOPLE_ROLES, KeyCache, Role, list_keys
from service.cli.access import demo_accounts
from service.store.db import create_engine, migrate
from service.store.tables import USER
from tests.conftest import ROOT, WAIT, eventually, free_port, start_subprocess
from tests.credentials import Credentials
from tests.factories import always_open_policy

pytestmark = pytest.mark.asyncio


async def test_demo_feeds_the_board(tmp_path: Path) -> None:
    # The demo runs on the real clock: open the team all day so the test holds at any hour.
    policy = always_open_policy(tmp_path)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "demo", "--port", str(port), "--rate", "600",
        "--seed", "7", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        "--policy", str(policy), "--log-level", "info", "--summary-every", "1",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    later: list[str] = []

    async def read_on() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            later.append(line.decode())

    reading = None
    try:
        # The demo prints its accounts (role, agency, name and a random password), then its
        # address: a regional supervisor, and one account per role in each agency.
        listed: dict[tuple[str, str], tuple[str, str]] = {}
        printed: list[str] = []
        while not any("Liaison demo on" in line for line in printed):
            line = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
            assert line, "demo stopped:\n" + "".join(printed)
            printed.append(line)
            parts = line.split()
            if len(parts) == 4 and parts[0] in {r.value for r in Role}:
                listed[(parts[0], parts[1])] = (parts[2], parts[3])
        people = {r.value for r in PEOPLE_ROLES}
        assert listed[("supervisor", "*")][0] == "demo-supervisor"
        assert {role for role, agency in listed if agency == "west"} == people
        assert {role for role, agency in listed if agency == "default"} == people - {
            "supervisor"}
        assert "west (America/Chicago)" in printed[-1] and "default (" in printed[-1]
        accounts = {role: account for (role, agency), account in listed.items()
                    if agency in ("default", "*")}
        assert len({pw for _, pw in listed.values()}) == len(listed)
        # Also kept beside the database, for when the terminal has scrolled: owner only.
        kept = tmp_path / "liaison-demo-accounts.txt"
        assert str(kept) in "".join(printed)
        assert kept.stat().st_mode & 0o777 == 0o600
        assert all(f"{role:<13} {agency:<8} {name:<26} {pw}" in kept.read_text()
                   for (role, agency), (name, pw) in listed.items())
        reading = asyncio.create_task(read_on())
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            name, password = accounts["call_team"]
            r = await client.post("/v1/session", json={"username": name, "password": password})
            assert r.status_code == 200, r.text
            cookie = f"liaison_session={client.cookies['liaison_session']}"
        messages = []
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/board?after=0",
                                      additional_headers={"cookie": cookie}) as ws:
            end = time.monotonic() + WAIT
            while time.monotonic() < end:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
                kinds = {m["type"] for m in messages}
                destinations = {m["decision"]["destination"] for m in messages
                                if m["type"] == "decision"}
                if {"decision", "status"} <= kinds and {"call_team", "police"} <= destinations:
                    break
        seqs = [m["seq"] for m in messages]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert {"decision", "status"} <= {m["type"] for m in messages}
        decisions = [m["decision"] for m in messages if m["type"] == "decision"]
        assert {"call_team", "police"} <= {d["destination"] for d in decisions}
        assert all(d["explanation"] and d["policy_version"] for d in decisions)
        # The terminal stays readable: no line per request (neither the feed's client nor
        # uvicorn's access log), a summary of the feed instead.
        deadline = time.monotonic() + 30
        while not any("demo feed so far:" in line and "0 calls" not in line
                      for line in later):
            assert time.monotonic() < deadline, "no summary:\n" + "".join(later)
            await asyncio.sleep(0.1)
        assert not [line for line in later if "HTTP Request:" in line or '"POST /v1/' in line
                    or '"GET /v1/' in line], "".join(later)
        await both_agencies(base, listed)
    finally:
        if reading is not None:
            reading.cancel()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)


@contextlib.asynccontextmanager
async def logged_in(base: str, account: tuple[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        r = await client.post("/v1/session", json={"username": account[0],
                                                    "password": account[1]})
        assert r.status_code == 200, r.text
        yield client


async def both_agencies(base: str, listed: dict[tuple[str, str], tuple[str, str]]) -> None:
    """The feed posts calls for both agencies, each decided by its own policy; the
    regional supervisor sees both, the west dispatcher west's only."""
    async with (logged_in(base, listed[("supervisor", "*")]) as regional,
                logged_in(base, listed[("dispatcher", "west")]) as west):
        found = (await regional.get("/v1/agencies")).json()
        zones = {a["id"]: (a["timezone"], a["in_force"]) for a in found}
        assert zones["west"] == ("America/Chicago", "west-county-demo@1"), found
        assert zones["default"][0] != "America/Chicago", found

        async def agencies_seen() -> set[str] | None:
            calls = (await regional.get("/v1/calls", params={"limit": 200})).json()["calls"]
            seen = {c["agency_id"] for c in calls}
            return seen if {"default", "west"} <= seen else None

        assert await eventually(agencies_seen, "calls of both agencies") == {"default", "west"}
        mine = (await west.get("/v1/calls", params={"limit": 200})).json()["calls"]
        assert mine and {c["agency_id"] for c in mine} == {"west"}
        one = (await west.get(f"/v1/calls/{mine[0]['id']}")).json()
        assert one["decision"]["policy_version"] == "west-county-demo@1", one


async def test_serve_makes_no_account(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    sp = start_subprocess(url, tmp_path, creds=Credentials())  # the harness adds none
    try:
        async with httpx.AsyncClient(base_url=sp.base_url, timeout=10) as client:
            r = await client.post("/v1/session", json={"username": "admin",
                                                       "password": "admin"})
            assert r.status_code == 401
    finally:
        sp.stop()
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = (await conn.execute(select(USER.c.username))).scalars().all()
    finally:
        await engine.dispose()
    assert names == []


async def test_each_demo_start_replaces_the_simulator_keys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    try:
        await migrate(engine)
        _, first = await demo_accounts(engine)
        accounts, second = await demo_accounts(engine)
        assert ("supervisor", "*", "demo-supervisor") in [a[:3] for a in accounts]
        cache = KeyCache(engine, ttl=timedelta(0))
        for role in (Role.cad, Role.call_team):
            assert await cache.principal(first[role.value]) is None, "revoked"
            who = await cache.principal(second[role.value])
            assert who is not None and who.role == role
        live = [k for k in await list_keys(engine)
                if k["client"].startswith("demo-simulator-") and k["revoked_at"] is None]
        assert sorted(k["client"] for k in live) == ["demo-simulator-cad",
                                                      "demo-simulator-call_team"]
    finally:
        await engine.dispose()
