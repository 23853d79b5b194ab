"""Proactive follow-ups: the team clears a call and schedules a visit back.

A follow-up is `scheduled` until someone opens it, which makes a call of its own
(channel `follow_up`, `follow_up_of` the original, source `liaison`) through the same
ingest path as a CAD event, so the policy routes it; then `completed` or `cancelled`.
The sweeper (service/lifecycle/checkins.py) tells the board once when one becomes due
(`follow_up_due`). Writes are writer commands, like service/lifecycle/ingest.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rules.models import Policy
from service.calls.records import DecisionRecord
from service.errors import Conflict
from service.lifecycle.team import StatusChange
from service.store.tables import CALL, FOLLOW_UP, as_utc, iso_utc, row_by_id, utcnow
from service.writing.batch import Batch, Keys

FollowUpStatus = Literal["scheduled", "opened", "completed", "cancelled"]
STATUSES: tuple[str, ...] = ("scheduled", "opened", "completed", "cancelled")
SOURCE = "liaison"  # the source of the calls follow-ups open


def view(row: dict[str, Any], call: Mapping[str, Any] | None = None,
         *, now: datetime | None = None) -> dict[str, Any]:
    """A follow-up as the API and the board show it; `call` is the original call's row."""
    now = now or utcnow()
    out = {
        "id": row["id"], "call_id": row["call_id"], "status": row["status"],
        "due_at": iso_utc(row["due_at"]),
        "due": row["status"] == "scheduled" and as_utc(row["due_at"]) <= now,
        "created_at": iso_utc(row["created_at"]), "created_by": row["created_by"],
        "note": row["note"], "follow_up_call_id": row["follow_up_call_id"],
        "announced_at": iso_utc(row["announced_at"]), "opened_at": iso_utc(row["opened_at"]),
        "completed_at": iso_utc(row["completed_at"]), "closed_by": row["closed_by"],
        "closed_note": row["closed_note"],
        # Scheduled by the policy (an exclusion's follow_up): which, the program, consent.
        "exclusion": row.get("exclusion"), "program_id": row.get("program_id"),
        "consent": row.get("consent"),
    }
    if call is not None:
        # Enough of the original call to plan the visit (the board shows it in the queue).
        out["original"] = {k: call.get(k) for k in (
            "incident_id", "nature_code", "nature_text", "category", "address", "district",
            "unit", "disposition", "outcome")}
        out["original"]["cleared_at"] = iso_utc(call.get("cleared_at"))
    return out


async def follow_up_row(conn: AsyncConnection, follow_up_id: str) -> dict[str, Any]:
    return await row_by_id(conn, FOLLOW_UP, follow_up_id, f"no follow-up {follow_up_id}")


async def schedule_follow_up(ctx: Batch, call: Mapping[str, Any], change: StatusChange,
                             *, now: datetime) -> dict[str, Any]:
    """Called by ChangeStatus when a call is cleared with follow_up_at/_in_hours; the
    change has been validated, so this writes."""
    if change.follow_up_at is not None:
        due = as_utc(change.follow_up_at)
    else:
        due = now + timedelta(hours=change.follow_up_in_hours or 0)
    return await add_follow_up(ctx, call, due=due, by=change.by, note=change.follow_up_note,
                               now=now)


async def add_follow_up(ctx: Batch, call: Mapping[str, Any], *, due: datetime,
                        by: str | None, note: str | None, now: datetime) -> dict[str, Any]:
    """Schedule a follow-up of `call` and tell the board (`follow_up_scheduled`): the team
    clearing a call, or a care handoff not confirmed in time (service/lifecycle/care.py)."""
    row = {"id": uuid.uuid4().hex, "call_id": call["id"], "due_at": due, "created_at": now,
           "created_by": by, "note": note, "status": "scheduled",
           "follow_up_call_id": None, "announced_at": None, "opened_at": None,
           "completed_at": None, "closed_by": None, "closed_note": None}
    await ctx.conn.execute(FOLLOW_UP.insert(), row)
    return _scheduled(ctx, call, row, now)


def _scheduled(ctx: Batch, call: Mapping[str, Any], row: dict[str, Any], now: datetime
               ) -> dict[str, Any]:
    doc = view(row, call, now=now)
    ctx.board(call["id"], "follow_up_scheduled", {
        "type": "follow_up_scheduled", "call_id": call["id"], "at": now.isoformat(),
        "follow_up": doc})
    return doc


POLICY = "policy"  # created_by of the follow-ups an exclusion schedules


async def after_exclusion(ctx: Batch, call: Mapping[str, Any], decision: DecisionRecord,
                          policy: Policy, *, consent: bool | None, consent_given: bool,
                          at: datetime) -> dict[str, Any] | None:
    """A call an exclusion that asks for a follow-up (`follow_up:` in the policy) sent to
    police/EMS: schedule the team's visit, due `after_hours` after the event (CAD time),
    once per call. A later event's word on consent (`follow_up_consent`) is kept on it."""
    found = (policy.follow_up_for(decision["matched_rules"], call["nature_code"])
             if decision["basis"] == "exclusion" else None)
    if found is None and not consent_given:
        return None  # the usual event: nothing to read
    f = FOLLOW_UP.c
    before = (await ctx.conn.execute(select(f.id, f.consent).where(
        f.call_id == call["id"], f.exclusion.is_not(None)))).first()
    if before is not None:
        if consent_given and before.consent != consent:
            await ctx.conn.execute(update(FOLLOW_UP).where(f.id == before.id)
                                   .values(consent=consent))
        return None
    if found is None:
        return None
    exclusion, spec = found
    now = utcnow()
    row = {"id": uuid.uuid4().hex, "call_id": call["id"],
           "due_at": at + timedelta(hours=spec.after_hours), "created_at": now,
           "created_by": POLICY, "status": "scheduled", "follow_up_call_id": None,
           # Consent is its own field, not in the note: a dispatcher's board withholds it
           # (service/calls/visibility.py) where notes are shown.
           "note": f"Follow-up visit ({spec.program}) the policy asks for after a call its "
                   f"'{exclusion}' exclusion sent to police/EMS.",
           "announced_at": None, "opened_at": None, "completed_at": None,
           "closed_by": None, "closed_note": None, "exclusion": exclusion,
           "program_id": spec.program, "consent": consent}
    await ctx.conn.execute(FOLLOW_UP.insert(), row)
    return _scheduled(ctx, call, row, now)


async def announce_due(ctx: Batch, now: datetime) -> int:
    """Tell the board about each follow-up that has become due, once (the sweeper)."""
    f = FOLLOW_UP.c
    rows = [dict(r) for r in (await ctx.conn.execute(
        select(FOLLOW_UP).where(f.status == "scheduled", f.announced_at.is_(None),
                                f.due_at <= now).order_by(f.due_at).limit(500))).mappings()]
    for row in rows:
        await ctx.conn.execute(update(FOLLOW_UP).where(f.id == row["id"])
                               .values(announced_at=now))
        row["announced_at"] = now
        call = await ctx.call_by_id(row["call_id"])
        ctx.board(row["call_id"], "follow_up_due", {
            "type": "follow_up_due", "call_id": row["call_id"], "at": now.isoformat(),
            "follow_up": view(row, call, now=now)})
    return len(rows)


@dataclass
class CloseFollowUp:
    """Complete or cancel a follow-up; doing it again changes nothing."""

    follow_up_id: str
    to: Literal["completed", "cancelled"]
    by: str | None = None
    note: str | None = None

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        row = await follow_up_row(ctx.conn, self.follow_up_id)
        original = await ctx.call_by_id(row["call_id"])
        if row["status"] == self.to:
            return {"follow_up": view(row, original), "already": True}
        if row["status"] not in ("scheduled", "opened"):
            raise Conflict(f"the follow-up is {row['status']}", status=row["status"])
        now = utcnow()
        values = {"status": self.to, "completed_at": now, "closed_by": self.by,
                  "closed_note": self.note}
        await ctx.conn.execute(update(FOLLOW_UP).where(FOLLOW_UP.c.id == row["id"])
                               .values(**values))
        row.update(values)
        doc = view(row, original, now=now)
        kind = "follow_up_completed" if self.to == "completed" else "follow_up_cancelled"
        ctx.board(row["call_id"], kind, {
            "type": kind, "call_id": row["call_id"], "at": now.isoformat(), "by": self.by,
            "note": self.note, "follow_up": doc})
        return {"follow_up": doc}


async def list_follow_ups(engine: AsyncEngine, *, status: str | None = None,
                          due_before: datetime | None = None, call_id: str | None = None,
                          limit: int = 200, agency: str | None = None
                          ) -> list[dict[str, Any]]:
    """Follow-ups by due time, with the original call's summary; with `agency`, those
    of that agency's calls only."""
    f = FOLLOW_UP.c
    stmt = select(FOLLOW_UP, CALL).join(CALL, CALL.c.id == f.call_id, isouter=True)
    if agency is not None:
        stmt = stmt.where(CALL.c.agency_id == agency)
    if status:
        stmt = stmt.where(f.status == status)
    if due_before:
        stmt = stmt.where(f.due_at < due_before)
    if call_id:
        stmt = stmt.where(f.call_id == call_id)
    stmt = stmt.order_by(f.due_at, f.id).limit(limit)
    now = utcnow()
    out = []
    async with engine.connect() as conn:
        for r in (await conn.execute(stmt)).all():
            m = r._mapping
            row = {c.name: m[c] for c in FOLLOW_UP.columns}
            call = {c.name: m[c] for c in CALL.columns} if m[CALL.c.id] else None
            out.append(view(row, call, now=now))
    return out


async def get_follow_up(engine: AsyncEngine, follow_up_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = await follow_up_row(conn, follow_up_id)
        call = (await conn.execute(select(CALL).where(CALL.c.id == row["call_id"]))
                ).mappings().first()
    return view(row, dict(call) if call else None)
