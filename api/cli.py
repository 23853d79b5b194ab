"""The `liaison` command: serve, demo, migrate, policy check, profile check, replay."""

# It stands at the top beside the HTTP routes: it wires the service's commands
# (service/cli/: keys, users, policies, rejects, the demo feed) with the adapters' (export
# profiles, replays, simulations) and the server (api/app.py). Its docstring is the
# command's --help.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.engine import make_url

from adapters.exports import commands as export_commands
from adapters.exports import simulate_command
from routing.cases import run_tests
from rules.analysis import check_policy
from rules.load import PolicyInvalid, load_policy_file
from service.cli import access as access_cli
from service.cli import agencies as agencies_cli
from service.cli import policy as policy_cli
from service.cli import units as units_cli
from service.live.websocket import WebSocketProtocol
from service.settings import Settings

# Board messages are small JSON: compressing each one for each client costs more CPU than
# it saves on a local network. A websocket client that stops reading is cut off
# (service/live/websocket.py).
UVICORN_OPTIONS: dict[str, Any] = {"loop": "auto", "ws_per_message_deflate": False,
                                   "ws": WebSocketProtocol}
DEMO_ACCOUNTS = "liaison-demo-accounts.txt"


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8000)")
    p.add_argument("--database-url", help="SQLAlchemy URL; default LIAISON_DATABASE_URL or "
                   "sqlite+aiosqlite:///./liaison.db")
    p.add_argument("--policy", help="policy YAML file; default LIAISON_POLICY or the shipped "
                   "St. Petersburg CALL policy")
    p.add_argument("--eido-subscribe", metavar="URL", help="subscribe to new incidents at a "
                   "CAD's NENA-STA-024 EIDO WebSocket service (ws:// or wss://); default "
                   "LIAISON_EIDO_SUBSCRIBE or none")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _settings(args: argparse.Namespace) -> Settings:
    given = {k: getattr(args, k) for k in ("host", "port", "database_url", "policy",
                                           "eido_subscribe")
             if getattr(args, k, None) is not None}
    return Settings(**given)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liaison", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    _server_options(serve)
    demo = sub.add_parser("demo", help="run the service with the built-in CAD simulator")
    _server_options(demo)
    demo.add_argument("--rate", type=float, default=20.0, help="calls per minute (default 20)")
    demo.add_argument("--seed", type=int, default=None, help="seed for a repeatable feed")
    demo.add_argument("--summary-every", type=float, default=60.0, metavar="SECONDS",
                      help="print what the feed did every SECONDS (default 60; 0: never)")
    demo.add_argument("--access-log", action="store_true",
                      help="log every request, the feed's own included (off by default, "
                           "so the accounts and summaries stay readable)")
    migrate = sub.add_parser("migrate", help="upgrade the database schema and exit")
    migrate.add_argument("--database-url")
    policy = sub.add_parser("policy", help="work with routing policies")
    psub = policy.add_subparsers(dest="policy_command", required=True)
    check = psub.add_parser("check", help="validate a policy file and run its test cases")
    check.add_argument("file")
    policy_cli.add_parsers(psub)
    export_commands.add_parsers(sub)
    simulate_command.add_parsers(sub)
    access_cli.add_parsers(sub)
    agencies_cli.add_parsers(sub)
    units_cli.add_parsers(sub)
    rejects = sub.add_parser("rejects", help="rejected CAD input: list, show, re-submit")
    rsub = rejects.add_subparsers(dest="rejects_command", required=True)
    for name, text in (("list", "newest first, with the reasons"),
                       ("show", "one reject with its body as it arrived"),
                       ("resubmit", "submit it again, as it was or corrected")):
        r = rsub.add_parser(name, help=text)
        if name != "list":
            r.add_argument("id", type=int)
        r.add_argument("--url", default="http://127.0.0.1:8000", help="the running Liaison")
        if name == "list":
            r.add_argument("--source", help="only from this adapter (generic, eido, ...)")
            r.add_argument("--limit", type=int, default=20)
        if name == "resubmit":
            r.add_argument("--corrected", metavar="FILE",
                           help="a corrected event (JSON) to submit instead")
    return parser


def policy_check(path: str) -> int:
    try:
        policy = load_policy_file(path)
    except PolicyInvalid as exc:
        print(f"{path}: invalid policy ({len(exc.errors)} error(s))", file=sys.stderr)
        for err in exc.errors:
            print(f"  {err}", file=sys.stderr)
        return 2
    results = run_tests(policy)
    failed = [r for r in results if not r.passed]
    print(f"{path}: policy {policy.version_label} is valid "
          f"(phase {policy.program.phase}, {len(policy.exclusions)} exclusions, "
          f"{len(policy.rules)} rules)")
    # Warnings do not fail the check: an overlap can be what the supervisor meant.
    warnings = check_policy(policy)
    print(f"  static analysis: {len(warnings) or 'no'} warning(s)")
    for w in warnings:
        print(f"  WARN  {w.kind}: {w.message}")
    for r in results:
        print(f"  {'PASS' if r.passed else 'FAIL'}  {r.name}")
        for f in r.failures:
            print(f"        {f}")
        if not r.passed and r.decision is not None:
            print(f"        decision: {r.decision.explanation}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _reload_policy(app: Any) -> None:
    runtime = getattr(app.state, "runtime", None)
    if runtime is None:
        logging.getLogger("liaison").warning("SIGHUP during start-up ignored")
        return
    runtime.policy.reload()


def demo_accounts_file(database_url: str) -> Path:
    """Where the demo writes its accounts: beside its SQLite file, else here."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database)).resolve().parent / DEMO_ACCOUNTS
    return Path.cwd() / DEMO_ACCOUNTS


def _show_accounts(accounts: list[tuple[str, str, str, str]], path: Path) -> None:
    # The agency column says whose calls each one sees: '*' is the region's (every agency).
    lines = [f"  {role:<13} {agency:<8} {name:<26} {password}"
             for role, agency, name, password in accounts]
    header = (f"  {'role':<13} {'agency':<8} {'account':<26} password   (agency *: the "
              "region's, sees every agency)")
    # Only the owner may read it: the passwords let anyone in (demo data only).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("Liaison demo accounts (this demo's database only)\n" + header + "\n"
                + "\n".join(lines) + "\n")
    print(f"Demo accounts (made for this demo only; `liaison serve` makes none; also in "
          f"{path}):", flush=True)
    for line in [header, *lines]:
        print(line, flush=True)


def _policy_text(settings: Settings) -> str:
    """The default agency's policy as the server loads it: the file given, else the
    shipped one."""
    from rules.load import default_policy_text

    return Path(settings.policy).read_text("utf-8") if settings.policy else \
        default_policy_text()


def _settle_heap() -> None:
    """Once started: what start-up built (the app, its routes, the policies, the modules)
    lives as long as the process, so it leaves the cyclic collector's sight (a full
    collection walked its ~200,000 objects again and again under load), and the young
    generation is collected every 10,000 allocations rather than 700 (an event makes a
    few hundred short-lived objects)."""
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def _serve(settings: Settings, log_level: str, demo: dict[str, Any] | None) -> None:
    from api.app import create_app  # only `serve` and `demo` need the web app loaded

    app = create_app(settings)
    quiet = demo is not None and not demo["access_log"]
    if demo is not None:
        # The feed's own HTTP client would log every request it makes.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                            lifespan="on", ws_max_size=64 * 1024, access_log=not quiet,
                            **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        # SIGHUP re-reads the policy file; a broken one is refused and the old one stays.
        loop.add_signal_handler(signal.SIGHUP, lambda: _reload_policy(app))
    serving = asyncio.create_task(server.serve())
    sim_tasks: list[asyncio.Task[None]] = []
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    if server.started:
        _settle_heap()
    if demo is not None:
        if server.started:
            from service.cli.demo_region import demo_region
            from service.cli.simulator import Simulator

            rt = app.state.runtime
            # Two agencies in two time zones; the second's policy is made from the one
            # the demo runs (the default agency's).
            agencies = await demo_region(rt.engine, _policy_text(settings))
            await rt.region.sync(rt.engine)
            accounts, keys = await access_cli.demo_accounts(rt.engine,
                                                            [a.id for a in agencies])
            _show_accounts(accounts, demo_accounts_file(settings.database_url))
            url = f"http://{settings.host}:{settings.port}"
            print(f"Liaison demo on {url}  (log in at {url}/login with an account above; "
                  f"API docs: {url}/docs); simulator at "
                  f"{demo['rate']:g} calls/min for agencies "
                  + ", ".join(f"{a.id} ({a.timezone})" for a in agencies), flush=True)
            if quiet:
                print("Requests are not logged (--access-log logs them); what the feed "
                      "did is summed up below.", flush=True)
            sim = Simulator(url, rate_per_min=demo["rate"], seed=demo["seed"], keys=keys)
            sim_tasks.append(asyncio.create_task(sim.run()))
            if demo["summary_every"] > 0:
                sim_tasks.append(asyncio.create_task(sim.report(
                    demo["summary_every"], lambda text: print(text, flush=True))))
    await serving
    for task in sim_tasks:
        task.cancel()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "policy":
        if args.policy_command in policy_cli.COMMANDS:
            return policy_cli.run(args)
        return policy_check(args.file)
    if args.command in export_commands.COMMANDS:
        return export_commands.run(args)
    if args.command in access_cli.COMMANDS:
        return access_cli.run(args)
    if args.command in agencies_cli.COMMANDS:
        return agencies_cli.run(args)
    if args.command in units_cli.COMMANDS:
        return units_cli.run(args)
    if args.command in simulate_command.COMMANDS:
        return simulate_command.run(args)
    if args.command == "rejects":
        from service.cli.operator import rejects_command

        return rejects_command(args.rejects_command, url=args.url,
                               reject_id=getattr(args, "id", None),
                               source=getattr(args, "source", None),
                               limit=getattr(args, "limit", 20),
                               corrected_file=getattr(args, "corrected", None))
    logging.basicConfig(level=getattr(args, "log_level", "info").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "migrate":
        from service.store.db import create_engine, migrate

        settings = Settings(**({"database_url": args.database_url} if args.database_url else {}))

        async def run() -> None:
            engine = create_engine(settings.database_url)
            await migrate(engine)
            await engine.dispose()

        asyncio.run(run())
        print("database schema is up to date")
        return 0
    settings = _settings(args)
    demo = ({"rate": args.rate, "seed": args.seed, "summary_every": args.summary_every,
             "access_log": args.access_log} if args.command == "demo" else None)
    try:
        # uvicorn's own loop choice (uvloop where installed), as `uvicorn.run` would make.
        config = uvicorn.Config(app="api.app:create_app", **UVICORN_OPTIONS)
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(_serve(settings, args.log_level, demo))
    except PolicyInvalid as exc:
        print(f"liaison: refusing to start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
