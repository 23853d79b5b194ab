"""The unit recommendation's cost per call with 200 units on duty, against the decision
itself (classification + routing) in the same run.

    .venv/bin/python bench/recommend.py            # full run (~1 min)
    .venv/bin/python bench/recommend.py --quick    # smoke run
    .venv/bin/python bench/recommend.py --units 200 --calls 5000 --repeat 5 --seed 7

Method
------
- One process pinned to one core (`sched_setaffinity`, where the OS has it).
- `--units` units (default 200) around St. Petersburg (a 20 km square), each with 0-3
  capabilities of six, a position 0-30 minutes old (the staleness limit is 15: about
  half count as unknown) and a status: 70% available, the rest assigned, en route, on
  scene or waiting for backup; loads 0-6 calls today. `--calls` calls (seeded) in the
  same square, 90% with coordinates, each asking 0-2 capabilities.
- Timed, best of `--repeat`, per call:
  - `decide`: `routing.decide.decide_call` on the shipped policy (classification and
    routing, what every CAD event pays): the baseline;
  - `recommend`: `routing.recommend.recommend` over the whole roster (what the service
    runs after reading the roster);
  - `read + recommend` (SQLite, a file database): what `GET /v1/calls/{id}/recommendation`
    costs past the HTTP layer: the roster with derived statuses and latest positions
    (service/units/queries.py), the units' loads, then the recommendation.
- A table is printed, then one JSON line. The exit status is 0 (no targets enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from routing.decide import decide_call  # noqa: E402
from routing.models import Availability  # noqa: E402
from routing.recommend import UnitCandidate, recommend  # noqa: E402
from rules.call import CallFacts  # noqa: E402
from rules.evaluate import compile_policy  # noqa: E402
from rules.load import default_policy_text, parse_policy  # noqa: E402

CAPS = ["clinician", "peer", "emt", "youth_trained", "wheelchair_lift", "spanish"]
BUSY = ["assigned", "en_route", "on_scene", "backup_requested"]
CODES = ["MNTL", "VAG", "WELF", "SUIC", "DIST", "TRESP", "ALARM", "PARKING"]
LAT, LON = 27.70, -82.75  # the square's south-west corner
SIDE_DEG = 0.18  # about 20 km
NOW = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)


def roster(n: int, rng: random.Random) -> list[UnitCandidate]:
    return [UnitCandidate(
        id=f"U{i:03d}", capabilities=frozenset(rng.sample(CAPS, rng.randint(0, 3))),
        status="available" if rng.random() < 0.7 else rng.choice(BUSY),
        lat=LAT + rng.random() * SIDE_DEG, lon=LON + rng.random() * SIDE_DEG,
        position_at=NOW - timedelta(minutes=rng.uniform(0, 30)), load=rng.randint(0, 6))
        for i in range(n)]


def calls(n: int, rng: random.Random) -> list[tuple[CallFacts, list[str]]]:
    out = []
    for _ in range(n):
        located = rng.random() < 0.9
        facts = CallFacts(
            nature_code=rng.choice(CODES), nature_text="subject in distress",
            priority=rng.randint(1, 4), district=rng.choice(["D1", "D2", "D3", "D4"]),
            occurred_at=NOW - timedelta(minutes=rng.randint(0, 60 * 24 * 7)),
            lat=LAT + rng.random() * SIDE_DEG if located else None,
            lon=LON + rng.random() * SIDE_DEG if located else None)
        out.append((facts, rng.sample(CAPS, rng.randint(0, 2))))
    return out


def best_per_call(fn: Callable[[], Any], n: int, repeat: int) -> float:
    """Best-of-`repeat` microseconds per call of `fn` (which runs all `n` calls)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


async def _db_per_call(units: Sequence[UnitCandidate], mix: list[tuple[CallFacts, list[str]]],
                       repeat: int) -> float:
    """Microseconds per call of reading the roster from SQLite and recommending."""
    from sqlalchemy import insert

    from service.lifecycle.assignment import RecommendSettings, candidates, loads_today
    from service.store.db import create_engine, migrate
    from service.store.tables import UNIT, UNIT_POSITION
    from service.units.queries import read_units

    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite+aiosqlite:///{folder}/bench.db")
        try:
            await migrate(engine)
            async with engine.begin() as conn:
                await conn.execute(insert(UNIT), [
                    {"id": u.id, "program_id": "call", "call_sign": u.id, "members": "[]",
                     "capabilities": json.dumps(sorted(u.capabilities)), "on_duty": True,
                     "duty_since": NOW, "retired": False, "updated_at": NOW} for u in units])
                await conn.execute(insert(UNIT_POSITION), [
                    {"unit_id": u.id, "lat": u.lat, "lon": u.lon, "accuracy_m": 10.0,
                     "at": u.position_at, "source": "avl", "received_at": NOW}
                    for u in units])
            settings = RecommendSettings()
            best = float("inf")
            sample = mix[: max(1, min(len(mix), 200))]
            for _ in range(repeat):
                t0 = time.perf_counter()
                for facts, needs in sample:
                    async with engine.connect() as conn:
                        found = await read_units(conn, program="call")
                        loads = await loads_today(conn, [u.id for u in found], NOW)
                    recommend(facts, needs, candidates(found, loads),
                              speed_kmh=settings.speed_kmh, now=NOW,
                              stale_after=settings.stale_after)
                best = min(best, time.perf_counter() - t0)
            return best / len(sample) * 1e6
        finally:
            await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--calls", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-db", action="store_true", help="skip the SQLite read")
    ap.add_argument("--quick", action="store_true", help="1,000 calls, 2 runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.calls, args.repeat = 1_000, 2
    core = None
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
    rng = random.Random(args.seed)
    units = roster(args.units, rng)
    mix = calls(args.calls, rng)
    policy = compile_policy(parse_policy(yaml.safe_load(default_policy_text())))
    availability = Availability(units_total=args.units, units_busy=0)
    n = len(mix)

    def decide_all() -> None:
        for facts, _ in mix:
            decide_call(facts, policy, availability)

    def recommend_all() -> None:
        for facts, needs in mix:
            recommend(facts, needs, units, now=NOW)

    decide_us = best_per_call(decide_all, n, args.repeat)
    recommend_us = best_per_call(recommend_all, n, args.repeat)
    picked = [recommend(f, needs, units, now=NOW) for f, needs in mix]
    by_distance = sum(r.basis == "distance" for r in picked)
    none = sum(r.unit_id is None for r in picked)
    db_us = None if args.no_db else asyncio.run(_db_per_call(units, mix, args.repeat))
    print(f"Python {platform.python_version()} on {platform.machine()}, pinned to core "
          f"{core}; {args.units} units on duty, {n} calls, best of {args.repeat}")
    print(f"{'step':<36} {'us/call':>10} {'vs decide':>10}")
    print(f"{'decide (classify + route), baseline':<36} {decide_us:>10.1f} {1:>9.2f}x")
    print(f"{'recommend (pure, whole roster)':<36} {recommend_us:>10.1f} "
          f"{recommend_us / decide_us:>9.2f}x")
    if db_us is not None:
        print(f"{'read roster (SQLite) + recommend':<36} {db_us:>10.1f} "
              f"{db_us / decide_us:>9.2f}x")
    print(f"{'':<36} {by_distance} by distance, {n - by_distance - none} by load, "
          f"{none} with no unit able and available")
    print(json.dumps({"bench": "recommend", "units": args.units, "calls": n,
                      "repeat": args.repeat, "seed": args.seed, "core": core,
                      "python": platform.python_version(),
                      "decide_us_per_call": round(decide_us, 2),
                      "recommend_us_per_call": round(recommend_us, 2),
                      "recommend_vs_decide": round(recommend_us / decide_us, 2),
                      "db_read_recommend_us_per_call": None if db_us is None
                      else round(db_us, 1),
                      "by_distance": by_distance, "none_available": none}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
