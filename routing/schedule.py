"""A program's shifts in time: on duty now, and when the next shift starts. Pure.

Shifts are wall-clock times in the policy's zone; a shift belongs to the day it starts
(dates off name that day) and may run past midnight. Wall-clock arithmetic is done in
the zone, so a shift across a change of clocks is an hour shorter or longer; a start in
the hour the clocks skip begins an hour later on the clock (02:30 → 03:30), and one in
the hour they repeat at its first occurrence.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from rules.programs import Week

# How far ahead the next shift is looked for: a program off for longer has none.
HORIZON_DAYS = 400


def _shift_bounds(day: date, start: int, end: int, zone: ZoneInfo
                  ) -> tuple[datetime, datetime]:
    length = (end - start) % (24 * 60) or 24 * 60  # end at or before start: past midnight
    begin = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=start)
    # Through UTC: a start in a skipped hour comes out an hour later on the clock.
    begin_utc = begin.astimezone(UTC)
    finish = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(
        minutes=start + length)
    return begin_utc, finish.astimezone(UTC)


def _shifts_around(week: Week, days_off: Collection[date], zone: ZoneInfo,
                   first: date, days: int) -> list[tuple[datetime, datetime]]:
    out = []
    for n in range(days):
        day = first + timedelta(days=n)
        if day in days_off:
            continue
        for start, end in week[day.weekday()]:
            out.append(_shift_bounds(day, start, end, zone))
    return out


@lru_cache(maxsize=4096)
def _shifts_near(week: Week, days_off: frozenset[date], zone: ZoneInfo, day: date
                 ) -> tuple[tuple[datetime, datetime], ...]:
    """The shifts that may cover an instant of local `day`: that day's and the day
    before's (one past midnight). Pure, so kept: every call, unit freed and program tried
    asks about the day it is in (a year of calls asks about each day thousands of times)."""
    return tuple(_shifts_around(week, days_off, zone, day - timedelta(days=1), 2))


def on_duty(week: Week | None, days_off: Collection[date], at: datetime,
            zone: ZoneInfo) -> bool:
    """True when `at` falls in one of the shifts of `week` (a program without hours,
    None, is always on duty)."""
    if week is None:
        return True
    off = days_off if isinstance(days_off, frozenset) else frozenset(days_off)
    t = at.astimezone(UTC)
    return any(b <= t < e for b, e in _shifts_near(week, off, zone,
                                                   at.astimezone(zone).date()))


class DutyDays:
    """`on_duty` of one program asked many times in a row, as calls come in: `on_duty`
    exactly, with the program's hours bound once and the day's shifts at hand."""

    def __init__(self, week: Week | None, days_off: Collection[date], zone: ZoneInfo) -> None:
        self.week, self.zone = week, zone
        self.days_off = days_off if isinstance(days_off, frozenset) else frozenset(days_off)
        self._day: date | None = None  # calls come in time order: the last day's, at hand
        self._shifts: tuple[tuple[datetime, datetime], ...] = ()

    def __call__(self, at: datetime) -> bool:
        if self.week is None:
            return True
        day = at.astimezone(self.zone).date()
        if day != self._day:
            self._day = day
            self._shifts = _shifts_near(self.week, self.days_off, self.zone, day)
        t = at.astimezone(UTC)
        return any(b <= t < e for b, e in self._shifts)


def next_shift_start(week: Week | None, days_off: Collection[date], after: datetime,
                     zone: ZoneInfo) -> datetime | None:
    """The start of the first shift after `after`, in the zone (None: none within
    HORIZON_DAYS). A program without hours has no next shift: it is always on."""
    if week is None:
        return None
    t = after.astimezone(UTC)
    first = after.astimezone(zone).date()
    for chunk in range(0, HORIZON_DAYS, 8):
        starts = [b for b, _ in _shifts_around(week, days_off, zone,
                                               first + timedelta(days=chunk), 8) if b > t]
        if starts:
            return min(starts).astimezone(zone)
    return None


def shift_starts(week: Week | None, days_off: Collection[date], after: datetime,
                 until: datetime, zone: ZoneInfo) -> list[datetime]:
    """The starts of the shifts in (after, until], in order (none for a program without
    hours: it is always on)."""
    out: list[datetime] = []
    t = after
    while (start := next_shift_start(week, days_off, t, zone)) is not None and start <= until:
        out.append(start)
        t = start
    return out


def duty_seconds(week: Week | None, days_off: Collection[date], start: datetime,
                 end: datetime, zone: ZoneInfo) -> float:
    """Seconds of [start, end] inside the shifts of `week` (None: all of it)."""
    if end <= start:
        return 0.0
    a, b = start.astimezone(UTC), end.astimezone(UTC)
    if week is None:
        return (b - a).total_seconds()
    first = start.astimezone(zone).date() - timedelta(days=1)
    days = (end.astimezone(zone).date() - first).days + 1
    return sum(max((min(e, b) - max(s, a)).total_seconds(), 0.0)
               for s, e in _shifts_around(week, days_off, zone, first, days))
