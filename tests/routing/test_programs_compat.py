"""A policy in today's one-team format decides exactly as before response programs.

The baseline (tests/routing/data/decisions_before_programs.json) was written by
tests/routing/golden.py from main before issue 13: 1,800 seeded calls over the shipped
policy and variants of it (every phase, wrapping and always-on hours, joint, police and
phone-only rules, 0 to 3 units, busy or not)."""

from __future__ import annotations

import json

from tests.routing.golden import GOLDEN, current


def test_one_team_policies_decide_as_before_programs() -> None:
    before = json.loads(GOLDEN.read_text("utf-8"))
    now = current()
    assert now.keys() == before.keys()
    changed = {k: (before[k], now[k]) for k in before if before[k] != now[k]}
    assert not changed, f"{len(changed)} decisions changed, e.g. {list(changed.items())[:3]}"
