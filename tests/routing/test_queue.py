"""The queue's order: when a unit clears, the most urgent call is offered first, the
oldest among equals; a call past its wait limit is not offered but falls back; a
deferred call waits for its shift, then for as long as it takes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from routing.decide import decide_call, take_waiting
from routing.models import Availability, Destination, ProgramState
from routing.queue import Waiting, next_to_offer, offer_order, overdue, positions
from tests.factories import compiled, facts, programs_doc

T0 = datetime.fromisoformat("2026-03-10T14:00:00-04:00")


def waiting(call_id: str, priority: int | None, minutes_ago: int, limit_min: int = 30,
            program: str = "field") -> Waiting:
    return Waiting(call_id=call_id, program_id=program, priority=priority,
                   since=T0 - timedelta(minutes=minutes_ago), wait_limit_s=limit_min * 60)


def test_the_oldest_most_urgent_call_is_offered_first() -> None:
    queue = [waiting("old-p4", 4, 25), waiting("new-p3", 3, 2), waiting("old-p3", 3, 10),
             waiting("no-priority", None, 28), waiting("other-team", 1, 29, program="co")]
    assert [w.call_id for w in offer_order(queue, "field", T0)] == [
        "old-p3", "new-p3", "old-p4", "no-priority"]
    first = next_to_offer(queue, "field", T0)
    assert first is not None and first.call_id == "old-p3"
    assert positions(queue, T0) == {"old-p3": 1, "new-p3": 2, "old-p4": 3, "no-priority": 4,
                                    "other-team": 1}
    assert next_to_offer(queue, "nobody", T0) is None


def test_a_call_past_its_wait_limit_is_not_offered_but_falls_back() -> None:
    queue = [waiting("expired", 1, 31), waiting("just-now", 2, 30), waiting("fine", 5, 1)]
    assert [w.call_id for w in offer_order(queue, "field", T0)] == ["fine"]
    assert [w.call_id for w in overdue(queue, T0)] == ["expired", "just-now"]


def test_a_queued_decision_is_a_queue_entry() -> None:
    policy = compiled(programs_doc())
    d = decide_call(facts(nature_code="MNTL", priority=3, district="D1",
                          occurred_at=T0.isoformat()), policy,
                    Availability(units_total=3, units_busy=3),
                    state={"field": ProgramState(units_busy=2),
                           "co-response": ProgramState(units_busy=1)})
    w = Waiting.of("c1", 3, d)
    assert (w.program_id, w.since, w.deadline) == ("field", T0, T0 + timedelta(minutes=20))
    not_queued = decide_call(facts(nature_code="MNTL", district="D1",
                                   occurred_at=T0.isoformat()), policy,
                             Availability(units_total=3, units_busy=0))
    with pytest.raises(ValueError, match="neither queued nor deferred"):
        Waiting.of("c2", None, not_queued)


def deferred(call_id: str, priority: int | None, shift_start: datetime) -> Waiting:
    return Waiting(call_id=call_id, program_id="field", priority=priority,
                   since=shift_start)


def test_a_deferred_call_is_offered_from_its_shift_and_never_falls_back() -> None:
    tomorrow = T0 + timedelta(hours=18)
    queue = [deferred("tonight", 4, T0 - timedelta(hours=6)), deferred("tomorrow", 1, tomorrow),
             waiting("queued", 4, 5)]
    # Its shift began before the queued call arrived: the day's first work comes first.
    assert [w.call_id for w in offer_order(queue, "field", T0)] == ["tonight", "queued"]
    assert overdue(queue, T0 + timedelta(days=3)) == [queue[2]]
    assert positions(queue, T0) == {"tonight": 1, "queued": 2}
    later = offer_order(queue, "field", tomorrow)
    assert [w.call_id for w in later] == ["tomorrow", "tonight"]
    assert queue[0].deadline is None and queue[0].deferred


def test_a_unit_takes_a_waiting_call_and_the_decision_says_how_long_it_waited() -> None:
    policy = compiled(programs_doc())
    busy = {"field": ProgramState(units_busy=2), "co-response": ProgramState(units_busy=1)}
    d = decide_call(facts(nature_code="MNTL", priority=3, district="D1",
                          occurred_at=T0.isoformat()), policy,
                    Availability(units_total=3, units_busy=3), state=busy)
    assert d.queued is not None and not d.needs_field_unit
    taken = take_waiting(policy, d, T0 + timedelta(minutes=12), units_busy=2)
    assert (taken.destination, taken.mode, taken.program.id) == (d.destination, d.mode,
                                                                 "field")
    assert taken.queued is None and taken.needs_field_unit
    assert taken.decided_at == T0 + timedelta(minutes=12)
    assert taken.factors[:-1] == d.factors
    assert "since Tue 14:00 local (12 min); a unit came free at Tue 14:12" in \
        taken.explanation
    referral = decide_call(facts(channel="officer_referral", nature_code="VAG",
                                 district="D1", occurred_at="2026-03-10T03:00:00-04:00"),
                           policy, Availability(units_total=3, units_busy=0), state=busy)
    assert referral.deferred_until is not None
    first_work = take_waiting(policy, referral, referral.deferred_until)
    assert first_work.destination is Destination.call_team and first_work.needs_field_unit
    assert first_work.deferred_until is None and "a unit takes it at" in \
        first_work.explanation
    with pytest.raises(ValueError):
        take_waiting(policy, taken, T0)


def test_a_phone_programs_call_taken_from_its_queue_holds_no_field_unit() -> None:
    doc = programs_doc()
    line = doc["programs"][2]
    line.update(units=1, queue=[{"category": "crisis_line", "max_wait_minutes": 10}])
    policy = compiled(doc)
    d = decide_call(facts(channel="crisis_line", nature_code="CRISIS",
                          occurred_at=T0.isoformat()), policy,
                    Availability(units_total=0, units_busy=0),
                    state={"line": ProgramState(units_busy=1)})
    assert d.queued is not None and d.program.id == "line", d.explanation
    taken = take_waiting(policy, d, T0 + timedelta(minutes=3))
    assert taken.destination is Destination.call_team and not taken.needs_field_unit
