"""Response programs: who the team is, when and where it works, how long a call may wait.

A policy may list several programs (`programs:`), tried in order for an eligible call;
each has the categories it takes, a mode (phone, field, co_response, or transfer: a
crisis centre such as 988 that takes the call from 911, its `units` the counsellors on
shift), weekly shifts and
named dates off, units, a service area (districts and/or GeoJSON polygons), wait limits
per category (optionally per priority) and the intake channels it defers rather than
refuses. A policy in the one-team format (`program:` only) is read as one program
(`programs_of`). Pure: a file area is read by rules/load.py, which inlines it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from rules.areas import AreaIndex, geojson_errors
from rules.areas import polygons as area_polygons
from rules.base import (
    WEEKDAYS,
    Channel,
    PriorityRange,
    Program,
    Requiring,
    Strict,
    Weekday,
    parse_clock,
)

ProgramMode = Literal["phone", "field", "co_response", "transfer"]
# A week of shifts: per weekday (Monday first), (start, end) in minutes after midnight.
Week = tuple[tuple[tuple[int, int], ...], ...]


def parse_shift(value: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' as minutes (start, end); an end at or before the start runs past
    midnight, and a start equal to the end is 24 hours."""
    start, sep, end = value.partition("-")
    if not sep:
        raise ValueError(f"'{value}' is not a shift HH:MM-HH:MM")
    return parse_clock(start.strip()), parse_clock(end.strip())


class WeeklyHours(Strict):
    """Shifts per weekday, each 'HH:MM-HH:MM' in the policy's time zone; `daily` stands
    for every weekday not listed. A shift past midnight belongs to the day it starts."""

    daily: list[str] | None = None
    mon: list[str] | None = None
    tue: list[str] | None = None
    wed: list[str] | None = None
    thu: list[str] | None = None
    fri: list[str] | None = None
    sat: list[str] | None = None
    sun: list[str] | None = None

    @field_validator("daily", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _shifts(cls, v: list[str] | None) -> list[str] | None:
        for i, shift in enumerate(v or []):
            try:
                parse_shift(shift)
            except ValueError as exc:
                raise ValueError(f"shift {i}: {exc}") from None
        return v

    def shifts(self, day: Weekday) -> list[tuple[int, int]]:
        listed = getattr(self, day)
        return [parse_shift(s) for s in (listed if listed is not None else self.daily or [])]


class DateOff(Strict):
    date: date
    name: str = ""


class ServiceArea(Strict):
    """Where a program works: districts (case-insensitive), GeoJSON polygons inline, or a
    GeoJSON file beside the policy (rules/load.py reads it into `polygons`)."""

    districts: list[str] | None = None
    polygons: dict[str, Any] | None = Field(
        default=None, description="a GeoJSON Polygon, MultiPolygon, Feature or "
                                  "FeatureCollection (lon, lat; WGS 84)")
    file: str | None = Field(default=None, description="a GeoJSON file, relative to the policy")

    @field_validator("districts")
    @classmethod
    def _districts(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or any(not d.strip() for d in v)):
            raise ValueError("must list at least one district, none blank")
        return v

    @field_validator("polygons")
    @classmethod
    def _geojson(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            found = geojson_errors(v)
            if found:
                raise ValueError("; ".join(f"{p}: {r}" if p else r for p, r in found[:5]))
        return v

    @model_validator(mode="after")
    def _something(self) -> ServiceArea:
        if self.districts is None and self.polygons is None and self.file is None:
            raise ValueError("an area needs districts, polygons or a file")
        return self


class QueueLimit(Strict):
    """How long a call of `category` (absent: any the program takes; at `priority`, when
    given) may wait for a unit."""

    category: str | None = None
    priority: PriorityRange | None = None
    # 0: such calls may not wait (so a later, wider limit does not catch them).
    max_wait_minutes: float = Field(ge=0, le=24 * 60)

    def applies(self, category: str | None, priority: int | None) -> bool:
        if self.category is not None and category != self.category:
            return False
        if self.priority is None:
            return True
        if priority is None:
            return False  # a limit for some priorities says nothing of an unknown one
        lo, hi = self.priority.min, self.priority.max
        return (lo is None or priority >= lo) and (hi is None or priority <= hi)


class ResponseProgram(Requiring):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str = Field(min_length=1)
    categories: list[str] | None = Field(default=None, description="the categories it "
                                         "takes; absent: every category")
    mode: ProgramMode = "field"
    hours: WeeklyHours | None = Field(default=None, description="absent: at all hours")
    dates_off: list[DateOff] = Field(default_factory=list)
    units: int | None = Field(default=None, ge=0, description="units on shift; absent "
                              "(phone programs only): not limited by units")
    area: ServiceArea | None = Field(default=None, description="absent: everywhere")
    queue: list[QueueLimit] = Field(default_factory=list, description="wait limits; the "
                                    "first that applies to a call counts")
    max_queued: int | None = Field(default=None, ge=1, description="calls that may wait "
                                   "at once; absent: no limit")
    deferrable: list[Channel] = Field(default_factory=list, description="intake channels "
                                      "scheduled for the next shift, never sent to police "
                                      "for hours or capacity")

    @model_validator(mode="after")
    def _units(self) -> ResponseProgram:
        if self.units is None and self.mode != "phone":
            raise ValueError(f"a {self.mode} program needs units")
        if self.mode == "transfer" and (self.queue or self.max_queued or self.deferrable):
            # A transfer is taken at once or not at all: the next program (or police)
            # takes a call the crisis centre cannot, so nothing waits for it.
            raise ValueError("a transfer program keeps no queue: no queue, max_queued or "
                             "deferrable")
        return self

    def takes(self, category: str | None) -> bool:
        return self.categories is None or category in self.categories

    def wait_limit_s(self, category: str | None, priority: int | None) -> int | None:
        for limit in self.queue:
            if limit.applies(category, priority):
                return round(limit.max_wait_minutes * 60)
        return None

    def shifts(self, day: Weekday) -> list[tuple[int, int]]:
        return [(0, 0)] if self.hours is None else self.hours.shifts(day)

    def hours_text(self) -> str:
        """The shifts as a person reads them: 'mon-fri 08:00-12:00,13:00-20:00; sat …'."""
        if self.hours is None:
            return "at all hours"
        days = [",".join(getattr(self.hours, d) if getattr(self.hours, d) is not None
                         else self.hours.daily or []) for d in WEEKDAYS]
        if len(set(days)) == 1:
            return f"daily {days[0]}" if days[0] else "never"
        runs: list[tuple[int, int]] = []  # consecutive weekdays with the same shifts
        for i, text in enumerate(days):
            if runs and days[runs[-1][0]] == text:
                runs[-1] = (runs[-1][0], i)
            else:
                runs.append((i, i))
        return "; ".join(f"{WEEKDAYS[a]}{'-' + WEEKDAYS[b] if b > a else ''} {days[a]}"
                         for a, b in runs if days[a])


def legacy_program(policy_id: str, name: str, program: Program) -> ResponseProgram:
    """Today's one-team `program:` as a response program: every category, in the field,
    its hours on its days, its units, everywhere."""
    window = f"{program.hours.start}-{program.hours.end}"
    if program.hours.start == program.hours.end:
        window = "00:00-24:00"  # a window of no length was always open, as here
    hours = WeeklyHours.model_validate({d: [window] if d in program.hours.days else []
                                        for d in WEEKDAYS})
    return ResponseProgram(id=policy_id, name=name or policy_id, mode="field",
                           hours=hours, units=program.units, requires=program.requires)


def _requires_errors(path: str, requires: Any, categories: list[str] | None,
                     own: Any) -> list[tuple[str, str]]:
    """A `requires:` naming a category the policy does not declare, or (a program that
    lists its categories) one the program does not take."""
    if not isinstance(requires, Mapping):
        return []
    errors: list[tuple[str, str]] = []
    for c in requires:
        if not isinstance(c, str):
            continue
        if categories is not None and c not in categories:
            errors.append((f"{path}.requires.{c}", f"'{c}' is not one of the policy's "
                                                   "categories"))
        elif isinstance(own, list) and c not in own:
            errors.append((f"{path}.requires.{c}", f"'{c}' is not a category this "
                                                   "program takes"))
    return errors


def program_reference_errors(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Errors of `programs:` no single field sees: repeated ids, undeclared categories,
    wait limits for categories the program does not take, eligible categories no program
    takes, capability requirements for categories it does not know. Works on the raw
    document, beside the field errors."""
    raw = doc.get("categories")
    categories = [c for c in raw if isinstance(c, str)] if isinstance(raw, list) else None
    one = doc.get("program")
    errors: list[tuple[str, str]] = _requires_errors(
        "program", one.get("requires") if isinstance(one, Mapping) else None, categories,
        None)
    programs = doc.get("programs")
    if not isinstance(programs, list):
        return errors
    seen: set[str] = set()
    taken: set[str] = set()
    every = False
    for i, p in enumerate(programs):
        if not isinstance(p, Mapping):
            continue
        pid = p.get("id")
        if isinstance(pid, str):
            if pid in seen:
                errors.append((f"programs[{i}].id", f"'{pid}' is used by an earlier program"))
            seen.add(pid)
        own = p.get("categories")
        errors += _requires_errors(f"programs[{i}]", p.get("requires"), categories, own)
        if own is None:
            every = True
        elif isinstance(own, list):
            for j, c in enumerate(own):
                if isinstance(c, str):
                    taken.add(c)
                    if categories is not None and c not in categories:
                        errors.append((f"programs[{i}].categories[{j}]",
                                       f"'{c}' is not one of the policy's categories"))
        limits = p.get("queue")
        for j, limit in enumerate(limits if isinstance(limits, list) else []):
            c = limit.get("category") if isinstance(limit, Mapping) else None
            if isinstance(c, str) and isinstance(own, list) and c not in own:
                errors.append((f"programs[{i}].queue[{j}].category",
                               f"'{c}' is not a category program '{pid}' takes"))
            elif isinstance(c, str) and categories is not None and c not in categories:
                errors.append((f"programs[{i}].queue[{j}].category",
                               f"'{c}' is not one of the policy's categories"))
    rules = doc.get("rules")
    if not every and isinstance(rules, list):
        for i, r in enumerate(rules):
            if isinstance(r, Mapping) and r.get("action") in ("team", "joint") \
                    and isinstance(r.get("category"), str) and r["category"] not in taken:
                errors.append((f"rules[{i}].category", f"'{r['category']}' goes to the team "
                                                       "but no program takes it"))
    return errors


@dataclass(frozen=True)
class ProgramSet:
    """A policy's programs ready for routing: areas indexed, districts folded."""

    programs: tuple[ResponseProgram, ...]
    named: bool  # the policy lists `programs:` (not one read from the one-team format)
    districts: tuple[frozenset[str] | None, ...]
    has_polygons: tuple[bool, ...]
    days_off: tuple[frozenset[date], ...]
    # Per program, its shifts per weekday (Monday first) as minutes; None: always on.
    weeks: tuple[Week | None, ...] = ()
    hours_texts: tuple[str, ...] = ()
    index: AreaIndex | None = field(default=None, compare=False, repr=False)

    def position(self, program_id: str | None) -> int | None:
        """Where the program of this id stands in policy order (None: no such program,
        e.g. one a newer policy dropped)."""
        return next((i for i, p in enumerate(self.programs) if p.id == program_id), None)

    def in_area(self, lat: float | None, lon: float | None, district: str | None
                ) -> tuple[bool | None, ...]:
        """Per program: the call is inside its area (True), outside (False), or the call
        gives nothing its area can test (None: taken, the team confirms the address).
        Coordinates decide against polygons; without either, the district against the
        districts."""
        hits: frozenset[int] | None = None
        if lat is not None and lon is not None and self.index is not None:
            hits = self.index.containing(lat, lon)
        folded = district.casefold() if district else None
        out: list[bool | None] = []
        for i, p in enumerate(self.programs):
            if p.area is None:
                out.append(True)
                continue
            if hits is not None and self.has_polygons[i]:
                out.append(i in hits)  # coordinates, where the area can test them, decide
            elif self.districts[i] is not None and folded is not None:
                out.append(folded in self.districts[i])  # type: ignore[operator]
            else:
                out.append(None)
        return tuple(out)


class _Named(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...


class PolicyParts(Protocol):
    """What `programs_of` reads of a policy (rules.models.Policy, which imports this
    module: named here by shape, not by import)."""
    @property
    def policy(self) -> _Named: ...
    @property
    def program(self) -> Program: ...
    @property
    def programs(self) -> list[ResponseProgram] | None: ...


def programs_of(policy: PolicyParts) -> ProgramSet:
    """The policy's programs, compiled; the one-team format gives one program."""
    if policy.programs is None:
        programs: tuple[ResponseProgram, ...] = (
            legacy_program(policy.policy.id, policy.policy.name, policy.program),)
    else:
        programs = tuple(policy.programs)
    shapes = [(i, area_polygons(p.area.polygons)) for i, p in enumerate(programs)
              if p.area is not None and p.area.polygons is not None]
    return ProgramSet(
        programs=programs, named=policy.programs is not None,
        districts=tuple(frozenset(d.casefold() for d in p.area.districts)
                        if p.area is not None and p.area.districts is not None else None
                        for p in programs),
        has_polygons=tuple(p.area is not None and p.area.polygons is not None
                           for p in programs),
        days_off=tuple(frozenset(d.date for d in p.dates_off) for p in programs),
        weeks=tuple(None if p.hours is None else tuple(tuple(p.shifts(d)) for d in WEEKDAYS)
                    for p in programs),
        hours_texts=tuple(p.hours_text() for p in programs),
        index=AreaIndex(shapes) if shapes else None)
