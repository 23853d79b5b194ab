"""Flat with history (issue 18): Liaison on a database holding a year of calls against one
holding only the live day, in the same run, on SQLite and on PostgreSQL.

    .venv/bin/python bench/history.py                     # 1,000,000 stored calls, both
    .venv/bin/python bench/history.py --quick             # 50,000 calls, small loads
    .venv/bin/python bench/history.py --backends sqlite --calls 200000
    .venv/bin/python bench/history.py --whatif            # + the live what-if over the year
    .venv/bin/python bench/history.py --whatif-only       # the what-if alone, on the calls' rows

Method
------
Templates: a real `liaison serve` on a scratch SQLite file takes --templates calls made by
the demo feed's generator (service/cli/simulator.py: its mix of nature codes, channels,
districts; a person id on 40% of them), each closed by a `closed` event; its rows (call,
cad_event, decision, board_message) are read back as the ingest stored them.

Seeding (bulk, no API): --calls calls over the year before now, in opened_at order, each a
copy of a template with its own id, incident, event ids and times (closed 20 to 120 minutes
after opening; ids and incident replaced inside the stored JSON bodies too), a person key
from a pool of calls/3 people and an address from a pool of calls/5 addresses (both
skewed, so some people and places have hundreds of calls: repeat contact; the address the
ingest bench posts to is the most frequent one), and per call its cad_event rows (created,
closed), its decision row and its board messages (decision, call_closed) as the ingest
writes them. The last --open calls (opened in the last 12 hours) stay open (no closed
event; `holds_unit` false, so the units stay free as on an empty database). SQLite: one
transaction of executemany through the sqlite3 module; PostgreSQL: COPY
(asyncpg copy_records_to_table), then VACUUM (ANALYZE) and a CHECKPOINT (what autovacuum and
the checkpointer would have done by now on a live database).

Two databases per backend, each migrated by Liaison first:
- `live day`: only the seeded calls opened in the last 24 hours (the open ones and those a
  board opening replays: changed in the last LIAISON_BOARD_REPLAY_HOURS, 12): what a board
  shows is the same on both;
- `history`: all --calls of them.
On each, in this order:
1. opening a board: `/v1/board?after=0&scope=live&snapshot=true` with a team key, time
   from the connect to the `snapshot` message (which follows the whole replay), --opens
   times on a freshly started server (median, max; messages replayed);
2. repeat contact: `service.calls.history.latest` (what an ingest batch reads for a
   `created` event's person and address keys) for --lookups keys drawn as calls draw them,
   in-process on the bench's own engine (p50/p99); and `GET /v1/calls/{id}` (which reads
   the call's history) of the open calls, through the server (p50/p99);
3. ingest: bench/ingest.py's `bench_liaison` on the same database: a closed-loop
   throughput run with no board client, then one with --clients board clients and the
   open-loop latency run (POST-to-board p99), exactly as bench/ingest.py measures them.
Ratios: history / live day for each figure (times: >1 is slower; events/s: <1 is slower).
Target: each within 10%. With --whatif, on the history database of the first backend:
the live what-if (POST /v1/policies/what-if, the shipped policy against the published,
days=365) over every stored call, polled for progress; its seconds (target 60 s), the
server's peak RSS, its job process's and that process's child's (the baseline's), and
the two together with shared pages counted once (PSS; sampled each second).
With --whatif-only, on each backend: a database of the seeded calls' rows alone (the
`call` table is all the what-if reads; a year of the demo feed's calls with their events
and board messages is about 75 GB on SQLite), then the live what-if over them.

The exit status is non-zero only on errors (a server that fails, failed requests, lost
board messages), never on a missed target. A table is printed, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest as ing  # noqa: E402

ROOT = ing.ROOT
TARGET = 0.10  # each figure within 10% of the live-day database
WHATIF_TARGET_S = 60.0
LIVE_DAY = timedelta(hours=24)
# The address bench/ingest.py's events carry: the busiest of the seeded ones.
BENCH_ADDRESS = "1300 1st Ave N"
STREETS = ("1st Ave N", "Central Ave", "4th St S", "MLK St N", "22nd St S", "9th Ave N",
           "34th St N", "Beach Dr NE", "18th Ave S", "Gandy Blvd")


def progress(text: str) -> None:
    ing.progress(text)


# --------------------------------------------------------------------------- templates


@dataclass
class Template:
    call: dict[str, Any]
    events: list[dict[str, Any]]  # created, closed
    decisions: list[dict[str, Any]]
    board: list[dict[str, Any]]  # in seq order


async def collect_templates(n: int, log_dir: Path) -> list[Template]:
    """n calls through a real server on a scratch database, closed, read back."""
    from sqlalchemy import select

    from service.cli.simulator import Simulator
    from service.store.db import create_engine
    from service.store.tables import BOARD, CAD_EVENT, CALL, DECISION

    url = f"sqlite+aiosqlite:///{log_dir / 'templates.db'}"
    port = ing.free_port()
    server = await ing.start_server(
        "templates", ["-m", "api.cli", "serve", "--port", str(port), "--database-url", url,
                      "--log-level", "warning"], port, "/v1/health", log_dir)
    try:
        await ing.make_keys(url)
        sim = Simulator(f"http://127.0.0.1:{port}", seed=18)
        rng = random.Random(18)
        bodies = []
        now = datetime.now(UTC) - timedelta(hours=2)
        for i in range(n):
            call = sim.make_call(now + timedelta(seconds=i))
            if rng.random() < 0.4:
                call["person"] = {"id": f"P{i}", "name": "Pat Doe", "age": 34}
            bodies.append(call)
        closes = [{"event_id": f"{c['event_id']}-x", "incident_id": c["incident_id"],
                   "type": "closed",
                   "occurred_at": (now + timedelta(seconds=i, minutes=40)).isoformat()}
                  for i, c in enumerate(bodies)]
        for batch in (bodies, closes):
            res = await ing.closed_loop(port, [json.dumps(b).encode() for b in batch], 4)
            if len(res.ok) != len(batch):
                raise RuntimeError(f"templates: {res.errors[:3]}")
    finally:
        await asyncio.to_thread(server.stop)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            calls = [dict(r) for r in (await conn.execute(select(CALL))).mappings()]

            async def rows(table: Any, order: Any) -> dict[str, list[dict[str, Any]]]:
                out: dict[str, list[dict[str, Any]]] = {}
                for r in (await conn.execute(select(table).order_by(order))).mappings():
                    out.setdefault(r["call_id"], []).append(dict(r))
                return out

            events = await rows(CAD_EVENT, CAD_EVENT.c.id)
            decisions = await rows(DECISION, DECISION.c.id)
            board = await rows(BOARD, BOARD.c.seq)
    finally:
        await engine.dispose()
    return [Template(c, events[c["id"]], decisions.get(c["id"], []), board[c["id"]])
            for c in calls]


# --------------------------------------------------------------------------- seeding


@dataclass
class Seeded:
    calls: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    decisions: list[tuple[Any, ...]]
    board: list[tuple[Any, ...]]


class History:
    """The seeded calls, made in opened_at order in chunks (deterministic for a seed)."""

    def __init__(self, templates: list[Template], calls: int, open_calls: int,
                 now: datetime, seed: int = 18) -> None:
        from service.calls.people import address_key
        from service.store.tables import BOARD, CAD_EVENT, CALL, DECISION

        self.templates = templates
        self.total = calls
        self.open = min(open_calls, calls)
        self.now = now
        self.seed = seed
        self.cols = {"call": [c.name for c in CALL.columns],
                     "cad_event": [c.name for c in CAD_EVENT.columns if c.name != "id"],
                     "decision": [c.name for c in DECISION.columns if c.name != "id"],
                     "board_message": [c.name for c in BOARD.columns if c.name != "seq"]}
        self.people = max(1, calls // 3)
        self.places = max(1, calls // 5)
        self._address_key = address_key
        self._person: dict[int, str] = {}
        self._place: dict[int, tuple[str, str | None]] = {}

    def opened_at(self, i: int) -> datetime:
        """Closed calls spread over the year before the last 12 hours; the open ones over
        those 12 hours."""
        closed = self.total - self.open
        if i < closed:
            span = timedelta(days=365) - timedelta(hours=12)
            return self.now - timedelta(days=365) + span * (i / max(1, closed))
        return self.now - timedelta(hours=12) * (1 - (i - closed) / max(1, self.open))

    def person_key(self, u: float) -> str:
        """The person of a draw u in [0, 1): skewed, so a few people call often."""
        p = int(self.people * u ** 3)
        key = self._person.get(p)
        if key is None:
            key = self._person[p] = hashlib.sha256(f"hist-person-{p}".encode()).hexdigest()
        return key

    def place(self, u: float) -> tuple[str, str | None]:
        """The address (and its key) of a draw u in [0, 1), skewed as people are."""
        a = int(self.places * u ** 3)
        got = self._place.get(a)
        if got is None:
            address = (BENCH_ADDRESS if a == 0 else
                       f"{100 + a % 4900} {STREETS[(a // 4900) % len(STREETS)]}"
                       + (f" Unit {a // 49000}" if a >= 49000 else ""))
            got = self._place[a] = (address, self._address_key(address))
        return got

    def first_index(self, since: datetime | None) -> int:
        """The first call opened at or after `since` (None: 0)."""
        if since is None:
            return 0
        lo, hi = 0, self.total
        while lo < hi:
            mid = (lo + hi) // 2
            if self.opened_at(mid) < since:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def chunks(self, since: datetime | None, size: int) -> Iterator[Seeded]:
        start = self.first_index(since)
        rng = random.Random(self.seed)
        # The same draws for call i whatever `since` is: skip those before `start`.
        for _ in range(start):
            rng.random(), rng.random(), rng.random(), rng.random()
        for lo in range(start, self.total, size):
            out = Seeded([], [], [], [])
            for i in range(lo, min(self.total, lo + size)):
                self._one(i, rng, out)
            yield out

    def _one(self, i: int, rng: random.Random, out: Seeded) -> None:
        t = self.templates[i % len(self.templates)]
        has_person, r_person, r_close = rng.random(), rng.random(), rng.random()
        r_place = rng.random()
        src = t.call
        call_id = f"{self.seed:04x}{i:028x}"
        incident = f"HIST-{self.seed}-{i:07d}"
        opened = self.opened_at(i)
        is_open = i >= self.total - self.open
        closed = None if is_open else opened + timedelta(minutes=20 + 100 * r_close)
        person_key = None
        if src["person_key"] is not None or has_person < 0.4:
            person_key = self.person_key(r_person)
        address, akey = self.place(r_place)

        def fix(text: str | None) -> str | None:
            if text is None:
                return None
            return (text.replace(src["id"], call_id)
                    .replace(src["incident_id"], incident)
                    .replace(src["address"] or "\0", address))

        row = dict(src)
        row.update(
            id=call_id, incident_id=incident, address=address, address_key=akey,
            person_key=person_key, opened_at=opened, last_event_at=closed or opened,
            closed_at=closed, updated_at=closed or opened, received_at=opened,
            first_decided_at=opened, decision=fix(src["decision"]),
            holds_unit=False if is_open else src["holds_unit"])
        out.calls.append(tuple(row[c] for c in self.cols["call"]))
        for k, ev in enumerate(t.events):
            if ev["type"] == "closed" and closed is None:
                continue
            at = closed if ev["type"] == "closed" else opened
            e = dict(ev, event_id=f"hist-{self.seed}-{i}-{k}", call_id=call_id,
                     incident_id=incident, occurred_at=at, received_at=at,
                     body=fix(ev["body"]), response=fix(ev["response"]))
            out.events.append(tuple(e[c] for c in self.cols["cad_event"]))
        for d in t.decisions:
            d = dict(d, call_id=call_id, event_id=f"hist-{self.seed}-{i}-0",
                     decision=fix(d["decision"]), created_at=opened)
            out.decisions.append(tuple(d[c] for c in self.cols["decision"]))
        for b in t.board:
            if b["type"] == "call_closed" and closed is None:
                continue
            at = closed if b["type"] == "call_closed" else opened
            m = dict(b, call_id=call_id, created_at=at, body=fix(b["body"]),
                     restricted_body=fix(b["restricted_body"]))
            out.board.append(tuple(m[c] for c in self.cols["board_message"]))


def _sqlite_value(v: Any) -> Any:
    # As SQLAlchemy stores them on SQLite: UTC wall-clock text, booleans as 0/1.
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, bool):
        return int(v)
    return v


TABLES = ("call", "cad_event", "decision", "board_message")


def _rows(chunk: Any, tables: tuple[str, ...]) -> list[tuple[str, Any]]:
    every = {"call": chunk.calls, "cad_event": chunk.events, "decision": chunk.decisions,
             "board_message": chunk.board}
    return [(t, every[t]) for t in tables]


def seed_sqlite(path: Path, history: History, since: datetime | None,
                tables: tuple[str, ...] = TABLES) -> int:
    db = sqlite3.connect(path)
    try:
        # One transaction through a rollback journal (a WAL would hold every page of it
        # and slow down as it grows), a large page cache for the indexes; the database
        # goes back to WAL, as Liaison keeps it, afterwards.
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-500000")
        db.execute("BEGIN")
        n = 0
        for chunk in history.chunks(since, 20_000):
            for table, rows in _rows(chunk, tables):
                cols = history.cols[table]
                db.executemany(f'INSERT INTO "{table}" ({",".join(cols)}) VALUES '
                               f'({",".join("?" * len(cols))})',
                               ([_sqlite_value(v) for v in r] for r in rows))
            n += len(chunk.calls)
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")
        return n
    finally:
        db.close()


async def seed_postgres(url: str, history: History, since: datetime | None,
                        tables: tuple[str, ...] = TABLES) -> int:
    import asyncpg

    conn = await asyncpg.connect(ing.asyncpg_dsn(url), timeout=10)
    try:
        n = 0
        for chunk in history.chunks(since, 20_000):
            async with conn.transaction():
                for table, rows in _rows(chunk, tables):
                    await conn.copy_records_to_table(table, records=rows,
                                                     columns=history.cols[table])
            n += len(chunk.calls)
        # What a live database's autovacuum would have done by now (visibility map set,
        # statistics), and the bulk load's pages written out: measured right after the
        # load, the first phases would share the machine with that work.
        await conn.execute("VACUUM (ANALYZE)")
        with contextlib.suppress(asyncpg.PostgresError):  # a role that may not: skipped
            await conn.execute("CHECKPOINT")
        return n
    finally:
        await conn.close()


async def seed(backend: str, url: str, history: History, since: datetime | None,
               tables: tuple[str, ...] = TABLES) -> int:
    """Seed the database at `url` (SQLite in a thread); the calls seeded."""
    if backend == "sqlite":
        path = Path(urlsplit(url.replace("sqlite+aiosqlite:///", "file:///")).path)
        return await asyncio.to_thread(seed_sqlite, path, history, since, tables)
    return await seed_postgres(url, history, since, tables)


async def make_database(backend: str, name: str, log_dir: Path, admin: str | None
                        ) -> str:
    """A fresh, migrated database; its URL."""
    from service.store.db import create_engine, migrate

    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{log_dir / f'{name}.db'}"
    else:
        assert admin is not None
        await ing.pg_execute(admin, f'CREATE DATABASE "{name}"')
        url = f"{admin.rsplit('/', 1)[0]}/{name}"
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    return url


# --------------------------------------------------------------------------- measures


def pcts(values: list[float]) -> dict[str, float | None]:
    values = sorted(values)
    return {"p50_ms": ing.ms(ing.percentile(values, 50)),
            "p99_ms": ing.ms(ing.percentile(values, 99)),
            "max_ms": ing.ms(values[-1] if values else None)}


async def board_opens(port: int, token: str, n: int) -> dict[str, Any]:
    """Connect with after=0&scope=live&snapshot=true n times: ms to the snapshot."""
    from websockets.asyncio.client import connect

    times, replayed = [], 0
    url = f"ws://127.0.0.1:{port}/v1/board?after=0&scope=live&snapshot=true"
    for _ in range(n):
        t0 = time.perf_counter()
        count = 0
        async with connect(url, max_size=2**24, compression=None, open_timeout=60,
                           additional_headers={"authorization": f"Bearer {token}"}) as ws:
            async for message in ws:
                if '"type":"snapshot"' in (message if isinstance(message, str)
                                           else message.decode()):
                    break
                count += 1
        times.append((time.perf_counter() - t0) * 1000)
        replayed = count
    return {"median_ms": ing.ms(statistics.median(times)), "max_ms": ing.ms(max(times)),
            "replayed": replayed, "runs": n}


async def get_calls(port: int, token: str, call_ids: list[str]) -> dict[str, Any]:
    conn = await ing.HttpConnection.open(port)
    times = []
    try:
        for call_id in call_ids:
            raw = (f"GET /v1/calls/{call_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode()
            t0 = time.perf_counter()
            status, body = await conn.request(raw)
            times.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"GET /v1/calls/{call_id}: HTTP {status} {body[:200]!r}")
    finally:
        conn.close()
    return pcts(times) | {"n": len(times)}


async def lookups(url: str, history: History, n: int) -> dict[str, Any]:
    """`latest` for the person and address keys of n calls of the live day (so the same
    keys on both databases; on the history one they have a year of calls)."""
    from sqlalchemy import select

    from service.calls.history import latest, repeat_keys
    from service.store.db import create_engine
    from service.store.tables import CALL

    engine = create_engine(url)
    times, found = [], 0
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                select(CALL.c.person_key, CALL.c.address_key)
                .where(CALL.c.opened_at >= history.now - LIVE_DAY)
                .order_by(CALL.c.id))).all()
            keys = [repeat_keys(*r) for r in random.Random(7).choices(rows, k=n)]
            await latest(conn, keys[0])  # warm the statement cache
            for k in keys:
                t0 = time.perf_counter()
                got = await latest(conn, k)
                times.append((time.perf_counter() - t0) * 1000)
                found += bool(got)
    finally:
        await engine.dispose()
    return pcts(times) | {"n": n, "with_history": found}


async def service_figures(backend: str, url: str, history: History, opts: argparse.Namespace,
                          log_dir: Path, stage: str) -> dict[str, Any]:
    """Board opening and GET /v1/calls on a fresh server; lookups in-process."""
    from service.access.auth import Role, create_key
    from service.store.db import create_engine

    engine = create_engine(url)
    try:
        team, _ = await create_key(engine, "history-team", role=Role.supervisor)
    finally:
        await engine.dispose()
    port = ing.free_port()
    server = await ing.start_server(
        f"liaison-{backend}-{stage}", ["-m", "api.cli", "serve", "--port", str(port),
                                       "--database-url", url, "--log-level", "warning"],
        port, "/v1/health", log_dir)
    try:
        opens = await board_opens(port, team, opts.opens)
        open_ids = [f"{history.seed:04x}{i:028x}"
                    for i in range(history.total - history.open, history.total)]
        gets = await get_calls(port, team, random.Random(3).sample(
            open_ids, min(opts.gets, len(open_ids))))
    finally:
        await asyncio.to_thread(server.stop)
    return {"board_open": opens, "get_call": gets,
            "lookup": await lookups(url, history, opts.lookups)}


async def whatif(url: str, log_dir: Path) -> dict[str, Any]:
    """The live what-if over the year: the shipped policy against the published one."""
    import httpx

    from service.access.auth import Role, create_key
    from service.store.db import create_engine

    engine = create_engine(url)
    try:
        key, _ = await create_key(engine, "history-whatif", role=Role.supervisor)
    finally:
        await engine.dispose()
    port = ing.free_port()
    server = await ing.start_server(
        "liaison-whatif", ["-m", "api.cli", "serve", "--port", str(port), "--database-url",
                           url, "--log-level", "warning"], port, "/v1/health", log_dir)
    document = (ROOT / "rules" / "policies" / "st_petersburg_call.yaml").read_text()
    seen: list[tuple[float, int, int | None]] = []
    # Sampled each second: the job's process's peak, its child's (the baseline, forked:
    # the calls are shared with the parent, so each RSS counts them), and the two
    # together with shared pages counted once (PSS, the memory they take between them).
    job_rss: list[float] = []
    child_rss: list[float] = []
    together: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     headers={"authorization": f"Bearer {key}"}) as client:
            t0 = time.monotonic()
            started = (await client.post("/v1/policies/what-if", json={
                "document": document, "days": 365})).raise_for_status().json()
            while True:
                await asyncio.sleep(1.0)
                for pid in ing.children(server.proc.pid):
                    kids = ing.children(pid)
                    job_rss.extend(r for r in [_rss_mib(pid)] if r is not None)
                    child_rss.extend(r for k in kids if (r := _rss_mib(k)) is not None)
                    together.append(sum(ing.pss_mib(p) or 0.0 for p in [pid, *kids]))
                job = (await client.get(f"/v1/what-if/{started['job_id']}")
                       ).raise_for_status().json()
                seen.append((round(time.monotonic() - t0, 1), job["progress"]["done"],
                             job["progress"]["total"]))
                if job["status"] != "running":
                    break
            seconds = time.monotonic() - t0
    finally:
        rss = _rss_mib(server.proc.pid)
        await asyncio.to_thread(server.stop)
    out = {"seconds": round(seconds, 1), "status": job["status"], "error": job["error"],
           "calls": job["progress"]["total"], "server_peak_rss_mib": rss,
           "job_process_peak_rss_mib": max(job_rss, default=None),
           "job_child_peak_rss_mib": max(child_rss, default=None),
           "job_peak_pss_mib": round(max(together, default=0.0), 1) or None,
           "progress_updates": len({d for _, d, _ in seen}),
           "progress_sample": seen[:: max(1, len(seen) // 8)]}
    if job["status"] != "done":
        out["errors"] = [f"what-if {job['status']}: {job['error']}"]
    return out


async def whatif_reported(url: str, log_dir: Path, report: dict[str, Any]
                          ) -> dict[str, Any]:
    """`whatif`, any failure an error line of its result and of the report."""
    try:
        out = await whatif(url, log_dir)
    except Exception as exc:  # noqa: BLE001 - any failure is an error line
        out = {"errors": [f"{type(exc).__name__}: {exc}"]}
    report["errors"] += out.get("errors", [])
    return out


def _rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


# --------------------------------------------------------------------------- runs


async def one_database(backend: str, stage: str, history: History, opts: argparse.Namespace,
                       log_dir: Path, admin: str | None, boards: ing.Boards | None,
                       keep: bool = False) -> dict[str, Any]:
    name = f"liaison_hist_{ing.RUN_ID}_{stage}"
    since = None if stage == "history" else history.now - LIVE_DAY
    out: dict[str, Any] = {"errors": []}
    url = await make_database(backend, name, log_dir, admin)
    try:
        t0 = time.monotonic()
        n = await seed(backend, url, history, since)
        out["seeded"] = {"calls": n, "seconds": round(time.monotonic() - t0, 1)}
        progress(f"{backend} {stage}: seeded {n:,} calls in {out['seeded']['seconds']} s")
        out |= await service_figures(backend, url, history, opts, log_dir, stage)
        pg_local = (admin, name) if admin and backend == "postgres" else None
        # bench_liaison's events are named by RUN_ID: new ones for each run on this
        # database (the same ids again would be retries, answered without a decision).
        ing.RUN_ID = uuid.uuid4().hex[:8]
        alone = await ing.guarded(ing.bench_liaison(backend, url, opts, None, log_dir, False,
                                                    pg_local))
        out["errors"] += alone.get("errors", [])
        out["ingest_alone"] = alone.get("throughput")
        if boards is not None:
            ing.RUN_ID = uuid.uuid4().hex[:8]
            res = await ing.guarded(ing.bench_liaison(backend, url, opts, boards, log_dir,
                                                      True, pg_local))
            out["errors"] += res.get("errors", [])
            out["ingest_boards"] = res.get("throughput")
            out["latency"] = res.get("latency")
        if keep:
            out["url"] = url
    finally:
        if backend == "postgres" and not keep:
            await drop(admin, name, out)
    return out


async def drop(admin: str | None, name: str, out: dict[str, Any]) -> None:
    try:
        await ing.pg_execute(admin or "", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception as exc:  # noqa: BLE001 - report it, keep the figures
        out.setdefault("errors", []).append(f"could not drop database {name}: {exc}")


def ratios(base: dict[str, Any], hist: dict[str, Any]) -> dict[str, float | None]:
    def get(d: dict[str, Any], *path: str) -> float | None:
        for p in path:
            d = d.get(p) if isinstance(d, dict) else None  # type: ignore[assignment]
        return d if isinstance(d, (int, float)) else None

    out = {}
    for label, path in {"board_open_median": ("board_open", "median_ms"),
                        "get_call_p99": ("get_call", "p99_ms"),
                        "lookup_p50": ("lookup", "p50_ms"),
                        "lookup_p99": ("lookup", "p99_ms"),
                        "ingest_alone_events_per_s": ("ingest_alone", "events_per_s"),
                        "ingest_boards_events_per_s": ("ingest_boards", "events_per_s"),
                        "post_to_board_p99": ("latency", "board_p99_ms")}.items():
        a, b = get(base, *path), get(hist, *path)
        out[label] = round(b / a, 3) if a and b is not None else None
    return out


def met(label: str, ratio: float | None) -> bool | None:
    if ratio is None:
        return None
    return ratio >= 1 - TARGET if label.endswith("events_per_s") else ratio <= 1 + TARGET


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"bench": "liaison-history", "params": {
        k: getattr(opts, k) for k in ("calls", "open", "requests", "concurrency", "rate",
                                      "seconds", "clients", "opens", "lookups", "gets")},
        "backends": {}, "errors": []}
    with tempfile.TemporaryDirectory(prefix="liaison-history-") as tmp:
        log_dir = Path(tmp)
        progress(f"templates: {opts.templates} calls through a real server")
        templates = await collect_templates(opts.templates, log_dir)
        history = History(templates, opts.calls, opts.open, datetime.now(UTC))
        if opts.whatif_only:
            for backend in opts.backends:
                report["backends"][backend] = await whatif_alone(backend, history, log_dir,
                                                                 report)
            return report
        boards = ing.Boards() if opts.clients else None
        try:
            for backend in opts.backends:
                admin = ing.postgres_admin_url() if backend == "postgres" else None
                if backend == "postgres" and not admin:
                    report["backends"][backend] = {"skipped": "no PostgreSQL: set "
                                                   "LIAISON_TEST_POSTGRES_URL or .pg-test-url"}
                    progress("postgres: SKIPPED (no admin URL)")
                    continue
                res: dict[str, Any] = {}
                for stage in ("live_day", "history"):
                    progress(f"{backend}: {stage}")
                    keep = opts.whatif and stage == "history" and backend == opts.backends[0]
                    try:
                        res[stage] = await one_database(backend, stage, history, opts,
                                                        log_dir, admin, boards, keep)
                    except (OSError, RuntimeError, TimeoutError) as exc:
                        res[stage] = {"errors": [f"{type(exc).__name__}: {exc}"]}
                    report["errors"] += [f"{backend} {stage}: {e}"
                                         for e in res[stage].get("errors", [])]
                    # The figures as they come: a full run is long.
                    progress(f"{backend} {stage}: " + json.dumps(
                        {k: v for k, v in res[stage].items() if k != "url"}, default=str))
                if keep and "url" in res.get("history", {}):
                    url = res["history"].pop("url")
                    progress(f"{backend}: the live what-if over {opts.calls:,} stored calls")
                    res["whatif"] = await whatif_reported(url, log_dir, report)
                    if backend == "postgres":
                        await drop(admin, f"liaison_hist_{ing.RUN_ID}_history", report)
                res["ratios"] = ratios(res["live_day"], res["history"])
                report["backends"][backend] = res
        finally:
            if boards is not None:
                await boards.close()
    return report


async def whatif_alone(backend: str, history: History, log_dir: Path,
                       report: dict[str, Any]) -> dict[str, Any]:
    """--whatif-only: the stored calls' rows alone (what the what-if reads; a year with
    every call's events and board messages is tens of GB), then the live what-if."""
    admin = ing.postgres_admin_url() if backend == "postgres" else None
    if backend == "postgres" and not admin:
        return {"skipped": "no PostgreSQL: set LIAISON_TEST_POSTGRES_URL or .pg-test-url"}
    name = f"liaison_whatif_{ing.RUN_ID}"
    out: dict[str, Any] = {}
    url = await make_database(backend, name, log_dir, admin)
    try:
        t0 = time.monotonic()
        n = await seed(backend, url, history, None, ("call",))
        out["history"] = {"seeded": {"calls": n, "seconds": round(time.monotonic() - t0, 1)}}
        progress(f"{backend}: seeded {n:,} calls alone; the live what-if over them")
        out["whatif"] = await whatif_reported(url, log_dir, report)
    finally:
        if backend == "postgres":
            await drop(admin, name, report)
    return out


def print_report(rep: dict[str, Any]) -> None:
    p = rep["params"]
    print()
    print(f"Liaison with history: {p['calls']:,} stored calls ({p['open']:,} open) against "
          f"the live day alone, same run. Target: each within {TARGET:.0%}.")
    rows: list[list[str]] = []
    labels = [("board_open_median", "board open scope=live, median ms",
               ("board_open", "median_ms")),
              ("get_call_p99", "GET /v1/calls/{id} p99 ms", ("get_call", "p99_ms")),
              ("lookup_p50", "repeat-contact read p50 ms", ("lookup", "p50_ms")),
              ("lookup_p99", "repeat-contact read p99 ms", ("lookup", "p99_ms")),
              ("ingest_alone_events_per_s", "ingest events/s (0 boards)",
               ("ingest_alone", "events_per_s")),
              ("ingest_boards_events_per_s", f"ingest events/s ({p['clients']} boards)",
               ("ingest_boards", "events_per_s")),
              ("post_to_board_p99", f"POST-to-board p99 ms at {p['rate']:g}/s",
               ("latency", "board_p99_ms"))]
    for backend, res in rep["backends"].items():
        if "skipped" in res:
            rows.append([backend, f"SKIPPED: {res['skipped']}"])
            continue
        for key, text, path in labels if "ratios" in res else []:
            vals = []
            for stage in ("live_day", "history"):
                d: Any = res.get(stage, {})
                for part in path:
                    d = d.get(part) if isinstance(d, dict) else None
                vals.append(ing.fmt(d, ".2f" if "ms" in text else ",.0f"))
            ratio = res["ratios"].get(key)
            rows.append([f"{backend}: {text}", *vals, ing.fmt(ratio, ".3f"),
                         ing.verdict(met(key, ratio))])
        for stage in ("live_day", "history"):
            s = res.get(stage, {}).get("seeded")
            if s:
                rows.append([f"{backend}: seeded {stage}",
                             f"{s['calls']:,} calls in {s['seconds']} s"])
        w = res.get("whatif")
        if w and "seconds" in w:
            rows.append([f"{backend}: live what-if over the year",
                         f"{w['seconds']} s for {w['calls']:,} calls ({w['status']}; target "
                         f"{WHATIF_TARGET_S:g} s: {ing.verdict(w['seconds'] < WHATIF_TARGET_S)}"
                         f"), {w['progress_updates']} progress steps, server peak RSS "
                         f"{w['server_peak_rss_mib']} MiB, the job's process "
                         f"{w['job_process_peak_rss_mib']} MiB and its child "
                         f"{w['job_child_peak_rss_mib']} MiB (together, shared pages once: "
                         f"{w['job_peak_pss_mib']} MiB)"])
    print("\n".join(ing.table(["figure", "live day", "history", "ratio", "target"], rows)))
    if rep["errors"]:
        print(f"\nERRORS ({len(rep['errors'])}):")
        for err in rep["errors"]:
            print(f"  - {err}")
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, help="stored calls (1,000,000)")
    parser.add_argument("--open", type=int, default=1000, help="of them open (1,000)")
    parser.add_argument("--templates", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, help="POSTs per throughput run (3000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, help="offered events/s, latency run (200)")
    parser.add_argument("--seconds", type=float, help="latency run length (10)")
    parser.add_argument("--clients", type=int, help="board clients (100)")
    parser.add_argument("--opens", type=int, default=5, help="board openings timed (5)")
    parser.add_argument("--lookups", type=int, default=500, help="repeat-contact reads")
    parser.add_argument("--gets", type=int, default=100, help="GET /v1/calls/{id} timed")
    parser.add_argument("--whatif", action="store_true",
                        help="also the live what-if over the history (first backend)")
    parser.add_argument("--whatif-only", action="store_true",
                        help="only the live what-if, over the calls' rows alone (each "
                             "backend)")
    parser.add_argument("--quick", action="store_true",
                        help="50,000 calls, 500 POSTs, 100/s for 3 s, 10 boards")
    opts = parser.parse_args(argv)
    defaults = ({"calls": 50_000, "requests": 500, "rate": 100.0, "seconds": 3.0,
                 "clients": 10} if opts.quick else
                {"calls": 1_000_000, "requests": 3000, "rate": 200.0, "seconds": 10.0,
                 "clients": 100})
    for key, value in defaults.items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    # What bench_liaison reads besides these.
    opts.warmup = max(50, opts.requests // 10)
    opts.ws_compression = True
    opts.drain_timeout = 30.0
    opts.analyze = True  # PostgreSQL: statistics kept up to date, as after the seeding
    opts.backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    if set(opts.backends) - {"sqlite", "postgres"}:
        parser.error("--backends: sqlite and/or postgres")
    if opts.calls < opts.open or opts.open < 1:
        parser.error("--open must be at least 1 and at most --calls")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=ing.new_loop) as runner:
        report = runner.run(run(opts))
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    print_report(report)
    print(json.dumps(report, separators=(",", ":"), default=str))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
