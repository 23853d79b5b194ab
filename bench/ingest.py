"""Ingest benchmark for Liaison: POST throughput against a bare FastAPI baseline, with and
without board clients connected, and POST-to-board latency at a fixed offered rate, on
SQLite and on PostgreSQL.

    .venv/bin/python bench/ingest.py                 # full run, about 55 s
    .venv/bin/python bench/ingest.py --quick         # smoke run, small numbers
    .venv/bin/python bench/ingest.py --backends sqlite --requests 5000
    .venv/bin/python bench/ingest.py --clients 0     # no board clients: ingest alone

Method
------
Three processes share the machine: the server under test (a uvicorn subprocess), this
process (the HTTP load generator and orchestrator), and a "boards" process holding the
websocket board clients, so that receiving --clients copies of every board message does
not steal time from the load generator's event loop. Both client processes run on uvloop
when it is installed.

HTTP client: a minimal asyncio HTTP/1.1 keep-alive client (write the request bytes, read
the status line, Content-Length and body). On the 2-core machine it was written on it
drove the baseline at ~7,900 requests/s where httpx.AsyncClient (same 32 keep-alive
connections) managed ~450/s; the same client is used for every server.

Baseline: bench/bare_app.py, a FastAPI app whose one POST endpoint parses the same event
body with a small pydantic model and answers a small JSON document; one uvicorn worker,
httptools, log level warning, on uvicorn's default loop ("auto": uvloop when installed),
which is also the loop `liaison serve` runs on (api/cli.py builds its loop with
uvicorn's own loop factory); the median of three throughput runs.

Liaison: `python -m api.cli serve` on SQLite, then on PostgreSQL, a new server on a
fresh database for each throughput run (a new SQLite file; a PostgreSQL database created
from the admin URL in LIAISON_TEST_POSTGRES_URL or .pg-test-url and dropped afterwards):
Liaison slows down as open calls pile up (by about a third after 15,000 events on
SQLite), so runs sharing a database would favour whichever ran first. Board clients are
websockets (the `websockets` library) on /v1/board; they offer permessage-deflate as
browsers do (unless --no-ws-compression), which `liaison serve` declines, so board
messages travel uncompressed; the report says whether any client got the extension.
Every event has its own event_id and incident_id, so each one opens a new call and each
board client must receive one `decision` message per event.

Throughput (closed loop), two runs per backend: with no board client connected (durable
ingest alone), and with --clients board clients connected to /v1/board from before the
warm-up (left out with --clients 0). Each run follows a warm-up of --requests/10 events
(at least 50) and sends --requests POSTs over --concurrency keep-alive connections, each
connection sending its next request as soon as the previous answer arrives. events/s =
requests / (last answer - first send). With board clients the run then waits until every
board client has every decision and reports how long after the last answer that was
("board drain").

Latency (open loop), on the server and database of the last throughput run, so with the
--clients board clients still connected: --rate events/s for --seconds. Send i is
scheduled at t0 + i/rate whether or not earlier sends have finished (the connection pool
grows as needed), so a slow server cannot slow down the offered load, and latencies are
measured from the scheduled send time (no coordinated omission). "POST" is scheduled
start -> complete answer. "board" is scheduled start -> the moment a board client's
websocket yields the event's decision message, matched by the call_id of the POST answer;
both processes read CLOCK_MONOTONIC, which is system-wide on Linux. Board percentiles are
given over all (event, client) deliveries and over the per-event maximum across clients
(the slowest board for each event). The 50 ms target is judged on the all-deliveries p99;
with --clients 0 only POST latency is measured and the target is not judged.

Durable floor (unless --no-floor), on each backend before Liaison: bench/floor_app.py,
the baseline's endpoint plus the least durable ingest can do in the fixed stack (the
event handed to a group-commit writer as one row and answered once committed, through
SQLAlchemy's async engine on the same SQLite settings or PostgreSQL), on a fresh
database, one warm-up and one closed-loop run like Liaison's. "vs floor" is Liaison's
events/s as a share of it: what Liaison's own work (authentication, the whole event
contract, classification, routing, folding, four tables, the board message) costs.

Statistics (PostgreSQL): the bench database is ANALYZEd after the warm-up and again before
the latency run (unless --no-analyze), as autovacuum does on its own in service (its
launcher visits a database about once a minute, and analyzes a table once a tenth of it
has changed). A database a few seconds old has no
statistics: the planner then guesses that nearly every call is waiting for a program and
reads the waiting calls by a sequential scan instead of their partial index (3.1 of the
batch state read's 3.9 ms at 3,000 calls), and whether autovacuum happened to pass during
the run decided the latency figures (POST p50 at 200 events/s 42 ms without, 19 with).
--no-analyze measures that young database.

CPU: for each phase, the CPU seconds used by the server (from /proc), the PostgreSQL
backends serving the bench database (when PostgreSQL is local), the load generator and
the boards process, divided by the phase's wall time (1.00 = one core busy).

Targets are printed beside the figures and never fail the run. The exit status is
non-zero only on errors: a server that does not start or dies, non-2xx answers, transport
errors, or decision messages that never reach a board client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
EVENTS_PATH = "/v1/cad/events"
# Durable ingest with the whole contract against the durable floor (bench/floor_app.py) on
# the same database (issue 18; it replaced 50% of the bare endpoint).
TARGET_FLOOR_RATIO = 0.6
TARGET_P99_MS = 50.0
TARGET_BOARD_COST = 0.15  # the board clients' share of the no-board throughput (issue 18)
OK_STATUSES = (200, 202)
BASELINE_RUNS = 3
RUN_ID = uuid.uuid4().hex[:8]
_CALL_ID = re.compile(rb'"call_id":"([^"]+)"')
# Board messages are `{"seq":N,"type":"...","call_id":"..."|null,...}` (service/live/board.py).
_BOARD_HEAD = re.compile(r'\{"seq":(\d+),"type":"(\w+)","call_id":(?:"([^"]*)"|null)')


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return cast(asyncio.AbstractEventLoop, uvloop.new_event_loop())


def now_ns() -> int:
    return time.monotonic_ns()


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not values:
        return None
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


def event_body(tag: str, i: int) -> bytes:
    """A valid generic CAD event (as tests/conftest.py's `event()`), unique per (tag, i)."""
    return json.dumps({
        "event_id": f"bench-{RUN_ID}-{tag}-{i}",
        "incident_id": f"B{RUN_ID}-{tag}-{i}",
        "type": "created",
        "occurred_at": "2026-03-10T14:00:00-04:00",
        "channel": "911",
        "nature_code": "MNTL",
        "nature_text": "Mental person non-violent",
        "priority": 3,
        "narrative": "Adult son talking to himself, not sleeping, no weapons.",
        "location": {"address": "1300 1st Ave N", "district": "D2", "lat": 27.77,
                     "lon": -82.65},
        "flags": [],
    }, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- HTTP client


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        _, proto = await asyncio.get_running_loop().create_connection(cls, "127.0.0.1", port)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None:
            self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost ({exc})"))

    def _parse(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        pos = head.find(b"\r\ncontent-length:")
        if pos < 0:
            self._fail(ConnectionError("response without Content-Length"))
            return
        stop = head.find(b"\r\n", pos + 2)
        total = end + 4 + int(head[pos + 17:stop if stop > 0 else None])
        if len(self.buffer) < total:
            return
        status, body = int(head[9:12]), bytes(self.buffer[end + 4:total])
        del self.buffer[:total]
        if b"\r\nconnection: close" in head:
            self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, exc: Exception) -> None:
        self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.closed or self.transport is None:
            raise ConnectionError("connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpPool:
    """Keep-alive connections, most recently used first; opens more when all are busy."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[HttpConnection] = []
        self.opened = 0

    async def _open(self) -> HttpConnection:
        self.opened += 1
        return await HttpConnection.open(self.port)

    async def prefill(self, n: int) -> None:
        self.idle.extend(await asyncio.gather(*(self._open() for _ in range(n))))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        conn = None
        while self.idle and conn is None:
            candidate = self.idle.pop()
            conn = None if candidate.closed else candidate
        reused = conn is not None
        conn = conn or await self._open()
        try:
            result = await conn.request(raw)
        except ConnectionError:
            if not reused:
                raise
            # The server timed out this idle connection as we wrote: once more on a new
            # one (safe, the event_id makes a repeated event a retry).
            conn = await self._open()
            result = await conn.request(raw)
        if not conn.closed:
            self.idle.append(conn)
        return result

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


# `Authorization: Bearer …` of the CAD key made for the Liaison under test (the bare
# FastAPI baseline gets the same header, and ignores it).
AUTH_HEADER = ""


def post_bytes(port: int, body: bytes) -> bytes:
    return (f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{AUTH_HEADER}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


async def make_keys(database_url: str) -> str:
    """A CAD key for the load and a team key for the boards, in the server's database
    (migrated by the server's start); sets AUTH_HEADER and returns the team key."""
    global AUTH_HEADER
    from service.access.auth import Role, create_key
    from service.store.db import create_engine

    engine = create_engine(database_url)
    try:
        cad, _ = await create_key(engine, "bench-cad", role=Role.cad)
        team, _ = await create_key(engine, "bench-boards", role=Role.call_team)
    finally:
        await engine.dispose()
    AUTH_HEADER = f"Authorization: Bearer {cad}\r\n"
    return team


async def http_get_status(port: int, path: str) -> int:
    conn = await HttpConnection.open(port)
    try:
        raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        status, _ = await asyncio.wait_for(conn.request(raw), 5)
        return status
    finally:
        conn.close()


# --------------------------------------------------------------------------- load phases


@dataclass
class Sample:
    start: int  # ns; in the open loop the scheduled start, or the send if that was earlier
    sent: int
    end: int
    status: int
    call_id: str | None


@dataclass
class LoadResult:
    samples: list[Sample]
    began: int
    ended: int
    errors: list[str] = field(default_factory=list)
    connections: int = 0

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.status in OK_STATUSES]

    @property
    def call_ids(self) -> list[str]:
        return [s.call_id for s in self.ok if s.call_id]

    @property
    def rate(self) -> float:
        return len(self.ok) / max(1e-9, (self.ended - self.began) / 1e9)

    def post_ms(self) -> list[float]:
        return sorted((s.end - s.start) / 1e6 for s in self.ok)


def _record(result: LoadResult, start: int, sent: int, status: int, body: bytes) -> Sample:
    end = now_ns()
    call_id = None
    if status in OK_STATUSES:
        m = _CALL_ID.search(body)
        call_id = m[1].decode() if m else None
    elif len(result.errors) < 5:
        result.errors.append(f"HTTP {status}: {body[:300].decode(errors='replace')}")
    return Sample(start, sent, end, status, call_id)


async def closed_loop(port: int, bodies: list[bytes], concurrency: int) -> LoadResult:
    """Each of `concurrency` connections sends the next body as soon as it has an answer."""
    raws = [post_bytes(port, b) for b in bodies]
    conns = await asyncio.gather(*(HttpConnection.open(port) for _ in range(concurrency)))
    result = LoadResult([], 0, 0, connections=concurrency)
    indices: Iterator[int] = iter(range(len(raws)))

    async def worker(conn: HttpConnection) -> None:
        for i in indices:  # shared: every index is taken by exactly one worker
            t0 = now_ns()
            try:
                status, body = await conn.request(raws[i])
            except ConnectionError as exc:
                result.errors.append(f"request {i}: {exc}")
                result.samples.append(Sample(t0, t0, now_ns(), 0, None))
                return
            result.samples.append(_record(result, t0, t0, status, body))

    result.began = now_ns()
    await asyncio.gather(*(worker(c) for c in conns))
    result.ended = now_ns()
    for conn in conns:
        conn.close()
    return result


async def open_loop(port: int, bodies: list[bytes], rate: float) -> LoadResult:
    """Send i at t0 + i/rate regardless of earlier answers; latency from the schedule."""
    raws = [post_bytes(port, b) for b in bodies]
    pool = HttpPool(port)
    await pool.prefill(8)
    result = LoadResult([], 0, 0)

    async def one(raw: bytes, due: int) -> None:
        sent = now_ns()
        start = min(due, sent)  # the timer may fire up to a millisecond early
        try:
            status, body = await pool.request(raw)
        except ConnectionError as exc:
            result.errors.append(f"request: {exc}")
            result.samples.append(Sample(start, sent, now_ns(), 0, None))
            return
        result.samples.append(_record(result, start, sent, status, body))

    interval = 1e9 / rate
    t0 = now_ns() + 10_000_000
    tasks: list[asyncio.Task[None]] = []
    for i, raw in enumerate(raws):
        due = t0 + int(i * interval)
        # Event-loop timers have millisecond resolution: aim a millisecond early.
        delay = (due - now_ns()) / 1e9 - 0.001
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(raw, due)))
    result.began = t0
    await asyncio.gather(*tasks)
    result.ended = max((s.end for s in result.samples), default=now_ns())
    result.connections = pool.opened
    pool.close()
    return result


# --------------------------------------------------------------------------- board clients


class BoardFleet:
    """The websocket board clients (runs in the boards process)."""

    def __init__(self) -> None:
        self.clients = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False
        self.seen: dict[str, list[int]] = {}  # call_id -> receive time per client (0: not yet)
        self.complete: dict[str, int] = {}  # call_id -> clients that have it
        self.resyncs = 0
        self.reconnects = 0
        self.deflate: list[bool] = []  # per client: permessage-deflate negotiated
        self.errors: list[str] = []

    def _on_message(self, idx: int, text: str, at: int) -> int | None:
        m = _BOARD_HEAD.match(text)
        if m:
            seq, kind, call_id = int(m[1]), m[2], m[3]
        else:
            msg = json.loads(text)
            seq, kind, call_id = msg.get("seq"), msg.get("type"), msg.get("call_id")
        if kind == "decision" and call_id:
            times = self.seen.get(call_id)
            if times is None:
                times = self.seen[call_id] = [0] * self.clients
            if not times[idx]:
                times[idx] = at
                self.complete[call_id] = self.complete.get(call_id, 0) + 1
        elif kind == "resync":
            self.resyncs += 1
        return seq

    async def _client(self, idx: int, url: str, ready: asyncio.Event,
                      gate: asyncio.Semaphore, compression: bool, token: str) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, WebSocketException

        last_seq: int | None = None
        while not self.stopping:
            target = url if last_seq is None else f"{url}?after={last_seq}"
            try:
                async with gate:
                    ws = await connect(target, open_timeout=30, max_size=2**22,
                                       compression="deflate" if compression else None,
                                       additional_headers={"authorization": f"Bearer {token}"})
                self.deflate[idx] = bool(ws.protocol.extensions)
                ready.set()
                try:
                    async for message in ws:
                        at = now_ns()
                        text = message if isinstance(message, str) else message.decode()
                        seq = self._on_message(idx, text, at)
                        if seq is not None:
                            last_seq = seq
                finally:
                    await ws.close()
            except ConnectionClosed:
                pass
            except (OSError, TimeoutError, WebSocketException) as exc:
                if len(self.errors) < 5:
                    self.errors.append(f"board client {idx}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)
            if self.stopping:
                return
            self.reconnects += 1
            last_seq = last_seq or 0

    async def connect(self, url: str, n: int, compression: bool, token: str
                      ) -> dict[str, Any]:
        await self.disconnect()
        self.stopping = False
        self.clients = n
        self.seen, self.complete = {}, {}
        self.resyncs = self.reconnects = 0
        self.deflate = [False] * n
        self.errors = []
        ready = [asyncio.Event() for _ in range(n)]
        gate = asyncio.Semaphore(20)
        self.tasks = [asyncio.create_task(self._client(i, url, ready[i], gate, compression,
                                                       token))
                      for i in range(n)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 30)
        return {"connected": sum(e.is_set() for e in ready), "deflate": sum(self.deflate),
                "errors": self.errors}

    async def collect(self, call_ids: list[str], wait_s: float,
                      want_times: bool) -> dict[str, Any]:
        """Wait until every client has every call's decision (or wait_s), then report."""
        deadline = time.monotonic() + wait_s
        pending = call_ids
        while True:
            pending = [c for c in pending if self.complete.get(c, 0) < self.clients]
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.005)
        rows = [self.seen.get(c) or [0] * self.clients for c in call_ids]
        reply: dict[str, Any] = {
            "delivered": sum(self.complete.get(c, 0) for c in call_ids),
            "expected": len(call_ids) * self.clients,
            "last_ns": max((max(r) for r in rows), default=0),
            "resyncs": self.resyncs, "reconnects": self.reconnects, "errors": self.errors,
            "times": rows if want_times else None,
        }
        self.seen, self.complete = {}, {}
        self.resyncs = self.reconnects = 0
        self.errors = []
        return reply

    async def disconnect(self) -> None:
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []


async def _boards_main(conn: Connection) -> None:
    fleet = BoardFleet()

    def receive() -> tuple[Any, ...]:
        # Blocking reads in a thread: the pipe must stay blocking for large messages.
        try:
            return cast(tuple[Any, ...], conn.recv())
        except (EOFError, OSError):
            return ("stop",)

    while True:
        command, *args = await asyncio.to_thread(receive)
        reply: dict[str, Any] = {}
        if command == "connect":
            reply = await fleet.connect(*args)
        elif command == "collect":
            reply = await fleet.collect(*args)
        elif command in ("disconnect", "stop"):
            await fleet.disconnect()
        reply["cpu"] = time.process_time()
        with contextlib.suppress(OSError):
            conn.send(reply)
        if command == "stop":
            return


def boards_process(conn: Connection) -> None:
    """Entry point of the boards process."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(_boards_main(conn))


class Boards:
    """The parent's handle on the boards process."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=boards_process, args=(child,), name="bench-boards",
                                daemon=True)
        self.proc.start()
        child.close()

    def _receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.conn.poll(0.1):
            if not self.proc.is_alive():
                raise RuntimeError(f"the boards process died (exit {self.proc.exitcode})")
            if time.monotonic() > deadline:
                raise TimeoutError("the boards process did not answer")
        return cast(dict[str, Any], self.conn.recv())

    async def call(self, *message: Any, wait_s: float = 120) -> dict[str, Any]:
        self.conn.send(message)
        return await asyncio.to_thread(self._receive, wait_s)

    async def close(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(Exception):
                await self.call("stop", wait_s=15)
        await asyncio.to_thread(self.proc.join, 10)
        if self.proc.is_alive():
            self.proc.terminate()


# --------------------------------------------------------------------------- servers


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux's /proc; none where it cannot say)."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += map(int, (task / "children").read_text().split())
    return found


def pss_mib(pid: int) -> float | None:
    """The process's proportional set size in MiB: its pages, those shared divided among
    their sharers (a forked child's copy-on-write pages counted once across the two)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu(pid: int | None, name: str | None = None) -> float | None:
    """User + system CPU seconds of a local process, from /proc (Linux); None when there
    is no such process (or it is not called `name`)."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    command, _, rest = stat.partition(" (")[2].rpartition(") ")
    if name is not None and command != name:
        return None
    fields = rest.split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _launch(name: str, argv: list[str], port: int, log_dir: Path) -> Server:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        # The per-key rate limit (200/s by default) is off: this measures how fast events
        # can be stored, not the limiter.
        env = {**os.environ, "LIAISON_RATE_LIMIT_KEY_RATE": "0"}
        profile_dir = os.environ.get("BENCH_PROFILE_DIR")
        if profile_dir and argv[:2] == ["-m", "api.cli"]:
            # Where the server's time goes: cProfile writes this file when it stops.
            argv = ["-m", "bench.profiled", str(Path(profile_dir) / f"{name}.prof"), *argv[1:]]
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, env=env)
    return Server(name, proc, port, log_path)


async def start_server(name: str, argv: list[str], port: int, ready_path: str,
                       log_dir: Path) -> Server:
    server = _launch(name, argv, port, log_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.alive:
            raise RuntimeError(f"{name} exited during start-up:\n"
                               + "\n".join(server.log_lines()[-20:]))
        with contextlib.suppress(OSError, TimeoutError):
            if await http_get_status(port, ready_path) == 200:
                return server
        await asyncio.sleep(0.1)
    await asyncio.to_thread(server.stop)
    raise TimeoutError(f"{name} did not become ready:\n" + "\n".join(server.log_lines()[-20:]))


@dataclass
class CpuMark:
    wall: float
    server: float | None
    db: dict[int, float] | None
    loadgen: float
    boards: float | None


@dataclass
class CpuMeter:
    """CPU seconds of everything taking part: the server, the PostgreSQL backends serving
    the bench database (when PostgreSQL runs on this machine), this process and the
    boards process."""

    server: Server
    boards: Boards | None = None
    pg_admin_url: str | None = None
    pg_database: str | None = None

    async def _db(self) -> dict[int, float] | None:
        if not self.pg_admin_url or not self.pg_database:
            return None
        import asyncpg

        try:
            conn = await asyncpg.connect(asyncpg_dsn(self.pg_admin_url), timeout=10)
            try:
                rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1",
                                        self.pg_database)
            finally:
                await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError):
            return None  # a figure we cannot get is shown as "-", not an error
        found = {int(r["pid"]): process_cpu(int(r["pid"]), "postgres") for r in rows}
        return {pid: cpu for pid, cpu in found.items() if cpu is not None}

    async def mark(self) -> CpuMark:
        boards = (await self.boards.call("cpu"))["cpu"] if self.boards else None
        return CpuMark(time.monotonic(), process_cpu(self.server.proc.pid), await self._db(),
                       time.process_time(), boards)

    @staticmethod
    def use(a: CpuMark, b: CpuMark) -> dict[str, float | None]:
        """Cores used between two marks (1.00 = one core busy all the time)."""
        wall = max(1e-9, b.wall - a.wall)

        def share(x: float | None, y: float | None) -> float | None:
            return None if x is None or y is None else round((y - x) / wall, 2)

        db = None
        if a.db is not None and b.db is not None and b.db:
            # Backends that appeared during the phase count from zero.
            db = round(sum(cpu - a.db.get(pid, 0.0) for pid, cpu in b.db.items()) / wall, 2)
        return {"server": share(a.server, b.server), "db": db,
                "loadgen": share(a.loadgen, b.loadgen), "boards": share(a.boards, b.boards)}


# --------------------------------------------------------------------------- benchmarks


def ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def post_stats(result: LoadResult) -> dict[str, Any]:
    post = result.post_ms()
    return {"post_p50_ms": ms(percentile(post, 50)), "post_p99_ms": ms(percentile(post, 99)),
            "ok": len(result.ok), "sent": len(result.samples)}


async def bench_baseline(opts: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    """The bare app on uvicorn's default loop: the median of BASELINE_RUNS closed-loop runs
    (each one is short)."""
    port = free_port()
    server = await start_server("bare", ["-m", "bench.bare_app", "--port", str(port)], port,
                                "/openapi.json", log_dir)
    try:
        await closed_loop(port, [event_body("bw", i) for i in range(opts.warmup)],
                          opts.concurrency)
        meter = CpuMeter(server)
        before = await meter.mark()
        runs = [await closed_loop(port, [event_body(f"b{r}", i)
                                         for i in range(opts.requests)], opts.concurrency)
                for r in range(BASELINE_RUNS)]
        after = await meter.mark()
        result = sorted(runs, key=lambda r: r.rate)[len(runs) // 2]
        errors = [f"bare app: {e}" for r in runs for e in r.errors]
        if not server.alive:
            errors.append("bare app died")
        return {"events_per_s": round(result.rate, 1),
                "runs_events_per_s": [round(r.rate, 1) for r in runs], **post_stats(result),
                "cpu": meter.use(before, after), "errors": errors}
    finally:
        await asyncio.to_thread(server.stop)


async def bench_floor(database_url: str, opts: argparse.Namespace, log_dir: Path,
                      pg_local: tuple[str, str] | None = None) -> dict[str, Any]:
    """bench/floor_app.py on a fresh database: one warm-up and one closed-loop run, as for
    Liaison without board clients."""
    port = free_port()
    server = await start_server("floor", ["-m", "bench.floor_app", "--port", str(port),
                                          "--database-url", database_url], port,
                                "/openapi.json", log_dir)
    try:
        await closed_loop(port, [event_body("fw", i) for i in range(opts.warmup)],
                          opts.concurrency)
        meter = CpuMeter(server, None, *(pg_local or (None, None)))
        before = await meter.mark()
        result = await closed_loop(port, [event_body("f", i) for i in range(opts.requests)],
                                   opts.concurrency)
        after = await meter.mark()
        errors = [f"floor app: {e}" for e in result.errors]
        if not server.alive:
            errors.append("floor app died")
        cpu_ms = (None if before.server is None or after.server is None else
                  round((after.server - before.server) * 1000 / opts.requests, 3))
        return {"events_per_s": round(result.rate, 1), **post_stats(result),
                "server_cpu_ms_per_event": cpu_ms,
                "cpu": meter.use(before, after), "errors": errors}
    finally:
        await asyncio.to_thread(server.stop)


def postgres_admin_url() -> str | None:
    url = os.environ.get("LIAISON_TEST_POSTGRES_URL", "").strip()
    path = ROOT / ".pg-test-url"
    if not url and path.is_file():
        url = path.read_text().strip()
    return url or None


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def analyze(database_url: str) -> None:
    """Statistics for the planner, as autovacuum keeps them in service (see Statistics
    above); SQLite's planner keeps none to take."""
    if database_url.startswith("postgresql"):
        await pg_execute(database_url, "ANALYZE")


async def pg_execute(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(admin_url), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(backend: str, name: str, sqlite_dir: Path) -> AsyncIterator[str]:
    """A fresh database for one run of a bench, by its URL: on PostgreSQL a new database
    `name` (made from the admin URL, `postgres_admin_url`), dropped afterwards; on SQLite
    the file `name`.db in `sqlite_dir`."""
    if backend != "postgresql":
        yield f"sqlite+aiosqlite:///{sqlite_dir / f'{name}.db'}"
        return
    admin = postgres_admin_url()
    if admin is None:
        raise RuntimeError("no PostgreSQL: set LIAISON_TEST_POSTGRES_URL or .pg-test-url")
    await pg_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def bench_liaison(backend: str, database_url: str, opts: argparse.Namespace,
                        boards: Boards | None, log_dir: Path, latency: bool,
                        pg_local: tuple[str, str] | None = None) -> dict[str, Any]:
    """One server on a fresh database: a warm-up and a throughput run with no board client
    (boards None) or with opts.clients board clients, then the latency run if `latency`.
    pg_local: (admin URL, database name) when PostgreSQL runs on this machine, to count
    its CPU."""
    clients = opts.clients if boards is not None else 0
    port = free_port()
    server = await start_server(
        f"liaison-{backend}-{clients}boards",
        ["-m", "api.cli", "serve", "--port", str(port), "--database-url", database_url,
         "--log-level", "warning"], port, "/v1/health", log_dir)
    team_key = await make_keys(database_url)
    errors: list[str] = []
    out: dict[str, Any] = {"errors": errors}
    meter = CpuMeter(server, boards, *(pg_local or (None, None)))
    connected = False

    def check(result: LoadResult) -> LoadResult:
        errors.extend(result.errors)
        if len(result.ok) < len(result.samples):
            errors.append(f"{len(result.samples) - len(result.ok)} of "
                          f"{len(result.samples)} POSTs failed")
        return result

    async def deliveries(result: LoadResult, want_times: bool) -> dict[str, Any]:
        assert boards is not None
        got = await boards.call("collect", result.call_ids, opts.drain_timeout, want_times,
                                wait_s=opts.drain_timeout + 30)
        errors.extend(got["errors"])
        if got["delivered"] < got["expected"]:
            errors.append(f"{got['expected'] - got['delivered']} of {got['expected']} "
                          f"decision deliveries never reached a board client")
        return got

    try:
        if boards is not None:
            ws_url = f"ws://127.0.0.1:{port}/v1/board"
            joined = await boards.call("connect", ws_url, clients, opts.ws_compression,
                                       team_key)
            connected = True
            errors += joined["errors"]
            out["board_clients"] = {"connected": joined["connected"],
                                    "deflate_offered": opts.ws_compression,
                                    "deflate_negotiated": joined["deflate"]}
            if joined["connected"] < clients:
                errors.append(f"only {joined['connected']}/{clients} board clients connected")
                return out

        warm = check(await closed_loop(port, [event_body("w", i) for i in range(opts.warmup)],
                                       opts.concurrency))
        if boards is not None:
            await deliveries(warm, False)
        if opts.analyze:
            await analyze(database_url)

        # Throughput: closed loop, then wait for the board clients (if any) to catch up.
        bodies = [event_body("t", i) for i in range(opts.requests)]
        before = await meter.mark()
        tp = check(await closed_loop(port, bodies, opts.concurrency))
        run: dict[str, Any] = {"board_clients": clients, "events_per_s": round(tp.rate, 1),
                               **post_stats(tp)}
        if boards is not None:
            got = await deliveries(tp, False)
            drain = (got["last_ns"] - tp.ended) / 1e9 if got["last_ns"] else None
            run |= {"board_drain_s": None if drain is None else round(max(0.0, drain), 2),
                    "board_delivered": got["delivered"], "board_expected": got["expected"],
                    "resyncs": got["resyncs"], "reconnects": got["reconnects"]}
        after = await meter.mark()
        if before.server is not None and after.server is not None:
            # Robust to a shared machine where events/s is not: the server's own CPU.
            run["server_cpu_ms_per_event"] = round(
                (after.server - before.server) * 1000 / opts.requests, 3)
        out["throughput"] = run | {"cpu": meter.use(before, after)}
        if not server.alive:
            errors.append("the server died during the throughput phase")
            return out
        if not latency:
            return out

        # Latency: open loop at a fixed rate (POST only without board clients).
        if opts.analyze:
            await analyze(database_url)
        await asyncio.sleep(0.5)
        n = max(1, round(opts.rate * opts.seconds))
        before = await meter.mark()
        lat = check(await open_loop(port, [event_body("l", i) for i in range(n)], opts.rate))
        seen = await deliveries(lat, True) if boards is not None else None
        after = await meter.mark()
        out["latency"] = latency_stats(lat, seen, opts) | {"cpu": meter.use(before, after)}
        if not server.alive:
            errors.append("the server died during the latency phase")
        return out
    finally:
        if boards is not None and connected:
            with contextlib.suppress(RuntimeError, TimeoutError):
                await boards.call("disconnect")
        await asyncio.to_thread(server.stop)
        bad = [ln for ln in server.log_lines() if "ERROR" in ln or "Traceback" in ln]
        if bad:
            errors.append(f"server log has {len(bad)} error line(s), first: {bad[0][:300]}")


def latency_stats(result: LoadResult, got: dict[str, Any] | None,
                  opts: argparse.Namespace) -> dict[str, Any]:
    """got: the boards' deliveries, None without board clients (then POST figures only)."""
    ok = [s for s in result.ok if s.call_id]
    pairs: list[float] = []
    slowest: list[float] = []
    for sample, times in zip(ok, got["times"] if got else [], strict=got is not None):
        received = [(t - sample.start) / 1e6 for t in times if t]
        pairs.extend(received)
        if len(received) == len(times):
            slowest.append(max(received))
    pairs.sort()
    slowest.sort()
    lag = sorted((s.sent - s.start) / 1e6 for s in result.samples)  # 0 when early
    sends = sorted(s.sent for s in result.samples)
    offered = (len(sends) - 1) / max(1e-9, (sends[-1] - sends[0]) / 1e9) if sends else 0.0
    board: dict[str, Any] = {"board_clients": opts.clients}
    if got is not None:
        board |= {
            "board_p50_ms": ms(percentile(pairs, 50)),
            "board_p99_ms": ms(percentile(pairs, 99)),
            "board_max_ms": ms(pairs[-1] if pairs else None),
            "slowest_client_p50_ms": ms(percentile(slowest, 50)),
            "slowest_client_p99_ms": ms(percentile(slowest, 99)),
            "board_delivered": got["delivered"], "board_expected": got["expected"],
            "resyncs": got["resyncs"], "reconnects": got["reconnects"],
        }
    return {
        "rate": opts.rate, "seconds": opts.seconds, "offered_per_s": round(offered, 1),
        **post_stats(result), **board,
        "send_lag_p99_ms": ms(percentile(lag, 99)), "send_lag_max_ms": ms(lag[-1] if lag else None),
        "connections": result.connections,
    }


def server_loop() -> str:
    """The loop uvicorn's "auto" picks in a server run by this interpreter."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "bench": "liaison-ingest",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "server_loop": server_loop()},
        "params": {k: getattr(opts, k) for k in ("requests", "concurrency", "warmup", "rate",
                                                  "seconds", "clients", "ws_compression",
                                                  "analyze")},
        "targets": {"vs_floor_min": TARGET_FLOOR_RATIO, "board_p99_ms_max": TARGET_P99_MS},
        "baseline": {}, "backends": {}, "errors": [],
    }
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        log_dir = Path(tmp)
        progress(f"baseline: bare FastAPI app on uvicorn's default loop "
                 f"({report['machine']['server_loop']})")
        try:
            report["baseline"] = await bench_baseline(opts, log_dir)
        except (OSError, RuntimeError, TimeoutError) as exc:
            report["baseline"] = {"errors": [f"bare app: {exc}"]}
        report["errors"] += report["baseline"]["errors"]
        boards = Boards() if opts.clients else None
        try:
            for backend in opts.backends:
                report["backends"][backend] = await run_backend(backend, opts, boards, log_dir)
                report["errors"] += [f"{backend}: {e}"
                                     for e in report["backends"][backend].get("errors", [])]
        finally:
            if boards is not None:
                await boards.close()
    for res in report["backends"].values():
        judge(res, report["baseline"])
    return report


async def run_backend(backend: str, opts: argparse.Namespace, boards: Boards | None,
                      log_dir: Path) -> dict[str, Any]:
    """The throughput run with no board client, then (--clients > 0) the one with board
    clients, each on its own server and fresh database (Liaison slows down as calls pile
    up, so a shared database would favour the first run); the latency run follows the last
    throughput run on the same server."""
    stages = [("alone", None)] + ([("with_boards", boards)] if boards is not None else [])
    out: dict[str, Any] = {"errors": [], "throughput": {}}
    if opts.floor:
        floor = await run_stage(backend, opts, None, log_dir, False, 0, floor=True)
        if "skipped" in floor:
            return floor
        out["errors"] += [f"floor: {e}" for e in floor["errors"]]
        if "events_per_s" in floor:
            out["floor"] = floor
    for key, stage_boards in stages:
        clients = opts.clients if stage_boards is not None else 0
        last = key == stages[-1][0]
        res = await run_stage(backend, opts, stage_boards, log_dir, last, clients)
        if "skipped" in res:
            if not out["throughput"]:
                return res
            out["errors"].append(f"{clients} boards: {res['skipped']}")
            continue
        out["errors"] += [f"{clients} boards: {e}" for e in res["errors"]]
        if "throughput" in res:
            out["throughput"][key] = res["throughput"]
        for k in ("board_clients", "latency"):
            if k in res:
                out[k] = res[k]
    return out


async def run_stage(backend: str, opts: argparse.Namespace, boards: Boards | None,
                    log_dir: Path, latency: bool, clients: int,
                    floor: bool = False) -> dict[str, Any]:
    """bench_liaison (or, with `floor`, bench_floor) on a fresh database of `backend`."""
    label = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend]
    what = "floor app" if floor else "liaison"
    stage = "floor" if floor else f"{clients}boards"

    def bench(url: str, pg_local: tuple[str, str] | None = None
              ) -> Awaitable[dict[str, Any]]:
        if floor:
            return bench_floor(url, opts, log_dir, pg_local)
        return bench_liaison(backend, url, opts, boards, log_dir, latency, pg_local)

    if backend == "sqlite":
        progress(f"{what} on {label}" + ("" if floor else f", {clients} board clients"))
        return await guarded(bench(f"sqlite+aiosqlite:///{log_dir / f'bench-{stage}.db'}"))
    admin = postgres_admin_url()
    if not admin:
        reason = "no PostgreSQL: set LIAISON_TEST_POSTGRES_URL or run `make test` (.pg-test-url)"
        progress(f"{what} on {label}: SKIPPED ({reason})")
        return {"skipped": reason}
    name = f"liaison_bench_{RUN_ID}_{stage}"
    try:
        await pg_execute(admin, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure to reach PostgreSQL means skip
        reason = f"cannot create a PostgreSQL database ({type(exc).__name__}: {exc})"
        progress(f"{what} on {label}: SKIPPED ({reason})")
        return {"skipped": reason}
    progress(f"{what} on {label}" + ("" if floor else f", {clients} board clients")
             + f" (database {name})")
    result: dict[str, Any] = {"errors": ["interrupted"]}
    try:
        url = f"{admin.rsplit('/', 1)[0]}/{name}"
        local = urlsplit(admin).hostname in ("127.0.0.1", "localhost", "::1")
        result = await guarded(bench(url, (admin, name) if local else None))
    finally:
        try:
            await pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - report it, keep the figures
            result.setdefault("errors", []).append(f"could not drop database {name}: {exc}")
    return result


async def guarded(bench: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await bench
    except (OSError, RuntimeError, TimeoutError) as exc:
        return {"errors": [f"{type(exc).__name__}: {exc}"]}


def judge(res: dict[str, Any], baseline: dict[str, Any]) -> None:
    base = baseline.get("events_per_s")
    floor = res.get("floor", {}).get("events_per_s")
    if floor:
        res["floor"]["ratio"] = round(floor / base, 3) if base else None
    for tp in res.get("throughput", {}).values():
        tp["ratio"] = round(tp["events_per_s"] / base, 3) if base else None
        tp["vs_floor"] = round(tp["events_per_s"] / floor, 3) if floor else None
        tp["target_met"] = (None if tp["vs_floor"] is None
                            else tp["vs_floor"] >= TARGET_FLOOR_RATIO)
    alone, boards = (res.get("throughput", {}).get(k) for k in ("alone", "with_boards"))
    if alone and boards:
        # What the board clients cost: the share of the no-board throughput lost, and the
        # server CPU per event they add.
        cost: dict[str, Any] = {
            "throughput_lost": round(1 - boards["events_per_s"] / alone["events_per_s"], 3),
            "target_max": TARGET_BOARD_COST}
        a, b = alone.get("server_cpu_ms_per_event"), boards.get("server_cpu_ms_per_event")
        if a and b:
            cost["server_cpu_added"] = round(b / a - 1, 3)
        cost["target_met"] = cost["throughput_lost"] <= TARGET_BOARD_COST
        res["board_cost"] = cost
    lat = res.get("latency")
    if lat:
        p99 = lat.get("board_p99_ms")
        lat["target_met"] = None if p99 is None else p99 < TARGET_P99_MS


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ".1f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def verdict(met: bool | None) -> str:
    return {True: "MET", False: "MISSED", None: "n/a"}[met]


def cpu_text(cpu: dict[str, float | None] | None) -> str:
    if not cpu:
        return "-"
    return "/".join(fmt(cpu.get(k), ".2f") for k in ("server", "db", "loadgen", "boards"))


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Text table: first column left-aligned, the others right-aligned. A row of two cells
    is a label and a note spanning the rest."""
    full = [r for r in rows if len(r) == len(headers)]
    widths = [max([len(h)] + [len(r[i]) for r in full]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    out = ["  " + line(headers), "  " + "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  " + (line(r) if len(r) == len(headers)
                           else f"{r[0].ljust(widths[0])}  {r[1]}"))
    return out


def pair(a: float | None, b: float | None, spec: str = ".1f") -> str:
    return f"{fmt(a, spec)} / {fmt(b, spec)}"


def pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * ratio:.0f}%"


def deflate_text(rep: dict[str, Any]) -> str:
    """What became of permessage-deflate, from what the board clients negotiated."""
    if not rep["params"]["ws_compression"]:
        return "permessage-deflate not offered"
    got = [r["board_clients"]["deflate_negotiated"] for r in rep["backends"].values()
           if "board_clients" in r]
    if not got:
        return "permessage-deflate offered"
    if not any(got):
        return "permessage-deflate offered, declined by the server"
    return "permessage-deflate offered, accepted by the server"


def print_report(rep: dict[str, Any]) -> None:
    p = rep["params"]
    m = rep["machine"]
    clients = p["clients"]
    print()
    print(f"Liaison ingest benchmark: {m['cpus']} CPUs, Python {m['python']}, servers on "
          f"{m['server_loop']}, {clients} board clients"
          + (f" ({deflate_text(rep)})" if clients else "") + f", {rep['elapsed_s']} s")
    print()
    print(f"Throughput: {p['requests']} POSTs, closed loop over {p['concurrency']} keep-alive "
          f"connections, after {p['warmup']} warm-up. Target: Liaison >= "
          f"{TARGET_FLOOR_RATIO:.0%} of the durable floor on the same database.")
    rows: list[list[str]] = []
    base = rep["baseline"]
    if "events_per_s" not in base:
        rows.append(["bare FastAPI (baseline)", "ERROR (see below)"])
    else:
        rows.append(["bare FastAPI (baseline)", f"{base['events_per_s']:,.0f}", "", "",
                     pair(base["post_p50_ms"], base["post_p99_ms"])]
                    + ([""] if clients else []) + [cpu_text(base["cpu"]), ""])
    runs = [("alone", 0)] + ([("with_boards", clients)] if clients else [])
    for backend, res in rep["backends"].items():
        if "skipped" in res:
            rows.append([f"liaison {backend}", f"SKIPPED: {res['skipped']}"])
            continue
        if not res.get("throughput"):
            rows.append([f"liaison {backend}", "ERROR (see below)"])
            continue
        floor = res.get("floor")
        if floor:
            rows.append([f"durable floor {backend}", f"{floor['events_per_s']:,.0f}",
                         pct(floor.get("ratio")), "",
                         pair(floor["post_p50_ms"], floor["post_p99_ms"])]
                        + ([""] if clients else []) + [cpu_text(floor["cpu"]), ""])
        for key, n in runs:
            name = f"liaison {backend} ({n} boards)"
            tp = res["throughput"].get(key)
            if not tp:
                rows.append([name, "ERROR (see below)"])
                continue
            drain = tp.get("board_drain_s")
            rows.append([name, f"{tp['events_per_s']:,.0f}", pct(tp["ratio"]),
                         pct(tp.get("vs_floor")), pair(tp["post_p50_ms"], tp["post_p99_ms"])]
                        + (["-" if drain is None else f"{drain:.2f} s"] if clients else [])
                        + [cpu_text(tp["cpu"]), verdict(tp["target_met"])])
    print("\n".join(table(["server", "events/s", "vs base", "vs floor", "POST p50/p99 ms"]
                         + (["board drain"] if clients else [])
                         + ["cpu srv/db/gen/brd", "target"], rows)))
    for backend, res in rep["backends"].items():
        cost = res.get("board_cost")
        cpu = {k: res.get("throughput", {}).get(k, {}).get("server_cpu_ms_per_event")
               for k in ("alone", "with_boards")}
        floor_cpu = (res.get("floor") or {}).get("server_cpu_ms_per_event")
        if floor_cpu and cpu["alone"]:
            # Steadier than events/s on a shared machine: the server's own CPU per event.
            print(f"  {backend}: server CPU per event {fmt(floor_cpu, '.3f')} ms (floor), "
                  f"{fmt(cpu['alone'], '.3f')} ms (Liaison, no boards): floor/Liaison "
                  f"{pct(floor_cpu / cpu['alone'])}.")
        if cost:
            added = cost.get("server_cpu_added")
            print(f"  {backend}: {clients} board clients cost {pct(cost['throughput_lost'])} "
                  f"of the no-board throughput (target <= {pct(TARGET_BOARD_COST)}: "
                  f"{verdict(cost['target_met'])}); server CPU per event "
                  f"{fmt(cpu['alone'], '.2f')} ms alone, {fmt(cpu['with_boards'], '.2f')} ms "
                  f"with boards" + ("" if added is None else f" (+{pct(added)})") + ".")
    print()
    print(f"Latency: open loop at {p['rate']:g} events/s for {p['seconds']:g} s, measured from "
          f"each scheduled send, " + (f"{clients} board clients. Target: board p99 < "
                                      f"{TARGET_P99_MS:g} ms." if clients else
                                      "no board clients: POST latency only.")
          + ("" if p.get("analyze", True) else
             " PostgreSQL's bench database without statistics (--no-analyze)."))
    rows = []
    for backend, res in rep["backends"].items():
        lat = res.get("latency")
        if "skipped" in res:
            rows.append([backend, "SKIPPED"])
        elif not lat:
            rows.append([backend, "ERROR (see below)"])
        elif not clients:
            rows.append([backend, str(lat["sent"]), f"{lat['offered_per_s']:.1f}",
                         pair(lat["post_p50_ms"], lat["post_p99_ms"]), str(lat["connections"]),
                         cpu_text(lat["cpu"])])
        else:
            rows.append([backend, str(lat["sent"]), f"{lat['offered_per_s']:.1f}",
                         pair(lat["post_p50_ms"], lat["post_p99_ms"]),
                         pair(lat["board_p50_ms"], lat["board_p99_ms"]),
                         fmt(lat["board_max_ms"]),
                         pair(lat["slowest_client_p50_ms"], lat["slowest_client_p99_ms"]),
                         str(lat["board_expected"] - lat["board_delivered"]),
                         str(lat["resyncs"]), str(lat["connections"]), cpu_text(lat["cpu"]),
                         verdict(lat["target_met"])])
    headers = (["backend", "sent", "rate/s", "POST p50/p99 ms", "board p50/p99 ms",
                "board max", "slowest p50/p99", "missing", "resyncs", "conns",
                "cpu srv/db/gen/brd", "target"] if clients else
               ["backend", "sent", "rate/s", "POST p50/p99 ms", "conns", "cpu srv/db/gen/brd"])
    print("\n".join(table(headers, rows)))
    print()
    notes = [
        f"baseline: bench/bare_app.py on uvicorn's default loop ({m['server_loop']}), the loop "
        "`liaison serve` runs on too; its events/s is the median of three runs ("
        + ", ".join(f"{x:,.0f}" for x in base.get("runs_events_per_s", [])) + ").",
        "vs base: events/s as a share of the baseline's.",
        "durable floor: bench/floor_app.py, the baseline plus the least durable ingest can "
        "do in this stack (each event handed to a group-commit writer as one row, answered "
        "once committed; SQLAlchemy async, SQLite WAL + synchronous=FULL or PostgreSQL), "
        "nothing of Liaison's own work; vs floor: Liaison's events/s as a share of it.",
        "(0 boards): durable ingest alone, no board client connected"
        + (f"; ({clients} boards): with {clients} board websockets connected, each receiving "
           "every decision" if clients else "")
        + "; each run on a new server and a fresh database.",
    ]
    if clients:
        notes.append("board drain: how long after the last POST answer the last board client "
                     "had every decision.")
        notes.append("board p50/p99: over every (event, board client) delivery; slowest: "
                     "over each event's latest delivery among all clients; missing: "
                     "deliveries that never arrived.")
    else:
        notes.append("no board clients (--clients 0): no run with board clients, and POST "
                     "latency only (the board p99 target is not judged).")
    notes += [
        "conns: HTTP connections the open-loop generator needed (it opens more when all are "
        "busy, so many means the server fell behind the offered rate).",
        "cpu srv/db/gen/brd: cores used during the phase by the server, the PostgreSQL "
        "backends of the bench database, the load generator and the board clients "
        "(1.00 = one core; '-' = not measured).",
    ]
    lags = [(b, r["latency"]) for b, r in rep["backends"].items() if r.get("latency")]
    if lags:
        notes.append("load generator send lag (actual - scheduled) p99/max ms: " + ", ".join(
            f"{b} {pair(lat['send_lag_p99_ms'], lat['send_lag_max_ms'], '.2f')}"
            for b, lat in lags) + ".")
    for note in notes:
        print(f"  * {note}")
    if rep["errors"]:
        print()
        print(f"ERRORS ({len(rep['errors'])}):")
        for err in rep["errors"]:
            print(f"  - {err}")
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, help="POSTs in each throughput run (3000)")
    parser.add_argument("--concurrency", type=int, help="keep-alive connections (32)")
    parser.add_argument("--rate", type=float, help="offered events/s in the latency run (200)")
    parser.add_argument("--seconds", type=float, help="length of the latency run (10)")
    parser.add_argument("--clients", type=int,
                        help="board websocket clients (100); 0: no board clients, so only "
                             "the ingest-alone throughput run and POST latency")
    parser.add_argument("--backends", default="sqlite,postgres",
                        help="comma-separated: sqlite,postgres (default both)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 300 requests, 16 connections, 100/s for 2 s, "
                             "10 clients (explicit options still win)")
    parser.add_argument("--no-ws-compression", dest="ws_compression", action="store_false",
                        help="board clients do not offer permessage-deflate (browsers do; "
                             "`liaison serve` declines it)")
    parser.add_argument("--drain-timeout", type=float, default=30.0,
                        help="seconds to wait for every board client to get every decision")
    parser.add_argument("--no-floor", dest="floor", action="store_false",
                        help="skip the durable floor (bench/floor_app.py) on each backend")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="PostgreSQL: leave the bench database without the planner's "
                             "statistics (a database in its first minute)")
    opts = parser.parse_args(argv)
    defaults = ({"requests": 300, "concurrency": 16, "rate": 100.0, "seconds": 2.0,
                 "clients": 10} if opts.quick else
                {"requests": 3000, "concurrency": 32, "rate": 200.0, "seconds": 10.0,
                 "clients": 100})
    for key, value in defaults.items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    opts.warmup = max(50, opts.requests // 10)
    opts.backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    unknown = set(opts.backends) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if min(opts.requests, opts.concurrency) < 1 or opts.rate <= 0:
        parser.error("--requests, --concurrency and --rate must be positive")
    if opts.clients < 0:
        parser.error("--clients must be 0 or more")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=new_loop) as runner:
        report = runner.run(run(opts))
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    print_report(report)
    print(json.dumps(report, separators=(",", ":")))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
