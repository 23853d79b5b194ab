"""Officer referrals: one short form that becomes an `officer_referral` call.

Officers are not CADs, so they get a small endpoint of their own. A referral is turned
into the generic CAD event (channel `officer_referral`) and goes through the same
ingest as every other call: one durable event, one explained decision. The event carries
`referral` (officer, consent, contact) and `person` (who), so the call row keeps
`referred_by`, and an officer sees what became of the people they referred.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.access import CredentialsFirst, Principal, Role, allow, record
from api.agency_scope import claim_of
from api.answers import IngestResult
from api.deps import RuntimeDep
from routing.models import Queued
from service.calls.event import CallEvent
from service.calls.visibility import answer_view, care_reached, referral_view
from service.errors import DomainError
from service.lifecycle.care import referrals_of_calls
from service.lifecycle.ingest import IngestEvent
from service.store.tables import CALL, as_utc, iso_utc

router = APIRouter(prefix="/v1/referrals", tags=["referrals"],
                   route_class=CredentialsFirst)

SOURCE = "referral"
OFFICER_PATTERN = r"^[A-Za-z0-9._@-]{1,40}$"

# What the officer saw, as the nature code the shipped policy knows.
Concern = Literal["mental_health", "substance_use", "homelessness", "disorderly_juvenile",
                  "truancy", "neighbor_dispute", "welfare", "other"]
NATURE: dict[str, tuple[str, str]] = {
    "mental_health": ("MNTL", "Officer referral: mental health"),
    "substance_use": ("INTOX", "Officer referral: substance use"),
    "homelessness": ("VAG", "Officer referral: homelessness"),
    "disorderly_juvenile": ("JUV", "Officer referral: juvenile"),
    "truancy": ("TRUANT", "Officer referral: truancy"),
    "neighbor_dispute": ("CDX", "Officer referral: neighbor dispute"),
    "welfare": ("WELFARE", "Officer referral: welfare / needs help"),
    "other": ("CITASST", "Officer referral: call for assistance"),
}


class Referral(BaseModel):
    officer: str | None = Field(default=None, pattern=OFFICER_PATTERN,
                                description="the referring officer's id: an officer's own "
                                            "(from the login) whatever is sent; a supervisor "
                                            "names one")
    who: str = Field(min_length=1, max_length=200, description="the person referred")
    where: str = Field(min_length=1, max_length=500, description="address or place")
    what: str = Field(min_length=1, max_length=4000, description="what happened")
    concern: Concern = "other"
    consent: bool = Field(description="the person agreed to be contacted by the team")
    contact: str | None = Field(default=None, max_length=200,
                                description="phone or how to reach them (optional)")
    district: str | None = Field(default=None, max_length=120)


class Referred(IngestResult):
    incident_id: str = Field(description="the incident number Liaison gave the referral")


class ReferralProgram(BaseModel):
    """The response program that has (or keeps) the referral."""

    id: str | None
    name: str | None
    timezone: str = Field(description="the policy's zone: a scheduled time is read in it")


class CareReached(BaseModel):
    """Whether the person reached care after the call (a handoff connected), and what
    kind; not the provider, nor the team's notes."""

    connected: bool
    services: list[str] = Field(description="the services of the providers that took them")


class ReferralSeen(BaseModel):
    """One referral and what became of it, as the reader may see it."""

    call_id: str
    incident_id: str
    nature_text: str | None
    address: str | None
    category: str | None
    destination: str | None
    mode: str | None
    status: str = Field(description="the team's status; queued (nobody has taken it) or "
                                    "with police")
    unit: str | None
    disposition: str | None
    outcome: str | None
    opened_at: str
    closed_at: str | None
    explanation: str | None = Field(default=None, description="why it went where it did")
    queued: Queued | None = Field(default=None, description="waiting for a free unit of "
                                  "`program` (the team has not taken it yet)")
    deferred_until: str | None = Field(default=None, description="scheduled for the start "
                                       "of `program`'s next shift (RFC 3339)")
    program: ReferralProgram | None = Field(default=None, description="the program that "
                                            "took it, or the first tried")
    care: CareReached = Field(description="whether care was reached after the call")
    withheld: list[str] | None = Field(default=None, description=(
        "what was held back (the outcome of a behavioural-health call); absent for those "
        "who see everything"))


class Referrals(BaseModel):
    officer: str
    referrals: list[ReferralSeen] = Field(description="newest first")


class InvalidReferral(DomainError):
    status = 422
    code = "invalid"


def _invalid(field: str, reason: str) -> InvalidReferral:
    return InvalidReferral(f"{field}: {reason}", detail=[
        {"field": field, "reason": reason, "type": "value_error"}])


def _officer_of(who: Principal, named: str | None) -> str | None:
    """An officer refers as themselves (their badge, else their user name); a supervisor
    acts for the officer they name."""
    if who.role is Role.officer:
        return who.officer_id or who.name
    return named


@router.post("", status_code=202, summary="An officer refers a person to the CALL team; "
             "becomes an officer_referral call", response_model=Referred)
async def refer(referral: Referral, request: Request, rt: RuntimeDep,
                who: Annotated[Principal, allow(Role.officer, Role.supervisor)]
                ) -> JSONResponse:
    if not referral.consent:
        raise _invalid("consent", "the person's consent is needed for a referral")
    officer = _officer_of(who, referral.officer)
    if not officer:
        raise _invalid("officer", "name the referring officer")
    now = datetime.now(UTC)
    incident = f"{_prefix(officer)}{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"[:120]
    code, text = NATURE[referral.concern]
    event = CallEvent.model_validate({
        "event_id": f"referral-{uuid.uuid4().hex}", "incident_id": incident,
        "type": "created", "occurred_at": now.isoformat(), "channel": "officer_referral",
        "nature_code": code, "nature_text": text, "narrative": referral.what,
        "location": {"address": referral.where, "district": referral.district},
        "flags": [], "person": {"name": referral.who},
        "referral": {"officer_id": officer, "consent": True,
                     "contact": referral.contact},
    })
    # An officer of one agency refers to its team; a regional one's by the district.
    claim, region = claim_of(rt, who, event)
    compiled = rt.region.policy_of(claim.agency) or rt.policy.compiled
    result = await rt.writer.submit(IngestEvent(
        event=event, policy=compiled, units_total=compiled.policy.program.units,
        source=SOURCE, claim=claim, region=region))
    await record(request, who, "referral.create", call_id=result["call_id"],
                 target=officer[:120])
    return JSONResponse({**answer_view(result, who), "incident_id": incident}, status_code=202)


@router.get("", summary="The referrals an officer made, newest first, with status and "
            "outcome (an officer sees their own; a supervisor names the officer)",
            response_model=Referrals, response_model_exclude_unset=True)
async def mine(rt: RuntimeDep,
               who: Annotated[Principal, allow(Role.officer, Role.supervisor)],
               officer: str | None = Query(default=None, pattern=OFFICER_PATTERN),
               limit: int = Query(default=50, ge=1, le=200)) -> dict[str, Any]:
    officer = _officer_of(who, officer)
    if not officer:
        raise _invalid("officer", "name the officer")
    c = CALL.c
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(
            select(c.id, c.incident_id, c.nature_text, c.address, c.category,
                   c.destination, c.mode, c.team_status, c.unit, c.disposition, c.outcome,
                   c.opened_at, c.closed_at, c.decision)
            .where(c.referred_by == officer)
            .order_by(c.opened_at.desc()).limit(limit))).mappings().all()
        handoffs = await referrals_of_calls(conn, [r["id"] for r in rows])
    out = []
    for r in rows:
        decision = json.loads(r["decision"])
        # The feedback loop, within what an officer may see: on behavioural-health calls
        # the outcome and the team's backup note stay with the team (service/calls/visibility.py).
        out.append(referral_view({
            "call_id": r["id"], "incident_id": r["incident_id"],
            "nature_text": r["nature_text"], "address": r["address"],
            "category": r["category"], "destination": r["destination"], "mode": r["mode"],
            "status": r["team_status"] or ("queued" if r["destination"] != "police"
                                           else "with police"),
            "unit": r["unit"], "disposition": r["disposition"], "outcome": r["outcome"],
            "opened_at": as_utc(r["opened_at"]).isoformat(),
            "closed_at": iso_utc(r["closed_at"]),
            **_waiting(decision), "care": care_reached(handoffs[r["id"]]),
        }, decision, who))
    return {"officer": officer, "referrals": out}


def _waiting(decision: dict[str, Any]) -> dict[str, Any]:
    """Whether the referral waits for the team (queued, or scheduled for a shift), and for
    which program: the officer sees "queued for the team" or "scheduled for 08:00"."""
    program = decision.get("program") or {}
    return {"queued": decision.get("queued"), "deferred_until": decision.get("deferred_until"),
            "program": {"id": program.get("id"), "name": program.get("name"),
                        "timezone": program.get("timezone", "UTC")}}


def _prefix(officer: str) -> str:
    return f"REF-{officer}-"
