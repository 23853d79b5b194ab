"""What-if over stored call history (service/policy/whatif.py): a version of the policy against
a baseline over the calls opened in a date range, run in the background.

One agency's (issue 17, `agency` as the policy routes' take it: yours; a regional
supervisor's default is the default agency): its version, its baseline, its stored calls.

Jobs live in this instance's memory: they do not survive a restart, and another instance
behind the same load balancer does not know them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from api.access import CredentialsFirst, Role, allow, principal_of, record
from api.deps import RuntimeDep
from api.policies import AgencyOf, unsaved, unsaved_label
from routing.whatif import ServiceTimes, ServiceTimesInvalid, WhatIfReport, parse_service_times
from rules.evaluate import CompiledPolicy, compile_policy
from service.calls.visibility import sees_agency
from service.errors import Conflict, DomainError, NotFound
from service.policy import store
from service.policy.whatif import KEEP_DAYS
from service.store.tables import utcnow

router = APIRouter(tags=["what-if"], dependencies=[allow(Role.supervisor)],
                   route_class=CredentialsFirst)


class InvalidWhatIf(DomainError):
    status = 422
    code = "invalid"


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: AwareDatetime = Field(alias="from", description="RFC 3339 with an offset")
    end: AwareDatetime = Field(alias="to", description="RFC 3339 with an offset; "
                                                       "calls opened before it")
    baseline: str | None = Field(default=None, description="a version label (default: the "
                                                           "published version)")
    seed: int = 1
    service_times: dict[str, Any] | None = None

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: AwareDatetime, info: ValidationInfo) -> AwareDatetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("must be after 'from'")
        return end


class UnsavedWhatIf(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: str | dict[str, Any] = Field(description=(
        "YAML text, or the policy as an object (as `parsed` in GET /v1/policies/{version})"))
    days: int = Field(default=30, ge=1, le=365, description="the calls opened in the last "
                                                             "`days` days, up to now")
    baseline: str | None = Field(default=None, description="a version label (default: the "
                                                           "published version)")
    seed: int = 1
    service_times: dict[str, Any] | None = None


class Progress(BaseModel):
    done: int = Field(description="calls decided so far")
    total: int | None = Field(description="calls in the range; null until counted")


class WhatIfStarted(BaseModel):
    job_id: str
    status: Literal["running"]
    progress: Progress


class WhatIfJob(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    job_id: str
    agency: str = Field(description="whose calls and versions it ran over")
    status: Literal["running", "done", "failed"]
    progress: Progress
    candidate: str = Field(description="the version tried")
    baseline: str = Field(description="the version it is compared with")
    from_: str = Field(alias="from")
    to: str
    seed: int
    started_at: str
    finished_at: str | None
    error: str | None = Field(description="why it failed (lost: its instance stopped)")
    report: WhatIfReport | None = Field(description="once done")


def _service_times(document: dict[str, Any] | None) -> ServiceTimes:
    if document is None:
        return ServiceTimes()
    try:
        return parse_service_times(document)
    except ServiceTimesInvalid as exc:
        raise InvalidWhatIf("invalid service_times", detail=[
            {"field": f"service_times.{e.path}" if e.path else "service_times",
             "reason": e.reason, "type": "value_error"} for e in exc.errors]) from None


@router.post("/v1/policies/{version}/what-if", status_code=202, response_model=WhatIfStarted,
             summary="Start a what-if of this version against a baseline over the stored "
                     "calls opened in [from, to)")
async def start(version: str, body: WhatIfRequest, request: Request, rt: RuntimeDep,
                agency: AgencyOf) -> dict[str, Any]:
    times = _service_times(body.service_times)
    row = await store.get_version(rt.engine, version, agency)  # 404 unknown
    candidate = compile_policy(store.parse(row.document))
    return await _start(request, rt, candidate, store.label(row), body.baseline,
                        start=body.start, end=body.end, seed=body.seed, service_times=times,
                        agency=agency)


@router.post("/v1/policies/what-if", status_code=202, response_model=WhatIfStarted,
             summary="Start a what-if of an unsaved document against a baseline over the "
                     "stored calls opened in the last `days` days")
async def start_unsaved(body: UnsavedWhatIf, request: Request, rt: RuntimeDep,
                        agency: AgencyOf) -> dict[str, Any]:
    times = _service_times(body.service_times)
    policy = unsaved(body.document)
    end = utcnow()
    return await _start(request, rt, compile_policy(policy), unsaved_label(policy),
                        body.baseline, start=end - timedelta(days=body.days), end=end,
                        seed=body.seed, service_times=times, agency=agency)


async def _start(request: Request, rt: RuntimeDep, candidate: CompiledPolicy, label: str,
                 baseline_ref: str | None, *, start: datetime, end: datetime, seed: int,
                 service_times: ServiceTimes, agency: str) -> dict[str, Any]:
    base = (await store.get_version(rt.engine, baseline_ref, agency) if baseline_ref
            else await store.published(rt.engine, agency))
    if base is None:
        raise Conflict("no published version to compare with; name a baseline")
    baseline = compile_policy(store.parse(base.document))
    # On the record before it starts: it reads every stored call in the range.
    await record(request, await principal_of(request), "policy.what_if",
                 target=label, detail={"version": label, "agency": agency})
    return await rt.whatif.start(rt.engine, candidate, baseline, start=start, end=end,
                                 seed=seed, service_times=service_times, candidate_label=label,
                                 agency=agency)


async def _job(request: Request, rt: RuntimeDep, job_id: str) -> dict[str, Any]:
    """The job, when it ran over an agency the asker sees (another agency's is 'not
    found', audited)."""
    job = await rt.whatif.get(rt.engine, job_id)
    who = await principal_of(request)
    if job is not None and who is not None and not sees_agency(who, job["agency"]):
        await record(request, who, "whatif.read", outcome="denied", target=job_id)
        job = None
    if job is None:
        raise NotFound(f"no what-if job {job_id!r} (jobs are kept {KEEP_DAYS} days)")
    return job


@router.get("/v1/what-if/{job_id}", summary="A what-if job: status, progress and, once done, "
                                           "the report", response_model=WhatIfJob)
async def read(job_id: str, request: Request, rt: RuntimeDep) -> dict[str, Any]:
    return await _job(request, rt, job_id)


@router.get("/v1/what-if/{job_id}/changed.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
            summary="The calls whose destination changes, as CSV (once the job is done)")
async def changed_csv(job_id: str, request: Request, rt: RuntimeDep) -> PlainTextResponse:
    job = await _job(request, rt, job_id)
    text = await rt.whatif.changed_csv(rt.engine, job_id) if job["status"] == "done" else None
    if text is None:
        raise Conflict(f"what-if {job_id} is {job['status']}; the CSV is there once it is "
                       "done", status=job["status"])
    return PlainTextResponse(text, media_type="text/csv",
                             headers={"content-disposition":
                                      f'attachment; filename="what-if-{job_id}.csv"'})
