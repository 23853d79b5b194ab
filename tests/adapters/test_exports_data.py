"""Every row of the real San Diego and Nashville exports, mapped offline with the shipped
profiles and classified with the shipped policy: each row is accounted for, the times carry
the offsets in force, and the city codes reach the categories their hints promise."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from adapters.exports.check import CheckReport, check_export
from rules.evaluate import compile_policy
from rules.load import load_default_policy
from tests.adapters.test_exports_support import (
    NASHVILLE,
    NASHVILLE_ROWS,
    SAN_DIEGO,
    SAN_DIEGO_ROWS,
    shared_export,
    shipped_mapper,
)

POLICY = compile_policy(load_default_policy())


@pytest.fixture(scope="module")
def san_diego() -> CheckReport:
    path = shared_export(SAN_DIEGO)
    return check_export(shipped_mapper("san-diego", path), path, policy=POLICY)


@pytest.fixture(scope="module")
def nashville() -> CheckReport:
    path = shared_export(NASHVILLE)
    return check_export(shipped_mapper("nashville", path), path, policy=POLICY)


def test_san_diego_every_row_is_accounted_for(san_diego: CheckReport) -> None:
    r = san_diego
    assert r.rows == SAN_DIEGO_ROWS == r.accounted
    assert set(r.skipped) == {"officer_initiated", "administrative", "information_only"}
    assert r.skipped["officer_initiated"] > 5_000  # traffic stops, enforcement, patrol
    assert not r.failed
    # 19 rows have no call type: the server answers 422 for them, as it would the CAD.
    assert r.invalid == {"nature_code: a created event must carry the call's nature code": 19}
    assert r.events == r.sendable > 16_000  # no close time in the export: one event a row
    assert r.channels.keys() == {"911", "officer_on_scene", "non_emergency"}


def test_san_diego_codes_reach_their_categories(san_diego: CheckReport) -> None:
    r = san_diego
    assert not r.missed_hints, r.missed_hints
    assert r.hints["mental_health"] == r.nature_codes["MNTL"] == 597  # every 5150
    assert r.categories["mental_health"] == 597
    assert r.categories["call_for_assistance"] == r.hints["call_for_assistance"] > 1_000
    assert r.categories["homelessness"] == r.hints["homelessness"] == 134  # SLEEPER
    assert r.excluded["violence"] > 0 and r.excluded["weapon"] > 0
    # The policy's text rule for "runaway" also catches "RUNAWAY VEHICLE".
    assert r.unhinted == Counter({("595", "disorderly_juvenile"): 1})


def test_nashville_every_row_is_accounted_for(nashville: CheckReport) -> None:
    r = nashville
    assert r.rows == NASHVILLE_ROWS == r.accounted
    assert set(r.skipped) == {"officer_initiated", "administrative"}
    assert not r.failed and not r.invalid
    assert r.events == r.sendable > 20_000
    assert r.passed_through["3"] == 1_935  # the ten-code the export leaves undescribed


def test_nashville_codes_reach_their_categories(nashville: CheckReport) -> None:
    r = nashville
    assert not r.missed_hints, r.missed_hints
    assert not r.unhinted
    assert r.categories["mental_health"] == r.nature_codes["MNTL"] + r.nature_codes[
        "SUICTHRT"] + r.nature_codes["SCRM"]
    assert r.categories["substance_use"] == r.nature_codes["INTOX"] > 0
    assert r.categories["disorderly_juvenile"] == r.nature_codes["JUV"] > 0


def test_times_carry_the_offset_in_force() -> None:
    path = shared_export(NASHVILLE)
    offsets: Counter[str] = Counter()
    for m in shipped_mapper("nashville", path).map_file(path):
        if m.at is None:
            continue
        offset = m.events[0]["occurred_at"][-6:]
        offsets[offset] += 1
        # Central time: daylight saving from 2024-03-10 03:00 local.
        daylight = m.at.replace(tzinfo=None) >= datetime(2024, 3, 10, 3)
        assert offset == ("-05:00" if daylight else "-06:00"), m.events[0]
    assert set(offsets) == {"-05:00", "-06:00"}
