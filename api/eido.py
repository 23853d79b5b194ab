"""EIDO in and out: a CAD or PSAP posts NENA EIDOs; any system reads a call as an EIDO."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from adapters.eido.emit import call_to_eido
from adapters.eido.ingest import ingest, keep_reject
from adapters.eido.mapping import MappingInvalid
from adapters.eido.parse import EidoRejected, Issue
from api.access import CredentialsFirst, Principal, Role, allow, sender_of
from api.answers import FieldError, IngestResult
from api.calls import Reader, readable_call
from api.deps import RuntimeDep
from service.calls.visibility import answer_view
from service.errors import DomainError, Unavailable
from service.lifecycle.team import DISPOSITIONS

log = logging.getLogger("liaison.api.eido")
router = APIRouter(tags=["eido"], route_class=CredentialsFirst)
EIDO_MEDIA_TYPE = "application/emergency.eido+json"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class EidoResult(IngestResult):
    mode: Literal["strict", "lenient"] = Field(description="the conformance mode it was "
                                                           "read in")
    warnings: list[FieldError] = Field(description="deviations accepted in lenient mode")


class EidoDocument(BaseModel):
    """An EIDO (NENA-STA-021.1b) as Liaison writes one: the incident, Liaison as an
    assisting agency, the narrative and the routing recommendation as notes, the location,
    the team's unit as an emergency resource (its status times in a note).
    The full schema is NENA's; docs/eido.md says what Liaison writes."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(alias="$id", description="the incident's URN (an EIDO's own `$id` "
                                              "for a call that came as one)")
    lastUpdateTimeStamp: str  # NENA's member names
    eidoVersion: str
    issuingElementIdentification: str
    incidentComponent: dict[str, Any]
    agencyComponent: list[dict[str, Any]]
    notesComponent: list[dict[str, Any]]
    locationComponent: list[dict[str, Any]] | None = None
    emergencyResourceComponent: list[dict[str, Any]] | None = Field(
        default=None, description="the team's unit on the call, once one is named")
    context: dict[str, Any] = Field(alias="@context")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _reject(rt: Any, request: Request, raw: bytes, errors: list[Issue],
                  warnings: list[Issue], strict: bool) -> JSONResponse:
    """422 naming each field and why; the body is kept for an operator, among the
    sender's newest (LIAISON_REJECTS_PER_KEY)."""
    detail = [e.as_dict() for e in errors]
    body: dict[str, Any] = {"error": "invalid", "mode": "strict" if strict else "lenient",
                            "detail": detail, "warnings": [w.as_dict() for w in warnings]}
    who = sender_of(request)
    if who is None:  # the route checks credentials first; never keep a stranger's body
        return JSONResponse(body, status_code=422)
    try:
        reject_id = await keep_reject(rt.writer, path=request.url.path, errors=detail,
                                      body=raw.decode("utf-8", "replace"), sender=who.actor,
                                      keep=rt.settings.rejects_per_key)
    except DomainError:
        log.warning("could not keep a rejected EIDO")
    else:
        if reject_id is not None:
            body["reject_id"] = reject_id
    return JSONResponse(body, status_code=422)


@router.post(
    "/v1/cad/eido",
    status_code=202,
    summary="Take a NENA EIDO (NENA-STA-021.1b); answer once it is stored, with the routing "
            "decision and any conformance warnings",
    response_model=EidoResult,
    description="The body is one EIDO (`application/json` or `application/emergency.eido+json`)."
                " `?strict=true` (or the setting `eido_strict`) refuses the known deviations "
                "that lenient mode accepts with warnings. An identical document sent again gets "
                "the first answer. See docs/eido.md.",
    responses={422: {"description": "not an acceptable EIDO: each field is named with why; "
                                    "the body is kept"},
               503: {"description": "the EIDO mapping file is broken, or storage failed"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object"}},
        EIDO_MEDIA_TYPE: {"schema": {"type": "object"}}}}},
)
async def post_eido(request: Request, rt: RuntimeDep,
                    who: Annotated[Principal, allow(Role.cad)]) -> JSONResponse:
    raw = await request.body()
    strict_arg = request.query_params.get("strict")
    strict = rt.settings.eido_strict
    if strict_arg is not None:
        if strict_arg.lower() not in _TRUE | _FALSE:
            return await _reject(rt, request, raw, [Issue("strict", "must be true or false")],
                                 [], strict)
        strict = strict_arg.lower() in _TRUE
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return await _reject(rt, request, raw,
                             [Issue("(body)", f"not a JSON document: {exc}")], [], strict)
    try:
        result, parsed = await ingest(document, writer=rt.writer, engine=rt.engine,
                                      policy=rt.policy.compiled,
                                      mapping_path=rt.settings.eido_mapping, strict=strict,
                                      region=rt.region.view(), key_agency=who.agency)
    except MappingInvalid as exc:
        log.error("%s", exc)
        raise Unavailable("the EIDO mapping file is broken; fix it and retry",
                          source=exc.source, errors=[e.as_dict() for e in exc.errors]) from exc
    except EidoRejected as rejected:
        return await _reject(rt, request, raw, rejected.errors, rejected.warnings, strict)
    return JSONResponse({**answer_view(result, who), "mode": "strict" if strict else "lenient",
                         "warnings": [w.as_dict() for w in parsed.warnings]}, status_code=202)


@router.get(
    "/v1/calls/{call_id}/eido",
    summary="A call as a NENA EIDO, its routing recommendation in a note",
    response_model=EidoDocument,
    responses={200: {"content": {EIDO_MEDIA_TYPE: {
        "schema": {"$ref": "#/components/schemas/EidoDocument"}}}}},
)
async def read_call_eido(call_id: str, request: Request, rt: RuntimeDep,
                         who: Reader) -> JSONResponse:
    view = await readable_call(request, rt, call_id, who)
    document = call_to_eido(view, agency_id=rt.settings.eido_agency_id,
                            dispositions=DISPOSITIONS)
    return JSONResponse(document, media_type=EIDO_MEDIA_TYPE)
