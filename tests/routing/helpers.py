"""Builders for the routing tests; policies and calls come from tests/rules/helpers.py."""

from __future__ import annotations

from typing import Any

from routing.decide import decide_call
from routing.models import Availability, Decision
from rules.evaluate import CompiledPolicy
from tests.rules.helpers import facts


def decide(policy: CompiledPolicy, *, units_busy: int = 0, **fields: Any) -> Decision:
    availability = Availability(units_total=policy.policy.program.units, units_busy=units_busy)
    return decide_call(facts(**fields), policy, availability)


# A square of downtown St. Petersburg (lon, lat), the HEART-style field team's area.
DOWNTOWN = {"type": "Polygon", "coordinates": [[[-82.66, 27.76], [-82.63, 27.76],
                                                [-82.63, 27.78], [-82.66, 27.78],
                                                [-82.66, 27.76]]]}
IN_DOWNTOWN = {"lat": 27.77, "lon": -82.64}
OUT_OF_TOWN = {"lat": 27.90, "lon": -82.70}


def programs_doc(**changes: Any) -> dict[str, Any]:
    """A policy of three programs, tried in order: a field team (two units, weekday and
    Saturday shifts, Christmas off, downtown or district D1, wait limits, referrals and
    follow-ups deferred), a co-response unit (mental health, all day, D1 and D2) and a
    24/7 phone line."""
    doc: dict[str, Any] = {
        "policy": {"id": "three-programs", "version": "1", "name": "Three programs"},
        "program": {"phase": 2, "timezone": "America/New_York"},
        "programs": [
            {"id": "field", "name": "Field team", "mode": "field",
             "categories": ["mental_health", "homelessness", "welfare"],
             "hours": {"mon": ["08:00-12:00", "13:00-20:00"], "tue": ["08:00-12:00",
                                                                      "13:00-20:00"],
                       "wed": ["08:00-12:00", "13:00-20:00"], "thu": ["08:00-12:00",
                                                                      "13:00-20:00"],
                       "fri": ["08:00-12:00", "13:00-20:00"], "sat": ["10:00-18:00"]},
             "dates_off": [{"date": "2026-12-25", "name": "Christmas"}],
             "units": 2,
             "area": {"districts": ["D1"], "polygons": DOWNTOWN},
             "queue": [{"category": "mental_health", "priority": {"min": 3},
                        "max_wait_minutes": 20},
                       {"category": "homelessness", "max_wait_minutes": 45}],
             "max_queued": 3,
             "deferrable": ["officer_referral", "follow_up"]},
            {"id": "co-response", "name": "Co-response", "mode": "co_response",
             "categories": ["mental_health"], "units": 1,
             "hours": {"daily": ["00:00-24:00"]},
             "area": {"districts": ["D1", "D2"]}},
            {"id": "line", "name": "Crisis line", "mode": "phone",
             "categories": ["crisis_line"]},
        ],
        "categories": ["mental_health", "homelessness", "welfare", "crisis_line"],
        "exclusions": [{"id": "weapon", "when": {"flags_any": ["weapon", "violence"]}}],
        "rules": [
            {"id": "line", "category": "crisis_line", "action": "team",
             "needs_field_unit": False, "when": {"channel": ["crisis_line"]}},
            {"id": "mh", "category": "mental_health", "action": "team",
             "when": {"nature_code": ["MNTL"]}},
            {"id": "vag", "category": "homelessness", "action": "team",
             "when": {"nature_code": ["VAG"]}},
            {"id": "welfare", "category": "welfare", "action": "team",
             "when": {"nature_code": ["WELFARE"]}},
        ],
    }
    doc.update(changes)
    return doc
