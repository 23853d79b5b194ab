"""Shifts in time: a shift belongs to the day it starts (dates off too), may run past
midnight, and the next shift's start is right across changes of clocks."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from routing.schedule import next_shift_start, on_duty
from rules.programs import Week

NY = ZoneInfo("America/New_York")


def every_day(*shifts: tuple[int, int]) -> Week:
    return tuple(tuple(shifts) for _ in range(7))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_night_shift_belongs_to_the_day_it_starts_and_its_date_off() -> None:
    nights: Week = ((), (), (), ((20 * 60, 4 * 60),), (), (), ())  # Thursday 20:00-04:00
    assert on_duty(nights, set(), at("2026-03-13T03:59:00-04:00"), NY)  # Friday early
    assert not on_duty(nights, set(), at("2026-03-13T04:00:00-04:00"), NY)
    assert not on_duty(nights, set(), at("2026-03-12T19:59:00-04:00"), NY)
    off = {date(2026, 3, 12)}  # that Thursday is off: so is its night
    assert not on_duty(nights, off, at("2026-03-13T01:00:00-04:00"), NY)
    assert on_duty(None, off, at("2026-03-13T01:00:00-04:00"), NY)  # no hours: always


def test_the_next_shift_across_changes_of_clocks() -> None:
    eight = every_day((8 * 60, 24 * 60))
    # Saturday night before spring forward: Sunday 08:00 is EDT.
    assert next_shift_start(eight, set(), at("2026-03-07T23:00:00-05:00"), NY) == \
        at("2026-03-08T08:00:00-04:00")
    # A start in the skipped hour is an hour later on the clock; in the repeated hour,
    # its first occurrence.
    assert next_shift_start(every_day((150, 360)), set(), at("2026-03-07T23:00:00-05:00"),
                            NY) == at("2026-03-08T03:30:00-04:00")
    repeated = next_shift_start(every_day((90, 300)), set(), at("2026-10-31T23:00:00-04:00"),
                                NY)
    # (Python holds an ambiguous time unequal to any other zone's: compare the text.)
    assert repeated is not None and repeated.isoformat() == "2026-11-01T01:30:00-04:00"
    # A shift across the change is an hour shorter: 00:00-06:00 on 8 March ends at 06:00 EDT.
    night = every_day((0, 360))
    assert on_duty(night, set(), at("2026-03-08T05:59:00-04:00"), NY)
    assert not on_duty(night, set(), at("2026-03-08T06:00:00-04:00"), NY)


def test_dates_off_are_skipped_and_a_program_never_on_has_no_next_shift() -> None:
    weekdays: Week = (*([((8 * 60, 17 * 60),)] * 5), (), ())
    christmas = {date(2026, 12, 25)}
    assert next_shift_start(weekdays, christmas, at("2026-12-24T18:00:00-05:00"), NY) == \
        at("2026-12-28T08:00:00-05:00")
    assert next_shift_start(((),) * 7, set(), at("2026-12-24T18:00:00-05:00"), NY) is None
    assert next_shift_start(None, set(), at("2026-12-24T18:00:00-05:00"), NY) is None
