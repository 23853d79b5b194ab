"""`liaison simulate`: a what-if replay of a CAD export through a candidate policy against
a baseline (by default the version published in the running Liaison at --url, else the
shipped policy), with the team's capacity modelled; the replay itself is offline.

Rows are mapped with the export's profile exactly as `profile check` and `replay` map them
(`Mapper`), each sendable row's events are checked against the CAD contract and folded into
the facts the rules see, and both versions decide every call at once, the baseline in a
forked child (`service.policy.whatif_pair`; the report is `routing.whatif.simulate`'s).
Every row is accounted for: decided, skipped (the profile's reason), failed to map, or
refused by the contract.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from adapters.exports.mapping import ExportError, Mapper
from adapters.exports.profile import (
    ProfileInvalid,
    agency_id,
    resolve_profile,
    shipped_profiles,
)
from rules.load import PolicyInvalid, load_default_policy, load_policy_file, load_policy_text
from rules.models import Policy
from service.access.client_auth import auth_headers, unauthorised_hint

if TYPE_CHECKING:
    from routing.whatif import SimCall, WhatIfReport

COMMANDS = ("simulate",)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate", help="what-if: replay a CAD export through a candidate policy against a "
                         "baseline, with the team's hours and units modelled (offline)")
    p.add_argument("--policy", required=True, help="the candidate policy (YAML)")
    p.add_argument("--calls", required=True, help="the CAD export (CSV)")
    p.add_argument("--profile", required=True,
                   help=f"profile YAML, or a shipped one: {', '.join(shipped_profiles())}")
    p.add_argument("--baseline", help="the baseline policy (YAML); default: the version "
                   "published in the Liaison at --url, else the shipped policy")
    p.add_argument("--url", default="http://127.0.0.1:8000",
                   help="where to ask for the published version (default %(default)s)")
    p.add_argument("--agency", type=agency_id,
                   help="the agency whose calls these are: the baseline is its published "
                        "version at --url (default: the profile's `profile.agency`, else "
                        "the key's agency or the default one)")
    p.add_argument("--seed", type=int, default=0, help="seed for service times (default 0)")
    p.add_argument("--service-times", metavar="FILE",
                   help="YAML: distribution (lognormal, exponential, fixed), sigma, "
                        "default_minutes, by_category {category: mean minutes}")
    p.add_argument("--csv", metavar="FILE", help="write the calls that change destination")
    p.add_argument("--calls-csv", metavar="FILE",
                   help="write every call as the candidate decides it, in the columns of "
                        "`liaison replay --calls-csv` (call_id is empty: no server gave one); "
                        "for a candidate that lists programs, also program_id and waited")
    p.add_argument("--no-wait", action="store_true",
                   help="a policy of programs queues and defers nothing (as a service "
                        "without a queue): the figures before queues and deferral")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--limit", type=int, help="only the first N rows of the export")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


@dataclass
class Intake:
    """What became of each row of the export."""

    rows: int = 0
    calls: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def accounted(self) -> int:
        return self.calls + self.skipped.total() + self.failed.total() + self.refused.total()

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "calls": self.calls,
                "skipped": dict(self.skipped.most_common()),
                "failed": dict(self.failed.most_common()),
                "refused": dict(self.refused.most_common())}


def calls_from_export(mapper: Mapper, path: Path, *, limit: int | None = None
                      ) -> tuple[list[SimCall], Intake]:
    """The export's calls as the rules would see them once the CAD sent them (rows alike
    mapped once: adapters/exports/rows_alike.py)."""
    from adapters.exports.mapping import read_rows
    from adapters.exports.rows_alike import RowsAlike

    intake = Intake()
    calls: list[SimCall] = []
    outcome_of = RowsAlike(mapper)
    for n, row in read_rows(path, mapper.profile, limit=limit):
        intake.rows += 1
        outcome = outcome_of(n, row)
        if outcome[0] == "call":
            intake.calls += 1
            calls.append(outcome[1])
        elif outcome[0] == "skip":
            intake.skipped[outcome[1]] += 1
        elif outcome[0] == "fail":
            intake.failed[outcome[1]] += 1
        else:
            intake.refused[outcome[1]] += 1
    return calls, intake


def write_changed_csv(report: WhatIfReport, path: Path) -> int:
    from routing.whatif import write_changed_csv as write_csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        return write_csv(report, f)


def write_decided_csv(report: WhatIfReport, path: Path, *, programs: bool = False) -> int:
    """Every call as the candidate decided it, as `liaison replay --calls-csv` writes a
    replay's: the incident is the export's, the call id empty (no server made one). With
    `programs` (the candidate lists programs) each call's final destination comes with its
    program and whether it waited, to compare with a live replay call by call."""
    from adapters.exports.replay import CallRow, write_calls_csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        return write_calls_csv((CallRow(incident_id=c.call_id, call_id="",
                                        occurred_at=c.occurred_at, destination=c.destination,
                                        category=c.category or "",
                                        not_served_reason=c.not_served_reason or "",
                                        program_id=c.program_id or "",
                                        waited="true" if c.waited else "false")
                                for c in report.decided), f, programs=programs)


def _progress_class() -> type[Any]:
    from adapters.exports.replay import Progress

    class CallsProgress(Progress):
        """The replay's progress bar, counting calls decided."""

        def _line(self, now: float) -> str:
            return super()._line(now).replace(" rows sent ", " calls decided ")

    return CallsProgress


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from routing.whatif import ServiceTimesInvalid

    try:
        return _simulate(args, out or sys.stdout)
    except ProfileInvalid as exc:
        print(f"{exc.source}: invalid profile ({len(exc.errors)} error(s))", file=sys.stderr)
        for err in exc.errors:
            print(f"  {err}", file=sys.stderr)
        return 2
    except (ExportError, PolicyInvalid, ServiceTimesInvalid, NoSuchAgency) as exc:
        print(f"liaison: {exc}", file=sys.stderr)
        return 2


class NoSuchAgency(Exception):
    """The server has no agency of that id (or none the key may see)."""


def _baseline(args: argparse.Namespace, agency: str | None) -> Policy:
    """The file given; else the published version of the running service (the agency's,
    when one is named); else the shipped policy (offline), saying which on stderr."""
    if args.baseline:
        return load_policy_file(args.baseline)
    params = {"agency": agency} if agency else {}
    try:
        with httpx.Client(base_url=args.url.rstrip("/"), timeout=10,
                          headers=auth_headers()) as client:
            r = client.get("/v1/policies", params=params)
            if r.status_code == 404 and agency:
                # The shipped policy is no stand-in for an agency the server lacks.
                raise NoSuchAgency(f"{args.url} has no agency {agency!r} (`liaison agency "
                                   "list` names them)")
            versions = r.raise_for_status().json()["versions"]
            published = next(v["label"] for v in versions if v["status"] == "published")
            text = client.get(f"/v1/policies/{published}",
                              params={"format": "yaml", **params}).raise_for_status().text
    except (httpx.HTTPError, KeyError, StopIteration, ValueError) as exc:
        why = type(exc).__name__
        if isinstance(exc, httpx.HTTPStatusError):
            why = unauthorised_hint(exc.response.status_code) or why
        print(f"liaison simulate: no published version from {args.url} "
              f"({why}); the baseline is the shipped policy", file=sys.stderr)
        return load_default_policy()
    whose = f" for agency {agency}" if agency else ""
    print(f"liaison simulate: baseline is {published}, published{whose} at {args.url}",
          file=sys.stderr)
    return load_policy_text(text, f"{published} from {args.url}")


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The garbage collector paused: a year's calls are a million objects kept to the end
    and make no cycles, yet each of its full passes walks them all (a sixth of the run
    on a year of San Diego's calls). Freed by reference counting as ever."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _simulate(args: argparse.Namespace, out: TextIO) -> int:
    from routing.whatif import ServiceTimes, load_service_times, render, replay_of
    from rules.evaluate import compile_policy
    from service.policy.whatif_pair import decide_pair, shown_in_parent

    started = time.monotonic()
    candidate = compile_policy(load_policy_file(args.policy))
    profile, where = resolve_profile(args.profile)
    export = Path(args.calls)
    mapper = Mapper.for_export(profile, export, where, agency=args.agency)
    baseline = compile_policy(_baseline(args, mapper.agency))
    times = load_service_times(args.service_times) if args.service_times else ServiceTimes()
    with _no_cycle_collection():
        calls, intake = calls_from_export(mapper, export, limit=args.limit)
        bar = _progress_class()(len(calls), None if args.no_progress else sys.stderr,
                                f"simulate {candidate.version} vs {baseline.version}")
        # The baseline decided in a forked child at the same time (this process has one
        # thread): a year's calls in about the time of one version.
        report = decide_pair(replay_of(calls, service_times=times, seed=args.seed),
                             candidate, baseline, progress=shown_in_parent(bar.advance),
                             keep_calls=bool(args.calls_csv), may_wait=not args.no_wait)
        bar.close()
    if args.csv:
        n = write_changed_csv(report, Path(args.csv))
        print(f"{n:,} changed calls written to {args.csv}", file=sys.stderr)
    if args.calls_csv:
        n = write_decided_csv(report, Path(args.calls_csv),
                              programs=candidate.programs.named)
        print(f"{n:,} calls written to {args.calls_csv}", file=sys.stderr)
    seconds = time.monotonic() - started
    if args.json:
        doc = {"export": str(export), "profile": profile.label, "intake": intake.to_dict(),
               **report.model_dump(mode="json")}
        print(json.dumps(doc, indent=2), file=out)
    else:
        print(f"{export}: {intake.rows:,} rows with profile {profile.label}: "
              f"{intake.calls:,} calls decided, {intake.skipped.total():,} skipped, "
              f"{intake.failed.total():,} failed to map, "
              f"{intake.refused.total():,} refused by the CAD contract", file=out)
        print(render(report), file=out)
    print(f"simulated in {seconds:.1f} s", file=sys.stderr)
    return 0
