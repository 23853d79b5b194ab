"""Where each microsecond of an ingested event goes (issue 18): `liaison serve` under
bench/ingest.py's closed-loop load, sampled by py-spy, the samples sorted into the steps of
the ingest contract, as microseconds of server CPU per event, on SQLite and PostgreSQL.

    pip install py-spy     # not a dependency of Liaison: a tool for this bench only
    .venv/bin/python bench/ingest_steps.py                       # both databases
    .venv/bin/python bench/ingest_steps.py --backends sqlite --requests 4000
    .venv/bin/python bench/ingest_steps.py --raw /tmp/steps      # keep py-spy's samples

Method: a fresh database and a new server per backend (as bench/ingest.py), 300 warm-up
events, then `py-spy record` (200 Hz, every thread, idle threads left out) attached while
--requests events are POSTed over --concurrency keep-alive connections. The server's CPU
over the run is read from /proc, its main thread's apart. A sample belongs to the step of
its innermost frame named in STEPS below; the main thread's samples are scaled to the main
thread's CPU per event, and the other threads' CPU (aiosqlite's SQLite thread, asyncpg has
none) is given as measured. SQLAlchemy runs a statement inside a greenlet whose frames
py-spy shows apart from the coroutine that awaits it: those samples are one step, whatever
the statement. py-spy pauses the server for each sample, so the events/s printed are lower
than bench/ingest.py's; the shares are what this is for.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest as bi  # noqa: E402 - after the path, as when run as a script

# (step, function names as py-spy shows them): the innermost named frame decides.
STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("writer: flush (one INSERT/UPDATE per table per batch)", ("Batch.flush",)),
    ("writer: prefetch + repeat-contact read", ("Batch.prefetch",)),
    ("writer: begin, advisory lock, commit", (
        "AsyncTransaction.__aexit__", "AsyncEngine.begin", "AsyncTransaction.__aenter__",
        "AsyncConnection.start")),
    ("classification + routing (redecide)", ("redecide",)),
    ("queue and program state (units, queue, roster)", (
        "program_states", "settle", "offer_freed", "Batch.units_busy",
        "one_team_availability", "units_touched", "Batch.units_busy_by_program")),
    ("decision record + board message", ("record_decision", "follow_decision",
                                         "after_exclusion")),
    ("call row", ("_call_row",)),
    ("repeat contact within the batch", ("history_in_batch",)),
    ("fold the event into the call", ("apply_event", "CallState.facts", "fold")),
    ("decision and event to dict/JSON", ("BaseModel.model_dump", "BaseModel.model_dump_json",
                                         "compact_json")),
    ("ingest command: the rest", ("IngestEvent.apply",)),
    ("writer: loop, batch, futures", ("Writer._run",)),
    ("answer: view + JSON", ("answer_view", "JSONResponse.__init__")),
    ("submit + wait for the commit", ("Writer.submit",)),
    ("agency claim + policy", ("claim_of",)),
    ("endpoint: the rest", ("post_event", "take_event")),
    ("authentication (API key)", ("Access.__call__",)),
    ("body read + event validation", (
        "_json_event", "solve_dependencies", "Request.body", "request_body_to_args",
        "_validate_value_with_model_field", "TypeAdapter.validate_python")),
    ("FastAPI endpoint plumbing", (
        "get_request_handler.<locals>.app", "CredentialsFirst.get_route_handler.<locals>.checked",
        "EventRoute.get_route_handler.<locals>.handler")),
    ("response send (uvicorn + middleware)", ("RequestResponseCycle.send",)),
    ("FastAPI native telemetry", ("NativeTelemetry.enabled",)),
    ("route matching", ("APIRouter.matches", "_IncludedRouter.matches",
                        "_IncludedRouter._match")),
    ("ASGI middleware (Liaison's and the framework's)", ("RequestResponseCycle.run_asgi",)),
    ("HTTP parsing (httptools)", ("HttpToolsProtocol.data_received",
                                  "HttpToolsProtocol.on_headers_complete")),
]
OTHER_THREADS = "other threads (aiosqlite's SQLite thread), from /proc"
GREENLET = "SQLAlchemy + driver: statement execution (greenlet frames)"
LOOP = "event loop (uvloop, callbacks, task steps)"
REST = "other"
_BY_NAME = {name: step for step, names in STEPS for name in names}
_THREAD_ROOTS = ("Thread._bootstrap",)
_MAIN_ROOT = "_run_module_as_main"


def step_of(frames: list[str], leaf: str) -> str:
    for frame in reversed(frames):
        step = _BY_NAME.get(frame)
        if step is not None:
            return step
    if frames and frames[0] in _THREAD_ROOTS:
        return OTHER_THREADS
    if frames and frames[0] != _MAIN_ROOT:
        return GREENLET
    if frames and (frames[-1] in ("Runner.run", "main", "<module>") or "asyncio" in leaf):
        return LOOP
    return REST


def read_samples(path: Path) -> Counter[str]:
    """py-spy's raw (collapsed) output: `frame;frame;... count` per line."""
    found: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        raw = stack.split(";")
        frames = [f.split(" (")[0] for f in raw]
        found[step_of(frames, raw[-1])] += int(count)
    return found


def thread_cpu(pid: int, tid: int) -> float:
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(") ")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def profile(backend: str, database_url: str, opts: argparse.Namespace,
                  out: Path) -> dict[str, float]:
    log_dir = Path(tempfile.mkdtemp(prefix="liaison-steps-"))
    port = bi.free_port()
    server = await bi.start_server(
        f"steps-{backend}", ["-m", "api.cli", "serve", "--port", str(port), "--database-url",
                             database_url, "--log-level", "warning"],
        port, "/v1/health", log_dir)
    try:
        await bi.make_keys(database_url)
        await bi.closed_loop(port, [bi.event_body("sw", i) for i in range(300)],
                             opts.concurrency)
        pid = server.proc.pid
        raw = out / f"liaison-{backend}.txt"
        spy = await asyncio.to_thread(
            subprocess.Popen, [opts.py_spy, "record", "--pid", str(pid), "-r", "200", "-f",
                               "raw", "-o", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)  # py-spy attached
        main0, all0 = thread_cpu(pid, pid), bi.process_cpu(pid) or 0.0
        result = await bi.closed_loop(port, [bi.event_body("s", i)
                                             for i in range(opts.requests)], opts.concurrency)
        main1, all1 = thread_cpu(pid, pid), bi.process_cpu(pid) or 0.0
        spy.send_signal(2)
        await asyncio.to_thread(spy.wait, 60)
        if result.errors:
            raise RuntimeError(f"{len(result.errors)} failed requests: {result.errors[:3]}")
    finally:
        await asyncio.to_thread(server.stop)
    samples = read_samples(raw)
    n = opts.requests
    main_us, all_us = (main1 - main0) * 1e6 / n, (all1 - all0) * 1e6 / n
    main_samples = sum(v for k, v in samples.items() if k != OTHER_THREADS) or 1
    steps = {k: v * main_us / main_samples for k, v in samples.items() if k != OTHER_THREADS}
    steps[OTHER_THREADS] = all_us - main_us
    print(f"... {backend}: {result.rate:,.0f} events/s under py-spy, server CPU "
          f"{all_us:,.0f} us/event ({main_us:,.0f} main thread)", flush=True)
    return steps | {"TOTAL": all_us}


async def run(opts: argparse.Namespace, out: Path) -> None:
    results: dict[str, dict[str, float]] = {}
    for backend in opts.backends:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{out}/steps-{bi.RUN_ID}.db"
            results[backend] = await profile(backend, url, opts, out)
            continue
        admin = bi.postgres_admin_url()
        if admin is None:
            print("... postgres skipped: no LIAISON_TEST_POSTGRES_URL or .pg-test-url")
            continue
        async with bi.scratch_database("postgresql", f"liaison_steps_{bi.RUN_ID}",
                                       out) as url:
            results[backend] = await profile(backend, url, opts, out)
    order = [s for s, _ in STEPS] + [GREENLET, LOOP, OTHER_THREADS, REST, "TOTAL"]
    print(f"\nus of server CPU per event, {opts.requests} events over {opts.concurrency} "
          f"connections; samples in {out}\n")
    print("| step | " + " | ".join(results) + " |")
    print("| --- |" + " --- |" * len(results))
    for step in order:
        print(f"| {step} | " + " | ".join(f"{r.get(step, 0.0):,.0f}" for r in results.values())
              + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--raw", help="folder for py-spy's samples (default: a temporary one)")
    parser.add_argument("--py-spy", dest="py_spy", default=shutil.which("py-spy") or "py-spy")
    opts = parser.parse_args()
    opts.backends = [b.strip() for b in opts.backends.split(",") if b.strip()]
    if shutil.which(opts.py_spy) is None and not Path(opts.py_spy).is_file():
        print("py-spy is not installed (pip install py-spy), or give --py-spy PATH",
              file=sys.stderr)
        return 2
    out = Path(opts.raw or tempfile.mkdtemp(prefix="liaison-steps-"))
    out.mkdir(parents=True, exist_ok=True)
    bi.new_loop().run_until_complete(run(opts, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
