"""Crisis plans for a person and premise cautions for an address (issue 16).

The team writes them; they are found for a call by its folded address
(service/calls/people.address_key, the repeat-contact key) and a plan also by the phone's
digits when the plan and the call both have one. Only the team and supervisors read them
(service/calls/visibility.SEES_PLANS), one call at a time, each look audited by the route;
they are in no call view, board message, figure, export, webhook or EIDO. Expired ones
are never shown and are deleted by the field sweeper (service/lifecycle/checkins.py).
Writes are writer commands, ordered with everything else.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, field_validator
from sqlalchemy import Table, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calls.people import address_key
from service.errors import NotFound
from service.store.tables import (
    CALL,
    CRISIS_PLAN,
    PREMISE_CAUTION,
    iso_utc,
    not_ahead,
    utcnow,
)
from service.writing.batch import Batch, Keys

# The longest a plan or caution is kept before someone must renew it (docs/crisis-plans.md).
MAX_KEEP = timedelta(days=365)
PHONE = r"^\+?[0-9 ().-]{7,40}$"
_NOT_DIGIT = re.compile(r"\D+")
Short = Field(default=None, max_length=500)


def phone_key(phone: str | None) -> str | None:
    """A phone's last ten digits: one spelling for "(727) 555-0100" and "+1 727 555 0100"."""
    digits = _NOT_DIGIT.sub("", phone or "")
    return digits[-10:] if len(digits) >= 7 else None


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _utc(v: datetime) -> datetime:
    try:
        return v.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset: no time on any clock
        raise ValueError("is out of range") from None


def _expiry(v: datetime) -> datetime:
    v, now = _utc(v), utcnow()
    if v <= now:
        raise ValueError("must be in the future")
    if v > now + MAX_KEEP:
        raise ValueError("at most 365 days ahead: a plan or caution is renewed, not kept "
                         "for ever")
    return v


def _foldable(v: str) -> str:
    if address_key(v) is None:
        raise ValueError("an address needs letters or digits")
    return v


Expiry = Annotated[AwareDatetime, AfterValidator(_expiry),
                   Field(description="in the future, at most 365 days ahead")]
Address = Annotated[str, Field(min_length=1, max_length=300,
                               description="matched to calls' addresses with case, "
                                           "punctuation and spacing folded"),
                    AfterValidator(_foldable)]


class Consent(BaseModel):
    """The person's consent to keep the plan: who gave it, when and how."""

    model_config = {"extra": "forbid"}

    given_by: str = Field(min_length=1, max_length=120,
                          description="the person, or who consented for them (a guardian)")
    at: AwareDatetime
    how: Literal["verbal", "written", "recorded"]

    @field_validator("at")
    @classmethod
    def _not_ahead(cls, v: AwareDatetime) -> AwareDatetime:
        if _utc(v) < EARLIEST:
            raise ValueError("is before 2000-01-01: give when the person consented")
        return not_ahead(v, "consent cannot be given in the future")


class CrisisPlanInput(BaseModel):
    """The whole plan (POST /v1/crisis-plans, PUT /v1/crisis-plans/{id})."""

    model_config = {"extra": "forbid"}

    person: str = Field(min_length=1, max_length=120,
                        description="the name as the team knows them")
    address: Address
    phone: str | None = Field(default=None, pattern=PHONE)
    helps: str | None = Short
    avoid: str | None = Short
    contacts: str | None = Field(default=None, max_length=500, description="who to call")
    consent: Consent = Field(description="required: no plan is kept without it")
    expires_at: Expiry


class CautionInput(BaseModel):
    """A caution for an address (POST /v1/premise-cautions, PUT …/{id})."""

    model_config = {"extra": "forbid"}

    address: Address
    text: str = Field(min_length=1, max_length=500)
    expires_at: Expiry


class ConsentView(BaseModel):
    given_by: str
    at: str
    how: str


class CrisisPlan(BaseModel):
    id: str
    person: str
    address: str
    phone: str | None
    helps: str | None
    avoid: str | None
    contacts: str | None
    consent: ConsentView
    expires_at: str
    created_by: str
    created_at: str
    updated_by: str | None
    updated_at: str | None
    matched_by: list[str] | None = Field(
        default=None, description="for a call: `address`, `phone` or both")


class PremiseCaution(BaseModel):
    id: str
    address: str
    text: str
    expires_at: str
    created_by: str
    created_at: str
    updated_by: str | None
    updated_at: str | None


def plan_view(row: Any, matched_by: list[str] | None = None) -> CrisisPlan:
    return CrisisPlan(
        id=row["id"], person=row["person"], address=row["address"], phone=row["phone"],
        helps=row["helps"], avoid=row["avoid"], contacts=row["contacts"],
        consent=ConsentView(given_by=row["consent_by"], at=str(iso_utc(row["consent_at"])),
                            how=row["consent_how"]),
        expires_at=str(iso_utc(row["expires_at"])), created_by=row["created_by"],
        created_at=str(iso_utc(row["created_at"])), updated_by=row["updated_by"],
        updated_at=iso_utc(row["updated_at"]), matched_by=matched_by)


def caution_view(row: Any) -> PremiseCaution:
    return PremiseCaution(
        id=row["id"], address=row["address"], text=row["text"],
        expires_at=str(iso_utc(row["expires_at"])), created_by=row["created_by"],
        created_at=str(iso_utc(row["created_at"])), updated_by=row["updated_by"],
        updated_at=iso_utc(row["updated_at"]))


def plan_columns(p: CrisisPlanInput) -> dict[str, Any]:
    return {"person": p.person.strip(), "address": p.address.strip(),
            "address_key": address_key(p.address), "phone": p.phone,
            "phone_key": phone_key(p.phone), "helps": p.helps, "avoid": p.avoid,
            "contacts": p.contacts, "consent_by": p.consent.given_by.strip(),
            "consent_at": p.consent.at, "consent_how": p.consent.how,
            "expires_at": p.expires_at}


def caution_columns(c: CautionInput) -> dict[str, Any]:
    return {"address": c.address.strip(), "address_key": address_key(c.address),
            "text": c.text, "expires_at": c.expires_at}


_WHAT = {"crisis_plan": "crisis plan", "premise_caution": "premise caution"}


@dataclass
class SaveRecord:
    """Create (record_id None) or replace a plan or a caution; returns its row."""

    table: Table
    record_id: str | None
    values: dict[str, Any]
    by: str

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        now, t = utcnow(), self.table
        ctx.wrote = True
        if self.record_id is None:
            row = {"id": uuid.uuid4().hex, **self.values, "created_by": self.by,
                   "created_at": now, "updated_by": None, "updated_at": None}
            await ctx.conn.execute(insert(t), row)
            return row
        done = await ctx.conn.execute(update(t).where(t.c.id == self.record_id)
                                      .values(**self.values, updated_by=self.by,
                                              updated_at=now))
        if done.rowcount == 0:
            raise NotFound(f"no {_WHAT[t.name]} {self.record_id}")
        found = (await ctx.conn.execute(select(t).where(t.c.id == self.record_id))
                 ).mappings().one()
        return dict(found)


@dataclass
class DeleteRecord:
    """Delete a plan or a caution (nothing of it is kept: the audit log has its id)."""

    table: Table
    record_id: str

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> None:
        t = self.table
        done = await ctx.conn.execute(delete(t).where(t.c.id == self.record_id))
        if done.rowcount == 0:
            raise NotFound(f"no {_WHAT[t.name]} {self.record_id}")
        ctx.wrote = True


async def forget_expired(ctx: Batch, now: datetime) -> int:
    """Delete plans and cautions past their expiry (the sweeper)."""
    gone = 0
    for t in (CRISIS_PLAN, PREMISE_CAUTION):
        done = await ctx.conn.execute(delete(t).where(t.c.expires_at <= now))
        gone += max(done.rowcount or 0, 0)
    if gone:
        ctx.wrote = True
    return gone


class PlansForCall(BaseModel):
    call_id: str
    plans: list[CrisisPlan]
    cautions: list[PremiseCaution]


def _call_phone(person: str | None) -> str | None:
    return phone_key(json.loads(person).get("phone")) if person else None


async def plans_for_call(engine: AsyncEngine, call_id: str) -> PlansForCall:
    """The unexpired plans and cautions for a call's address (and its phone)."""
    now = utcnow()
    async with engine.connect() as conn:
        call = (await conn.execute(select(CALL.c.address_key, CALL.c.person)
                                   .where(CALL.c.id == call_id))).first()
        if call is None:
            raise NotFound(f"no call {call_id}")
        place, phone = call.address_key, _call_phone(call.person)
        p, c = CRISIS_PLAN.c, PREMISE_CAUTION.c
        found = [*([p.address_key == place] if place else []),
                 *([p.phone_key == phone] if phone else [])]
        plans = [] if not found else list((await conn.execute(
            select(CRISIS_PLAN).where(or_(*found), p.expires_at > now)
            .order_by(p.created_at, p.id))).mappings())
        cautions = [] if not place else list((await conn.execute(
            select(PREMISE_CAUTION).where(c.address_key == place, c.expires_at > now)
            .order_by(c.created_at, c.id))).mappings())

    def matched(row: Any) -> list[str]:
        return [k for k, hit in (("address", place and row["address_key"] == place),
                                 ("phone", phone and row["phone_key"] == phone)) if hit]

    return PlansForCall(call_id=call_id, plans=[plan_view(r, matched(r)) for r in plans],
                        cautions=[caution_view(r) for r in cautions])
