"""The rule scorecard over HTTP (service/figures/scorecard.py): JSON, or CSV with
`format=csv` or `Accept: text/csv`. Supervisors and analysts; the overrides' reasons and
who gave them for supervisors only (as the other figures' per-person tables).

`version` is a stored version (`3` or `<policy id>@3`) or `all` of one agency's versions
(`agency`, as the policy routes': yours; a regional person's default is the default
agency), over that agency's calls; `since` and `until` as the figures' `from` and `to`
(a date, or RFC 3339 with an offset, in the agency's time zone); calls opened in
[since, until) count.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.access import CredentialsFirst, Principal, Role, allow
from api.deps import RuntimeDep
from api.figures_scope import zone_of
from api.metrics import NO_CACHE, scope_of
from api.policies import AgencyOf
from api.scorecard_data import scorecard_of
from service.figures.scorecard import Scorecard, to_csv

router = APIRouter(tags=["metrics"], route_class=CredentialsFirst)
Aggregates = Annotated[Principal, allow(Role.supervisor, Role.analyst)]
Since = Annotated[str | None, Query(max_length=40, description="a date (program's local "
                                    "midnight) or RFC 3339 with an offset; default: 30 days "
                                    "before `until`")]
Until = Annotated[str | None, Query(max_length=40,
                                    description="not included; default: the end of today")]


@router.get("/v1/policies/{version}/scorecard", response_model=Scorecard,
            summary="How each rule and exclusion of a version (or `all`) worked out in the "
                    "field, for calls opened in [since, until)",
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
async def get_scorecard(version: str, request: Request, rt: RuntimeDep, who: Aggregates,
                        agency: AgencyOf, since: Since = None, until: Until = None,
                        format: Annotated[str | None, Query(pattern="^(json|csv)$")] = None,
                        ) -> Any:
    scope = scope_of(zone_of(rt, agency), since, until, None, names=("since", "until"))
    card = await scorecard_of(rt, version, scope.start, scope.end,
                              supervisor=who.role is Role.supervisor, agency=agency)
    wants_csv = format == "csv" or (format is None and "text/csv" in
                                    request.headers.get("accept", ""))
    if wants_csv:
        label = card.policy_version.replace("@", "-")
        name = f"liaison-scorecard-{label}-{scope.start:%Y%m%d}-{scope.end:%Y%m%d}.csv"
        return Response(to_csv(card), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 **NO_CACHE})
    return Response(card.model_dump_json(), media_type="application/json", headers=NO_CACHE)
