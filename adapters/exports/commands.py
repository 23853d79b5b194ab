"""The `liaison profile check` and `liaison replay` commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from adapters.exports.mapping import ExportError, Mapper
from adapters.exports.profile import (
    ProfileInvalid,
    agency_id,
    resolve_profile,
    rule_warnings,
    shipped_profiles,
    zone_warning,
)
from rules.load import PolicyInvalid, load_default_policy, load_policy_file

COMMANDS = ("profile", "replay")
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_RATE = 50.0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    profile = sub.add_parser("profile", help="work with CAD export profiles")
    psub = profile.add_subparsers(dest="profile_command", required=True)
    check = psub.add_parser(
        "check", help="validate an export profile; with --sample, show how its rows map")
    check.add_argument("file", help=f"profile YAML, or a shipped one: "
                                    f"{', '.join(shipped_profiles())}")
    check.add_argument("--sample", help="an export to map with it (no server needed)")
    check.add_argument("--rows", type=_positive, help="map only the first N rows")
    check.add_argument("--policy", help="policy to classify with (default: the shipped one)")

    replay = sub.add_parser("replay", help="replay a city's calls-for-service export into a "
                                           "running Liaison, as its CAD would")
    replay.add_argument("file", help="the export (CSV)")
    replay.add_argument("--profile", required=True,
                        help=f"profile YAML, or a shipped one: {', '.join(shipped_profiles())}")
    replay.add_argument("--url", default=DEFAULT_URL, help=f"Liaison (default {DEFAULT_URL})")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float,
                      help=f"events sent per second (default {DEFAULT_RATE:g})")
    pace.add_argument("--as-fast-as-possible", action="store_true",
                      help="send as fast as the server answers")
    replay.add_argument("--concurrency", type=_positive, default=32,
                        help="events in flight at once, each on its own connection "
                             "(default 32)")
    replay.add_argument("--unordered", action="store_true",
                        help="send in CAD-time order but let the server decide in the order "
                             "events arrive: faster while the team's units are near full, "
                             "but a unit may go to a later call than in CAD order")
    replay.add_argument("--calls-csv", metavar="FILE",
                        help="write one line per accepted call: incident, call id, CAD time, "
                             "destination, category, not-served reason")
    replay.add_argument("--limit", type=_positive, help="only the first N rows of the export")
    replay.add_argument("--agency", type=agency_id,
                        help="the agency the rows are for, in a region of several: each "
                             "call is that agency's, decided by its policy (default: the "
                             "profile's `profile.agency`, else the server decides by key, "
                             "district or place)")
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "profile":
            return _profile_check(args)
        return _replay(args)
    except ProfileInvalid as exc:
        print(f"{exc.source}: invalid profile ({len(exc.errors)} error(s))", file=sys.stderr)
        for err in exc.errors:
            print(f"  {err}", file=sys.stderr)
        return 2
    except (ExportError, PolicyInvalid) as exc:
        print(f"liaison: {exc}", file=sys.stderr)
        return 2


def _profile_check(args: argparse.Namespace) -> int:
    # Imported here: they bring in the API's error model and httpx, which `liaison serve`
    # and `liaison policy check` need not load.
    from adapters.exports.check import check_export
    from rules.evaluate import compile_policy

    profile, where = resolve_profile(args.file)
    print(f"{args.file}: profile {profile.label} is valid ({len(profile.codes)} code rules, "
          f"{len(profile.skip) + len(profile.officer_rules)} skip rules)")
    policy = load_policy_file(args.policy) if args.policy else load_default_policy()
    if not args.sample:
        zone = zone_warning(profile, policy.program.timezone, policy.version_label)
        for warning in [*rule_warnings(profile), *([zone] if zone else [])]:
            print(f"  WARNING: {warning}")
        return 0
    sample = Path(args.sample)
    mapper = Mapper.for_export(profile, sample, where)
    report = check_export(mapper, sample, rows=args.rows, policy=compile_policy(policy))
    print(report.render())
    if report.sendable == 0:
        print(f"liaison: no row of {sample} would be sent with profile {profile.label} "
              "(the reasons are above)", file=sys.stderr)
        return 1
    return 0


def _replay(args: argparse.Namespace) -> int:
    from adapters.exports.replay import ServerUnavailable, replay_export, write_calls_csv

    profile, where = resolve_profile(args.profile)
    export = Path(args.file)
    mapper = Mapper.for_export(profile, export, where, agency=args.agency)
    rate = None if args.as_fast_as_possible else (args.rate or DEFAULT_RATE)
    if rate is not None and rate <= 0:
        print("liaison: --rate must be above 0", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(replay_export(
            export, mapper, url=args.url.rstrip("/"), rate=rate, concurrency=args.concurrency,
            limit=args.limit, ordered=not args.unordered,
            progress=None if args.no_progress else sys.stderr))
    except ServerUnavailable as exc:
        print(f"liaison: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nliaison: replay interrupted; a re-run resends nothing already stored",
              file=sys.stderr)
        return 130
    if summary.agency_refused:
        print(f"liaison: {args.url} refuses agency {summary.agency!r} for these rows: "
              f"{summary.agency_refused} (`liaison agency list` names the agencies; the "
              "key posts for its own agency only)", file=sys.stderr)
        return 2
    if args.calls_csv:
        with open(args.calls_csv, "w", newline="", encoding="utf-8") as f:
            n = write_calls_csv(summary.calls, f)
        if not args.no_progress:
            print(f"{n:,} calls written to {args.calls_csv}", file=sys.stderr)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.render())
    return 3 if summary.stopped else 0
