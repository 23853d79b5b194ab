"""Ingest throughput with 20 agencies and their policies loaded vs one agency (issue 17),
on SQLite and PostgreSQL, in the same run. Target: within 10%.

    .venv/bin/python bench/agencies.py                  # both backends, 2 rounds each
    .venv/bin/python bench/agencies.py --backends sqlite --requests 1000 --rounds 1

Method
------
The machinery of bench/ingest.py (read its docstring): a real `liaison serve` subprocess
on a fresh database per run, its minimal keep-alive HTTP client, a closed loop of
--requests POSTs over --concurrency connections after a warm-up. Before the server
starts, the database is migrated and set up:

- one agency: `default` alone (districts D1-D4, the shipped policy); every event names
  a district of it;
- 20 agencies: `default` and 19 more, each with its own districts (two each) and its own
  published policy (the shipped one with its id, districts and time zone changed:
  service/cli/demo_region.agency_policy; zones alternate between four US zones); the
  events are spread round-robin over the 20 agencies' districts, so every event's call
  is claimed by district and decided by that agency's policy.

Each event opens a new call (its own event and incident id). Runs alternate (one, twenty,
one, twenty...) for --rounds rounds so that a machine's drift touches both alike; the
report gives each run and the median per configuration, and the ratio twenty/one
(target >= 0.90), and the server's CPU seconds per event (from /proc) with their ratio
one/twenty: on a shared machine the other load moves events/s twofold between runs, but
not what an event costs the server. The exit status is non-zero only on errors (a server
that does not start, failed POSTs), never on a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest  # noqa: E402 - after the path set-up above

TARGET = 0.90
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
DEFAULT_DISTRICTS = ("D1", "D2", "D3", "D4")


def event_body(tag: str, i: int, district: str, nature: str = "MNTL") -> bytes:
    body = json.loads(ingest.event_body(tag, i))
    body["location"]["district"] = district
    body["nature_code"] = nature
    return json.dumps(body, separators=(",", ":")).encode()


async def set_up(database_url: str, agencies: int) -> list[str]:
    """Migrate and make the region; the districts the events go to (one per agency for
    twenty, the default's for one)."""
    from routing.jurisdiction import AgencyRecord
    from rules.load import default_policy_text
    from service.cli.demo_region import agency_policy
    from service.policy.region import add_agency, list_agencies, update_agency
    from service.store.db import create_engine, migrate

    engine = create_engine(database_url)
    try:
        await migrate(engine)
        (default,) = await list_agencies(engine)
        # A fresh database's default agency takes its zone from its first policy, which
        # the server stores at start: New York, the shipped policy's.
        await update_agency(engine, default.model_copy(update={
            "districts": list(DEFAULT_DISTRICTS)}))
        text = default_policy_text()
        districts = ["D2"]
        for n in range(1, agencies):
            record = AgencyRecord(id=f"agency-{n:02d}", name=f"Agency {n}",
                                  timezone=ZONES[n % len(ZONES)],
                                  districts=[f"A{n:02d}-1", f"A{n:02d}-2"])
            await add_agency(engine, record,
                             agency_policy(text, record, f"agency-{n:02d}-policy"))
            districts.append(record.districts[n % 2])
        return districts
    finally:
        await engine.dispose()


async def one_run(backend: str, agencies: int, opts: argparse.Namespace,
                  log_dir: Path) -> dict[str, Any]:
    name = f"liaison_bench_ag_{uuid.uuid4().hex[:8]}"
    async with ingest.scratch_database(backend, name, log_dir) as database_url:
        return await _one_run(backend, agencies, opts, log_dir, database_url)


async def _one_run(backend: str, agencies: int, opts: argparse.Namespace, log_dir: Path,
                   database_url: str) -> dict[str, Any]:
    server = None
    try:
        districts = await set_up(database_url, agencies)
        port = ingest.free_port()
        server = await ingest.start_server(
            f"liaison-{backend}-{agencies}", ["-m", "api.cli", "serve", "--port", str(port),
                                              "--database-url", database_url,
                                              "--log-level", "warning"],
            port, "/v1/health", log_dir)
        await ingest.make_keys(database_url)
        tag = f"{backend[:2]}{agencies}{uuid.uuid4().hex[:4]}"
        warm = [event_body(f"w{tag}", i, districts[i % len(districts)], opts.nature)
                for i in range(opts.warmup)]
        await ingest.closed_loop(port, warm, opts.concurrency)
        bodies = [event_body(f"t{tag}", i, districts[i % len(districts)], opts.nature)
                  for i in range(opts.requests)]
        cpu_before = ingest.process_cpu(server.proc.pid)
        result = await ingest.closed_loop(port, bodies, opts.concurrency)
        cpu_after = ingest.process_cpu(server.proc.pid)
        failed = len(result.samples) - len(result.ok)
        errors = list(result.errors) + ([f"{failed} POSTs failed"] if failed else [])
        if not server.alive:
            errors.append("the server died")
        # The server's CPU per event: steadier than events/s on a shared machine, where
        # the other load moves the wall clock but not the work an event costs.
        cpu_ms = (None if cpu_before is None or cpu_after is None
                  else round((cpu_after - cpu_before) * 1000 / opts.requests, 3))
        return {"backend": backend, "agencies": agencies, "events_per_s": round(result.rate, 1),
                "server_cpu_ms_per_event": cpu_ms, "errors": errors}
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    backends = list(opts.backends)
    if "postgresql" in backends and ingest.postgres_admin_url() is None:
        print("PostgreSQL skipped: no LIAISON_TEST_POSTGRES_URL or .pg-test-url",
              file=sys.stderr)
        backends.remove("postgresql")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="liaison-bench-agencies-") as tmp:
        for backend in backends:
            for r in range(opts.rounds):
                for agencies in (1, opts.agencies):
                    got = await one_run(backend, agencies, opts, Path(tmp))
                    print(f"  {backend:<10} round {r + 1}  {agencies:>2} agencies  "
                          f"{got['events_per_s']:>7.1f} events/s  "
                          f"{got['server_cpu_ms_per_event']} server CPU ms/event"
                          + (f"  ERRORS: {got['errors'][:2]}" if got["errors"] else ""),
                          file=sys.stderr, flush=True)
                    runs.append(got)
    summary = {}
    for backend in backends:
        med = {n: statistics.median(x["events_per_s"] for x in runs
                                    if x["backend"] == backend and x["agencies"] == n)
               for n in (1, opts.agencies)}
        ratio = med[opts.agencies] / med[1] if med[1] else None
        cpu = {n: [x["server_cpu_ms_per_event"] for x in runs if x["backend"] == backend
                   and x["agencies"] == n and x["server_cpu_ms_per_event"]]
               for n in (1, opts.agencies)}
        cpu_med = {n: statistics.median(v) if v else None for n, v in cpu.items()}
        one_cpu, many_cpu = cpu_med[1], cpu_med[opts.agencies]
        # As a throughput ratio: a server bound by its CPU does 1/cost events a second.
        cpu_ratio = round(one_cpu / many_cpu, 3) if one_cpu and many_cpu else None
        summary[backend] = {"one": med[1], "many": med[opts.agencies],
                            "ratio": None if ratio is None else round(ratio, 3),
                            "met": None if ratio is None else ratio >= TARGET,
                            "server_cpu_ms_per_event": {"one": one_cpu, "many": many_cpu},
                            "cpu_ratio": cpu_ratio}
    return {"runs": runs, "summary": summary, "agencies": opts.agencies,
            "requests": opts.requests, "concurrency": opts.concurrency,
            "rounds": opts.rounds, "target_ratio": TARGET}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                   choices=["sqlite", "postgresql"])
    p.add_argument("--agencies", type=int, default=20)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--nature", default="MNTL",
                   help="every event's nature code (default MNTL, a team call; ALRBA, a "
                        "burglar alarm, goes to police in every agency: no team capacity "
                        "in play)")
    opts = p.parse_args(argv)
    loop = ingest.new_loop()
    try:
        report = loop.run_until_complete(run(opts))
    finally:
        loop.close()
    print(f"Ingest with {opts.agencies} agencies vs 1 ({opts.requests} events, "
          f"{opts.concurrency} connections, median of {opts.rounds} run(s) each):")
    for backend, s in report["summary"].items():
        verdict = "met" if s["met"] else "MISSED"
        print(f"  {backend:<10} 1 agency {s['one']:>7.1f} ev/s   {opts.agencies} agencies "
              f"{s['many']:>7.1f} ev/s   ratio {s['ratio']:.2f} (target >= {TARGET:.2f}: "
              f"{verdict})")
        c = s["server_cpu_ms_per_event"]
        if s["cpu_ratio"] is not None:
            print(f"  {'':<10} server CPU per event {c['one']:.3f} ms vs {c['many']:.3f} ms: "
                  f"as throughput, ratio {s['cpu_ratio']:.2f}")
    print(json.dumps(report))
    return 1 if any(r["errors"] for r in report["runs"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
