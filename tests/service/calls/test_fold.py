"""Folding CAD events into a call's state: partial updates, CAD-time order, closing."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from service.calls.event import CallEvent
from service.calls.fold import CallState, apply_event, fold

T0 = datetime.fromisoformat("2026-03-10T14:00:00-04:00")


def ev(kind: str, minutes: float, **fields: Any) -> CallEvent:
    """An event `minutes` after T0; only the given fields are set on it."""
    body: dict[str, Any] = {
        "event_id": f"ev-{kind}-{minutes}-{len(fields)}",
        "incident_id": "INC-1",
        "type": kind,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        **fields,
    }
    return CallEvent.model_validate(body)


def created(minutes: float = 0, **fields: Any) -> CallEvent:
    base: dict[str, Any] = {
        "channel": "911", "nature_code": "MNTL", "nature_text": "Mental person non-violent",
        "priority": 3, "narrative": "Brother not sleeping, no weapons.",
        "location": {"address": "1300 1st Ave N", "district": "D2", "lat": 27.77, "lon": -82.65},
        "flags": [],
    }
    return ev("created", minutes, **{**base, **fields})


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- apply_event ------------------------------------------------------------------------------


def test_created_sets_every_field() -> None:
    state = apply_event(None, created())
    assert state.model_dump() == {
        "channel": "911", "nature_code": "MNTL", "nature_text": "Mental person non-violent",
        "narrative": "Brother not sleeping, no weapons.", "priority": 3,
        "address": "1300 1st Ave N", "district": "D2", "lat": 27.77, "lon": -82.65,
        "flags": [], "purpose": "live", "person": None, "referral": None,
        "follow_up_of": None, "follow_up_consent": None, "opened_at": T0, "last_event_at": T0,
        "closed_at": None,
    }


def test_person_referral_and_purpose_are_kept_and_replaced_whole() -> None:
    person = {"id": "MN-1", "name": "A. Person", "age": 16}
    first = apply_event(None, created(person=person, purpose="training",
                                      referral={"officer_id": "B12", "consent": True}))
    assert first.person is not None and first.person.age == 16
    assert first.purpose == "training" and first.referral is not None
    later = apply_event(first, ev("updated", 5, person={"id": "MN-1", "phone": "555"}))
    assert later.person is not None and later.person.name is None  # replaced, not merged
    assert later.purpose == "training" and later.referral == first.referral


def test_created_with_only_a_nature_code_uses_defaults() -> None:
    state = apply_event(None, ev("created", 0, nature_code="EDP"))
    assert (state.channel, state.nature_code, state.nature_text, state.narrative,
            state.priority, state.district, state.flags) == (
        "911", "EDP", "", None, None, None, [])


def test_update_changes_only_the_fields_it_gives() -> None:
    before = apply_event(None, created())
    after = apply_event(before, ev("updated", 5, priority=1, narrative="Now shouting."))
    expected = before.model_dump() | {"priority": 1, "narrative": "Now shouting.",
                                      "last_event_at": at(5)}
    assert after.model_dump() == expected
    assert after.opened_at == T0


def test_update_of_part_of_the_location_keeps_the_rest() -> None:
    before = apply_event(None, created())
    after = apply_event(before, ev("updated", 2, location={"district": "D3"}))
    assert (after.address, after.district, after.lat, after.lon) == (
        "1300 1st Ave N", "D3", 27.77, -82.65)


def test_flags_are_replaced_not_merged() -> None:
    state = apply_event(None, created(flags=["weapon", "injury"]))
    state = apply_event(state, ev("updated", 1, flags=["medical"]))
    assert state.flags == ["medical"]
    state = apply_event(state, ev("updated", 2, flags=[]))
    assert state.flags == []


def test_update_without_flags_keeps_them() -> None:
    state = apply_event(None, created(flags=["weapon"]))
    state = apply_event(state, ev("updated", 1, priority=2))
    assert state.flags == ["weapon"]


def test_explicit_null_flags_clears_them() -> None:
    state = apply_event(None, created(flags=["weapon"]))
    state = apply_event(state, ev("updated", 1, flags=None))
    assert state.flags == []


def test_explicit_null_cannot_unset_what_the_call_is() -> None:
    state = apply_event(None, created(channel="non_emergency"))
    state = apply_event(state, ev("updated", 1, nature_code=None, nature_text=None, channel=None,
                                  priority=None))
    # The call keeps its type and channel; optional facts like priority can be cleared.
    assert (state.nature_code, state.nature_text, state.channel, state.priority) == (
        "MNTL", "Mental person non-violent", "non_emergency", None)


def test_closed_sets_closed_at_and_keeps_the_facts() -> None:
    state = apply_event(None, created())
    closed = apply_event(state, ev("closed", 30))
    assert closed.closed_at == at(30)
    assert closed.last_event_at == at(30)
    assert closed.model_dump(exclude={"closed_at", "last_event_at"}) == state.model_dump(
        exclude={"closed_at", "last_event_at"})


def test_facts_use_the_time_the_call_came_in() -> None:
    state = fold([created(flags=["weapon"]), ev("updated", 45, priority=1)])
    facts = state.facts()
    assert facts.occurred_at == T0
    assert facts.flags == frozenset({"weapon"})
    assert (facts.nature_code, facts.priority, facts.district) == ("MNTL", 1, "D2")
    assert facts.text == "Mental person non-violent\nBrother not sleeping, no weapons."


def test_facts_carry_place_and_purpose() -> None:
    """The programs' areas test the call's coordinates; a training call holds no unit."""
    live = fold([created()]).facts()
    assert (live.lat, live.lon, live.purpose) == (27.77, -82.65, "live")
    moved = fold([created(purpose="training"),
                  ev("updated", 5, location={"lat": 27.77, "lon": -82.64})]).facts()
    assert (moved.lat, moved.lon, moved.purpose) == (27.77, -82.64, "training")


# --- fold: CAD-time order ------------------------------------------------------------------


def history() -> list[CallEvent]:
    return [
        created(0),
        ev("updated", 3, priority=2, flags=["injury"]),
        ev("updated", 7, narrative="Caller now says there is a knife.", flags=["weapon"]),
        ev("updated", 9, location={"district": "D4"}, nature_code="EDP"),
        ev("closed", 40),
    ]


def in_order(events: list[CallEvent]) -> CallState:
    state: CallState | None = None
    for e in events:
        state = apply_event(state, e)
    assert state is not None
    return state


def test_fold_in_order_applies_every_event() -> None:
    state = fold(history())
    assert state.model_dump() == {
        "channel": "911", "nature_code": "EDP", "nature_text": "Mental person non-violent",
        "narrative": "Caller now says there is a knife.", "priority": 2,
        "address": "1300 1st Ave N", "district": "D4", "lat": 27.77, "lon": -82.65,
        "flags": ["weapon"], "purpose": "live", "person": None, "referral": None,
        "follow_up_of": None, "follow_up_consent": None, "opened_at": T0,
        "last_event_at": at(40), "closed_at": at(40),
    }
    assert state == in_order(history())


def test_out_of_order_folds_the_same_as_in_order_for_every_permutation() -> None:
    events = history()
    expected = fold(events)
    for perm in itertools.permutations(events):
        assert fold(list(perm)) == expected, [e.event_id for e in perm]


def test_out_of_order_arrival_is_not_the_same_as_applying_in_arrival_order() -> None:
    # The later flags must win even when the earlier event arrives last.
    events = history()
    arrival = [events[0], events[2], events[1]]
    assert fold(arrival).flags == ["weapon"]
    assert in_order(arrival).flags == ["injury"]  # what a naive fold would say


def test_events_with_mixed_offsets_are_ordered_by_instant() -> None:
    first = ev("updated", 1, priority=5)
    # 14:02 in New York, written in UTC: later than `first` though it reads "18:02".
    second = CallEvent.model_validate({
        "event_id": "utc", "incident_id": "INC-1", "type": "updated",
        "occurred_at": "2026-03-10T18:02:00Z", "priority": 1})
    assert fold([created(), second, first]).priority == 1
    assert fold([created(), first, second]).priority == 1


def test_closed_event_sets_closed_at_even_if_it_arrives_first() -> None:
    events = [ev("closed", 20), ev("updated", 10, priority=1), created(0)]
    state = fold(events)
    assert state.closed_at == at(20)
    assert state.opened_at == T0
    assert state.priority == 1


def test_updated_before_created_in_cad_time_is_handled() -> None:
    early = ev("updated", -2, narrative="Early note from the call-taker.", priority=1)
    create = created(0, narrative=None)
    create_fields = {k: v for k, v in create.model_dump().items()
                     if k in create.model_fields_set}
    assert "narrative" in create_fields  # created says narrative is now empty
    for events in ([early, create], [create, early]):
        state = fold(events)
        # The created event is later in CAD time, so every field it gives wins.
        assert state.nature_code == "MNTL"
        assert state.priority == 3
        assert state.narrative is None
        assert state.last_event_at == T0
        assert state.opened_at <= T0
    assert fold([early, create]) == fold([create, early])


def test_updated_before_created_keeps_fields_created_does_not_give() -> None:
    early = ev("updated", -2, location={"district": "D7"})
    create = ev("created", 0, nature_code="EDP")
    state = fold([create, early])
    assert (state.nature_code, state.district) == ("EDP", "D7")


def test_opened_at_is_the_earliest_created_time() -> None:
    first = created(0)
    retry_later = created(4, nature_code="EDP")
    update = ev("updated", 6, priority=1)
    for perm in itertools.permutations([first, retry_later, update]):
        state = fold(list(perm))
        assert state.opened_at == T0
        assert state.last_event_at == at(6)
        assert state.nature_code == "EDP"  # the later created event's code wins


def test_last_event_at_is_the_latest_event_time() -> None:
    events = [created(0), ev("updated", 12, priority=2), ev("updated", 5, priority=4)]
    state = fold(events)
    assert state.last_event_at == at(12)
    assert state.priority == 2


def test_equal_times_keep_the_given_order() -> None:
    a = ev("updated", 3, priority=1)
    b = ev("updated", 3, priority=2)
    assert fold([created(), a, b]).priority == 2
    assert fold([created(), b, a]).priority == 1


def test_fold_needs_at_least_one_event() -> None:
    with pytest.raises(AssertionError):
        fold([])


def test_fold_does_not_mutate_its_input() -> None:
    events = [ev("updated", 3, priority=1), created(0)]
    snapshot = [e.model_dump() for e in events]
    fold(events)
    assert [e.model_dump() for e in events] == snapshot
    assert [e.type for e in events] == ["updated", "created"]
