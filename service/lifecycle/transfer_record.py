"""A transfer's record as it is opened with the decision that sends a call to a crisis
centre, and as it is shown (service/lifecycle/transfers.py has its steps). Apart so the
queue (service/lifecycle/waiting.py), whose fall-back may send a call to a centre, opens
one too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from routing.models import Decision, Destination
from service.lifecycle.recorded import call_summary
from service.store.tables import as_utc, iso_utc, utcnow
from service.writing.batch import Batch

# What each status may go to by a step; a status with none is where a transfer ends.
NEXT: dict[str, tuple[str, ...]] = {"offered": ("accepted", "declined"),
                                    "accepted": ("completed", "returned"),
                                    "declined": (), "completed": (), "returned": (),
                                    "withdrawn": ()}
LIAISON = "liaison"  # who ends a transfer Liaison withdraws


def opens_transfer(previous: Decision | None, decision: Decision) -> bool:
    """The decision sends the call to a crisis centre it was not at before."""
    return decision.destination is Destination.crisis_center and (
        previous is None or previous.destination is not Destination.crisis_center
        or previous.program.id != decision.program.id)


def follow_decision(ctx: Batch, call: Mapping[str, Any], previous: Decision | None,
                    decision: Decision) -> dict[str, Any] | None:
    """Open a transfer when the call's new decision sends it to a crisis centre (with
    the decision, in the same batch); the transfer's view, or None."""
    if not opens_transfer(previous, decision) or decision.program.id is None:
        return None
    now = utcnow()
    row = {"id": uuid.uuid4().hex, "call_id": call["id"], "program_id": decision.program.id,
           "status": "offered", "offered_at": decision.decided_at, "accepted_at": None,
           "ended_at": None, "reason": None, "updated_at": now}
    step = {"transfer_id": row["id"], "status": "offered", "at": decision.decided_at,
            "by": LIAISON, "reason": None, "recorded_at": now}
    ctx.add_transfer(row, step)
    doc = view(row, [step])
    announce(ctx, call, doc)
    return doc


def announce(ctx: Batch, call: Mapping[str, Any], transfer: dict[str, Any]) -> None:
    ctx.board(call["id"], "transfer", {
        "type": "transfer", "call_id": call["id"], "at": utcnow().isoformat(),
        # Not its steps: their reasons are the centre's notes (GET /v1/transfers/{id}).
        "transfer": {k: v for k, v in transfer.items() if k != "steps"},
        "call": call_summary(call)})


def view(row: Mapping[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A transfer as the API and the board show it (its call is added by the reader)."""
    return {"id": row["id"], "call_id": row["call_id"], "program_id": row["program_id"],
            "status": row["status"], "offered_at": iso_utc(as_utc(row["offered_at"])),
            "accepted_at": iso_utc(row["accepted_at"] and as_utc(row["accepted_at"])),
            "ended_at": iso_utc(row["ended_at"] and as_utc(row["ended_at"])),
            "reason": row["reason"], "allowed_next": list(NEXT[row["status"]]),
            "steps": [{"status": s["status"], "at": iso_utc(as_utc(s["at"])), "by": s["by"],
                       "reason": s["reason"]} for s in steps]}
