"""The audit log, for supervisors: query by person, call and time; export as JSON lines.
An agency's supervisors read their agency's entries only; the region's read them all, or
one agency's (`?agency=`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.access import CredentialsFirst, Principal, Supervisor, record
from api.agency_scope import AgencyQuery, chosen_agency
from api.deps import RuntimeDep
from service import audit
from service.store.tables import ANY_AGENCY

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=CredentialsFirst)


def _filters(actor: str | None, call_id: str | None, action: str | None,
             since: datetime | None, until: datetime | None) -> dict[str, Any]:
    return {"actor": actor, "call_id": call_id, "action": action, "since": since,
            "until": until}


Actor = Annotated[str | None, Query(max_length=120, description="a username or key:<id>")]
CallId = Annotated[str | None, Query(max_length=40)]
Action = Annotated[str | None, Query(max_length=64, description="e.g. call.read, login.failed")]
Since = Annotated[datetime | None, Query(alias="from")]
Until = Annotated[datetime | None, Query(alias="to")]


async def _agency(request: Request, rt: RuntimeDep, who: Principal, asked: str | None,
                  action: str) -> str | None:
    """Whose entries `who` reads: None for the whole log (the region's people, asking for
    no one agency); else one agency's, checked as every agency choice is."""
    if who.agency == ANY_AGENCY and asked is None:
        return None
    return await chosen_agency(request, rt, who, asked, action)


@router.get("", summary="Audit entries, oldest first (page with after_id)")
async def query(who: Supervisor, request: Request, rt: RuntimeDep, actor: Actor = None,
                call_id: CallId = None, action: Action = None, since: Since = None,
                until: Until = None,
                after_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
                limit: Annotated[int, Query(ge=1, le=2000)] = 500,
                agency: AgencyQuery = None) -> list[audit.AuditRecord]:
    scope = await _agency(request, rt, who, agency, "audit.read")
    await record(request, who, "audit.read", detail={"agency": scope})
    return await audit.search(rt.engine, **_filters(actor, call_id, action, since, until),
                              after_id=after_id, limit=limit, agency=scope)


@router.get("/export.jsonl", summary="Every matching entry as JSON lines",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {"schema": {
                "type": "string", "description": "one AuditRecord per line"}}}}})
async def export(who: Supervisor, request: Request, rt: RuntimeDep, actor: Actor = None,
                 call_id: CallId = None, action: Action = None, since: Since = None,
                 until: Until = None, agency: AgencyQuery = None) -> StreamingResponse:
    scope = await _agency(request, rt, who, agency, "audit.export")
    await record(request, who, "audit.export", detail={"format": "jsonl", "agency": scope})
    lines = audit.export_lines(rt.engine, **_filters(actor, call_id, action, since, until),
                               agency=scope)
    return StreamingResponse(lines, media_type="application/x-ndjson",
                             headers={"content-disposition": 'attachment; filename="audit.jsonl"'})


