"""Classification throughput: the compiled fast path against rule-by-rule evaluation.

    .venv/bin/python bench/classify.py            # full run (~1 min)
    .venv/bin/python bench/classify.py --quick    # smoke run (~15 s)
    .venv/bin/python bench/classify.py --calls 20000 --repeat 5 --rules 500 --seed 7

Method
------
- One process pinned to one core (`sched_setaffinity`, where the OS has it), no I/O:
  calls are built (`CallFacts`) and policies compiled before any timing starts.
- Two policies: the shipped one (`rules/policies/st_petersburg_call.yaml`, 7 exclusions,
  9 rules) and a generated one of `--rules` rules (default 500) behind the shipped
  exclusions. Each generated rule has its own nature codes and keywords, in the shapes
  the shipped rules use: `any` of codes and keywords (single words and two-word
  phrases), `all` of a code and a keyword, channel rules, a few `text_none`,
  `flags_none`, priority and time-of-day conditions (which the index cannot narrow).
- A call mix per policy (seeded): about 60% carry a code the policy knows, with or
  without matching words in the text, 15% only text the policy knows under a
  generic code, 25% codes and text it does not know; 10% carry a safety flag, 5%
  come through a channel a rule names; times spread over a week in three UTC
  offsets; a few texts are non-ASCII (they take the regex path, not the word look-up).
- Evaluators, each over the same mix:
  - `naive (traced)`: `rules.evaluate.classify`, the interpreter: every exclusion, then
    rule by rule until one holds, recording a `Check` per condition;
  - `compiled (fast)`: `classify_fast`, the index and word look-up, no trace;
  - `compiled + routing trace`: `classify_for_routing`, what live routing needs: the
    fast verdict plus the trace of just the entries that held, for the explanation.
- Each evaluator runs the mix `--repeat` times; the best run is reported (calls/s =
  calls / seconds), with its ratio to the naive evaluator. The naive evaluator runs
  the first `--naive-calls` calls of the mix (default 2,000: it manages a few hundred
  a second on the 500-rule policy), the compiled ones all of it. Before timing, the
  fast verdict on each of those first calls is checked against the interpreter's
  (category, action, rule, field-unit need, exclusions, matched rules); a mismatch
  aborts.
- Routing (classification + routing per call, `routing.decide.decide_call`), on the
  shipped policy's calls: `one team` is the shipped policy as it is (today's figure);
  `500 area polygons` is the same policy written as three response programs (a field
  team, a co-response unit, a phone line) whose service areas are 500 polygons of 33
  vertices each (480 for the field team, 20 for the co-response unit), every call given
  coordinates in the areas' region and each program a state (units busy, queue) so queues
  and deferrals are decided too. Both over the same calls, same run; the ratio is the
  cost of programs and areas (aim: within 2x).
- Targets: >= 100,000 calls/s on the shipped policy, >= 20,000 on the generated one,
  for the fast path. The exit status is non-zero only on a mismatch, never on a
  missed target. A table is printed, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import shapely  # noqa: E402
import yaml  # noqa: E402

from routing.decide import decide_call  # noqa: E402
from routing.models import Availability, ProgramState  # noqa: E402
from rules.call import CallFacts  # noqa: E402
from rules.evaluate import (  # noqa: E402
    CompiledPolicy,
    classify,
    classify_fast,
    classify_for_routing,
    compile_policy,
)
from rules.load import default_policy_text, parse_policy  # noqa: E402
from rules.models import Flag  # noqa: E402

TARGETS = {"shipped": 100_000, "generated": 20_000}
FLAGS: list[Flag] = ["weapon", "violence", "injury", "medical", "crime_in_progress"]
FILLER = ["caller", "reports", "subject", "male", "female", "near", "the", "store", "park",
          "corner", "refusing", "to", "leave", "yelling", "outside", "apartment", "lobby",
          "bus", "stop", "requests", "assistance", "unknown", "problem", "adult", "wearing",
          "red", "shirt", "walking", "northbound", "on", "4th", "street", "behind", "building"]
UNKNOWN_CODES = ["ALRBA", "INFO", "TRAFFIC", "PARKING", "ANIMAL", "FOUND", "LOST", "MVA",
                 "SUSP", "HAZARD", "ALARM", "CHECK"]
OFFSETS = [timezone(timedelta(hours=-4)), timezone(timedelta(hours=-5)), UTC]


def _codes_and_words(when: dict[str, Any], codes: set[str], words: set[str]) -> None:
    for key, value in when.items():
        if key == "nature_code":
            codes.update(value)
        elif key == "text_any":
            words.update(value)
        elif key in ("any", "all"):
            for sub in value:
                _codes_and_words(sub, codes, words)
        elif key == "not":
            _codes_and_words(value, codes, words)


def generated_policy(n_rules: int, rng: random.Random) -> dict[str, Any]:
    """The shipped exclusions and program, `n_rules` generated rules of the shipped shapes."""
    doc = yaml.safe_load(default_policy_text())
    categories = [f"cat_{i}" for i in range(20)]
    rules: list[dict[str, Any]] = []
    for i in range(n_rules):
        codes = [f"G{i:03d}{s}" for s in "ABC"[: rng.randint(1, 3)]]
        word = f"w{i:03d}x"
        phrase = f"{FILLER[i % len(FILLER)]} p{i:03d}y"
        shape = rng.random()
        when: dict[str, Any]
        if shape < 0.6:
            when = {"any": [{"nature_code": codes}, {"text_any": [word, phrase]}]}
        elif shape < 0.8:
            when = {"any": [{"nature_code": codes[:1]},
                            {"all": [{"nature_code": codes[1:] or codes},
                                     {"text_any": [word]}]}]}
        elif shape < 0.85:
            when = {"nature_code": codes, "text_none": [phrase]}
        elif shape < 0.9:
            when = {"nature_code": codes, "flags_none": ["weapon"], "priority": {"max": 3}}
        elif shape < 0.95:
            when = {"text_any": [word, phrase],
                    "time_of_day": {"start": "06:00", "end": "22:00"}}
        elif shape < 0.98:
            when = {"nature_code": codes, "day_of_week": ["mon", "tue", "wed", "thu", "fri"]}
        else:
            when = {"channel": [rng.choice(["follow_up", "crisis_line", "officer_referral"])],
                    "nature_code": codes}
        rules.append({"id": f"gen-{i:03d}", "category": rng.choice(categories),
                      "action": rng.choice(["team", "team", "team", "joint", "police"]),
                      "when": when})
    doc["policy"]["id"] = "generated"
    # The shipped categories stay (its programs, queues and follow-ups name them); the
    # field team takes the generated ones too, so a team rule has a program to go to.
    doc["categories"] = [*doc["categories"], *categories]
    for program in doc.get("programs", []):
        if program.get("mode", "field") == "field":
            program["categories"] = [*program["categories"], *categories]
    doc["rules"] = rules
    doc["tests"] = []
    return doc


def call_mix(doc: dict[str, Any], n: int, rng: random.Random) -> list[CallFacts]:
    codes: set[str] = set()
    words: set[str] = set()
    for entry in doc["rules"] + doc["exclusions"]:
        _codes_and_words(entry["when"], codes, words)
    known_codes, known_words = sorted(codes), sorted(words)
    start = datetime(2026, 3, 9, tzinfo=UTC)
    calls: list[CallFacts] = []
    for _ in range(n):
        filler = " ".join(rng.choices(FILLER, k=rng.randint(3, 12)))
        r = rng.random()
        if r < 0.60:
            code = rng.choice(known_codes)
            text = filler if rng.random() < 0.5 else f"{filler} {rng.choice(known_words)}"
        elif r < 0.75:
            code = rng.choice(UNKNOWN_CODES)
            text = f"{filler} {rng.choice(known_words)} {filler[:20]}"
        else:
            code = rng.choice(UNKNOWN_CODES)
            text = filler
        if rng.random() < 0.03:
            text += " café señora"
        words_in = text.split()
        cut = rng.randint(0, len(words_in))
        at = start + timedelta(minutes=rng.randrange(7 * 24 * 60))
        calls.append(CallFacts(
            channel=rng.choice(["follow_up", "crisis_line", "officer_referral"])
            if rng.random() < 0.05 else rng.choice(["911", "911", "non_emergency"]),
            nature_code=code.lower() if rng.random() < 0.1 else code,
            nature_text=" ".join(words_in[:cut]).capitalize(),
            narrative=" ".join(words_in[cut:]) or None,
            priority=rng.randint(1, 5),
            district=rng.choice(["north", "south", None]),
            flags=frozenset(rng.sample(FLAGS, rng.randint(1, 2))) if rng.random() < 0.1
            else frozenset(),
            occurred_at=at.astimezone(rng.choice(OFFSETS)),
        ))
    return calls


def _verdict(c: Any) -> tuple[Any, ...]:
    return (c.category, c.action, c.rule_id, c.needs_field_unit, list(c.exclusions),
            list(c.matched_rules))


def check_equivalence(policy: CompiledPolicy, calls: list[CallFacts]) -> None:
    for call in calls:
        naive, fast = classify(call, policy), classify_fast(call, policy)
        if _verdict(naive) != _verdict(fast):
            raise SystemExit(f"fast path disagrees with classify on {call!r}:\n"
                             f"  classify: {_verdict(naive)}\n  fast:     {_verdict(fast)}")


def best_rate(fn: Callable[[CallFacts, CompiledPolicy], Any], policy: CompiledPolicy,
              calls: list[CallFacts], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for call in calls:
            fn(call, policy)
        best = min(best, time.perf_counter() - t0)
    return len(calls) / best


def _circles(n: int, rng: random.Random, x0: float, y0: float) -> dict[str, Any]:
    """`n` round polygons (33 vertices) on a grid from (x0, y0): a FeatureCollection."""
    features = []
    for i in range(n):
        x, y = x0 + 0.006 * (i % 25), y0 + 0.006 * (i // 25)
        ring = shapely.Point(x, y).buffer(0.0028 + 0.0002 * rng.random(), quad_segs=8)
        features.append({"type": "Feature", "properties": {},
                         "geometry": shapely.geometry.mapping(ring)})
    return {"type": "FeatureCollection", "features": features}


def programs_policy(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The shipped policy as three programs whose areas are 500 polygons in all."""
    doc = {**doc, "program": {k: v for k, v in doc["program"].items() if k != "units"}}
    field = [c for c in doc["categories"] if c != "crisis_line"]
    doc["programs"] = [
        {"id": "call", "name": "CALL field team", "mode": "field", "categories": field,
         "hours": {"daily": ["08:00-24:00"]}, "units": 4,
         "area": {"polygons": _circles(480, rng, -82.75, 27.70)},
         "queue": [{"category": c, "max_wait_minutes": 30} for c in field],
         "deferrable": ["officer_referral", "follow_up"]},
        {"id": "co", "name": "Co-response", "mode": "co_response",
         "categories": ["mental_health", "substance_use"], "units": 2,
         "area": {"polygons": _circles(20, rng, -82.75, 27.82)}},
        {"id": "line", "name": "Crisis line", "mode": "phone", "categories": ["crisis_line"]},
    ]
    doc["tests"] = []
    return doc


def routing_rates(doc: dict[str, Any], n: int, repeat: int, rng: random.Random
                  ) -> dict[str, Any]:
    """Classification + routing per call: the one-team policy against the same policy as
    programs with 500 area polygons, over the same calls (with coordinates)."""
    one_team = compile_policy(parse_policy(doc))
    t0 = time.perf_counter()
    programs = compile_policy(parse_policy(programs_policy(doc, rng)))
    compile_ms = (time.perf_counter() - t0) * 1000
    assert programs.programs.index is not None and programs.programs.index.size == 500
    calls = [c.model_copy(update={"lat": 27.70 + 0.14 * rng.random(),
                                  "lon": -82.75 + 0.15 * rng.random()})
             for c in call_mix(doc, n, rng)]
    availability = [Availability(units_total=6, units_busy=rng.randint(0, 6)) for _ in calls]
    states = [{"call": ProgramState(units_busy=min(a.units_busy, 4), queued=rng.randint(0, 3)),
               "co": ProgramState(units_busy=max(a.units_busy - 4, 0))} for a in availability]

    def run(policy: CompiledPolicy, with_state: bool) -> float:
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            for call, a, st in zip(calls, availability, states, strict=True):
                decide_call(call, policy, a, state=st if with_state else None)
            best = min(best, time.perf_counter() - t)
        return len(calls) / best

    before, after = run(one_team, False), run(programs, True)
    decided = [decide_call(c, programs, a, state=st)
               for c, a, st in zip(calls, availability, states, strict=True)]
    t = time.perf_counter()
    for c in calls:
        programs.programs.in_area(c.lat, c.lon, c.district)
    lookup_us = (time.perf_counter() - t) / len(calls) * 1e6
    return {"one_team_calls_per_s": round(before), "polygons_500_calls_per_s": round(after),
            "eligible_share": round(sum(d.eligible for d in decided) / len(decided), 3),
            "queued": sum(d.queued is not None for d in decided),
            "deferred": sum(d.deferred_until is not None for d in decided),
            "outside_area": sum(d.not_served_reason == "outside_area" for d in decided),
            "area_lookup_us": round(lookup_us, 1),
            "cost_ratio": round(before / after, 2), "polygons_compile_ms": round(compile_ms, 1),
            "calls": len(calls)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--calls", type=int, default=20_000, help="calls in each mix")
    ap.add_argument("--naive-calls", type=int, default=None,
                    help="calls timed for the naive evaluator and checked (default 2,000)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per evaluator; best kept")
    ap.add_argument("--rules", type=int, default=500, help="rules in the generated policy")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="5,000 calls, 2 runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.calls, args.repeat = 5_000, 2
    naive_calls = min(args.calls, args.naive_calls or 2_000)

    core = None
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})

    rng = random.Random(args.seed)
    shipped_doc = yaml.safe_load(default_policy_text())
    docs = {"shipped": shipped_doc, "generated": generated_policy(args.rules, rng)}
    evaluators: list[tuple[str, str, Callable[[CallFacts, CompiledPolicy], Any]]] = [
        ("naive", "naive (traced classify)", classify),
        ("fast", "compiled (classify_fast)", classify_fast),
        ("fast_routing", "compiled + routing trace", classify_for_routing),
    ]
    results: dict[str, Any] = {}
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"pinned to core {core}; {args.calls} calls per mix, best of {args.repeat}")
    print(f"{'policy':<24} {'evaluator':<26} {'calls/s':>12} {'vs naive':>9} {'target':>9}")
    for name, doc in docs.items():
        t0 = time.perf_counter()
        policy = compile_policy(parse_policy(doc))
        compile_ms = (time.perf_counter() - t0) * 1000
        calls = call_mix(doc, args.calls, rng)
        check_equivalence(policy, calls[:naive_calls])
        label = f"{name} ({len(doc['rules'])} rules)"
        row: dict[str, Any] = {"rules": len(doc["rules"]),
                               "exclusions": len(doc["exclusions"]),
                               "compile_ms": round(compile_ms, 1)}
        naive_rate = None
        for key, ev_name, fn in evaluators:
            subset = calls[:naive_calls] if fn is classify else calls
            rate = best_rate(fn, policy, subset, args.repeat)
            naive_rate = naive_rate or rate
            row[f"{key}_calls_per_s"] = round(rate)
            row[f"{key}_vs_naive"] = round(rate / naive_rate, 2)
            target = f">={TARGETS[name]:,}" if fn is classify_fast else ""
            print(f"{label:<24} {ev_name:<26} {rate:>12,.0f} {rate / naive_rate:>8.1f}x "
                  f"{target:>9}")
        row["target_calls_per_s"] = TARGETS[name]
        row["target_met"] = row["fast_calls_per_s"] >= TARGETS[name]
        results[name] = row
        print(f"{'':<24} compiled in {compile_ms:.1f} ms; fast verdict == classify on "
              f"{naive_calls} calls")
    routing = routing_rates(shipped_doc, args.calls, args.repeat, rng)
    results["routing"] = routing
    print(f"{'shipped, routing':<24} {'one team (today)':<26} "
          f"{routing['one_team_calls_per_s']:>12,}")
    print(f"{'shipped, routing':<24} {'500 area polygons':<26} "
          f"{routing['polygons_500_calls_per_s']:>12,} {1 / routing['cost_ratio']:>8.2f}x "
          f"{'>=0.50x':>9}")
    print(f"{'':<24} classification + routing per call; areas compiled in "
          f"{routing['polygons_compile_ms']:.0f} ms; {routing['eligible_share']:.0%} of "
          f"calls eligible (tried against the areas), {routing['outside_area']} outside "
          f"them, {routing['queued']} queued, {routing['deferred']} deferred; one area "
          f"lookup {routing['area_lookup_us']} us")
    print(json.dumps({"bench": "classify", "calls": args.calls, "naive_calls": naive_calls,
                      "repeat": args.repeat,
                      "seed": args.seed, "core": core, "python": platform.python_version(),
                      **results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
