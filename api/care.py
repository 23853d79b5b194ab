"""Care after the call (issue 16): the provider directory supervisors keep, and the team's
warm handoffs of a call's person to its providers, each step timed and by whom. docs/care.md.
A crisis centre's counsellor hands a person on too (the warm line, a provider), for the
calls transferred to its centre only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from api.access import CredentialsFirst, Principal, Role, Supervisor, allow, record
from api.agency_scope import policy_for_call
from api.answers import FieldError
from api.deps import RuntimeDep
from service.calls.visibility import may_read
from service.errors import Invalid, NotFound
from service.lifecycle.care import (
    CareStatus,
    Offer,
    OfferCare,
    RecordStep,
    Step,
    call_of_referral,
    referrals_of_call,
)
from service.lifecycle.providers import (
    PROVIDER_ID,
    ImportProviders,
    Provider,
    ProviderInput,
    PutProvider,
    RetireProvider,
    Service,
    list_providers,
    parse_csv,
)
from service.lifecycle.queries import get_call_brief

router = APIRouter(tags=["care"], route_class=CredentialsFirst)

Reader = Annotated[Principal, allow(Role.call_team, Role.dispatcher, Role.supervisor,
                                    Role.crisis_center)]
Team = Annotated[Principal, allow(Role.call_team, Role.supervisor, Role.crisis_center)]
ProviderId = Annotated[str, Path(pattern=PROVIDER_ID, description="the provider's id, "
                                 "e.g. pinellas-safe-harbor")]


class Providers(BaseModel):
    providers: list[Provider] = Field(description="by name")


class ProviderSaved(BaseModel):
    provider: Provider
    created: bool = Field(description="true: a new provider (or a retired one back)")


class Imported(BaseModel):
    imported: int = Field(description="rows written")
    created: int = Field(description="of them new providers (or retired ones back)")
    updated: int


class ImportRefused(BaseModel):
    """A CSV file refused: every bad row named with its line; nothing was imported."""

    error: str
    message: str
    detail: list[FieldError | dict[str, Any]]


class CareStep(BaseModel):
    status: CareStatus
    at: str
    by: str | None
    reason: str | None = Field(description="why it was declined")


class CareReferral(BaseModel):
    id: str
    call_id: str
    provider_id: str
    provider_name: str = Field(description="as it was when offered")
    services: list[str] = Field(description="the provider's services when offered")
    kind: str = Field(description="warm_line (a peer warm line) or care")
    status: CareStatus
    note: str | None
    offered_at: str
    offered_by: str | None
    confirm_by: str = Field(description="connected by then, or a follow-up is raised")
    connected_at: str | None
    declined_reason: str | None
    follow_up_id: str | None = Field(description="the follow-up raised when it was not "
                                     "connected in time")
    steps: list[CareStep] = Field(description="oldest first; the first is the offer")


class CareReferrals(BaseModel):
    referrals: list[CareReferral] = Field(description="oldest first")


@router.get("/v1/providers", summary="The provider directory (active providers)",
            response_model=Providers)
async def providers(rt: RuntimeDep, who: Reader,
                    service: Service | None = Query(default=None, description="only those "
                                                    "offering it")) -> dict[str, Any]:
    return {"providers": await list_providers(rt.engine, service)}


@router.put("/v1/providers/{provider_id}", summary="Add a provider to the directory or "
            "change it", response_model=ProviderSaved)
async def put_provider(provider_id: ProviderId, body: ProviderInput, request: Request,
                       rt: RuntimeDep, who: Supervisor) -> dict[str, Any]:
    saved, created = await rt.writer.submit(PutProvider(provider_id, body, who.actor))
    await record(request, who, "provider.add" if created else "provider.update",
                 target=provider_id, detail={"provider_id": provider_id,
                                             "services": saved.services})
    return {"provider": saved, "created": created}


@router.delete("/v1/providers/{provider_id}", summary="Retire a provider: out of the "
               "directory, kept for the handoffs made to it", response_model=Provider)
async def retire_provider(provider_id: ProviderId, request: Request, rt: RuntimeDep,
                          who: Supervisor) -> Provider:
    gone: Provider = await rt.writer.submit(RetireProvider(provider_id, who.actor))
    await record(request, who, "provider.retire", target=provider_id,
                 detail={"provider_id": provider_id})
    return gone


@router.post("/v1/providers/import", summary="Import providers from a CSV file (a header "
             "row: id, name, services split on ';', eligibility, hours, capacity, contact); "
             "all rows or none", response_model=Imported,
             responses={422: {"model": ImportRefused, "description": "bad rows, each named "
                              "with its line and field: nothing was imported"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}}}}})
async def import_providers(request: Request, rt: RuntimeDep,
                           who: Supervisor) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("text/csv", "text/plain"):
        raise Invalid("(body)", "send the file as text/csv")
    # Its size is held to LIAISON_MAX_BODY_BYTES (1 MiB: api/limits.py), as every body's.
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("(body)", "the file is not UTF-8 text") from None
    rows = parse_csv(text)
    if not rows:
        raise Invalid("(body)", "the file has a header but no providers")
    done: dict[str, int] = await rt.writer.submit(ImportProviders(rows, who.actor))
    await record(request, who, "provider.import", detail=done)
    return done


# -- handoffs ------------------------------------------------------------------------


@router.post("/v1/calls/{call_id}/care", status_code=201, response_model=CareReferral,
             summary="Offer the call's person to a provider (a warm handoff)",
             responses={404: {"description": "no such call"},
                        422: {"description": "a bad field, or no such provider"}})
async def offer(call_id: str, body: Offer, request: Request, rt: RuntimeDep,
                who: Team) -> dict[str, Any]:
    await policy_for_call(request, rt, call_id, who, "care.offer")  # their agency's only
    if who.role is Role.crisis_center:
        await _may_hand_on(rt, call_id, who)
    done: dict[str, Any] = await rt.writer.submit(
        OfferCare(call_id, body, who.name, rt.settings.care_confirm_hours))
    await record(request, who, "care.offer", call_id=call_id, target=done["id"],
                 detail={"provider_id": body.provider_id})
    return done


@router.post("/v1/care/{referral_id}/steps", response_model=CareReferral,
             summary="The next step of a handoff: accepted, connected or declined (why)",
             responses={404: {"description": "no such handoff"},
                        409: {"description": "the handoff cannot take that step now"},
                        422: {"description": "a bad field (a decline without a reason, "
                                             "a time ahead of ours or before the last step)"}})
async def step(referral_id: Annotated[str, Path(max_length=40)], body: Step,
               request: Request, rt: RuntimeDep, who: Team) -> dict[str, Any]:
    try:
        call_id = await call_of_referral(rt.engine, referral_id)
        await policy_for_call(request, rt, call_id, who, "care.step")
        if who.role is Role.crisis_center:
            await _may_hand_on(rt, call_id, who)
    except NotFound:
        raise NotFound(f"no care referral {referral_id}") from None
    done: dict[str, Any] = await rt.writer.submit(
        RecordStep(referral_id, body, who.name, rt.settings.care_confirm_hours))
    await record(request, who, "care.step", call_id=done["call_id"], target=referral_id,
                 detail={"status": body.status})
    return done


@router.get("/v1/calls/{call_id}/care", response_model=CareReferrals,
            summary="The call's handoffs to care, with their steps",
            responses={404: {"description": "no such call"}})
async def of_call(call_id: str, request: Request, rt: RuntimeDep,
                  who: Team) -> dict[str, Any]:
    await policy_for_call(request, rt, call_id, who, "care.read")
    await _may_hand_on(rt, call_id, who)
    return {"referrals": await referrals_of_call(rt.engine, call_id,
                                                 rt.settings.care_confirm_hours)}


async def _may_hand_on(rt: Any, call_id: str, who: Principal) -> None:
    """404 when there is no such call, or when a crisis centre's counsellor asks about one
    not transferred to it (as reading it would be: its existence is not given away)."""
    brief = await get_call_brief(rt.engine, call_id)
    if who.role is Role.crisis_center and not may_read(brief["call"], who):
        raise NotFound(f"no call {call_id}")
