"""Which roster and which capabilities a call's recommendation uses
(service/lifecycle/assignment.py `target_of`), in both policy formats, and the calls
that get none; the start of a unit's day for its load."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from routing.decide import decide_call
from routing.models import Availability
from rules.evaluate import CompiledPolicy
from service.lifecycle.assignment import Target, local_midnight, target_of
from service.units.models import ONE_TEAM
from tests.factories import compiled, facts, one_team_doc, shipped_doc


def _decided(doc: dict[str, Any], **fields: Any) -> tuple[CompiledPolicy, dict[str, Any]]:
    policy = compiled(doc)
    d = decide_call(facts(**fields), policy, Availability(units_total=4, units_busy=0))
    return policy, d.model_dump(mode="json")


def test_a_named_programs_units_and_its_categorys_needs() -> None:
    doc = shipped_doc()
    doc["programs"][0]["requires"] = {"mental_health": ["youth_trained", "clinician"]}
    policy, decision = _decided(doc, nature_code="MNTL", district="D2")
    call: dict[str, Any] = {"category": decision["category"], "team_status": None,
                            "closed_at": None}
    assert target_of(policy, call, decision) == Target(
        roster_program=doc["programs"][0]["id"], needs=["youth_trained", "clinician"])
    # Another category asks nothing.
    policy, decision = _decided(doc, nature_code="VAG", district="D2")
    call["category"] = decision["category"]
    found = target_of(policy, call, decision)
    assert found is not None and found.needs == []


def test_the_one_team_formats_units_are_the_team() -> None:
    doc = one_team_doc()
    doc["program"]["requires"] = {"mental_health": ["youth_trained"]}
    policy, decision = _decided(doc, nature_code="MNTL")
    call = {"category": "mental_health", "team_status": None, "closed_at": None}
    assert target_of(policy, call, decision) == Target(
        roster_program=ONE_TEAM, needs=["youth_trained"])


def test_no_recommendation_for_calls_no_unit_is_to_be_sent_to() -> None:
    policy, decision = _decided(shipped_doc(), nature_code="MNTL", district="D2")
    open_call: dict[str, Any] = {"category": "mental_health", "team_status": None,
                                 "closed_at": None}
    assert target_of(policy, open_call, decision) is not None
    for call in ({**open_call, "team_status": "assigned"},
                 {**open_call, "closed_at": "2026-03-10T15:00:00+00:00"}):
        assert target_of(policy, call, decision) is None
    police = {**decision, "destination": "police"}
    assert target_of(policy, open_call, police) is None
    gone = {**decision, "program": {**decision["program"], "id": "dropped"}}
    assert target_of(policy, open_call, gone) is None
    # The crisis line answers by phone: no unit goes.
    policy, line = _decided(shipped_doc(), channel="crisis_line", nature_code="CRISIS")
    assert line["destination"] == "call_team"
    assert target_of(policy, {**open_call, "category": line["category"]}, line) is None


def test_a_units_day_starts_at_local_midnight() -> None:
    zone = ZoneInfo("America/New_York")
    assert local_midnight(datetime(2026, 3, 10, 3, 30, tzinfo=UTC), zone) == datetime(
        2026, 3, 9, 0, 0, tzinfo=zone)
    assert local_midnight(datetime(2026, 3, 10, 14, 0, tzinfo=UTC), zone) == datetime(
        2026, 3, 10, 0, 0, tzinfo=zone)
