"""The queue's order: when a unit clears, the most urgent call is offered first, the
oldest among equals; a call past its wait limit is not offered but falls back."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from routing.decide import decide_call
from routing.models import Availability, ProgramState
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
    with pytest.raises(ValueError, match="not queued"):
        Waiting.of("c2", None, not_queued)
