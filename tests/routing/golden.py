"""Decisions as they were before response programs (issue 13), kept to prove they still are.

`cases()` draws a fixed, seeded set of calls and availabilities over the shipped policy as
it was then (one team: `one_team_doc()`; the keys still say "shipped") and variants of it
(every phase, unit counts, hours that wrap past midnight, always-on hours, phone-only and
joint rules), and `digest` reduces a decision to its fields of that time.
`python -m tests.routing.golden` wrote tests/routing/data/decisions_before_programs.json
from commit b5b0c12 (main before issue 13); test_programs_compat.py compares against it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from routing.decide import decide_call
from routing.models import Availability, Decision
from rules.call import CallFacts
from rules.evaluate import CompiledPolicy
from tests.factories import compiled, one_team_doc, policy_doc
from tests.rules.strategies import CHANNELS, CODES, DISTRICTS, FLAGS, WORDS

GOLDEN = Path(__file__).parent / "data" / "decisions_before_programs.json"
# The decision's fields before issue 13; fields added since are left out of the digest.
FIELDS = ("destination", "mode", "category", "policy_version", "matched_rules",
          "explanation", "basis", "eligible", "not_served_reason", "factors",
          "needs_field_unit", "program", "decided_at", "override", "backup")
PROGRAM_FIELDS = ("phase", "timezone", "hours", "local_time", "within_hours",
                  "units_total", "units_busy")
SEED = 13


def _policies() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = [("shipped", one_team_doc())]
    for phase in (1, 2, 3):
        for hours in (None, {"start": "20:00", "end": "04:00", "days": ["mon", "fri", "sat"]},
                      {"start": "00:00", "end": "00:00", "days": ["tue", "wed"]}):
            doc = one_team_doc()
            doc["program"]["phase"] = phase
            doc["program"]["units"] = phase  # 1, 2, 3 units
            if hours:
                doc["program"]["hours"] = hours
            doc["tests"] = []
            out.append((f"shipped-p{phase}-{hours and hours['start']}", doc))
    rules = [{"id": "a", "category": "cat_a", "action": "team",
              "when": {"nature_code": ["EDP", "MNTL"]}},
             {"id": "b", "category": "cat_b", "action": "joint",
              "when": {"text_any": ["homeless", "drunk"]}},
             {"id": "c", "category": "cat_c", "action": "team", "needs_field_unit": False,
              "when": {"channel": ["crisis_line"]}},
             {"id": "d", "category": "cat_a", "action": "police",
              "when": {"nature_code": ["VAG"]}}]
    exclusions = [{"id": "w", "when": {"flags_any": ["weapon", "violence"]}}]
    for units in (0, 2):
        out.append((f"small-u{units}", policy_doc(rules=copy.deepcopy(rules),
                                                  exclusions=copy.deepcopy(exclusions),
                                                  units=units,
                                                  hours={"start": "09:00", "end": "17:00",
                                                         "days": ["mon", "tue", "wed",
                                                                  "thu", "fri"]})))
    return out


def _call(rng: random.Random) -> dict[str, Any]:
    day, hour = rng.randint(1, 28), rng.randint(0, 23)
    month = rng.choice([1, 3, 7, 11])
    offset = rng.choice(["-04:00", "-05:00", "Z", "+05:30"])
    text = " ".join(rng.sample(WORDS, rng.randint(0, 3)))
    return {
        "channel": rng.choice(CHANNELS),
        "nature_code": rng.choice([*CODES, "", "INFO", "TRUANT", "CITASST", "DRUGS"]),
        "nature_text": text,
        "narrative": rng.choice([None, "no weapons", "holding a knife", text]),
        "priority": rng.choice([None, 1, 2, 3, 5]),
        "district": rng.choice([None, *DISTRICTS]),
        "flags": rng.sample(FLAGS, rng.choice([0, 0, 0, 1])),
        "occurred_at": f"2026-{month:02d}-{day:02d}T{hour:02d}:{rng.choice([0, 59]):02d}:00"
                       f"{offset}",
    }


def cases() -> Iterator[tuple[str, CompiledPolicy, CallFacts, Availability]]:
    rng = random.Random(SEED)
    for name, doc in _policies():
        policy = compiled(doc)
        units = policy.policy.program.units
        for i in range(150):
            busy = rng.randint(0, units + 1)
            yield (f"{name}#{i}", policy, CallFacts.model_validate(_call(rng)),
                   Availability(units_total=units, units_busy=busy))


def digest(decision: Decision) -> dict[str, Any]:
    doc = decision.model_dump(mode="json")
    old = {k: doc[k] for k in FIELDS}
    old["program"] = {k: doc["program"][k] for k in PROGRAM_FIELDS}
    text = json.dumps(old, sort_keys=True, separators=(",", ":"))
    return {"destination": old["destination"], "not_served_reason": old["not_served_reason"],
            "sha256": hashlib.sha256(text.encode()).hexdigest()[:20]}


def current() -> dict[str, dict[str, Any]]:
    return {name: digest(decide_call(call, policy, availability))
            for name, policy, call, availability in cases()}


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(current(), indent=0, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {GOLDEN}")
