"""Read side: a call with its decision, events and timeline."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.outbound import call_deliveries
from service.errors import NotFound
from service.history import history_of
from service.tables import BOARD, CAD_EVENT, CALL, DECISION, as_utc, iso_utc


async def get_call(engine: AsyncEngine, call_id: str) -> dict[str, Any]:
    """Gets a call, its current decision, its CAD events and its timeline."""
    c = CALL.c
    e = CAD_EVENT.c
    b = BOARD.c
    d = DECISION.c
    async with engine.connect() as conn:
        row = (await conn.execute(select(CALL).where(c.id == call_id))).mappings().first()
        if row is None:
            raise NotFound(f"no call {call_id}")
        events = (await conn.execute(
            select(e.event_id, e.type, e.occurred_at, e.received_at)
            .where(e.call_id == call_id).order_by(e.id))).all()
        board = (await conn.execute(
            select(b.seq, b.body).where(b.call_id == call_id).order_by(b.seq))).all()
        decisions = (await conn.execute(
            select(d.cause, d.event_id, d.decision, d.created_at)
            .where(d.call_id == call_id).order_by(d.id))).all()
        deliveries = await call_deliveries(conn, call_id)
        # Repeat contact: earlier calls about the person, else at the address.
        history = await history_of(conn, dict(row))
    call = {k: row[k] for k in ("id", "source", "incident_id", "channel", "nature_code",
                                "nature_text", "narrative", "priority", "team_status", "unit",
                                "disposition", "destination", "mode", "category", "purpose",
                                "age_group", "referred_by", "referred_unit", "follow_up_of",
                                "outcome", "backup_reason", "safety_incident",
                                "checkins_missed")}
    call["location"] = {k: row[k] for k in ("address", "district", "lat", "lon")}
    call["flags"] = json.loads(row["flags"])
    # Personal details; service/visibility.py withholds them from those who need not see.
    call["person"] = json.loads(row["person"]) if row["person"] else None
    referral = json.loads(row["referral"]) if row["referral"] else {}
    call["referral_consent"] = referral.get("consent")
    call["referral_contact"] = referral.get("contact")
    for k in ("opened_at", "last_event_at", "closed_at", "updated_at", "assigned_at",
              "en_route_at", "on_scene_at", "backup_requested_at", "cleared_at",
              "checkin_due_at"):
        call[k] = iso_utc(row[k])
    return {
        "call": call,
        "decision": json.loads(row["decision"]),
        "decisions": [{"cause": cause, "event_id": eid, "at": as_utc(at).isoformat(),
                       "decision": json.loads(doc)} for cause, eid, doc, at in decisions],
        "events": [{"event_id": eid, "type": t, "occurred_at": as_utc(o).isoformat(),
                    "received_at": as_utc(r).isoformat()} for eid, t, o, r in events],
        "timeline": [{"seq": seq, **json.loads(body)} for seq, body in board],
        # Its decisions' webhook deliveries to the CAD, and where each one stands.
        "deliveries": deliveries,
        "history": history,
    }


async def get_deliveries(engine: AsyncEngine, call_id: str) -> dict[str, Any]:
    """A call's webhook deliveries to the CAD, in sequence order."""
    async with engine.connect() as conn:
        found = (await conn.execute(select(CALL.c.id).where(CALL.c.id == call_id))).first()
        if found is None:
            raise NotFound(f"no call {call_id}")
        return {"call_id": call_id, "deliveries": await call_deliveries(conn, call_id)}
