"""`liaison demo` (what `make run` runs): the simulator feeds the real endpoint and a board
client sees calls arrive with their decisions, team calls moving through their flow."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets
import yaml

from rules.load import default_policy_text
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.asyncio


async def test_demo_feeds_the_board(tmp_path: Path) -> None:
    # The demo runs on the real clock: open the team all day so the test holds at any hour.
    doc = yaml.safe_load(default_policy_text())
    doc["program"]["hours"] = {"start": "00:00", "end": "24:00"}
    policy = tmp_path / "all-day.yaml"
    policy.write_text(yaml.safe_dump(doc))
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited
        [sys.executable, "-m", "service.cli", "demo", "--port", str(port), "--rate", "600",
         "--seed", "7", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
         "--policy", str(policy), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/v1/health")).is_success:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "demo did not start"
                await asyncio.sleep(0.1)
        messages = []
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/board?after=0") as ws:
            end = time.monotonic() + 20
            while time.monotonic() < end:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
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
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert b"Liaison demo on" in out
