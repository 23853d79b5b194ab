"""A call as it travels between modules: the stored row and its decision.

TypedDicts, so at run time they are the plain dicts the writer already passes (ingest pays
nothing); mypy checks the keys and value types where a call crosses a module boundary:
the writer's batch, ingest, visibility and the read queries. The row mirrors the `call`
table (service/store/tables.py); the decision is routing's `Decision` as stored, in JSON
form (`Decision.model_dump(mode="json")`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict


class DecisionRecord(TypedDict, total=False):
    """A decision as stored and sent (routing.models.Decision in JSON form)."""

    destination: str
    mode: str
    category: str | None
    policy_version: str
    matched_rules: list[str]
    explanation: str
    basis: str
    eligible: bool
    not_served_reason: str | None
    factors: list[str]
    needs_field_unit: bool
    program: dict[str, Any]
    decided_at: str
    override: dict[str, Any] | None
    backup: dict[str, Any] | None
    queued: dict[str, Any] | None
    deferred_until: str | None
    refused_programs: list[str]
    aid: dict[str, Any] | None  # mutual aid: {agency, program}


class DecisionColumns(TypedDict):
    """The call's columns that follow its current decision."""

    destination: str
    mode: str
    not_served_reason: str | None
    holds_unit: bool
    decision: str  # the DecisionRecord as JSON
    wait_program: str | None  # queued or deferred for this program
    wait_since: datetime | None
    wait_deadline: datetime | None  # None: deferred (never falls back)
    program_id: str | None  # the program the figures count it under
    wait_kind: str | None  # queued | deferred: its first wait
    waited_from: datetime | None
    wait_ended_at: datetime | None
    wait_outcome: str | None  # served | fell_back
    aid_agency_id: str | None  # the agency helping by mutual aid (decision `aid`)


class CallRow(TypedDict):
    """One row of the `call` table: a call's folded state and its current decision."""

    id: str
    source: str
    incident_id: str
    agency_id: str | None  # None: no agency claimed it (routing/jurisdiction.py)
    aid_agency_id: str | None  # helping with it by mutual aid (its decision's `aid`)
    channel: str
    nature_code: str
    nature_text: str
    narrative: str | None
    priority: int | None
    address: str | None
    district: str | None
    lat: float | None
    lon: float | None
    flags: str  # JSON list
    opened_at: datetime
    last_event_at: datetime
    closed_at: datetime | None
    team_status: str | None
    unit: str | None
    disposition: str | None
    destination: str
    mode: str
    category: str | None
    eligible: bool
    not_served_reason: str | None
    holds_unit: bool
    policy_version: str
    decision: str  # a DecisionRecord as JSON
    updated_at: datetime
    purpose: str
    person: str | None  # JSON
    person_key: str | None
    age_group: str | None
    address_key: str | None
    referred_by: str | None
    referred_unit: str | None
    referral: str | None  # JSON
    follow_up_of: str | None
    received_at: datetime | None
    first_decided_at: datetime | None
    initial_destination: str | None
    assigned_at: datetime | None
    en_route_at: datetime | None
    on_scene_at: datetime | None
    backup_requested_at: datetime | None
    backup_reason: str | None
    cleared_at: datetime | None
    outcome: str | None
    safety_incident: bool
    overridden_by: str | None
    override_reason: str | None
    overridden_at: datetime | None
    checkin_due_at: datetime | None
    checkins_missed: int
    wait_program: str | None
    wait_since: datetime | None
    wait_deadline: datetime | None
    program_id: str | None
    wait_kind: str | None
    waited_from: datetime | None
    wait_ended_at: datetime | None
    wait_outcome: str | None
    team_right_responder: str | None  # yes | no | unsure, at clearing
    team_right_responder_note: str | None
    override_right_responder: str | None  # yes | no | unsure, at an override
    override_right_responder_note: str | None
