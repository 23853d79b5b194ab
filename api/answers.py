"""What the API answers, where several routes share a shape: a call as it is read, its
board messages, follow-ups, the answer to a stored event. Each route's own answers are
beside it.

These describe answers the service already builds as dicts (service/lifecycle/queries.py,
service/calls/visibility.py, the writer's commands): a route declares one as its
`response_model` with `response_model_exclude_unset=True`, so a key the dict leaves out
stays out and the JSON is what it was. Records read from storage allow keys not named
here (`extra="allow"`): what older rows carry still comes through.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from routing.models import DecisionView
from routing.recommend import Recommendation
from service.calls.event import Person

Withheld = Field(default=None, description="what was held back from this reader "
                                           "(service/calls/visibility.py); absent when nothing")


class FastJSON(JSONResponse):
    """JSONResponse's bytes (compact, UTF-8 unescaped), made by orjson: an ingest answer
    carries the whole decision, ~15 us to encode with the stdlib, ~2 with orjson."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldError(BaseModel):
    """One refused field and why (every 422 lists them)."""

    field: str = Field(description="the field, e.g. location.lat; (body) for the whole body")
    reason: str
    type: str | None = None


class IngestResult(Open):
    """A stored event's answer, as the sender may see it: the call it belongs to and the
    decision (the same event sent again gets the first answer)."""

    call_id: str
    event_id: str
    decision: DecisionView


# -- a call as GET /v1/calls/{call_id} reads it ----------------------------------------------

class CallLocation(BaseModel):
    address: str | None
    district: str | None
    lat: float | None
    lon: float | None


class CallRecord(Open):
    """The call (service/lifecycle/queries.py call_fields) narrowed for the reader: a field the role
    may not see is null and named in `withheld`. Times are RFC 3339 in UTC."""

    id: str
    source: str
    incident_id: str
    agency_id: str | None = Field(default=None, description="the agency whose call it is; "
                                  "null: no agency claimed it (police responded)")
    aid_agency_id: str | None = Field(default=None, description="the agency whose program "
                                      "helps with it by mutual aid (its people see it too)")
    channel: str | None
    nature_code: str | None
    nature_text: str | None
    narrative: str | None
    priority: int | None
    team_status: str | None = Field(description="null until the team takes it (queued)")
    unit: str | None
    disposition: str | None
    destination: str | None
    mode: str | None
    category: str | None
    purpose: str | None
    age_group: str | None
    referred_by: str | None
    referred_unit: str | None
    follow_up_of: str | None
    outcome: str | None
    backup_reason: str | None
    safety_incident: bool | None
    checkins_missed: int | None
    location: CallLocation
    flags: list[str]
    person: Person | None
    referral_consent: bool | None
    referral_contact: str | None
    opened_at: str | None
    last_event_at: str | None
    closed_at: str | None
    updated_at: str | None
    assigned_at: str | None
    en_route_at: str | None
    on_scene_at: str | None
    backup_requested_at: str | None
    cleared_at: str | None
    checkin_due_at: str | None
    withheld: list[str] | None = Field(default=None, description=(
        "a restricted reader's view names everything held back anywhere in it; absent "
        "for those who see everything"))


class DecisionRecord(BaseModel):
    """One of the call's decisions, oldest first."""

    cause: str = Field(description="event, override, backup, …")
    event_id: str | None
    at: str
    decision: DecisionView


class EventRecord(BaseModel):
    event_id: str
    type: str
    occurred_at: str
    received_at: str


class History(Open):
    """Repeat contact: earlier calls about the same person, else at the same address."""

    count: int
    more: bool = Field(description="there are at least this many; counting stopped there")
    by: Literal["person", "address"]
    last_at: str | None
    last_outcome: str | None
    last_disposition: str | None
    withheld: list[str] | None = Withheld


class FollowUpOriginal(Open):
    """Enough of the original call to plan the visit."""

    incident_id: str | None
    nature_code: str | None
    nature_text: str | None
    category: str | None
    address: str | None
    district: str | None
    unit: str | None
    disposition: str | None
    outcome: str | None
    cleared_at: str | None


class FollowUp(Open):
    id: str
    call_id: str = Field(description="the original call")
    status: Literal["scheduled", "opened", "completed", "cancelled"]
    due_at: str | None
    due: bool = Field(description="scheduled and due now")
    created_at: str | None
    created_by: str | None
    note: str | None
    follow_up_call_id: str | None = Field(description="the call it was opened as")
    announced_at: str | None
    opened_at: str | None
    completed_at: str | None
    closed_by: str | None
    closed_note: str | None
    exclusion: str | None = Field(default=None, description="scheduled by the policy: the "
                                  "exclusion that asked for it (an overdose: `medical`)")
    program_id: str | None = Field(default=None, description="the program to visit (policy)")
    consent: bool | None = Field(default=None, description="the CAD's word on the person's "
                                 "consent to a follow-up; null: it did not say")
    original: FollowUpOriginal | None = None


class CallSummary(Open):
    """What a board shows of a call: enough to act, no narrative."""

    incident_id: str
    channel: str | None
    nature_code: str | None
    nature_text: str | None
    priority: int | None
    address: str | None
    district: str | None
    # Where the CAD placed it (the map); absent on messages written before they were sent.
    lat: float | None = None
    lon: float | None = None
    flags: list[str]
    opened_at: str
    closed_at: str | None
    team_status: str | None
    unit: str | None
    disposition: str | None


class BoardMessage(Open):
    """A board message as the reader may see it (the websocket /v1/board sends the same):
    its `type` says which of the other fields it carries."""

    seq: int = Field(description="database-assigned, strictly increasing")
    type: str = Field(description="decision, call_updated, call_closed, status, checkin, "
                                  "checkin_missed, checkin_escalated, follow_up_…")
    call_id: str | None = None
    at: str | None = None
    call: CallSummary | None = None
    decision: DecisionView | None = None
    history: History | None = None
    follow_up: FollowUp | None = None
    withheld: list[str] | None = Withheld


class CallDelivery(Open):
    """One of the call's decisions as sent to the CAD's webhook (adapters/outbound.py)."""

    sequence: int = Field(description="increasing per call; the CAD drops one at or below "
                                      "the last it applied")
    delivery_id: str
    cause: str
    event_id: str | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None = Field(description="what failed; the CAD's words only for "
                                               "those who see everything")
    created_at: str | None
    last_attempt_at: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    failed_at: str | None


class Assignment(BaseModel):
    """A team call's assignment, with the unit recommendation as it stood then."""

    assigned_unit: str | None
    recommended_unit: str | None
    distance_km: float | None
    eta_minutes: int | None
    basis: Literal["distance", "load"] | None
    reason: str
    taken: bool = Field(description="the unit assigned is the one recommended")
    at: str
    by: str | None


class CallView(Open):
    """A call, its current decision, every decision it had, its CAD events, its timeline
    (the board messages about it), its webhook deliveries and its repeat-contact history,
    narrowed to what the reader may see."""

    call: CallRecord
    decision: DecisionView
    decisions: list[DecisionRecord]
    events: list[EventRecord]
    timeline: list[BoardMessage]
    deliveries: list[CallDelivery]
    history: History | None
    recommendation: Recommendation | None = Field(
        default=None, description="an open team call nobody has taken: the unit to send "
        "(routing/recommend.py), from the live roster; team, supervisor and dispatcher")
    assignment: Assignment | None = Field(
        default=None, description="once assigned: the unit sent and the recommendation "
        "given then; team, supervisor and dispatcher")
