"""A call's decision as the writer records it, for every command that decides a call:
its columns, the decision row, the board message and (webhook) the outbox. Shared by
ingest (CAD events, status, overrides) and the queue (service/lifecycle/waiting.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from routing.models import Destination
from service.calls.fold import CallState
from service.calls.records import DecisionColumns, DecisionRecord
from service.outbox.rows import outbox_row
from service.store.tables import as_utc, iso_utc, utcnow
from service.writing.batch import Batch, compact_json


def call_summary(call: Mapping[str, Any]) -> dict[str, Any]:
    """What a board shows of a call: enough to act, no narrative; whose call it is, for
    a board over several agencies (null: no agency claimed it)."""
    return {
        "incident_id": call["incident_id"], "agency_id": call.get("agency_id"),
        "channel": call["channel"],
        "nature_code": call["nature_code"], "nature_text": call["nature_text"],
        "priority": call["priority"], "address": call["address"],
        "district": call["district"], "lat": call["lat"], "lon": call["lon"],
        "flags": json.loads(call["flags"]),
        "opened_at": as_utc(call["opened_at"]).isoformat(),
        "closed_at": iso_utc(call["closed_at"]),
        "team_status": call["team_status"], "unit": call["unit"],
        "disposition": call["disposition"],
    }


def record_decision(ctx: Batch, call: Mapping[str, Any], decision: DecisionRecord, *,
                    cause: str, event_id: str | None,
                    history: dict[str, Any] | None = None) -> None:
    ctx.add_decision({
        "call_id": call["id"], "cause": cause, "event_id": event_id,
        "destination": decision["destination"], "policy_version": decision["policy_version"],
        "decision": call["decision"], "created_at": utcnow(),
    })
    message: dict[str, Any] = {
        "type": "decision", "call_id": call["id"], "cause": cause, "at": utcnow().isoformat(),
        "call": call_summary(call), "decision": decision}
    if cause == "event" and history is not None:
        # A new call: its repeat-contact history (service/calls/history.py).
        message["history"] = history
    ctx.board(call["id"], "decision", message)
    if ctx.webhook:
        # To the CAD's webhook, durable with the decision (adapters/outbound.py sends it).
        ctx.add_outbox(outbox_row(call, decision, cause=cause, event_id=event_id))


def state_of(call: Mapping[str, Any]) -> CallState:
    """A stored call's folded state (what its decision is made from)."""
    return CallState.model_validate({
        **{k: call[k] for k in ("channel", "nature_code", "nature_text", "narrative",
                                "priority", "address", "district", "lat", "lon",
                                "purpose", "follow_up_of")},
        "flags": json.loads(call["flags"]),
        "person": json.loads(call["person"]) if call["person"] else None,
        "referral": json.loads(call["referral"]) if call["referral"] else None,
        "opened_at": as_utc(call["opened_at"]),
        "last_event_at": as_utc(call["last_event_at"]),
        "closed_at": as_utc(call["closed_at"]) if call["closed_at"] else None,
    })


def _when(value: str) -> datetime:
    return as_utc(datetime.fromisoformat(value))


def decision_columns(decision: DecisionRecord,
                     previous: Mapping[str, Any] | None = None) -> DecisionColumns:
    """The call's columns that follow its current decision, what it waits for included
    (the batch clears that once the call is closed), and its wait record for the figures
    (`previous`: the call as stored before this decision)."""
    queued, deferred = decision.get("queued"), decision.get("deferred_until")
    since = deadline = None
    if queued:
        since = _when(queued["since"])
        deadline = since + timedelta(seconds=queued["wait_limit_s"])
    elif deferred:
        since = _when(deferred)
    record = wait_record(decision, previous, waits=since is not None)
    return {
        "destination": decision["destination"], "mode": decision["mode"],
        "not_served_reason": decision["not_served_reason"],
        "holds_unit": (decision["destination"] in (Destination.call_team, Destination.joint)
                       and decision["needs_field_unit"]),
        "decision": compact_json(decision),
        "wait_program": decision["program"].get("id") if since else None,
        "wait_since": since, "wait_deadline": deadline,
        "program_id": record["program_id"], "wait_kind": record["wait_kind"],
        "waited_from": record["waited_from"], "wait_ended_at": record["wait_ended_at"],
        "wait_outcome": record["wait_outcome"],
        "aid_agency_id": (decision.get("aid") or {}).get("agency"),
    }


_TEAM = (Destination.call_team, Destination.joint)


def wait_record(decision: DecisionRecord, previous: Mapping[str, Any] | None, *,
                waits: bool) -> dict[str, Any]:
    """What the program figures read of a call's waits, kept from decision to decision:
    its first wait (kind, from when), and the decision that ended it. A wait ends served
    when its program's unit takes the call (the same program, a team destination), fell
    back otherwise (a later program, police with wait_exceeded, an override to police)."""
    prev = previous or {}
    # A call outside every program's area is no program's to reach (the decision names the
    # first program tried): the figures count it under none.
    outside = decision["not_served_reason"] == "outside_area"
    record = {"program_id": None if outside else decision["program"].get("id"),
              **{k: prev.get(k) for k in ("wait_kind", "waited_from", "wait_ended_at",
                                          "wait_outcome")}}
    if waits and record["waited_from"] is None:
        queued = decision.get("queued")
        record["wait_kind"] = "queued" if queued else "deferred"
        record["waited_from"] = _when(queued["since"] if queued else decision["decided_at"])
    elif not waits and prev.get("wait_program"):
        served = (decision["destination"] in _TEAM
                  and decision["program"].get("id") == prev["wait_program"])
        record["wait_ended_at"] = _when(decision["decided_at"])
        record["wait_outcome"] = "served" if served else "fell_back"
    return record

