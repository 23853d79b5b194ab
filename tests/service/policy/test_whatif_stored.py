"""Stored calls made into the facts the rules see (service/policy/whatif.py): a call of a
kind already read (alike in every fact but the time) is that call at its own time, equal
to what the plain path makes of it, and a call differing in any one fact is made anew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from service.policy.whatif import StoredCalls, sim_call

T0 = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
ROW: dict[str, Any] = {
    "id": "c0", "channel": "911", "nature_code": "MNTL", "nature_text": "Mental person",
    "narrative": "talking to himself", "priority": 3, "district": "D2",
    "flags": '["weapon"]', "lat": 27.77, "lon": -82.64, "purpose": "live", "opened_at": T0}
OTHER: dict[str, Any] = {
    "channel": "crisis_line", "nature_code": "VAG", "nature_text": "Vagrant",
    "narrative": None, "priority": None, "district": "D1", "flags": "[]", "lat": None,
    "lon": 10.0, "purpose": "test"}


def row(**changes: Any) -> SimpleNamespace:
    return SimpleNamespace(**{**ROW, **changes})


@pytest.mark.parametrize("field", sorted(OTHER))
def test_a_call_differing_in_one_fact_is_made_as_the_plain_path_makes_it(field: str) -> None:
    made = StoredCalls()
    rows = [row(), row(id="c1", opened_at=T0 + timedelta(minutes=5)),
            row(id="c2", opened_at=T0 + timedelta(minutes=9), **{field: OTHER[field]}),
            row(id="c3", opened_at=T0 + timedelta(minutes=12))]
    for r in rows:
        got, plain = made(r), sim_call(r)
        assert got == plain, (field, r.id)
        assert got.facts.occurred_at.utcoffset() == timedelta(0)
    # The one that differs is not the first of its kind at another time.
    assert made(rows[2]).facts != made(rows[1]).facts
