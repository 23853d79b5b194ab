"""Program figures over HTTP: JSON, a CSV per table, the /metrics page and a printable
monthly report. Aggregates are for supervisors and analysts; per-person performance
tables (per officer, per dispatcher, free-text override reasons) for supervisors only.
An officer sees the outcomes of their own referrals (GET /v1/metrics/my-referrals).

`from` and `to` are a date (`2026-11-01`: midnight in the program's timezone) or an
RFC 3339 time with an offset; calls opened in [from, to) count.

`agency` (issue 17, api/figures_scope.py): one agency's figures, in its time zone; a
regional person's default is the region's (every call, in the default agency's time zone),
and `by=agency` adds each agency's outcome figures side by side.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from api import scorecard_html
from api.access import CredentialsFirst, Principal, Role, allow
from api.deps import RuntimeDep
from api.figures_scope import FiguresAgency, policy_of, zone_of
from api.metrics_html import PAGE, render
from api.scorecard_data import scorecard_of
from service.calls.visibility import referral_view
from service.errors import DomainError, Forbidden, NotFound
from service.figures.metrics import (
    SUPERVISOR_ONLY,
    TABLES,
    Metrics,
    MyReferral,
    Scope,
    compute,
    month_range,
    my_referrals,
    table_rows,
    to_csv,
)
from service.store.tables import ANY_AGENCY, DEFAULT_AGENCY, utcnow

MAX_DAYS = 400
FIRST_YEAR, LAST_YEAR = 1970, 2999
MONTH = r"^(19[7-9]\d|2\d{3})-(0[1-9]|1[0-2])$"
NO_CACHE = {"Cache-Control": "no-store"}

Aggregates = Annotated[Principal, allow(Role.supervisor, Role.analyst)]
From = Annotated[str | None, Query(alias="from", max_length=40,
                                   description="a date (program's local midnight) or "
                                               "RFC 3339 with an offset; default: 30 days "
                                               "before `to`")]
To = Annotated[str | None, Query(alias="to", max_length=40,
                                 description="not included; default: the end of today")]
District = Annotated[str | None, Query(max_length=120, description="one district only")]
By = Annotated[Literal["agency"] | None, Query(
    description="`agency`: each agency's outcome figures side by side (`by_agency`)")]

router = APIRouter(tags=["metrics"], route_class=CredentialsFirst)


class InvalidRange(DomainError):
    status = 422
    code = "invalid"


def parse_when(value: str, zone: ZoneInfo, name: str) -> datetime:
    value = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time(), zone)
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRange(f"'{name}' is not a date or an RFC 3339 time",
                           detail=[{"field": name, "reason": str(exc)}]) from exc
    if parsed.tzinfo is None:
        raise InvalidRange(f"'{name}' needs an offset",
                           detail=[{"field": name, "reason": "give an offset, e.g. -05:00"}])
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise InvalidRange(f"'{name}' is out of range",
                           detail=[{"field": name, "reason": f"a year from {FIRST_YEAR} to "
                                                            f"{LAST_YEAR}"}])
    return parsed


def scope_of(zone: ZoneInfo, start: str | None, end: str | None,
             district: str | None, *, names: tuple[str, str] = ("from", "to"),
             agency: str | None = None) -> Scope:
    first, last = names
    today = utcnow().astimezone(zone).date()
    stop = (parse_when(end, zone, last) if end
            else datetime.combine(today + timedelta(days=1), datetime.min.time(), zone))
    begin = parse_when(start, zone, first) if start else stop - timedelta(days=30)
    if stop <= begin:
        raise InvalidRange(f"'{last}' must be after '{first}'",
                           detail=[{"field": last, "reason": f"must be after '{first}'"}])
    if stop - begin > timedelta(days=MAX_DAYS):
        raise InvalidRange(f"at most {MAX_DAYS} days at a time",
                           detail=[{"field": last, "reason": f"at most {MAX_DAYS} days "
                                                             f"after '{first}'"}])
    return Scope(begin, stop, district.strip() or None if district else None, zone, agency)


@router.get("/v1/metrics", response_model=Metrics,
            summary="Program figures for calls opened in [from, to), optionally one district")
async def get_metrics(rt: RuntimeDep, who: Aggregates, agency: FiguresAgency,
                      start: From = None, end: To = None, district: District = None,
                      by: By = None) -> Metrics:
    scope = scope_of(zone_of(rt, agency), start, end, district, agency=agency)
    return await compute(rt.engine, scope, supervisor=who.role is Role.supervisor,
                         policy=policy_of(rt, agency),
                         care_confirm_hours=rt.settings.care_confirm_hours,
                         by_agency=by == "agency")


@router.get("/v1/metrics/my-referrals", response_model=list[MyReferral],
            summary="An officer's own referrals and what became of them")
async def get_my_referrals(rt: RuntimeDep,
                           who: Annotated[Principal, allow(Role.officer, Role.supervisor)],
                           agency: FiguresAgency, start: From = None, end: To = None,
                           officer: Annotated[str | None, Query(
                               max_length=120, description="supervisors: whose")] = None,
                           ) -> list[MyReferral]:
    if who.role is Role.officer:
        if not who.officer_id:
            raise Forbidden("your account has no officer id; ask a supervisor to set it")
        officer_id = who.officer_id
    else:
        if not officer:
            raise InvalidRange("give 'officer'", detail=[{"field": "officer",
                                                          "reason": "required"}])
        officer_id = officer
    zone = zone_of(rt, agency)
    begin = parse_when(start, zone, "from") if start else None
    stop = parse_when(end, zone, "to") if end else None
    found = await my_referrals(rt.engine, officer_id, start=begin, end=stop, agency=agency)
    # An officer reads no outcome text of a behavioural-health call (service/calls/visibility.py).
    return [MyReferral.model_validate(referral_view(r.model_dump(), None, who))
            for r in found]


@router.get("/v1/metrics/{table}.csv", summary="One table of the program figures, as CSV",
            response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
async def get_metrics_csv(rt: RuntimeDep, who: Aggregates, table: str,
                          agency: FiguresAgency, start: From = None, end: To = None,
                          district: District = None) -> Response:
    if table not in TABLES:
        raise NotFound("no such table", tables=list(TABLES))
    supervisor = who.role is Role.supervisor
    if table in SUPERVISOR_ONLY and not supervisor:
        raise Forbidden("per-person figures are for supervisors",
                        allowed_roles=[Role.supervisor.value])
    scope = scope_of(zone_of(rt, agency), start, end, district, agency=agency)
    result = await compute(rt.engine, scope, supervisor=supervisor,
                           policy=policy_of(rt, agency),
                           care_confirm_hours=rt.settings.care_confirm_hours,
                           by_agency=table == "by_agency")
    rows = table_rows(result, table) or []
    label = f"-{agency}" if agency else ""
    name = f"liaison-{table}{label}-{scope.start:%Y%m%d}-{scope.end:%Y%m%d}.csv"
    return Response(to_csv(TABLES[table], rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             **NO_CACHE})


@router.get("/metrics", response_class=HTMLResponse, include_in_schema=False)
async def metrics_page(rt: RuntimeDep, who: Aggregates, agency: FiguresAgency,
                       start: From = None, end: To = None,
                       district: District = None) -> HTMLResponse:
    zone = zone_of(rt, agency)
    if start is None and end is None:  # this month so far
        today = utcnow().astimezone(zone).date()
        start, end = today.replace(day=1).isoformat(), (today + timedelta(days=1)).isoformat()
    scope = scope_of(zone, start, end, district, agency=agency)
    choices = _agency_choices(rt, who)
    # The region's figures over several agencies: each agency's beside the others.
    result = await compute(rt.engine, scope, supervisor=who.role is Role.supervisor,
                           policy=policy_of(rt, agency),
                           care_confirm_hours=rt.settings.care_confirm_hours,
                           by_agency=agency is None and len(choices) > 1)
    last = (scope.end - timedelta(seconds=1)).astimezone(zone)
    form = {"from": scope.start.astimezone(zone).date().isoformat(),
            "to": scope.end.astimezone(zone).date().isoformat(),
            "district": scope.district or "", "month": f"{last:%Y-%m}",
            "agency": agency or ""}
    query = {"from": scope.start.isoformat(), "to": scope.end.isoformat(),
             "district": scope.district or "", "agency": agency or ""}
    # The rule scorecard of the version in force (the agency's; the region's: the default
    # agency's), same range (all districts); none for a policy given by file and never
    # stored, or an agency with no policy yet.
    policy = policy_of(rt, agency)
    try:
        card = scorecard_html.section(await scorecard_of(
            rt, policy.version, scope.start, scope.end,
            supervisor=who.role is Role.supervisor,
            agency=agency or DEFAULT_AGENCY)) if policy is not None else ""
    except NotFound:
        card = ""
    page = render(result, title=PAGE.title, report=False, query=query, form=form,
                  role=who.role, extra=card, agencies=choices)
    return HTMLResponse(page, headers=NO_CACHE)


def _agency_choices(rt: RuntimeDep, who: Principal) -> list[tuple[str, str]]:
    """(id, name) of the agencies a regional person may choose among; none for a person
    of one agency (their figures are their agency's)."""
    if who.agency != ANY_AGENCY:
        return []
    return sorted((a.id, a.name) for a in rt.region.jurisdictions.agencies.values())


@router.get("/reports/monthly", response_class=HTMLResponse,
            summary="A printable monthly report (HTML; print or save as PDF)")
async def monthly_report(rt: RuntimeDep, who: Aggregates, agency: FiguresAgency,
                         month: Annotated[str, Query(pattern=MONTH,
                                                     description="YYYY-MM")],
                         district: District = None) -> HTMLResponse:
    zone = zone_of(rt, agency)
    start, end = month_range(month, zone)
    scope = Scope(start, end, district.strip() or None if district else None, zone, agency)
    choices = _agency_choices(rt, who)
    result = await compute(rt.engine, scope, supervisor=who.role is Role.supervisor,
                           policy=policy_of(rt, agency),
                           care_confirm_hours=rt.settings.care_confirm_hours,
                           by_agency=agency is None and len(choices) > 1)
    title = f"Monthly report, {start:%B %Y}"
    query = {"from": start.isoformat(), "to": end.isoformat(), "district": scope.district or "",
             "agency": agency or ""}
    return HTMLResponse(render(result, title=title, report=True, query=query, role=who.role,
                               agencies=choices), headers=NO_CACHE)
