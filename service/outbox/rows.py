"""The outbox rows, written with each decision and each team status in their own
transaction, and the exact bytes sent for them (docs/webhook.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from service.calls.records import DecisionRecord
from service.calls.visibility import webhook_body
from service.store.tables import utcnow
from service.writing.batch import compact_json

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUS_CAUSE = "status"  # the `cause` a team status's row is listed with


def outbox_row(call: Mapping[str, Any], decision: DecisionRecord, *, cause: str,
               event_id: str | None) -> dict[str, Any]:
    """The outbox row for one decision of a call (Batch.add_outbox writes it)."""
    return _row(call, cause=cause, event_id=event_id, body={
        "type": "decision", "cause": cause, "event_id": event_id, "decision": decision})


def status_outbox_row(call: Mapping[str, Any], *, status: str, previous: str,
                      at: datetime, disposition_code: str | None,
                      reason: str | None) -> dict[str, Any]:
    """The outbox row for one team status change of a call (`call`: as it stands after
    it). Its sequence comes from the same table as the call's decisions', so the CAD
    reads both in one order."""
    return _row(call, cause=STATUS_CAUSE, event_id=None, body={
        "type": "status", "status": status, "previous": previous, "unit": call["unit"],
        "at": at.isoformat(), "disposition": call["disposition"] if status == "cleared" else None,
        "disposition_code": disposition_code, "reason": reason})


def _row(call: Mapping[str, Any], *, cause: str, event_id: str | None,
         body: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    delivery_id = uuid.uuid4().hex
    # The CAD is the `cad` role: it gets the restricted view (service/calls/visibility.py).
    payload = webhook_body({
        "type": body["type"], "delivery_id": delivery_id, "call_id": call["id"],
        "incident_id": call["incident_id"], "source": call["source"], "time": now.isoformat(),
        **body}, call)
    return {"delivery_id": delivery_id, "call_id": call["id"], "cause": cause,
            "event_id": event_id, "payload": compact_json(payload), "status": PENDING,
            "attempts": 0, "last_status_code": None, "last_error": None, "created_at": now,
            "last_attempt_at": None, "next_attempt_at": now, "delivered_at": None,
            "failing_since": None, "lease_owner": None, "lease_until": None}


def body_of(sequence: int, payload: str) -> bytes:
    """The exact bytes sent: the stored payload with its sequence in front (the database
    assigns the sequence, so it is not in the stored text). The same on every retry."""
    return f'{{"sequence":{sequence},{payload[1:]}'.encode()
