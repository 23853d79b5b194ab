"""Rows alike mapped once (adapters/exports/rows_alike.py) give every row the outcome the
plain path gives it: mapped, checked against the CAD contract and folded in full. Held
to it on hand-made rows that fail, are refused or close before they open beside rows
alike that do not, on the real exports, and on them repeated as a year
(bench/whatif_year.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.exports.check import contract_problem
from adapters.exports.mapping import Mapper, _strptime, read_rows
from adapters.exports.profile import resolve_profile
from adapters.exports.rows_alike import RowsAlike
from routing.whatif import SharedValues
from service.calls.event import CallEvent, takes_ids, takes_time
from service.calls.fold import fold
from tests.factories import PROFILE, row, write_export, write_profile
from tests.shared_data import MILWAUKEE, NASHVILLE, SAN_DIEGO, SAN_JOSE, shared_export

ROOT = Path(__file__).resolve().parents[2]


def plain(mapper: Mapper, path: Path) -> list[tuple[Any, ...]]:
    """Each row as calls_from_export made it before rows alike shared anything."""
    shared, out = SharedValues(), []
    for m in mapper.map_file(path):
        if m.outcome != "send":
            out.append((m.outcome, m.reason or "?"))
            continue
        problem, events = contract_problem(m.events)
        if problem is not None:
            out.append(("refused", problem))
            continue
        out.append(("call", m.incident_id or f"row {m.row}",
                    shared(fold(events).facts())))
    return out


def alike(mapper: Mapper, path: Path) -> list[tuple[Any, ...]]:
    outcome_of = RowsAlike(mapper)
    out: list[tuple[Any, ...]] = []
    for n, r in read_rows(path, mapper.profile):
        got = outcome_of(n, r)
        out.append(got if got[0] != "call" else ("call", got[1].call_id, got[1].facts))
    return out


def assert_same(mapper: Mapper, path: Path) -> list[tuple[Any, ...]]:
    want, got = plain(mapper, path), alike(mapper, path)
    assert len(want) == len(got)
    for w, g in zip(want, got, strict=True):
        assert w[:2] == g[:2]
        if w[0] == "call":
            a, b = w[2], g[2]
            assert a == b and a.model_fields_set == b.model_fields_set
            # The time as written and read back: the same wall time, offset and zone kind.
            assert repr(a.occurred_at) == repr(b.occurred_at)
    return want


def test_rows_that_fail_or_are_refused_beside_rows_alike(tmp_path: Path) -> None:
    same = {"type": "MH", "block": "100", "street": "MAIN ST", "beat": "D1"}
    rows = [
        row(call_no="A-1", received="03/12/2024 14:05:00", **same),
        row(call_no="A-2", received="03/12/2024 15:05:00", closed="03/12/2024 16:00:00",
            **same),
        row(call_no="A-3", received="03/12/2024 15:05:00", closed="03/12/2024 15:00:00",
            **same),  # closed before it opened: folded in the plain path
        row(call_no="", received="03/12/2024 16:05:00", **same),  # no incident number
        row(call_no="A-5", received="", **same),  # no time
        row(call_no="A-6", received="13/12/2024 16:05:00", **same),  # no such month
        row(call_no="A-7", received="03/12/2024 16:05:00", closed="soon", **same),
        row(call_no="A-8" + "9" * 130, received="03/12/2024 16:05:00", **same),  # too long
        row(call_no="A-9", received="03/12/1850 16:05:00", **same),  # local mean time
        row(call_no="A-10", received="03/12/2999 16:05:00", **same),  # far ahead
        row(call_no="A-11", received="11/03/2024 01:30:00", **same),  # clocks go back
        row(call_no="A-12", received="03/10/2024 02:30:00", **same),  # clocks go forward
        row(call_no="A-13", received="11/03/2024 01:30:00", **(same | {"type": ""})),
        row(call_no="A-14", received="11/04/2024 01:30:00", type="TS"),  # officer: skipped
        row(call_no="A-15", received="11/04/2024 01:31:00", type="TS"),
        row(call_no="A-16", received="12/04/2024 01:31:00", **same),
    ]
    profile = write_profile(tmp_path / "testville.yaml", PROFILE)
    export = write_export(tmp_path / "calls.csv", rows + rows[::-1])
    mapper = Mapper.for_export(resolve_profile(str(profile))[0], export, tmp_path)
    outcomes = assert_same(mapper, export)
    kinds = {o[0] for o in outcomes}
    assert kinds == {"call", "fail", "refused", "skip"}


@pytest.mark.parametrize(("city", "relative"), [("san-diego", SAN_DIEGO),
                                               ("nashville", NASHVILLE)])
def test_a_year_of_a_real_export_alike_and_plain(city: str, relative: str,
                                                 tmp_path: Path) -> None:
    """The real rows in turn with their own incident numbers and times, as the bench
    makes a year."""
    from bench.whatif_year import generate

    real = shared_export(relative)
    for other in real.parent.iterdir():  # its lookups beside it
        if other != real:
            (tmp_path / other.name).symlink_to(other)
    export = tmp_path / "year.csv"
    generate(city, 40_000, export)
    profile, where = resolve_profile(city)
    outcomes = assert_same(Mapper.for_export(profile, export, where), export)
    assert sum(o[0] == "call" for o in outcomes) > 10_000


@pytest.mark.parametrize(("profile_file", "relative"), [
    ("milwaukee.yaml", MILWAUKEE), ("san-jose.yaml", SAN_JOSE[0])])
def test_other_real_exports_alike_and_plain(profile_file: str, relative: str) -> None:
    real = shared_export(relative)
    profile, where = resolve_profile(str(ROOT / "tests/adapters/profiles" / profile_file))
    assert_same(Mapper.for_export(profile, real, where), real)


def test_takes_time_and_ids_as_the_contract_does() -> None:
    zones = [ZoneInfo(z) for z in ("America/Los_Angeles", "Europe/Dublin", "Asia/Kolkata",
                                   "Australia/Lord_Howe")]
    rng = random.Random(3)
    now = datetime.now(UTC)
    times = [datetime(1850, 6, 1, 12, tzinfo=zones[0]), now + timedelta(hours=23),
             now + timedelta(hours=25), datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
             datetime(1, 1, 1, tzinfo=zones[2])]
    times += [datetime(rng.randint(1880, 2030), rng.randint(1, 12), rng.randint(1, 28),
                       rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                       rng.choice([0, 0, 5]), tzinfo=rng.choice(zones),
                       fold=rng.randint(0, 1)) for _ in range(3000)]
    for at in times:
        try:
            CallEvent.model_validate({"event_id": "e", "incident_id": "i", "type": "closed",
                                      "occurred_at": at.isoformat()})
            takes = True
        except ValueError:
            takes = False
        assert takes_time(at) == takes, at
    for n_event, n_incident in [(0, 1), (1, 0), (1, 1), (200, 120), (201, 1), (1, 121)]:
        try:
            CallEvent.model_validate({"event_id": "e" * n_event, "incident_id": "i" * n_incident,
                                      "type": "closed", "occurred_at": "2024-01-01T00:00:00Z"})
            takes = True
        except ValueError:
            takes = False
        assert takes_ids("e" * n_event, "i" * n_incident) == takes


def test_fixed_width_times_read_as_strptime_reads_them() -> None:
    fmt = "%Y-%m-%d %H:%M:%S"
    rng = random.Random(1)

    def read(f: Any, text: str) -> Any:
        try:
            return f(text, fmt)
        except ValueError:
            return "unreadable"

    for _ in range(40_000):
        text = (f"{rng.randint(0, 9999):04d}-{rng.randint(0, 14):02d}-{rng.randint(0, 33):02d}"
                f" {rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 62):02d}")
        if rng.random() < 0.3:  # a character swapped: a space, a sign, another digit
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice("0 9-:\u0663x") + text[i + 1:]
        assert read(_strptime, text) == read(datetime.strptime, text), text
