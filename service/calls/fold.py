"""Fold a call's CAD events, in CAD time order, into its current state. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from rules.call import CallFacts
from service.calls.event import CallEvent, Person, Referral


class CallState(BaseModel):
    """What the CAD has told us about an incident so far."""

    channel: str = "911"
    nature_code: str = ""
    nature_text: str = ""
    narrative: str | None = None
    priority: int | None = None
    address: str | None = None
    district: str | None = None
    lat: float | None = None
    lon: float | None = None
    flags: list[str] = []
    purpose: str = "live"
    person: Person | None = None
    referral: Referral | None = None
    follow_up_of: str | None = None
    follow_up_consent: bool | None = None
    opened_at: datetime
    last_event_at: datetime
    closed_at: datetime | None = None

    def facts(self) -> CallFacts:
        # Hours and time windows refer to when the call came in, on the CAD's clock.
        # Place: the programs' service areas; purpose: a test or training call holds no
        # live unit (routing/programs.py).
        return CallFacts.model_validate({
            "channel": self.channel, "nature_code": self.nature_code,
            "nature_text": self.nature_text, "narrative": self.narrative,
            "priority": self.priority, "district": self.district,
            "flags": frozenset(self.flags), "occurred_at": self.opened_at,
            "lat": self.lat, "lon": self.lon, "purpose": self.purpose,
        })


_REQUIRED = frozenset({"channel", "nature_code", "nature_text"})
_SIMPLE = ("channel", "nature_code", "nature_text", "narrative", "priority", "flags",
           "person", "referral", "follow_up_of", "follow_up_consent")


def apply_event(state: CallState | None, event: CallEvent) -> CallState:
    """Apply one event on top of a state that holds only earlier events."""
    given = event.model_fields_set
    values: dict[str, Any] = state.model_dump() if state else {
        "opened_at": event.occurred_at, "last_event_at": event.occurred_at,
    }
    for name in _SIMPLE:
        if name in given:
            value = getattr(event, name)
            if value is None and name in _REQUIRED:
                continue  # an explicit null cannot unset what the call is
            values[name] = (value or []) if name == "flags" else value
    if "location" in given and event.location is not None:
        values.update(event.location.model_dump(exclude_unset=True))
    if "purpose" in given and event.purpose is not None:
        values["purpose"] = event.purpose
    values.setdefault("nature_text", "")
    values.setdefault("channel", "911")
    values["opened_at"] = min(values["opened_at"], event.occurred_at)
    values["last_event_at"] = max(values["last_event_at"], event.occurred_at)
    if event.type == "closed":
        values["closed_at"] = event.occurred_at
    return CallState.model_validate(values)


def fold(events: list[CallEvent]) -> CallState:
    """The state after every event, taken in CAD time order (stable for equal times)."""
    state: CallState | None = None
    for event in sorted(events, key=lambda e: e.occurred_at):
        state = apply_event(state, event)
    assert state is not None, "fold needs at least one event"
    return state
