"""Team hours: is the program on duty at a given CAD time."""

from __future__ import annotations

from datetime import datetime

from rules.models import WEEKDAYS, Program


def within_hours(program: Program, local: datetime) -> bool:
    """True when `local` (already in the program's zone) falls in the team's hours.

    A window that wraps past midnight belongs to the day it started on.
    """
    window = program.hours.window
    if not window.contains(local.time()):
        return False
    day = WEEKDAYS[local.weekday()]
    start_minutes = int(window.start[:2]) * 60 + int(window.start[3:])
    wrapped = window.start > window.end and local.hour * 60 + local.minute < start_minutes
    if wrapped:
        day = WEEKDAYS[(local.weekday() - 1) % 7]
    return day in program.hours.days
