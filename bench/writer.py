"""The writer alone (issue 18): the server CPU a new call's event costs in Liaison's writer,
by the size of the batch it is committed in, on SQLite and PostgreSQL, with no HTTP.

    .venv/bin/python bench/writer.py                          # both databases
    .venv/bin/python bench/writer.py --backends sqlite --sizes 1 16 256 --rounds 5
    .venv/bin/python bench/writer.py --addresses distinct     # every call at its own address
    .venv/bin/python bench/writer.py --updates                # CAD updates of stored calls

Why apart from bench/ingest.py: there the HTTP side and the load generator share two cores
with the writer, and the figures move by a third from run to run; here one process runs the
writer's commands (`IngestEvent`, the shipped policy, the same events as bench/ingest.py's)
on the server's event loop and nothing else, so a change to the writer shows. What a batch
costs once (its statements, BEGIN and COMMIT) is spread over its events; what an event
costs alone is not.

Method: a fresh database per backend (a new PostgreSQL database, dropped afterwards, from
the admin URL in LIAISON_TEST_POSTGRES_URL or .pg-test-url; skipped without one), migrated;
one warm-up round; then --rounds rounds, each taking every batch size in turn, each size
~--events events as batches of that size submitted together (the writer takes them as one
batch). CPU is the process's (every thread: SQLite's lock and commit run on one), per
event; the median of the rounds is printed, and each size's ratio to batches of one, the
baseline measured in the same run. Exits non-zero only on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest  # noqa: E402 - after the path, as when run as a script
from rules.evaluate import compile_policy  # noqa: E402
from rules.load import load_default_policy  # noqa: E402
from service.calls.event import CallEvent  # noqa: E402
from service.lifecycle.ingest import IngestEvent  # noqa: E402
from service.store.db import create_engine, migrate  # noqa: E402
from service.writing.writer import Writer  # noqa: E402


def command(policy: Any, tag: str, i: int, distinct: bool, update: bool = False
            ) -> IngestEvent:
    """bench/ingest.py's event as the writer's command; at its own address if `distinct`;
    with `update`, the CAD's `updated` event of the incident that event opened."""
    body = json.loads(ingest.event_body(tag, i))
    if distinct:
        body["location"]["address"] = f"{i} Bench Ave N"
    if update:
        body.update(type="updated", event_id=f"{body['event_id']}-update",
                    narrative="Calmer now, sitting on the porch with his mother.")
    return IngestEvent(event=CallEvent.model_validate(body), policy=policy,
                       units_total=policy.policy.program.units)


async def measure(database_url: str, sizes: list[int], opts: argparse.Namespace
                  ) -> dict[int, dict[str, float]]:
    engine = create_engine(database_url)
    await migrate(engine)
    writer = Writer(engine)
    policy = compile_policy(load_default_policy())
    per_size: dict[int, list[tuple[float, float]]] = {b: [] for b in sizes}
    n = 0
    writer.start()
    try:
        for round_ in range(opts.rounds + 1):  # the first warms up and is not kept
            for size in sizes:
                numbers = [[(n := n + 1) for _ in range(size)]
                           for _ in range(max(2, opts.events // size))]
                if opts.updates:  # their calls are opened first, unmeasured
                    for batch_numbers in numbers:
                        await asyncio.gather(*(writer.submit(
                            command(policy, "wr", i, opts.distinct)) for i in batch_numbers))
                batches = [[command(policy, "wr", i, opts.distinct, update=opts.updates)
                            for i in batch_numbers] for batch_numbers in numbers]
                cpu, wall = time.process_time(), time.perf_counter()
                for batch in batches:
                    await asyncio.gather(*(writer.submit(c) for c in batch))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if round_:
                    events = size * len(batches)
                    per_size[size].append((cpu * 1e6 / events, events / wall))
    finally:
        await writer.stop()
        await engine.dispose()
    return {size: {"cpu_us_per_event": round(statistics.median(c for c, _ in runs)),
                   "events_per_s": round(statistics.median(r for _, r in runs), 1)}
            for size, runs in per_size.items()}


async def one_backend(backend: str, opts: argparse.Namespace) -> dict[str, Any]:
    name = f"liaison_bench_wr_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        async with ingest.scratch_database(backend, name, Path(tmp)) as url:
            found = await measure(url, sorted(set(opts.sizes)), opts)
    base = found[min(found)]["cpu_us_per_event"]
    for figures in found.values():
        figures["cpu_vs_smallest"] = round(figures["cpu_us_per_event"] / base, 3)
    return {"backend": backend, "sizes": found}


async def run(opts: argparse.Namespace) -> int:
    backends = list(opts.backends)
    if "postgresql" in backends and ingest.postgres_admin_url() is None:
        print("PostgreSQL skipped: no LIAISON_TEST_POSTGRES_URL or .pg-test-url",
              file=sys.stderr)
        backends.remove("postgresql")
    results, errors = [], []
    for backend in backends:
        try:
            results.append(await one_backend(backend, opts))
        except Exception as exc:  # noqa: BLE001 - said, and the exit status says it
            errors.append(f"{backend}: {type(exc).__name__}: {exc}")
    print("\n| backend | batch size | CPU us/event | vs smallest batch | events/s |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        for size, f in r["sizes"].items():
            print(f"| {r['backend']} | {size} | {f['cpu_us_per_event']:,} | "
                  f"{f['cpu_vs_smallest']:.2f} | {f['events_per_s']:,.0f} |")
    print(json.dumps({"bench": "liaison-writer", "params": {
        "sizes": opts.sizes, "events": opts.events, "rounds": opts.rounds,
        "addresses": "distinct" if opts.distinct else "one",
        "events_measured": "updated" if opts.updates else "created"},
        "results": results, "errors": errors}))
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                   choices=["sqlite", "postgresql"])
    p.add_argument("--sizes", nargs="+", type=int, default=[1, 16, 256],
                   help="batch sizes (1 16 256)")
    p.add_argument("--events", type=int, default=512,
                   help="events per size and round (512; at least two batches)")
    p.add_argument("--rounds", type=int, default=3, help="rounds kept (3)")
    p.add_argument("--addresses", choices=["one", "distinct"], default="one",
                   help="every call at bench/ingest.py's one address (a shelter's burst: "
                        "each new call has the batch's earlier ones as history), or each "
                        "at its own")
    p.add_argument("--updates", action="store_true",
                   help="measure the CAD's `updated` events of calls opened first (each "
                        "changes a stored call), not the new calls' events")
    opts = p.parse_args(argv)
    opts.distinct = opts.addresses == "distinct"
    if min(opts.sizes) < 1:
        p.error("--sizes: a batch holds at least one event")
    # The loop `liaison serve` runs on (uvloop, where installed: api/cli.py).
    loop_factory = uvicorn.Config(app=None).get_loop_factory()  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(run(opts))


if __name__ == "__main__":
    raise SystemExit(main())
