"""Reach before and after queues and deferred intake, on real city exports (issue 13).

    .venv/bin/python bench/reach.py                      # San Diego and Nashville (~1 min)
    .venv/bin/python bench/reach.py --quick              # the first 5,000 rows of each
    .venv/bin/python bench/reach.py --policy my.yaml --units 6 --seed 3

Method
------
- The exports under ../shared/data (San Diego 2023, Nashville 2024), mapped with their
  shipped profiles (adapters/exports/profiles) exactly as `liaison simulate` maps them;
  a city whose export is absent is left out with a message.
- The policy (`--policy`, default the shipped St. Petersburg one) with the same units
  (`--units`, default the policy's), service times `routing.whatif.ServiceTimes()` (the
  defaults `liaison simulate` uses), seed `--seed`. A policy of programs has its areas
  dropped (`for_another_city`: San Diego's beats and Nashville's zones are not St.
  Petersburg's districts, so every call would be `outside_area`); `--keep-area` keeps
  them. Three versions of it, over the same calls and the same service-time draws:
  - `one team`: the policy as the one team it was before programs (`as_one_team`: the
    first field program's hours and units in the one-team format, nothing waits);
  - `programs, no wait`: the policy of programs deciding with each program's state but
    never queueing nor deferring (`simulate(..., may_wait=False)`): reach before;
  - `programs + queue`: the same with its queue limits and deferred intake: reach after;
  - `+ urgent wait N min` (`--urgent-wait`, default 10 and 30): the calls the policy keeps
    from waiting (a 0-minute limit: the shipped policy's priorities 0-1) allowed to wait
    N minutes, to show what the rest of the capacity losses would cost in waiting.
  A policy given in the one-team format is turned into a policy of programs by
  `with_queue`: a field team in the policy's hours with its units, taking every team
  category but the crisis line, with a wait limit per category and officer referrals and
  follow-ups deferred; the crisis line as its own phone program at all hours.
- Reported per city and version: eligible calls, served by a team, reach (served /
  eligible), not served by reason, queued / queued then served / fell back, deferred and
  deferred then served, queue waits p50/p90 (minutes, nearest rank), deferred waits,
  safety exclusions routed to a team (must be 0), utilisation, and the seconds the
  simulation of that version took (half a run of it against itself), with the ratio of
  `programs + queue` to `one team` in the same run. Then, per city, what was recovered:
  (served after - served before) / (eligible calls lost to capacity before), against the
  issue's aim of at least half.
- The exit status is non-zero only on an error or a safety exclusion routed to a team,
  never on a figure. A table is printed, then one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from adapters.exports.mapping import Mapper  # noqa: E402
from adapters.exports.profile import resolve_profile  # noqa: E402
from adapters.exports.simulate_command import calls_from_export  # noqa: E402
from routing.whatif import ServiceTimes, SimCall, VersionReport, simulate  # noqa: E402
from rules.evaluate import compile_policy  # noqa: E402
from rules.load import parse_policy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "rules" / "policies" / "st_petersburg_call.yaml"
CITIES = {"san-diego": "san_diego/pd_calls_for_service_2023_datasd.csv",
          "nashville": "nashville/calls_2024.csv"}
# Minutes an eligible call of each category may wait for a unit (the built-in variant).
WAIT_LIMITS = {"mental_health": 30, "substance_use": 30, "disorderly_juvenile": 45,
               "truancy": 60, "neighbor_dispute": 60, "homelessness": 60,
               "call_for_assistance": 45, "follow_up": 120}
DEFERRED = ["officer_referral", "follow_up"]


def with_queue(doc: dict[str, Any], units: int | None = None) -> dict[str, Any]:
    """A one-team policy document as a policy of programs with queue limits and deferred
    intake (see the module docstring); one that lists programs, as it is (units set)."""
    out = copy.deepcopy(doc)
    if out.get("programs"):
        if units is not None:
            for p in out["programs"]:
                if p.get("mode", "field") != "phone":
                    p["units"] = units
        return out
    program = out["program"]
    hours = program.get("hours", {"start": "08:00", "end": "24:00"})
    days = hours.get("days", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    window = f"{hours['start']}-{hours['end']}"
    categories = [c for c in out["categories"] if c != "crisis_line"]
    field: dict[str, Any] = {
        "id": "call", "name": "CALL field team", "mode": "field",
        "categories": categories,
        "hours": {d: [window] if d in days else [] for d in
                  ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "units": units if units is not None else program["units"],
        "queue": [{"category": c, "max_wait_minutes": m} for c, m in WAIT_LIMITS.items()
                  if c in categories],
        "deferrable": DEFERRED}
    out["programs"] = [field]
    if "crisis_line" in out["categories"]:
        out["programs"].append({"id": "crisis-line", "name": "24/7 crisis line",
                                "mode": "phone", "categories": ["crisis_line"]})
    out["policy"]["version"] = f"{out['policy']['version']}+queue"
    return out


def for_another_city(doc: dict[str, Any]) -> dict[str, Any]:
    """A policy of programs with every program's area dropped: another city's calls
    carry its own districts, not the policy's."""
    out = copy.deepcopy(doc)
    for p in out.get("programs") or []:
        p.pop("area", None)
    return out


def as_one_team(doc: dict[str, Any], units: int | None) -> dict[str, Any] | None:
    """The policy in the one-team format: its first field program's single daily shift
    and units (None when its hours cannot be said so); a one-team policy as it is."""
    out = copy.deepcopy(doc)
    programs = out.pop("programs", None)
    if not programs:
        if units is not None:
            out["program"]["units"] = units
        return out
    field = next((p for p in programs if p.get("mode", "field") != "phone"), None)
    hours = (field or {}).get("hours") or {"daily": ["00:00-24:00"]}
    if field is None or set(hours) != {"daily"} or len(hours["daily"]) != 1:
        return None
    start, end = hours["daily"][0].split("-")
    out["program"].update(
        hours={"start": start, "end": end,
               "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
        units=units if units is not None else field["units"])
    # Its cases name programs, as an exclusion's follow-up does (a visit after an overdose
    # changes no decision); the one-team version is for the figures only.
    out.pop("tests", None)
    for exclusion in out.get("exclusions", []):
        exclusion.pop("follow_up", None)
    return out


def _row(name: str, v: VersionReport, seconds: float) -> dict[str, Any]:
    q = v.queue
    assert q is not None
    return {"version": name, "eligible": v.coverage.eligible, "served": v.eligible_served,
            "reach": v.reach, "not_served": {k: n for k, n in q.not_served.items() if n},
            "queued": q.queued, "queued_served": q.queued_served, "fell_back": q.fell_back,
            "deferred": q.deferred, "deferred_served": q.deferred_served,
            "still_waiting": q.still_waiting,
            "queue_wait_p50": q.waits.p50_minutes, "queue_wait_p90": q.waits.p90_minutes,
            "deferred_wait_p50": q.deferred_waits.p50_minutes,
            "deferred_wait_p90": q.deferred_waits.p90_minutes,
            "safety_exclusions_to_team": v.safety_exclusions_to_team,
            "utilisation": v.coverage.utilisation, "seconds": round(seconds, 2)}


def urgent_may_wait(doc: dict[str, Any], minutes: float) -> dict[str, Any]:
    """The policy with every queue line that keeps calls from waiting (0 minutes) set to
    `minutes`: what letting the urgent calls wait would recover, and at what wait."""
    out = copy.deepcopy(doc)
    for p in out.get("programs") or []:
        for limit in p.get("queue") or []:
            if limit.get("max_wait_minutes") == 0:
                limit["max_wait_minutes"] = minutes
    return out


def run_city(calls: list[SimCall], doc: dict[str, Any], units: int | None, seed: int,
             urgent_waits: list[float] | None = None) -> list[dict[str, Any]]:
    """Each version against itself (so the seconds are its own: half the run's)."""
    times = ServiceTimes()
    one_team = as_one_team(doc, units)
    programs = compile_policy(parse_policy(with_queue(doc, units)))
    versions = [("programs, no wait", programs, False), ("programs + queue", programs, True)]
    for m in urgent_waits or []:
        versions.append((f"+ urgent wait {m:g} min",
                         compile_policy(parse_policy(urgent_may_wait(with_queue(doc, units),
                                                                     m))), True))
    if one_team is not None:
        versions.insert(0, ("one team", compile_policy(parse_policy(one_team)), True))
    rows = []
    for name, policy, may_wait in versions:
        started = time.perf_counter()
        report = simulate(calls, policy, policy, service_times=times, seed=seed,
                          may_wait=may_wait)
        rows.append(_row(name, report.candidate, (time.perf_counter() - started) / 2))
    return rows


def _m(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--policy", default=str(SHIPPED), help="policy YAML (default: shipped)")
    ap.add_argument("--units", type=int, help="field units (default: the policy's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"),
                    help="folder of the city exports (default ../shared/data)")
    ap.add_argument("--quick", action="store_true", help="the first 5,000 rows of each")
    ap.add_argument("--urgent-wait", type=float, action="append", default=None,
                    metavar="MINUTES", help="also a version letting the calls the policy "
                    "keeps from waiting (a 0-minute limit) wait this long; repeatable "
                    "(default: 10 and 30)")
    ap.add_argument("--keep-area", action="store_true",
                    help="keep the programs' areas (default: dropped, see above)")
    args = ap.parse_args(argv)
    doc = yaml.safe_load(Path(args.policy).read_text(encoding="utf-8"))
    if not args.keep_area:
        doc = for_another_city(doc)
    results: dict[str, Any] = {}
    bad = 0
    for city, relative in CITIES.items():
        export = Path(args.data) / relative
        if not export.is_file():
            print(f"{city}: no export at {export}; left out", file=sys.stderr)
            continue
        profile, where = resolve_profile(city)
        calls, intake = calls_from_export(Mapper.for_export(profile, export, where), export,
                                          limit=5_000 if args.quick else None)
        urgent = args.urgent_wait if args.urgent_wait is not None else [10.0, 30.0]
        rows = run_city(calls, doc, args.units, args.seed, urgent)
        before = next(r for r in rows if r["version"] == "programs, no wait")
        after = next(r for r in rows if r["version"] == "programs + queue")
        lost = before["not_served"].get("units_busy", 0)
        recovered = after["served"] - before["served"]
        results[city] = {"calls": len(calls), "rows": intake.rows, "versions": rows,
                         "lost_to_capacity_before": lost, "recovered": recovered,
                         "recovered_share": round(recovered / lost, 4) if lost else None}
        bad += sum(r["safety_exclusions_to_team"] for r in rows)
        print(f"\n{city}: {len(calls):,} calls of {intake.rows:,} rows "
              f"({profile.label}); policy {args.policy}, seed {args.seed}")
        print(f"  {'version':<19}{'eligible':>9}{'served':>8}{'reach':>8}{'queued':>8}"
              f"{'served':>8}{'fell bk':>8}{'defer':>7}{'served':>8}{'wait p50/p90':>14}"
              f"{'defer p50/p90':>15}{'excl>team':>10}{'util':>7}{'sec':>6}")
        for r in rows:
            print(f"  {r['version']:<19}{r['eligible']:>9,}{r['served']:>8,}"
                  f"{r['reach']:>8.1%}{r['queued']:>8,}{r['queued_served']:>8,}"
                  f"{r['fell_back']:>8,}{r['deferred']:>7,}{r['deferred_served']:>8,}"
                  f"{_m(r['queue_wait_p50']) + '/' + _m(r['queue_wait_p90']):>14}"
                  f"{_m(r['deferred_wait_p50']) + '/' + _m(r['deferred_wait_p90']):>15}"
                  f"{r['safety_exclusions_to_team']:>10}{r['utilisation']:>7.1%}"
                  f"{r['seconds']:>6.1f}")
        for r in rows:
            print(f"    {r['version']}: not served {r['not_served']}")
        ratio = (after["seconds"] / rows[0]["seconds"]
                 if rows[0]["version"] == "one team" and rows[0]["seconds"] else None)
        results[city]["seconds_ratio_queue_vs_one_team"] = (round(ratio, 2) if ratio
                                                            else None)
        share = results[city]["recovered_share"]
        print(f"  lost to capacity before: {lost:,}; recovered with the queue: "
              f"{recovered:,}" + (f" ({share:.0%}; aim >= 50%)" if share is not None else ""))
        for r in rows:
            if r["version"].startswith("+ urgent") and lost:
                print(f"    {r['version']}: recovered {r['served'] - before['served']:,} "
                      f"({(r['served'] - before['served']) / lost:.0%}), waits p50/p90 "
                      f"{_m(r['queue_wait_p50'])}/{_m(r['queue_wait_p90'])} min")
        if ratio:
            print(f"  simulation time, programs + queue / one team: {ratio:.2f}x")
    print(json.dumps({"bench": "reach", "policy": args.policy, "seed": args.seed,
                      "quick": args.quick, "cities": results}, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
