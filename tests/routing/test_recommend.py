"""The unit recommendation (routing/recommend.py): able and available, nearest with an
estimated time, least loaded without positions, stale positions unknown, the reason
naming who was passed over and why; and properties over random rosters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.recommend import (
    UnitCandidate,
    eta_minutes,
    haversine_km,
    recommend,
)
from tests.rules.strategies import BOUNDED

NOW = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)
# St. Petersburg, FL: the call at Central Ave & 4th St.
CALL_AT = (27.7711, -82.6390)


@dataclass(frozen=True)
class Call:
    lat: float | None = CALL_AT[0]
    lon: float | None = CALL_AT[1]


def unit(uid: str, *caps: str, status: str = "available", km_north: float | None = None,
         age_min: float = 1, load: int = 0) -> UnitCandidate:
    """A unit `km_north` km due north of the call (None: no position)."""
    lat = None if km_north is None else CALL_AT[0] + km_north / 111.195
    return UnitCandidate(id=uid, capabilities=frozenset(caps), status=status,
                         lat=lat, lon=None if lat is None else CALL_AT[1],
                         position_at=None if lat is None else NOW - timedelta(minutes=age_min),
                         load=load)


def test_haversine_is_the_great_circle_distance() -> None:
    # One degree of latitude is 111.2 km on the mean sphere; Tampa to St. Petersburg ~29 km.
    assert haversine_km(0, 0, 1, 0) == pytest.approx(111.195, abs=0.01)
    assert haversine_km(27.9506, -82.4572, 27.7676, -82.6403) == pytest.approx(27.5, abs=0.5)
    assert haversine_km(*CALL_AT, *CALL_AT) == 0


def test_eta_is_to_the_minute_and_never_zero() -> None:
    assert eta_minutes(1.2, 30) == 2  # 2.4 min
    assert eta_minutes(1.3, 30) == 3  # 2.6 min
    assert eta_minutes(2.0, 30) == 4
    assert eta_minutes(0.0, 30) == 1
    assert eta_minutes(10, 60) == 10


def test_the_nearest_able_unit_with_the_issue_reason() -> None:
    units = [unit("CALL-1", "youth_trained", status="on_scene", km_north=0.3),
             unit("CALL-2", "peer", km_north=0.6),
             unit("CALL-3", "youth_trained", "peer", km_north=1.2),
             unit("CALL-4", "youth_trained", km_north=3.0)]
    r = recommend(Call(), ["youth_trained"], units, speed_kmh=30, now=NOW)
    assert (r.unit_id, r.basis, r.eta_minutes) == ("CALL-3", "distance", 2)
    assert r.distance_km == pytest.approx(1.2, abs=0.005)
    assert r.reason == ("CALL-3: 1.2 km, about 2 min, youth_trained; CALL-1 is nearer but "
                        "on scene; CALL-2 is nearer but lacks youth_trained")
    assert [(p.unit_id, p.why) for p in r.passed_over] == [
        ("CALL-1", "on scene"), ("CALL-2", "lacks youth_trained")]


def test_the_speed_setting_sets_the_estimate() -> None:
    units = [unit("A", km_north=5.0)]
    assert recommend(Call(), [], units, speed_kmh=30, now=NOW).eta_minutes == 10
    assert recommend(Call(), [], units, speed_kmh=60, now=NOW).eta_minutes == 5
    with pytest.raises(ValueError, match="positive"):
        recommend(Call(), [], units, speed_kmh=0)


def test_no_needs_says_no_capabilities_and_every_status_is_worded() -> None:
    units = [unit("A", status="assigned", km_north=0.1),
             unit("B", status="en_route", km_north=0.2),
             unit("C", status="backup_requested", km_north=0.3),
             unit("D", status="off_duty", km_north=0.4),
             unit("E", km_north=0.5)]
    r = recommend(Call(), [], units, now=NOW)
    assert r.unit_id == "E"
    assert r.reason == ("E: 0.5 km, about 1 min; A is nearer but assigned to another call; "
                        "B is nearer but en route to another call; C is nearer but waiting "
                        "for backup; 1 more passed over")
    assert [p.why for p in r.passed_over][-1] == "off duty"


def test_a_stale_position_is_unknown() -> None:
    units = [unit("NEAR", km_north=0.2, age_min=40), unit("FAR", km_north=4.0, age_min=2)]
    r = recommend(Call(), [], units, now=NOW, stale_after=timedelta(minutes=15))
    assert r.unit_id == "FAR"
    # The stale one is able but unplaced: counted, not blamed.
    assert r.passed_over == []
    assert r.reason == "FAR: 4.0 km, about 8 min; 1 able unit has no known position"
    assert recommend(Call(), [], units, now=NOW, stale_after=timedelta(hours=1)
                     ).unit_id == "NEAR"


def test_without_positions_the_least_loaded_able_unit() -> None:
    units = [unit("A", "emt", load=3), unit("B", "emt", load=1), unit("C", load=0),
             unit("D", "emt", status="on_scene", load=0)]
    r = recommend(Call(), ["emt"], units, now=NOW)
    assert (r.unit_id, r.basis, r.distance_km, r.eta_minutes) == ("B", "load", None, None)
    assert r.reason == ("B: least loaded (1 call today), no position known, emt; C has fewer "
                        "calls but lacks emt; D has fewer calls but on scene")


def test_a_call_without_coordinates_goes_by_load_even_with_placed_units() -> None:
    units = [unit("A", km_north=0.1, load=5), unit("B", km_north=9.0, load=2)]
    r = recommend(Call(lat=None, lon=None), [], units, now=NOW)
    assert (r.unit_id, r.basis) == ("B", "load")
    assert "the call's location unknown" in r.reason


def test_ties_go_to_the_less_loaded_then_by_id() -> None:
    units = [unit("B", km_north=1.0, load=2), unit("A", km_north=1.0, load=2),
             unit("C", km_north=1.0, load=1)]
    assert recommend(Call(), [], units, now=NOW).unit_id == "C"
    assert recommend(Call(), [], units[:2], now=NOW).unit_id == "A"
    assert recommend(Call(lat=None), [], units[:2], now=NOW).unit_id == "A"


def test_none_available_names_why_each_cannot() -> None:
    units = [unit("CALL-1", "emt", status="on_scene", km_north=0.3),
             unit("CALL-2", km_north=0.5), unit("CALL-3", "emt", status="off_duty")]
    r = recommend(Call(), ["emt"], units, now=NOW)
    assert (r.unit_id, r.basis, r.distance_km) == (None, None, None)
    assert r.reason == ("No unit available with emt: CALL-1 on scene; CALL-2 lacks emt; "
                        "CALL-3 off duty")
    assert recommend(Call(), [], [], now=NOW).reason == "No unit on the roster for this program"


def test_several_needs_are_all_required_and_named() -> None:
    units = [unit("A", "emt", km_north=0.2), unit("B", "emt", "wheelchair_lift", km_north=2)]
    r = recommend(Call(), ["emt", "wheelchair_lift", "emt"], units, now=NOW)
    assert r.unit_id == "B" and r.needs == ["emt", "wheelchair_lift"]
    assert r.reason.startswith("B: 2.0 km, about 4 min, emt wheelchair_lift; A is nearer "
                               "but lacks wheelchair_lift")


# -- properties ------------------------------------------------------------------------

CAPS = ["emt", "peer", "youth_trained", "clinician"]
STATUSES = ["available", "available", "available", "on_scene", "assigned", "off_duty"]


@st.composite
def rosters(draw: st.DrawFn) -> list[UnitCandidate]:
    n = draw(st.integers(0, 12))
    out = []
    for i in range(n):
        placed = draw(st.booleans())
        out.append(UnitCandidate(
            id=f"U{i}", capabilities=frozenset(draw(st.sets(st.sampled_from(CAPS)))),
            status=draw(st.sampled_from(STATUSES)),
            lat=draw(st.floats(27.6, 27.9)) if placed else None,
            lon=draw(st.floats(-82.8, -82.5)) if placed else None,
            position_at=NOW - timedelta(minutes=draw(st.integers(0, 30))) if placed else None,
            load=draw(st.integers(0, 5))))
    return out


def _able(u: UnitCandidate, needs: list[str]) -> bool:
    return u.status == "available" and set(needs) <= u.capabilities


def _fresh(u: UnitCandidate) -> bool:
    return (u.lat is not None and u.position_at is not None
            and NOW - u.position_at <= timedelta(minutes=15))


@BOUNDED
@given(units=rosters(), needs=st.lists(st.sampled_from(CAPS), max_size=2),
       located=st.booleans())
def test_the_chosen_unit_is_able_and_never_farther_than_an_able_placed_one(
        units: list[UnitCandidate], needs: list[str], located: bool) -> None:
    call = Call() if located else Call(lat=None, lon=None)
    r = recommend(call, needs, units, now=NOW)
    able = [u for u in units if _able(u, needs)]
    if not able:
        assert r.unit_id is None and r.reason.startswith("No unit")
        return
    chosen = next(u for u in units if u.id == r.unit_id)
    assert _able(chosen, needs)
    placed = [u for u in able if located and _fresh(u)]
    if placed:
        assert r.basis == "distance" and _fresh(chosen)
        assert r.distance_km is not None and r.eta_minutes is not None
        for u in placed:
            assert haversine_km(*CALL_AT, u.lat, u.lon) >= r.distance_km - 1e-3  # type: ignore[arg-type]
        # Every unit nearer than the chosen one is passed over with the reason it cannot.
        nearer = {u.id for u in units if _fresh(u) and not _able(u, needs)
                  and haversine_km(*CALL_AT, u.lat, u.lon) < r.distance_km - 1e-3}  # type: ignore[arg-type]
        assert nearer <= {p.unit_id for p in r.passed_over}
    else:
        assert r.basis == "load"
        assert chosen.load == min(u.load for u in able)
    assert r.reason.startswith(f"{r.unit_id}: ")


@BOUNDED
@given(units=rosters(), needs=st.lists(st.sampled_from(CAPS), max_size=2))
def test_the_recommendation_does_not_depend_on_the_roster_order(
        units: list[UnitCandidate], needs: list[str]) -> None:
    a = recommend(Call(), needs, units, now=NOW)
    b = recommend(Call(), needs, list(reversed(units)), now=NOW)
    assert a == b
