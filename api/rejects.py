"""Rejected CAD input, kept for an operator to inspect and re-submit."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from adapters.eido.ingest import ingest as eido_ingest
from adapters.eido.mapping import MappingInvalid
from adapters.eido.parse import EidoRejected
from api.access import CredentialsFirst, Principal, Role, allow, principal_of, record
from api.agency_scope import claim_of
from api.answers import FieldError, IngestResult
from api.deps import RuntimeDep
from service.access.auth import list_keys
from service.calls.event import CallEvent
from service.errors import Conflict, NotFound, Unavailable, field_errors
from service.lifecycle.ingest import IngestEvent
from service.lifecycle.rejects import get_reject, list_rejects
from service.store.tables import ANY_AGENCY

router = APIRouter(prefix="/v1/cad/rejects", tags=["cad"],
                   dependencies=[allow(Role.supervisor)], route_class=CredentialsFirst)
# Ids are 64-bit database integers: a larger number is a 422, not a database error.
ID_MAX = 2**63 - 1
RejectId = Annotated[int, Path(ge=1, le=ID_MAX)]


class RejectSummary(BaseModel):
    id: int
    source: str = Field(description="the CAD (its key's source), or eido")
    path: str = Field(description="where it was sent")
    sender: str | None = Field(description="the key that sent it")
    received_at: str
    errors: list[FieldError] = Field(description="why it was refused")


class Reject(RejectSummary):
    body: str = Field(description="the body exactly as it arrived")


class RejectPage(BaseModel):
    data: list[RejectSummary]
    count: int = Field(description="how many match, on every page")


class Resubmitted(IngestResult):
    reject_id: int
    warnings: list[FieldError] | None = Field(
        default=None, description="an EIDO's conformance warnings")


async def _senders_seen(rt: Any, who: Principal) -> list[str] | None:
    """The keys whose rejected input `who` may read (None: every key's). A refused body
    may hold any agency's call, so in a region of several agencies a supervisor of one
    reads what its agency's keys sent only (issue 17); the region's supervisors, and
    everyone in a region of one agency, read all."""
    if who.agency == ANY_AGENCY or not rt.region.jurisdictions.several:
        return None
    # A reject's sender is the key's actor name (`key:<id>`, api/errors.py).
    return [f"key:{k['id']}" for k in await list_keys(rt.engine)
            if k["agency_id"] == who.agency]


async def _own_reject(request: Request, rt: Any, reject_id: int
                      ) -> tuple[Principal, dict[str, Any]]:
    """Who asks, and the reject, when they may read it; else 'not found' (audited)."""
    who = await principal_of(request)
    assert who is not None  # the router's allow() ran first
    found = await get_reject(rt.engine, reject_id)
    senders = await _senders_seen(rt, who)
    if senders is not None and found["sender"] not in senders:
        await record(request, who, "reject.read", outcome="denied",
                     target=f"reject:{reject_id}")
        raise NotFound(f"no reject {reject_id}")
    return who, found


@router.get("", summary="Rejected CAD input, newest first", response_model=RejectPage,
            response_model_exclude_unset=True)
async def read_rejects(request: Request, rt: RuntimeDep, source: str | None = None,
                       since: datetime | None = None,
                       limit: int = Query(default=100, ge=1, le=1000),
                       before_id: int | None = Query(default=None, ge=1, le=ID_MAX)
                       ) -> dict[str, Any]:
    who = await principal_of(request)
    assert who is not None  # the router's allow() ran first
    return await list_rejects(rt.engine, source=source, since=since, limit=limit,
                              before_id=before_id, senders=await _senders_seen(rt, who))


@router.get("/{reject_id}", summary="One reject, with the body as it arrived and the reasons",
            response_model=Reject, response_model_exclude_unset=True)
async def read_reject(reject_id: RejectId, request: Request, rt: RuntimeDep
                      ) -> dict[str, Any]:
    who, found = await _own_reject(request, rt, reject_id)
    # The body as the CAD sent it may hold a narrative and a name: a look on the record.
    await record(request, who, "reject.read",
                 target=f"reject:{reject_id}")
    return found


@router.post(
    "/{reject_id}/resubmit",
    status_code=202,
    summary="Submit a rejected event again, as it was or corrected",
    response_model=Resubmitted,
    responses={422: {"description": "still invalid: each field and why"}},
)
async def resubmit(reject_id: RejectId, request: Request, rt: RuntimeDep,
                   corrected: dict[str, Any] | None = Body(default=None, embed=True,
                                                           alias="body")) -> JSONResponse:
    who, reject = await _own_reject(request, rt, reject_id)
    await record(request, who, "reject.resubmit", target=f"reject:{reject_id}")
    # A generic event's reject is kept under the source of the CAD that sent it.
    if reject["source"] != "eido" and reject["path"] != "/v1/cad/events":
        raise Conflict(f"a {reject['source']} reject is re-submitted through its own "
                       "endpoint", source=reject["source"], path=reject["path"])
    if corrected is None:
        try:
            corrected = json.loads(reject["body"])
        except ValueError:
            return JSONResponse({"error": "invalid", "detail": [
                {"field": "(body)", "reason": "the stored body is not JSON; send a corrected "
                 "one", "type": "json_invalid"}]}, status_code=422)
    if reject["source"] == "eido":
        return await _resubmit_eido(rt, reject_id, corrected, who)
    try:
        event = CallEvent.model_validate(corrected)
    except ValidationError as exc:
        return JSONResponse({"error": "invalid", "detail": field_errors(exc.errors())},
                            status_code=422)
    # The supervisor's agency's call (a regional one's: as the event says or where it is).
    claim, region = claim_of(rt, who, event)
    compiled = rt.region.policy_of(claim.agency) or rt.policy.compiled
    result = await rt.writer.submit(IngestEvent(
        event=event, policy=compiled, units_total=compiled.policy.program.units,
        source=reject["source"], claim=claim, region=region))
    return JSONResponse({**result, "reject_id": reject_id}, status_code=202)


async def _resubmit_eido(rt: Any, reject_id: int, document: Any,
                         who: Principal) -> JSONResponse:
    """An EIDO goes through the EIDO adapter again, in the service's conformance mode."""
    try:
        result, parsed = await eido_ingest(document, writer=rt.writer, engine=rt.engine,
                                           policy=rt.policy.compiled,
                                           mapping_path=rt.settings.eido_mapping,
                                           strict=rt.settings.eido_strict,
                                           region=rt.region.view(), key_agency=who.agency)
    except MappingInvalid as exc:
        raise Unavailable("the EIDO mapping file is broken; fix it and retry",
                          source=exc.source) from exc
    except EidoRejected as rejected:
        return JSONResponse({"error": "invalid",
                             "detail": [e.as_dict() for e in rejected.errors],
                             "warnings": [w.as_dict() for w in rejected.warnings]},
                            status_code=422)
    return JSONResponse({**result, "reject_id": reject_id,
                         "warnings": [w.as_dict() for w in parsed.warnings]}, status_code=202)
