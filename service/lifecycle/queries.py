"""Read side: a call with its decision, events and timeline; calls found by filter."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calls.history import history_of
from service.errors import NotFound
from service.outbox.deliveries import call_deliveries
from service.store.tables import BOARD, CAD_EVENT, CALL, DECISION, as_utc, iso_utc


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
    return {
        "call": call_fields(row),
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


async def get_call_brief(engine: AsyncEngine, call_id: str) -> dict[str, Any]:
    """A call and its current decision alone (one row read): for what needs no timeline."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(CALL).where(CALL.c.id == call_id))).mappings().first()
    if row is None:
        raise NotFound(f"no call {call_id}")
    return {"call": call_fields(row), "decision": json.loads(row["decision"])}


async def get_deliveries(engine: AsyncEngine, call_id: str) -> dict[str, Any]:
    """A call's webhook deliveries to the CAD, in sequence order."""
    async with engine.connect() as conn:
        found = (await conn.execute(select(CALL.c.id).where(CALL.c.id == call_id))).first()
        if found is None:
            raise NotFound(f"no call {call_id}")
        return {"call_id": call_id, "deliveries": await call_deliveries(conn, call_id)}


_CALL_KEYS = ("id", "source", "incident_id", "agency_id", "aid_agency_id", "channel",
              "nature_code", "nature_text", "narrative", "priority", "team_status", "unit",
              "disposition", "destination", "mode", "category", "purpose", "age_group",
              "referred_by", "referred_unit", "follow_up_of", "outcome", "backup_reason",
              "safety_incident", "checkins_missed")
_CALL_TIMES = ("opened_at", "last_event_at", "closed_at", "updated_at", "assigned_at",
               "en_route_at", "on_scene_at", "backup_requested_at", "cleared_at",
               "checkin_due_at")


def call_fields(row: Any) -> dict[str, Any]:
    """A call row as the `call` of a view: everything, for service/calls/visibility.py to narrow."""
    call = {k: row[k] for k in _CALL_KEYS}
    call["location"] = {k: row[k] for k in ("address", "district", "lat", "lon")}
    call["flags"] = json.loads(row["flags"])
    # Personal details; service/calls/visibility.py withholds them from those who need not see.
    call["person"] = json.loads(row["person"]) if row["person"] else None
    referral = json.loads(row["referral"]) if row["referral"] else {}
    call["referral_consent"] = referral.get("consent")
    call["referral_contact"] = referral.get("contact")
    for k in _CALL_TIMES:
        call[k] = iso_utc(row[k])
    return call


# What a call list keeps of each call's view, once narrowed for the reader: enough to find
# and judge the call, and no free text or personal detail (narrative, notes, outcome,
# backup reason, person, contact) even for those who may read them: those stay behind
# GET /v1/calls/{id}, where each look is audited. `withheld` still names what the reader's
# role may not see of the call.
LIST_FIELDS = ("id", "source", "incident_id", "agency_id", "channel", "nature_code", "nature_text",
               "priority", "category", "destination", "mode", "team_status", "unit",
               "disposition", "purpose", "referred_by", "follow_up_of", "location", "flags",
               "opened_at", "last_event_at", "closed_at", "updated_at", "withheld")
TEAM_DESTINATIONS = ("call_team", "joint")


@dataclass(frozen=True)
class CallFilter:
    """Calls opened in [since, until), and the other fields equal to those given.

    `status`: `open` or `closed` (by the CAD), `queued` (an open team call nobody has
    taken), or a team status (`assigned` … `cleared`). `referred_by` narrows an officer
    to their own referrals; `source` a CAD key to its own calls."""

    since: datetime | None = None
    until: datetime | None = None
    incident_id: str | None = None
    source: str | None = None
    destination: str | None = None
    category: str | None = None
    status: str | None = None
    district: str | None = None
    referred_by: str | None = None
    agency: str | None = None

    def clauses(self) -> list[Any]:
        c = CALL.c
        out: list[Any] = []
        if self.since is not None:
            out.append(c.opened_at >= self.since)
        if self.until is not None:
            out.append(c.opened_at < self.until)
        for column, value in ((c.incident_id, self.incident_id), (c.source, self.source),
                              (c.destination, self.destination), (c.category, self.category),
                              (c.district, self.district), (c.referred_by, self.referred_by)):
            if value is not None:
                out.append(column == value)
        if self.agency is not None:  # its calls, and those it helps with by mutual aid
            out.append(or_(c.agency_id == self.agency, c.aid_agency_id == self.agency))
        if self.status == "open":
            out.append(c.closed_at.is_(None))
        elif self.status == "closed":
            out.append(c.closed_at.is_not(None))
        elif self.status == "queued":
            out += [c.closed_at.is_(None), c.team_status.is_(None),
                    c.destination.in_(TEAM_DESTINATIONS)]
        elif self.status is not None:
            out.append(c.team_status == self.status)
        return out


async def list_calls(engine: AsyncEngine, where: CallFilter, *,
                     before: tuple[datetime, str] | None = None,
                     limit: int = 100) -> list[dict[str, Any]]:
    """Up to `limit` calls, newest opened first (ties by id), each as a view
    {"call", "decision"} like get_call's, for the caller to narrow and cut to LIST_FIELDS.
    `before`: the (opened_at, id) of the last call of the previous page: a keyset, an
    indexed range on opened_at rather than an offset that rereads every earlier page."""
    c = CALL.c
    clauses = where.clauses()
    if before is not None:
        at, call_id = before
        # The first clause bounds the index range; the second drops the ties already seen.
        clauses += [c.opened_at <= at, or_(c.opened_at < at, c.id < call_id)]
    q = select(CALL).where(*clauses).order_by(c.opened_at.desc(), c.id.desc()).limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
    return [{"call": call_fields(r), "decision": json.loads(r["decision"])} for r in rows]


async def call_agency(engine: AsyncEngine, call_id: str) -> tuple[str | None, str | None]:
    """The agency of a call (None: no agency claimed it) and the agency helping with it by
    mutual aid (None: none); NotFound when there is no call."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(CALL.c.agency_id, CALL.c.aid_agency_id)
                                  .where(CALL.c.id == call_id))).first()
    if row is None:
        raise NotFound(f"no call {call_id}")
    return row[0], row[1]
