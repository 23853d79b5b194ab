"""Board latency across instances: a call taken by one `liaison serve` reaching a board
connected to another, on one PostgreSQL database.

    .venv/bin/python bench/board_instances.py              # 40 calls (~30 s)
    .venv/bin/python bench/board_instances.py --calls 200

Method
------
- Two `liaison serve` processes (A and B) on a fresh PostgreSQL database (the admin URL in
  LIAISON_TEST_POSTGRES_URL or .pg-test-url; without one the bench says so and stops).
- One board websocket (a call-team key) on B. Calls are posted to A one at a time, each
  after a random pause of 0-1 s so the posts fall at every phase of B's once-a-second
  safety poll (service/live/board.py).
- Latency: from A's 202 to the call's `decision` message on B's board. LISTEN/NOTIFY
  (service/writing/bus.py) must carry it, not the poll: the target is every call under 0.5 s
  (polling alone would show up to 1 s). tests/service/live/test_multiprocess.py checks that
  the notification path works; this measures how fast it is (a test must not: a loaded
  machine is slow, not wrong).
- The exit status is non-zero only on errors (a server that dies, a call that never
  reaches the board), never on a missed target. A table is printed, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import (  # noqa: E402
    Server,
    free_port,
    percentile,
    pg_execute,
    postgres_admin_url,
    start_server,
)

TARGET_MAX_S = 0.5


async def keys(database_url: str) -> tuple[str, str]:
    from service.access.auth import Role, create_key
    from service.store.db import create_engine

    engine = create_engine(database_url)
    try:
        cad, _ = await create_key(engine, "bench-cad", role=Role.cad)
        team, _ = await create_key(engine, "bench-board", role=Role.call_team)
    finally:
        await engine.dispose()
    return cad, team


def event(i: int) -> dict[str, Any]:
    return {"event_id": f"bench-{uuid.uuid4().hex}",
            "incident_id": f"BI-{i}-{uuid.uuid4().hex[:8]}", "type": "created",
            "occurred_at": "2026-03-10T14:00:00-04:00", "channel": "911",
            "nature_code": "MNTL", "nature_text": "Mental person non-violent", "flags": []}


async def measure(a: int, b: int, cad: str, team: str, calls: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    arrived: dict[str, float] = {}
    got = asyncio.Event()

    async with websockets.connect(f"ws://127.0.0.1:{b}/v1/board",
                                  additional_headers={"authorization": f"Bearer {team}"}
                                  ) as ws:
        async def read() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "decision" and msg.get("call_id"):
                    arrived.setdefault(msg["call_id"], time.monotonic())
                    got.set()

        reader = asyncio.create_task(read())
        latencies: list[float] = []
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a}", timeout=30,
                                         headers={"authorization": f"Bearer {cad}"}) as c:
                for i in range(calls):
                    await asyncio.sleep(rng.random())
                    r = await c.post("/v1/cad/events", json=event(i))
                    answered = time.monotonic()
                    r.raise_for_status()
                    call_id = r.json()["call_id"]
                    deadline = answered + 30
                    while call_id not in arrived:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"call {call_id} never reached B's board")
                        got.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(got.wait(), 1)
                    latencies.append(max(0.0, arrived[call_id] - answered))
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    return latencies


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    admin = postgres_admin_url()
    if not admin:
        raise SystemExit("no PostgreSQL: set LIAISON_TEST_POSTGRES_URL (or run `make test` "
                         "once, which writes .pg-test-url)")
    name = f"liaison_bench_bi_{uuid.uuid4().hex[:8]}"
    await pg_execute(admin, f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ports = [free_port(), free_port()]
            for label, port in zip("ab", ports, strict=True):
                servers.append(await start_server(
                    f"liaison-{label}", ["-m", "api.cli", "serve", "--port", str(port),
                                         "--database-url", url, "--log-level", "warning"],
                    port, "/v1/health", Path(tmp)))
            cad, team = await keys(url)
            latencies = await measure(ports[0], ports[1], cad, team, opts.calls, opts.seed)
    finally:
        for s in servers:
            await asyncio.to_thread(s.stop)
        await pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ordered = sorted(latencies)
    return {"calls": len(ordered), "p50_ms": 1000 * (percentile(ordered, 50) or 0),
            "p99_ms": 1000 * (percentile(ordered, 99) or 0), "max_ms": 1000 * ordered[-1],
            "target_max_ms": 1000 * TARGET_MAX_S, "met": ordered[-1] < TARGET_MAX_S}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args(argv)
    rep = asyncio.run(run(opts))
    print(f"A's 202 -> B's board, {rep['calls']} calls: p50 {rep['p50_ms']:.1f} ms, "
          f"p99 {rep['p99_ms']:.1f} ms, max {rep['max_ms']:.1f} ms "
          f"(target: all under {rep['target_max_ms']:.0f} ms: "
          f"{'met' if rep['met'] else 'NOT met'})")
    print(json.dumps(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
