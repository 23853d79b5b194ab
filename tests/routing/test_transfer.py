"""911 → 988: a crisis centre as a response program (mode transfer), its capacity in
counsellors, and the decision again when it declines or returns a call. Pure routing.

The policy is `programs_doc` with a crisis centre tried first for mental-health calls,
08:00-22:00 daily with two counsellors. New York times (EDT -04:00 after 8 March 2026).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from routing.decide import after_transfer, decide_call, redecide
from routing.models import Availability, Decision, Destination, Mode, ProgramState
from routing.whatif import SimCall, simulate
from rules.evaluate import CompiledPolicy
from rules.models import Policy
from tests.factories import compiled, facts, programs_doc

TUESDAY_2PM = "2026-03-10T14:00:00-04:00"
NOBODY = Availability(units_total=3, units_busy=0)
CENTRE: dict[str, Any] = {"id": "988", "name": "Crisis centre", "mode": "transfer",
                          "categories": ["mental_health"], "units": 2,
                          "hours": {"daily": ["08:00-22:00"]}}


def transfer_doc(**centre: Any) -> dict[str, Any]:
    doc = programs_doc()
    doc["programs"].insert(0, {**CENTRE, **centre})
    return doc


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return compiled(transfer_doc())


def state(centre: int = 0, field: int = 0) -> dict[str, ProgramState]:
    return {"988": ProgramState(units_busy=centre), "field": ProgramState(units_busy=field)}


def decide(policy: CompiledPolicy, st: dict[str, ProgramState] | None = None,
           **fields: Any) -> Decision:
    fields.setdefault("occurred_at", TUESDAY_2PM)
    fields.setdefault("nature_code", "MNTL")
    fields.setdefault("district", "D1")
    return decide_call(facts(**fields), policy, NOBODY, state=st)


def test_the_crisis_centre_takes_a_call_within_its_hours_with_a_counsellor_free(
        policy: CompiledPolicy) -> None:
    d = decide(policy, state(centre=1))
    assert (d.destination, d.mode) == (Destination.crisis_center, Mode.transfer)
    assert (d.program.id, d.program.units_total, d.program.units_busy) == ("988", 2, 1)
    assert ("Program '988' (Crisis centre) takes the call: within its hours (Tue 14:00 "
            "local); 1 of 2 counsellors free.") in d.factors
    # A transfer is not the team's and holds no field unit.
    assert not d.involves_team and not d.needs_field_unit
    assert d.eligible and d.refused_programs == []


def test_counsellors_all_busy_the_next_program_takes_the_call(policy: CompiledPolicy
                                                              ) -> None:
    d = decide(policy, state(centre=2))
    assert (d.destination, d.program.id) == (Destination.call_team, "field")
    assert "Program '988' (Crisis centre) cannot take it now: all 2 of its counsellors " \
           "are busy." in d.factors


def test_outside_its_hours_the_next_program_takes_the_call(policy: CompiledPolicy) -> None:
    # 23:00 Tuesday: the centre is closed, the co-response unit works all day.
    d = decide(policy, state(), occurred_at="2026-03-10T23:00:00-04:00")
    assert d.program.id == "co-response" and d.destination is Destination.joint
    assert any(f.startswith("Program '988' (Crisis centre) cannot take it now: outside "
                            "its hours") for f in d.factors)


def test_a_test_call_is_not_counted_against_the_counsellors(policy: CompiledPolicy) -> None:
    d = decide(policy, state(centre=2), purpose="test")
    assert d.destination is Destination.crisis_center


def test_returned_the_call_is_decided_again_without_the_centre_with_the_reason(
        policy: CompiledPolicy) -> None:
    first = decide(policy, state())
    at = datetime.fromisoformat("2026-03-10T14:20:00-04:00")
    d = after_transfer(facts(nature_code="MNTL", district="D1", occurred_at=TUESDAY_2PM),
                       policy, NOBODY, first, program_id="988", outcome="returned",
                       by="counsellor-7", reason="caller needs someone in person", at=at,
                       state=state())
    assert (d.destination, d.program.id) == (Destination.call_team, "field")
    assert d.decided_at == at and d.refused_programs == ["988"]
    assert ("Transferred to program '988' at Tue 14:00 local; returned by counsellor-7 at "
            "Tue 14:20: caller needs someone in person.") in d.factors
    assert "Program '988' (Crisis centre) is not tried again: it declined or returned " \
           "this call's transfer." in d.factors
    assert "caller needs someone in person" in d.explanation
    # A later CAD update keeps the centre out: it refused the call once.
    again = redecide(facts(nature_code="MNTL", district="D1", occurred_at=TUESDAY_2PM,
                           priority=2), policy, NOBODY, d, closed=False, state=state())
    assert again.destination is Destination.call_team and again.refused_programs == ["988"]


def test_declined_and_no_other_program_can_take_it_police_respond(
        policy: CompiledPolicy) -> None:
    # 21:00 Saturday, district D9: the field team is off, co-response works D1 and D2 only.
    first = decide(policy, state(), district="D9", occurred_at="2026-03-14T21:00:00-04:00")
    assert first.destination is Destination.crisis_center
    d = after_transfer(facts(nature_code="MNTL", district="D9",
                             occurred_at="2026-03-14T21:00:00-04:00"),
                       policy, NOBODY, first, program_id="988", outcome="declined",
                       by="988-system", reason="no counsellor with the language",
                       at=datetime.fromisoformat("2026-03-14T21:01:00-04:00"), state=state())
    assert d.destination is Destination.police and d.eligible
    assert any("declined by 988-system" in f for f in d.factors)


def test_a_transfer_program_keeps_no_queue_and_needs_counsellors() -> None:
    with pytest.raises(ValidationError, match="keeps no queue"):
        Policy.model_validate(transfer_doc(queue=[{"max_wait_minutes": 5}]))
    with pytest.raises(ValidationError, match="a transfer program needs units"):
        Policy.model_validate(transfer_doc(units=None))


def test_whatif_counts_the_crisis_centre_as_its_own_destination(policy: CompiledPolicy
                                                                ) -> None:
    calls = [SimCall(call_id=str(i), facts=facts(nature_code="MNTL", district="D1",
                                 occurred_at=f"2026-03-10T14:0{i}:00-04:00"))
             for i in range(3)]
    report = simulate(calls, policy, policy).candidate
    # Two counsellors, each held for the call's service time: the third goes on.
    assert report.destinations.get("crisis_center") == 2
    assert report.destinations.get("call_team") == 1
    assert report.team_share == pytest.approx(1 / 3, abs=1e-6)


def test_a_dispatcher_may_not_override_a_call_to_the_crisis_centre() -> None:
    from service.lifecycle.ingest import OverrideRequest
    with pytest.raises(ValidationError, match="cannot transfer a call to the crisis centre"):
        OverrideRequest(destination=Destination.crisis_center, reason="try 988")


def test_the_eido_note_names_the_crisis_centre(policy: CompiledPolicy) -> None:
    from adapters.eido.emit import decision_html
    html = decision_html(decide(policy, state()).model_dump(mode="json"))
    assert "the crisis centre (988 transfer)" in html
