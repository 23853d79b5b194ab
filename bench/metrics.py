"""Program figures benchmark: a year of a large city's calls (one million by default), then
the time `GET /v1/metrics` takes to compute a monthly range, on SQLite and PostgreSQL.

    .venv/bin/python bench/metrics.py                       # 1,000,000 calls, both backends
    .venv/bin/python bench/metrics.py --calls 100000 --backends sqlite

Method: a fresh database per backend (a temporary SQLite file, or --keep's; on PostgreSQL a database
created from LIAISON_BENCH_POSTGRES_URL, else LIAISON_TEST_POSTGRES_URL, else the admin
URL in .pg-test-url, dropped afterwards), migrated to head (with 0006's indexes). The
calls are generated in Python with a fixed seed and loaded through the raw driver:
sqlite3 `executemany` in one transaction, asyncpg `COPY`; then ANALYZE. Timed: the
figures for one month in the middle of the year (service.figures.metrics.compute plus JSON
serialisation, i.e. the work of GET /v1/metrics without HTTP), all districts and one
district, as the median of --repeat runs after one warm-up; and, as the baseline from the
same run, `SELECT count(*)` of the month's live calls. The figures and the ratio are
printed, and a final JSON line.

The mix (roughly a large US city; DOMAIN.md): most calls are police matters (60% match no
rule, 25% a police rule, 3% a safety exclusion); 12% are eligible for the team, of which
about 70% are served; 2% test and training calls; 8 districts; a pool of 300,000 people
(70% of team calls identified, 20% youth); 400 referring officers in 40 units; 2% of calls
overridden by one of 60 dispatchers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from service.figures.metrics import Scope, compute  # noqa: E402
from service.store.db import create_engine, migrate  # noqa: E402
from service.store.tables import CALL  # noqa: E402

ZONE = ZoneInfo("America/New_York")
YEAR_START = datetime(2025, 12, 1, tzinfo=ZONE)
YEAR_END = datetime(2026, 12, 1, tzinfo=ZONE)
MONTH = (datetime(2026, 6, 1, tzinfo=ZONE), datetime(2026, 7, 1, tzinfo=ZONE))

COLUMNS = (
    "id", "source", "incident_id", "channel", "nature_code", "nature_text", "narrative",
    "priority", "address", "district", "flags", "opened_at", "last_event_at", "closed_at",
    "team_status", "disposition", "destination", "mode", "category", "eligible",
    "not_served_reason", "holds_unit", "policy_version", "decision", "updated_at", "purpose",
    "person_key", "age_group", "referred_by", "referred_unit", "follow_up_of", "received_at",
    "first_decided_at", "initial_destination", "en_route_at", "on_scene_at",
    "backup_requested_at", "cleared_at", "safety_incident", "overridden_by",
    "override_reason", "overridden_at", "checkins_missed",
)
TEAM_CATEGORIES = ("mental_health", "substance_use", "homelessness", "disorderly_juvenile",
                   "neighbor_dispute", "welfare", "truancy")
POLICE_CATEGORIES = ("crime", "traffic", "alarm", "domestic")
CHANNELS = (("911", 70), ("non_emergency", 20), ("officer_referral", 3), ("crisis_line", 3),
            ("follow_up", 2), ("officer_on_scene", 2))
DISPOSITIONS = ("resolved_on_scene", "referred_to_services", "transported",
                "refused_services", "gone_on_arrival", "settled_by_phone")
REASONS = ("Caller reports a weapon", "Officer already on scene", "Known violent history",
           "Team asked for it", "Wrong address in CAD")


def _decision(basis: str) -> str:
    # A decision document of realistic size (~900 bytes), as the call row keeps it.
    factors = ["Rule 'mental-health' matched (nature_code 'MNTL' in [MNTL, SUIC]): "
               "category mental_health.", "Eligible for the CALL team.",
               "Within team hours (Tue 14:02 local); 4 of 4 units free.",
               "Program phase 2: team-led response with an officer in the vicinity."]
    return json.dumps({"destination": "call_team", "mode": "call_with_police_standby",
                       "basis": basis, "factors": factors, "explanation": " ".join(factors),
                       "program": {"phase": 2, "timezone": "America/New_York",
                                   "hours": "08:00-24:00 mon,tue,wed,thu,fri,sat,sun",
                                   "units_total": 4, "units_busy": 0}},
                      separators=(",", ":"))


DECISIONS = {b: _decision(b) for b in ("rule", "no_rule", "exclusion")}
NARRATIVE = "Caller says her brother is talking about hurting himself, no weapons. " * 2


def generate(n: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    rnd = random.Random(seed)
    span = (YEAR_END - YEAR_START).total_seconds()
    start = YEAR_START.astimezone(UTC)
    channels = [c for c, w in CHANNELS for _ in range(w)]
    # More calls by day than by night: a simple diurnal weighting by local hour.
    hour_weights = [2, 1.5, 1.2, 1, 1, 1.2, 2, 3, 4, 4.5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 4.5, 4,
                    3.5, 3, 2.5]
    # Calls are stored as they arrive: in time order, as a real history is.
    times = sorted(
        (rnd.random() * span // 86400) * 86400 + hour * 3600 + rnd.random() * 3600
        for hour in rnd.choices(range(24), hour_weights, k=n))
    for i, offset in enumerate(times):
        opened = start + timedelta(seconds=offset)
        r = rnd.random()
        channel = rnd.choice(channels)
        basis, eligible, not_served, category = "rule", False, None, None
        if r < 0.60:
            basis, dest = "no_rule", "police"
        elif r < 0.85:
            dest, category = "police", rnd.choice(POLICE_CATEGORIES)
        elif r < 0.88:
            basis, dest, category = "exclusion", "police", rnd.choice(TEAM_CATEGORIES)
        else:
            eligible, category = True, rnd.choice(TEAM_CATEGORIES)
            s = rnd.random()
            if s < 0.70:
                dest = "joint" if rnd.random() < 0.15 else "call_team"
            else:
                dest = "police"
                not_served = "off_hours" if s < 0.85 else "units_busy" if s < 0.95 else None
        purpose = "live" if rnd.random() < 0.98 else rnd.choice(("test", "training"))
        initial = dest
        overridden_by = override_reason = overridden_at = None
        if rnd.random() < 0.02:
            overridden_by = f"disp-{rnd.randrange(60)}"
            override_reason = rnd.choice(REASONS)
            overridden_at = opened + timedelta(seconds=40)
            initial = "police" if dest != "police" else "call_team"
            if eligible and dest == "police":
                not_served = "override"
        if eligible and dest == "police" and not_served is None:
            not_served = "units_busy"
        team = dest in ("call_team", "joint")
        decided = opened + timedelta(seconds=1 + rnd.random() * 9)
        en_route = on_scene = cleared = backup = None
        disposition = team_status = None
        person_key = age_group = None
        safety = False
        if team:
            en_route = decided + timedelta(seconds=30 + rnd.random() * 570)
            on_scene = en_route + timedelta(seconds=240 + rnd.random() * 1800)
            cleared = on_scene + timedelta(seconds=600 + rnd.random() * 4800)
            backup = on_scene + timedelta(seconds=300) if rnd.random() < 0.03 else None
            disposition, team_status = rnd.choice(DISPOSITIONS), "cleared"
            safety = rnd.random() < 0.001
            if rnd.random() < 0.7:
                person_key = f"{rnd.randrange(300_000):064x}"
                age_group = "youth" if rnd.random() < 0.2 else "adult"
        referred_by = referred_unit = None
        if channel == "officer_referral":
            officer = rnd.randrange(400)
            referred_by, referred_unit = f"badge-{officer}", f"unit-{officer % 40}"
        cid = uuid.UUID(int=rnd.getrandbits(128)).hex
        yield (
            cid, "generic", f"INC-{i}", channel, "MNTL", "Mental person non-violent",
            NARRATIVE, 3, "1300 1st Ave N", f"D{rnd.randrange(8) + 1}", "[]", opened, opened,
            cleared or decided, team_status, disposition, dest,
            "police_only" if dest == "police" else "call_with_police_standby", category,
            eligible, not_served, False, "st-petersburg-call@1", DECISIONS[basis], decided,
            purpose, person_key, age_group, referred_by, referred_unit,
            None, decided, decided, initial, en_route, on_scene, backup, cleared, safety,
            overridden_by, override_reason, overridden_at, 0,
        )


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's format
    return v


def load_sqlite(path: Path, n: int) -> float:
    t0 = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    sql = f"INSERT INTO call ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    batch: list[tuple[Any, ...]] = []
    with conn:
        for row in generate(n):
            batch.append(tuple(_sqlite_value(v) for v in row))
            if len(batch) == 50_000:
                conn.executemany(sql, batch)
                batch.clear()
        if batch:
            conn.executemany(sql, batch)
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - t0


async def load_postgres(url: str, n: int) -> float:
    import asyncpg

    t0 = time.perf_counter()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        rows = generate(n)
        while True:
            chunk = [r for _, r in zip(range(100_000), rows, strict=False)]
            if not chunk:
                break
            await conn.copy_records_to_table("call", records=chunk, columns=list(COLUMNS))
        await conn.execute("ANALYZE call")
    finally:
        await conn.close()
    return time.perf_counter() - t0


async def timed(fn: Any, repeat: int) -> float:
    await fn()  # warm-up: caches, statement preparation
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def measure(url: str, repeat: int) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        start, end = MONTH
        month = Scope(start, end, zone=ZONE)
        one_district = Scope(start, end, district="D3", zone=ZONE)

        async def baseline() -> None:
            async with engine.connect() as conn:
                await conn.execute(select(func.count()).select_from(CALL).where(
                    *month.where()))

        async def figures(scope: Scope = month) -> None:
            (await compute(engine, scope)).model_dump_json()

        async def district() -> None:
            await figures(one_district)

        async with engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(CALL))).scalar()
            in_month = (await conn.execute(select(func.count()).select_from(CALL).where(
                *month.where()))).scalar()
        base = await timed(baseline, repeat)
        fig = await timed(figures, repeat)
        dist = await timed(district, repeat)
        return {"calls": total, "month_live_calls": in_month, "baseline_count_s": base,
                "metrics_month_s": fig, "metrics_month_district_s": dist,
                "ratio_to_baseline": fig / base if base else None}
    finally:
        await engine.dispose()


async def run_sqlite(n: int, repeat: int, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        path = keep or Path(tmp) / "metrics.db"
        url = f"sqlite+aiosqlite:///{path}"
        load = 0.0
        if not path.exists():
            engine = create_engine(url)
            await migrate(engine)
            await engine.dispose()
            load = await asyncio.to_thread(load_sqlite, path, n)
        engine = create_engine(url)
        await migrate(engine)  # a kept file gets indexes added since
        await engine.dispose()
        result = await measure(url, repeat)
        return {"backend": "sqlite", "load_s": load,
                "db_mb": path.stat().st_size / 1e6, **result}


def _postgres_admin() -> str | None:
    url = os.environ.get("LIAISON_BENCH_POSTGRES_URL") or os.environ.get(
        "LIAISON_TEST_POSTGRES_URL")
    if not url and (ROOT / ".pg-test-url").exists():
        url = (ROOT / ".pg-test-url").read_text().strip()
    return url or None


async def run_postgres(n: int, repeat: int) -> dict[str, Any] | None:
    import asyncpg

    admin = _postgres_admin()
    if not admin:
        print("postgres: skipped (no LIAISON_BENCH_POSTGRES_URL, LIAISON_TEST_POSTGRES_URL "
              "or .pg-test-url)", file=sys.stderr)
        return None
    dsn = admin.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"liaison_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()
        load = await load_postgres(url, n)
        return {"backend": "postgres", "load_s": load, **await measure(url, repeat)}
    finally:
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None,
                    help="SQLite: keep the loaded file here (and reuse it if it exists)")
    args = ap.parse_args()
    results = []
    for backend in args.backends.split(","):
        print(f"{backend}: loading {args.calls:,} calls ...", file=sys.stderr, flush=True)
        res = (await run_sqlite(args.calls, args.repeat, args.keep) if backend == "sqlite"
               else await run_postgres(args.calls, args.repeat))
        if res is None:
            continue
        results.append(res)
        print(f"{backend}: {res['calls']:,} calls loaded in {res['load_s']:.1f} s; month "
              f"{MONTH[0]:%Y-%m} has {res['month_live_calls']:,} live calls\n"
              f"  baseline  SELECT count(*) of the month      {res['baseline_count_s']:.3f} s\n"
              f"  metrics   GET /v1/metrics, the month          {res['metrics_month_s']:.3f} s"
              f"  ({res['ratio_to_baseline']:.1f}x the baseline)\n"
              f"  metrics   the month, one district         "
              f"{res['metrics_month_district_s']:.3f} s", flush=True)
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    asyncio.run(main())
