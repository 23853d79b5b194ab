"""Stored calls made into the facts the rules see (service/policy/whatif.py): a call of a
kind already read (alike in every fact but the time) is that call at its own time, equal
to what the plain path makes of it, and a call differing in any one fact is made anew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from service.policy.whatif import COLUMN_NAMES, StoredCalls, sim_call

T0 = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
ROW: dict[str, Any] = {
    "id": "c0", "channel": "911", "nature_code": "MNTL", "nature_text": "Mental person",
    "narrative": "talking to himself", "priority": 3, "district": "D2",
    "flags": '["weapon"]', "lat": 27.77, "lon": -82.64, "purpose": "live", "opened_at": T0}
OTHER: dict[str, Any] = {
    "channel": "crisis_line", "nature_code": "VAG", "nature_text": "Vagrant",
    "narrative": None, "priority": None, "district": "D1", "flags": "[]", "lat": None,
    "lon": 10.0, "purpose": "test"}


def row(**changes: Any) -> tuple[Any, ...]:
    """A row as the read hands it over: its columns by position."""
    values = {**ROW, **changes}
    return tuple(values[name] for name in COLUMN_NAMES)


@pytest.mark.parametrize("field", sorted(OTHER))
def test_a_call_differing_in_one_fact_is_made_as_the_plain_path_makes_it(field: str) -> None:
    made = StoredCalls()
    rows = [row(), row(id="c1", opened_at=T0 + timedelta(minutes=5)),
            row(id="c2", opened_at=T0 + timedelta(minutes=9), **{field: OTHER[field]}),
            row(id="c3", opened_at=T0 + timedelta(minutes=12))]
    for r in rows:
        got, plain = made(r), sim_call(r)
        assert got == plain, (field, r[0])
        assert got.facts.occurred_at.utcoffset() == timedelta(0)
    # The one that differs is not the first of its kind at another time.
    assert made(rows[2]).facts != made(rows[1]).facts


def test_the_time_as_sqlite_and_postgresql_hand_it_over_makes_the_same_call() -> None:
    """SQLite gives the stored UTC time as text without an offset; PostgreSQL gives a
    datetime, in whatever zone its session is in."""
    in_text = row(opened_at="2026-03-10 18:00:00.000000")
    elsewhere = row(opened_at=T0.astimezone(timezone(timedelta(hours=-4))))
    plain = sim_call(row())
    assert sim_call(in_text) == sim_call(elsewhere) == plain
    assert plain.facts.occurred_at == T0 and plain.facts.occurred_at.utcoffset() == timedelta(0)
    made = StoredCalls()
    made(row(opened_at=T0 - timedelta(hours=1)))  # the kind is known: the next is moved
    assert made(in_text) == made(elsewhere) == plain
