"""The policy language: program settings, safety exclusions, ordered rules, test cases.

A policy is data (YAML), never code: each condition is one of a fixed set of
typed operators over known call fields, so it can be evaluated, explained and
statically checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from rules.base import WEEKDAYS as WEEKDAYS  # re-exported
from rules.base import (
    Channel,
    Flag,
    PriorityRange,
    Program,
    Strict,
    TimeWindow,
    Weekday,
)
from rules.base import Hours as Hours  # re-exported
from rules.base import parse_clock as parse_clock  # re-exported
from rules.programs import ResponseProgram, program_reference_errors


class Condition(Strict):
    """All keys given must hold (AND). `any`, `all` and `not` nest conditions."""

    nature_code: list[str] | None = Field(
        default=None, description="the call's nature code is one of these (case-insensitive)"
    )
    text_any: list[str] | None = Field(
        default=None,
        description="nature text or narrative contains one of these words or phrases "
        "(case-insensitive, whole words)",
    )
    text_none: list[str] | None = Field(
        default=None, description="nature text and narrative contain none of these"
    )
    flags_any: list[Flag] | None = None
    flags_none: list[Flag] | None = None
    priority: PriorityRange | None = None
    channel: list[Channel] | None = None
    district: list[str] | None = None
    time_of_day: TimeWindow | None = None
    day_of_week: list[Weekday] | None = None
    any: list[Condition] | None = None
    all: list[Condition] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("nature_code", "text_any", "text_none", "district")
    @classmethod
    def _non_empty_strings(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("must list at least one value")
            for item in v:
                if not item.strip():
                    raise ValueError("values must not be blank")
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("a condition needs at least one key")
        return self


class Action(StrEnum):
    team = "team"  # eligible for the CALL team; the phase decides the mode
    police = "police"
    joint = "joint"


class FollowUpSpec(Strict):
    """A team visit the policy schedules after a call an exclusion sent to police/EMS
    (an overdose): the decision does not change; the visit comes later (issue 16)."""

    program: str = Field(min_length=1, description="the program that visits (a one-team "
                                                   "policy: its id, or `team`)")
    after_hours: int = Field(default=24, ge=1, le=24 * 30,
                             description="due this long after the call")
    nature_code: list[str] | None = Field(
        default=None, min_length=1, description="only calls with one of these nature codes "
                                                "(absent: every call the exclusion holds for)")

    def applies_to(self, nature_code: str | None) -> bool:
        return self.nature_code is None or (nature_code or "").strip().upper() in {
            c.strip().upper() for c in self.nature_code}


class Exclusion(Strict):
    """A safety exclusion: when it holds, the call goes to police whatever the rules say."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    description: str = ""
    when: Condition
    follow_up: FollowUpSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_disabled(cls, data: Any) -> Any:
        # Exclusions always win: one switched off would send unsafe calls to the team.
        if isinstance(data, Mapping) and "disabled" in data:
            raise ValueError("an exclusion cannot be disabled (exclusions always win); "
                             "remove it in a new version if it must go")
        return data


class Rule(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    description: str = ""
    category: str
    action: Action
    when: Condition
    # Phone-only work (the crisis line) needs no field unit and is staffed 24/7.
    needs_field_unit: bool = True
    disabled: bool = Field(default=False, description="never tested: kept in the policy, "
                                                      "switched off (the editor's disable)")


class TestProgramState(Strict):
    units_busy: int = Field(default=0, ge=0)
    queued: int = Field(default=0, ge=0, description="calls already waiting for it")


class TestAvailability(Strict):
    units_busy: int = Field(default=0, ge=0)
    programs: dict[str, TestProgramState] = Field(
        default_factory=dict, description="per program id (its units_busy counts, not the "
                                          "policy-wide one)")


class TestExpectation(Strict):
    destination: Literal["call_team", "police", "joint", "crisis_center"]
    mode: str | None = None
    category: str | None = None
    eligible: bool | None = None
    not_served_reason: Literal["off_hours", "units_busy", "override", "wait_exceeded",
                               "outside_area"] | None = None
    basis: Literal["rule", "exclusion", "no_rule", "evaluation_error"] | None = None
    matched_rules: list[str] | None = None
    program: str | None = Field(default=None, description="the id of the program that "
                                "took the call (or was tried first)")
    queued: bool | None = None
    deferred_until: str | None = Field(default=None, description="RFC 3339, or local "
                                       "time without an offset in the policy's zone")

    @field_validator("deferred_until")
    @classmethod
    def _a_time(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                datetime.fromisoformat(v)
            except ValueError:
                raise ValueError(f"'{v}' is not a date and time (RFC 3339, or local "
                                 "YYYY-MM-DDTHH:MM)") from None
        return v


class TestCase(Strict):
    __test__ = False  # not a pytest class

    name: str
    call: dict[str, object]
    availability: TestAvailability = Field(default_factory=TestAvailability)
    expect: TestExpectation


class PolicyMeta(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-\.]*$")
    version: str = Field(min_length=1)
    name: str = ""
    description: str = ""


class MutualAid(Strict):
    """Another agency's response program, asked to take an eligible call that none of this
    policy's programs can take now, before police respond (issue 17; docs/agencies.md).
    It is judged by that agency's policy in force: its hours in its time zone, its units
    free. It works outside its own service area (that is what mutual aid is); nothing
    waits for it, and a crisis centre (a transfer program) is not asked."""

    agency: str = Field(min_length=1, description="the other agency's id")
    program: str = Field(min_length=1, description="a program id in that agency's policy")
    categories: list[str] | None = Field(
        default=None, min_length=1,
        description="only calls of these categories (absent: any the program takes)")


class Policy(Strict):
    policy: PolicyMeta
    program: Program = Field(description="the time zone and phase; in the one-team format "
                             "also the team's hours and units")
    programs: list[ResponseProgram] | None = Field(
        default=None, min_length=1, description="response programs, tried in order "
                                                "(docs/programs.md); absent: `program` is one")
    categories: list[str] = Field(min_length=1)
    exclusions: list[Exclusion] = Field(default_factory=list)
    rules: list[Rule] = Field(min_length=1)
    tests: list[TestCase] = Field(default_factory=list)
    mutual_aid: list[MutualAid] = Field(
        default_factory=list, description="other agencies' programs asked, in order, when "
                                          "no program of this policy can take a call now")

    @model_validator(mode="before")
    @classmethod
    def _program_units(cls, doc: Any) -> Any:
        # With `programs:`, `program.units` may be left out: it is then their units in
        # all, what code that knows one team reads as the team's size.
        if isinstance(doc, Mapping) and isinstance(doc.get("programs"), list) \
                and isinstance(doc.get("program"), Mapping) and "units" not in doc["program"]:
            units = [p.get("units") for p in doc["programs"] if isinstance(p, Mapping)]
            doc = {**doc, "program": {**doc["program"],
                                      "units": sum(u for u in units if isinstance(u, int))}}
        return doc

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        found = reference_errors(self.model_dump(include={"categories", "rules", "exclusions",
                                                          "programs", "program", "policy",
                                                          "mutual_aid"}))
        if found:
            raise ValueError("\n".join(f"{path}: {reason}" for path, reason in found))
        return self

    @property
    def version_label(self) -> str:
        return f"{self.policy.id}@{self.policy.version}"

    def follow_up_for(self, matched: list[str], nature_code: str | None
                      ) -> tuple[str, FollowUpSpec] | None:
        """The first exclusion among `matched` (a decision's matched_rules) that asks for a
        follow-up of a call with this nature code, and what it asks."""
        wanted = set(matched)
        for e in self.exclusions:
            if e.id in wanted and e.follow_up and e.follow_up.applies_to(nature_code):
                return e.id, e.follow_up
        return None


def reference_errors(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Errors no single field can see: duplicate ids, rules naming undeclared categories.

    Works on the raw document too, so they are reported beside field errors."""
    errors: list[tuple[str, str]] = []
    raw_categories = doc.get("categories")
    categories = ([c for c in raw_categories if isinstance(c, str)]
                  if isinstance(raw_categories, list) else None)
    seen: set[str] = set()
    for section in ("rules", "exclusions"):
        entries = doc.get(section)
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                continue
            rid = entry.get("id")
            if isinstance(rid, str):
                if rid in seen:
                    errors.append((f"{section}[{i}].id", f"'{rid}' is used by an earlier rule "
                                                         "or exclusion"))
                seen.add(rid)
            category = entry.get("category")
            if section == "rules" and categories is not None and isinstance(category, str) \
                    and category not in categories:
                errors.append((f"{section}[{i}].category", f"'{category}' is not one of the "
                                                             f"policy's categories {categories}"))
    return (errors + _follow_up_errors(doc) + program_reference_errors(doc)
            + _mutual_aid_errors(doc, categories))


def _mutual_aid_errors(doc: Mapping[str, Any], categories: list[str] | None
                       ) -> list[tuple[str, str]]:
    """A mutual-aid entry names the policy's own categories, and no (agency, program)
    twice. Whether the agency exists, and is not the policy's own, is the region's to say
    (service/policy/region.py)."""
    errors: list[tuple[str, str]] = []
    entries = doc.get("mutual_aid")
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, Mapping):
            continue
        key = (str(entry.get("agency")), str(entry.get("program")))
        if key in seen:
            errors.append((f"mutual_aid[{i}]", f"agency '{key[0]}' program '{key[1]}' is "
                                               "named by an earlier entry"))
        seen.add(key)
        for j, c in enumerate(entry.get("categories") or []):
            if categories is not None and c not in categories:
                errors.append((f"mutual_aid[{i}].categories[{j}]",
                               f"'{c}' is not one of the policy's categories {categories}"))
    return errors


def _follow_up_errors(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An exclusion's follow-up must name a program the policy has."""
    programs = doc.get("programs")
    meta = doc.get("policy")
    # A one-team policy's one program has the policy's id (its roster calls it `team`).
    ids = ([p.get("id") for p in programs if isinstance(p, Mapping)]
           if isinstance(programs, list)
           else ["team", *([meta.get("id")] if isinstance(meta, Mapping) else [])])
    errors = []
    entries = doc.get("exclusions")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        follow = entry.get("follow_up") if isinstance(entry, Mapping) else None
        program = follow.get("program") if isinstance(follow, Mapping) else None
        if isinstance(program, str) and program not in ids:
            errors.append((f"exclusions[{i}].follow_up.program",
                           f"'{program}' is not one of the policy's programs {ids}"))
    return errors
