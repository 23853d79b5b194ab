"""The policy language's building blocks, shared by rules/models.py and rules/programs.py:
call vocabularies, times of day, and the one-team program settings.

Kept apart so the response programs (rules/programs.py) and the policy (rules/models.py)
can both use them without importing each other in a circle; rules/models.py re-exports
every name.
"""

from __future__ import annotations

import functools
import re
from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

Flag = Literal["weapon", "violence", "injury", "medical", "crime_in_progress"]
Channel = Literal[
    "911", "non_emergency", "officer_on_scene", "officer_referral", "follow_up", "crisis_line"
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")

# A unit's capability as the roster and the policy both spell it (youth_trained, emt).
CAPABILITY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
_CAPABILITY = re.compile(CAPABILITY_PATTERN)


def requires_errors(requires: dict[str, list[str]]) -> str | None:
    """Why a `requires` map (category → capabilities a unit needs for it) is malformed,
    or None. Which categories it may name is checked against the policy's elsewhere."""
    for category, words in requires.items():
        if not words:
            return f"'{category}': list at least one capability (or leave it out)"
        for word in words:
            if not _CAPABILITY.match(word):
                return (f"'{category}': '{word}' is not a capability (lower case letters, "
                        "digits and _, starting with a letter, at most 40)")
    return None




def valid_timezone(v: str) -> str:
    """An IANA time zone name, or ValueError saying it is unknown."""
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{v}'") from exc
    return v


class Strict(BaseModel):
    # A typo in a policy key must be an error, not a silently ignored rule.
    model_config = ConfigDict(extra="forbid", frozen=True)


@functools.lru_cache(maxsize=256)  # a policy has a handful; every decision reads them
def parse_clock(value: str) -> int:
    """Minutes after midnight for 'HH:MM'; '24:00' is the end of the day."""
    m = _CLOCK.match(value)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"'{value}' is not a time of day HH:MM (00:00 to 24:00)")
    return int(m.group(1)) * 60 + int(m.group(2))


class TimeWindow(Strict):
    """A daily window in the policy's time zone; start > end wraps past midnight."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        parse_clock(v)
        return v

    def contains(self, t: time) -> bool:
        minute = t.hour * 60 + t.minute
        start, end = parse_clock(self.start), parse_clock(self.end)
        if start == end:
            return True
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end


class PriorityRange(Strict):
    min: int | None = None
    max: int | None = None


class Hours(Strict):
    start: str = "08:00"
    end: str = "24:00"
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, v: str) -> str:
        parse_clock(v)
        return v

    @functools.cached_property
    def window(self) -> TimeWindow:
        # Made once (the model is frozen): every decision asks for it.
        return TimeWindow(start=self.start, end=self.end)


class Requiring(Strict):
    """Program settings that say what a unit must be able to do for a category's calls:
    the one-team `program:` and each of `programs:`."""

    requires: dict[str, list[str]] = Field(
        default_factory=dict, description="per category, the capabilities a unit needs to "
        "be recommended for its calls (routing/recommend.py); absent: any unit")

    @field_validator("requires")
    @classmethod
    def _requires(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        found = requires_errors(v)
        if found:
            raise ValueError(found)
        return v

    def needs(self, category: str | None) -> list[str]:
        """The capabilities a unit needs for a call of this category."""
        return list(self.requires.get(category, ())) if category else []


class Program(Requiring):
    """The program settings a city changes as its program grows: not code."""

    phase: Literal[1, 2, 3]
    timezone: str
    hours: Hours = Field(default_factory=Hours)
    units: int = Field(ge=0, description="team units (navigator pairs) on shift")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return valid_timezone(v)
