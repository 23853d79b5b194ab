"""The outbox row, written with each decision in the decision's own transaction, and the
exact bytes sent for it (docs/webhook.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from service.calls.records import DecisionRecord
from service.calls.visibility import webhook_body
from service.store.tables import utcnow
from service.writing.batch import compact_json

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def outbox_row(call: Mapping[str, Any], decision: DecisionRecord, *, cause: str,
               event_id: str | None) -> dict[str, Any]:
    """The outbox row for one decision of a call (Batch.add_outbox writes it)."""
    now = utcnow()
    delivery_id = uuid.uuid4().hex
    # The CAD is the `cad` role: it gets the restricted view (service/calls/visibility.py).
    payload = webhook_body({
        "type": "decision", "delivery_id": delivery_id, "call_id": call["id"],
        "incident_id": call["incident_id"], "source": call["source"], "cause": cause,
        "event_id": event_id, "time": now.isoformat(), "decision": decision}, call)
    return {"delivery_id": delivery_id, "call_id": call["id"], "cause": cause,
            "event_id": event_id, "payload": compact_json(payload), "status": PENDING,
            "attempts": 0, "last_status_code": None, "last_error": None, "created_at": now,
            "last_attempt_at": None, "next_attempt_at": now, "delivered_at": None,
            "failing_since": None, "lease_owner": None, "lease_until": None}


def body_of(sequence: int, payload: str) -> bytes:
    """The exact bytes sent: the stored payload with its sequence in front (the database
    assigns the sequence, so it is not in the stored text). The same on every retry."""
    return f'{{"sequence":{sequence},{payload[1:]}'.encode()
