"""Server memory with many board clients: the resident size of one `liaison serve` with
--clients board websockets connected, each receiving every message.

    .venv/bin/python bench/board_memory.py                 # 1,000 clients, 300 events
    .venv/bin/python bench/board_memory.py --clients 200 --events 100
    .venv/bin/python bench/board_memory.py --history 1000000   # a year of stored calls

Method
------
- One `liaison serve` on a fresh SQLite database, the rate limit off, as in
  bench/ingest.py. Empty by default (what the board clients cost); with --history N, first
  seeded with N stored calls over a year, --open of them open in the last 12 hours
  (bench/history.py's seeding: calls made by a real server, copied in bulk), so the
  server starts on a year's database and its boards open on its live calls.
- VmRSS of the server (/proc/<pid>/status) idle after start-up; then with --clients board
  clients connected (bench/ingest.py's boards process: the `websockets` library,
  permessage-deflate offered and declined, a call-team key); then after --events POSTs over
  32 keep-alive connections, once every client has every decision. VmHWM is the peak.
- Target (issue 18): under 500 MiB resident with 1,000 board clients (and 1,000,000
  stored calls). Printed, never
  judged by the exit status: that is non-zero only on errors (a server that dies, failed
  POSTs, decisions that never reach a client). A table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import (  # noqa: E402
    Boards,
    closed_loop,
    event_body,
    free_port,
    make_keys,
    new_loop,
    start_server,
)

TARGET_MIB = 500.0


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB (Linux)."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


async def measure(opts: argparse.Namespace) -> dict[str, Any]:
    errors: list[str] = []
    report: dict[str, Any] = {"bench": "liaison-board-memory", "clients": opts.clients,
                              "events": opts.events, "target_mib": TARGET_MIB,
                              "errors": errors}
    boards = Boards()
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'memory.db'}"
        if opts.history:
            report["seeded"] = await seed(url, Path(tmp), opts)
        port = free_port()
        server = await start_server("liaison-memory", [
            "-m", "api.cli", "serve", "--port", str(port), "--database-url", url,
            "--log-level", "warning"], port, "/v1/health", Path(tmp))
        pid = server.proc.pid
        try:
            team_key = await make_keys(url)
            await asyncio.sleep(1.0)
            report["idle"] = memory_mib(pid)
            # As the board page opens (web/static/common.js): the live calls first.
            joined = await boards.call(
                "connect", f"ws://127.0.0.1:{port}/v1/board?after=0&scope=live&snapshot=true",
                opts.clients, True, team_key, wait_s=600)
            errors += joined["errors"]
            report["connected"] = joined["connected"]
            if joined["connected"] < opts.clients:
                errors.append(f"only {joined['connected']}/{opts.clients} clients connected")
            await asyncio.sleep(1.0)
            report["connected_mem"] = memory_mib(pid)
            load = await closed_loop(port, [event_body("m", i) for i in range(opts.events)],
                                     32)
            errors += load.errors
            if len(load.ok) < opts.events:
                errors.append(f"{opts.events - len(load.ok)} of {opts.events} POSTs failed")
            # With history every client first takes the live calls' replay (about 1,100
            # messages, 1.7 MB each, all parsed in the one boards process): more time.
            within = 600.0 if opts.history else 60.0
            got = await boards.call("collect", load.call_ids, within, False,
                                    wait_s=within + 60)
            errors += got["errors"]
            if got["delivered"] < got["expected"]:
                errors.append(f"{got['expected'] - got['delivered']} of {got['expected']} "
                              "decision deliveries never reached a client")
            report["resyncs"] = got["resyncs"]
            report["after_events"] = memory_mib(pid)
            if not server.alive:
                errors.append("the server died")
            await boards.call("disconnect", wait_s=60)
        finally:
            await boards.close()
            await asyncio.to_thread(server.stop)
    return report


async def seed(url: str, tmp: Path, opts: argparse.Namespace) -> dict[str, Any]:
    """The database at `url`, migrated and seeded as bench/history.py seeds its year."""
    from bench.history import History, collect_templates, make_database, seed_sqlite

    started = time.monotonic()
    templates = await collect_templates(200, tmp)
    history = History(templates, opts.history, opts.open, datetime.now(UTC))
    made = await make_database("sqlite", "memory", tmp, None)
    assert made == url, (made, url)
    n = await asyncio.to_thread(seed_sqlite, tmp / "memory.db", history, None)
    return {"calls": n, "open": history.open,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="board clients (1000)")
    parser.add_argument("--events", type=int, default=300, help="POSTs once connected (300)")
    parser.add_argument("--history", type=int, default=0,
                        help="stored calls seeded first (0: an empty database)")
    parser.add_argument("--open", type=int, default=1000, help="of them open (1,000)")
    opts = parser.parse_args(argv)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=new_loop) as runner:
        try:
            report = runner.run(measure(opts))
        except (OSError, RuntimeError, TimeoutError) as exc:
            report = {"errors": [f"{type(exc).__name__}: {exc}"]}
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    if "after_events" in report:
        idle, conn, after = report["idle"], report["connected_mem"], report["after_events"]
        per_client = (after["VmRSS"] - idle["VmRSS"]) * 1024 / max(1, opts.clients)
        report["per_client_kib"] = round(per_client, 1)
        report["target_met"] = after["VmHWM"] < TARGET_MIB
        stored = (f"{opts.history:,} stored calls ({report['seeded']['open']:,} open), "
                  f"seeded in {report['seeded']['seconds']} s" if opts.history
                  else "empty SQLite database")
        print(f"\nServer memory, {opts.clients} board clients, {stored}, "
              f"{report['elapsed_s']} s")
        print(f"  idle after start-up        RSS {idle['VmRSS']:7.1f} MiB")
        print(f"  {report['connected']:>5} clients connected    RSS {conn['VmRSS']:7.1f} MiB")
        print(f"  after {opts.events} events          RSS {after['VmRSS']:7.1f} MiB   "
              f"peak (VmHWM) {after['VmHWM']:.1f} MiB   "
              f"({per_client:.0f} KiB per client over idle; resyncs {report['resyncs']})")
        print(f"  target: peak < {TARGET_MIB:g} MiB: "
              + ("MET" if report["target_met"] else "MISSED"))
    for err in report["errors"]:
        print(f"  ERROR: {err}")
    print(json.dumps(report, separators=(",", ":")))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
