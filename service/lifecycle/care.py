"""Warm handoffs to care (issue 16): the team hands a call's person to a provider of the
directory (service/lifecycle/providers.py; a `warm_line` provider is the warm line to peer
responders) and keeps the handoff until the provider has them.

A handoff is `offered`, then `accepted` (the provider agreed to take them), `connected`
(they are in care: the handoff is confirmed) or `declined` (by the person or the
provider; the reason is required). Each step is timed as told (`at`, not ahead of our
clock, not before the step before it) and by whom. A handoff not connected within the
confirmation time (`care_confirm_hours`, 48 by default) of being offered raises a
follow-up of the call, once (the sweeper, service/lifecycle/checkins.py). Every change is a
board message `{"type": "care", "event": …, "referral": …}`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.errors import Conflict, Invalid
from service.lifecycle.followups import add_follow_up
from service.lifecycle.providers import WARM_LINE, provider_row
from service.store.tables import (
    CARE_REFERRAL,
    CARE_STEP,
    as_utc,
    iso_utc,
    not_ahead,
    row_by_id,
    utcnow,
)
from service.writing.batch import Batch, Keys

CareStatus = Literal["offered", "accepted", "connected", "declined"]
StepStatus = Literal["accepted", "connected", "declined"]
# What each status may go to; connected and declined end a handoff.
NEXT: dict[str, tuple[str, ...]] = {"offered": ("accepted", "connected", "declined"),
                                    "accepted": ("connected", "declined"),
                                    "connected": (), "declined": ()}
OPEN = ("offered", "accepted")  # not yet confirmed: the sweeper watches these
RAISED_BY = "care"  # created_by of the follow-ups a late handoff raises


def _not_ahead(value: datetime | None) -> datetime | None:
    return None if value is None else not_ahead(value, "a step cannot be in the future")


class Offer(BaseModel):
    model_config = {"extra": "forbid"}  # `by` is who is logged in, never sent
    provider_id: str = Field(min_length=1, max_length=60)
    note: str | None = Field(default=None, max_length=2000,
                             description="for the team: what was agreed, whom to ask for")
    at: AwareDatetime | None = Field(default=None, description="when it was offered "
                                     "(RFC 3339 with offset; default now)")

    _at = field_validator("at")(_not_ahead)


class Step(BaseModel):
    model_config = {"extra": "forbid"}
    status: StepStatus
    reason: str | None = Field(default=None, max_length=2000,
                               description="why it was declined (needed then)")
    at: AwareDatetime | None = Field(default=None, description="when it happened "
                                     "(RFC 3339 with offset; default now)")

    _at = field_validator("at")(_not_ahead)


def kind_of(services: list[str]) -> str:
    """How the board names a handoff: to the warm line, or to care."""
    return "warm_line" if WARM_LINE in services else "care"


def view(row: dict[str, Any], steps: list[dict[str, Any]], hours: float) -> dict[str, Any]:
    services = json.loads(row["services"])
    return {
        "id": row["id"], "call_id": row["call_id"], "provider_id": row["provider_id"],
        "provider_name": row["provider_name"], "services": services,
        "kind": kind_of(services), "status": row["status"], "note": row["note"],
        "offered_at": iso_utc(row["offered_at"]), "offered_by": row["offered_by"],
        "confirm_by": iso_utc(as_utc(row["offered_at"]) + timedelta(hours=hours)),
        "connected_at": iso_utc(row["connected_at"]),
        "declined_reason": row["declined_reason"], "follow_up_id": row["follow_up_id"],
        "steps": [{"status": s["status"], "at": iso_utc(s["at"]), "by": s["by"],
                   "reason": s["reason"]} for s in steps],
    }


async def _steps(conn: AsyncConnection, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        s = CARE_STEP.c
        for r in (await conn.execute(select(CARE_STEP).where(s.referral_id.in_(ids))
                                     .order_by(s.at, s.id))).mappings():
            out[r["referral_id"]].append(dict(r))
    return out


async def _referral(conn: AsyncConnection, referral_id: str) -> dict[str, Any]:
    return await row_by_id(conn, CARE_REFERRAL, referral_id, f"no care referral {referral_id}")


async def _add_step(ctx: Batch, referral_id: str, status: str, at: datetime,
                    by: str | None, reason: str | None, now: datetime) -> None:
    await ctx.conn.execute(insert(CARE_STEP), {
        "referral_id": referral_id, "status": status, "at": at, "by": by, "reason": reason,
        "recorded_at": now})


async def _told(ctx: Batch, row: dict[str, Any], event: str, by: str | None,
                hours: float, now: datetime) -> dict[str, Any]:
    doc = view(row, (await _steps(ctx.conn, [row["id"]]))[row["id"]], hours)
    ctx.board(row["call_id"], "care", {"type": "care", "call_id": row["call_id"],
                                       "at": now.isoformat(), "event": event, "by": by,
                                       "referral": doc})
    return doc


@dataclass
class OfferCare:
    """Offer a call's person to a provider: a handoff `offered`, its first step."""

    call_id: str
    offer: Offer
    by: str | None
    hours: float

    def keys(self) -> Keys:
        return Keys(call_ids=[self.call_id])

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        await ctx.existing_call(self.call_id)
        provider = await provider_row(ctx.conn, self.offer.provider_id)
        if provider is None or not provider["active"]:
            raise Invalid("provider_id", f"no provider {self.offer.provider_id} in the "
                                         "directory")
        now = utcnow()
        at = as_utc(self.offer.at) if self.offer.at else now
        row = {"id": uuid.uuid4().hex, "call_id": self.call_id,
               "provider_id": provider["id"], "provider_name": provider["name"],
               "services": provider["services"], "status": "offered",
               "note": self.offer.note, "offered_at": at, "offered_by": self.by,
               "status_at": at, "connected_at": None, "declined_reason": None,
               "follow_up_id": None}
        await ctx.conn.execute(insert(CARE_REFERRAL), row)
        await _add_step(ctx, row["id"], "offered", at, self.by, None, now)
        ctx.wrote = True
        return await _told(ctx, row, "offered", self.by, self.hours, now)


@dataclass
class RecordStep:
    """The next step of a handoff: accepted, connected or declined (with why)."""

    referral_id: str
    step: Step
    by: str | None
    hours: float

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        if self.step.status == "declined" and not (self.step.reason or "").strip():
            raise Invalid("reason", "say why it was declined")
        row = await _referral(ctx.conn, self.referral_id)
        if self.step.status not in NEXT[row["status"]]:
            raise Conflict(f"the handoff is {row['status']}: it cannot be "
                           f"{self.step.status} now", current=row["status"],
                           allowed=list(NEXT[row["status"]]))
        now = utcnow()
        at = as_utc(self.step.at) if self.step.at else now
        if at < as_utc(row["status_at"]):
            raise Invalid("at", f"before the handoff's last step "
                                f"({as_utc(row['status_at']).isoformat()})")
        values: dict[str, Any] = {"status": self.step.status, "status_at": at}
        if self.step.status == "connected":
            values["connected_at"] = at
        if self.step.status == "declined":
            values["declined_reason"] = self.step.reason
        await ctx.conn.execute(update(CARE_REFERRAL)
                               .where(CARE_REFERRAL.c.id == self.referral_id).values(**values))
        await _add_step(ctx, self.referral_id, self.step.status, at, self.by,
                        self.step.reason, now)
        ctx.wrote = True
        row.update(values)
        return await _told(ctx, row, self.step.status, self.by, self.hours, now)


async def raise_overdue(ctx: Batch, now: datetime, hours: float) -> int:
    """Each open handoff offered more than `hours` ago and not yet raised: a follow-up of
    its call (due now, the note naming the provider) and a board message, once."""
    r = CARE_REFERRAL.c
    rows = [dict(x) for x in (await ctx.conn.execute(
        select(CARE_REFERRAL).where(r.status.in_(OPEN), r.follow_up_id.is_(None),
                                    r.offered_at <= now - timedelta(hours=hours))
        .order_by(r.offered_at).limit(500))).mappings()]
    for row in rows:
        call = await ctx.call_by_id(row["call_id"])
        if call is None:
            continue
        follow_up = await add_follow_up(
            ctx, call, due=now, by=RAISED_BY, now=now,
            note=f"Care handoff to {row['provider_name']} not confirmed within "
                 f"{hours:g} h of being offered: check the person reached care")
        await ctx.conn.execute(update(CARE_REFERRAL).where(r.id == row["id"])
                               .values(follow_up_id=follow_up["id"]))
        row["follow_up_id"] = follow_up["id"]
        # The follow-up itself is told in its own message (follow_up_scheduled); here only
        # its id, inside the referral, which restricted readers do not get.
        await _told(ctx, row, "overdue", None, hours, now)
    if rows:
        ctx.wrote = True
    return len(rows)


async def call_of_referral(engine: AsyncEngine, referral_id: str) -> str:
    """The call a handoff is of (NotFound: no such handoff)."""
    async with engine.connect() as conn:
        return str((await _referral(conn, referral_id))["call_id"])


async def referrals_of_call(engine: AsyncEngine, call_id: str, hours: float
                            ) -> list[dict[str, Any]]:
    """A call's handoffs, oldest first, with their steps."""
    r = CARE_REFERRAL.c
    async with engine.connect() as conn:
        rows = [dict(x) for x in (await conn.execute(
            select(CARE_REFERRAL).where(r.call_id == call_id)
            .order_by(r.offered_at, r.id))).mappings()]
        steps = await _steps(conn, [x["id"] for x in rows])
    return [view(x, steps[x["id"]], hours) for x in rows]


async def referrals_of_calls(conn: AsyncConnection, call_ids: list[str]
                             ) -> dict[str, list[dict[str, Any]]]:
    """The handoffs of several calls, as stored (status and services), by call."""
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in call_ids}
    if call_ids:
        r = CARE_REFERRAL.c
        for x in (await conn.execute(
                select(r.call_id, r.status, r.services).where(r.call_id.in_(call_ids))
        )).mappings():
            out[x["call_id"]].append({"status": x["status"],
                                      "services": json.loads(x["services"])})
    return out
