from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.access import (
    DISPATCHER_ROLES,
    TEAM_ROLES,
    CredentialsFirst,
    Principal,
    Role,
    allow,
    record,
)
from api.agency_scope import policy_for_call
from api.answers import Assignment, CallDelivery, CallView, FollowUp
from api.deps import RuntimeDep
from api.field import REFUSED, IdempotencyKey, key_of, submit_keyed
from api.metrics import parse_when
from routing.models import Decision, DecisionView
from routing.recommend import Recommendation
from service.calls.visibility import (
    audience_of,
    call_view,
    decision_view,
    delivery_view,
    may_read,
    protected,
    sees_units,
)
from service.errors import DomainError, NotFound
from service.lifecycle.assignment import (
    RecommendSettings,
    get_assignment,
    recommendation_for,
)
from service.lifecycle.field_keys import Keyed
from service.lifecycle.ingest import ChangeStatus, OverrideCall, OverrideRequest
from service.lifecycle.queries import (
    LIST_FIELDS,
    CallFilter,
    get_call,
    get_call_brief,
    get_deliveries,
    list_calls,
)
from service.lifecycle.team import StatusChange, TeamStatus
from service.store.tables import utcnow

router = APIRouter(prefix="/v1/calls", tags=["calls"], route_class=CredentialsFirst)

Reader = Annotated[Principal, allow(Role.cad, Role.dispatcher, Role.call_team, Role.officer,
                                    Role.supervisor)]
Team = Annotated[Principal, allow(*TEAM_ROLES)]
Dispatcher = Annotated[Principal, allow(*DISPATCHER_ROLES)]
BoardRoles = Annotated[Principal, allow(Role.call_team, Role.dispatcher, Role.supervisor)]


def recommend_settings(rt: Any) -> RecommendSettings:
    return RecommendSettings(
        speed_kmh=rt.settings.recommend_speed_kmh,
        stale_after=timedelta(minutes=rt.settings.recommend_stale_minutes))


async def with_units(rt: Any, view: dict[str, Any], who: Principal) -> dict[str, Any]:
    """The call's unit recommendation (while nobody has taken it) and assignment, for
    those who see units (service/calls/visibility.py)."""
    if not sees_units(who):
        return view
    call = view["call"]
    # Whose units: the agency lending one by mutual aid, else the call's own.
    lender = (view["decision"].get("aid") or {}).get("agency") or call.get("agency_id")
    policy = rt.region.policy_of(lender) or rt.policy.compiled
    found = await recommendation_for(rt.engine, policy, call, view["decision"],
                                     recommend_settings(rt))
    assigned = await get_assignment(rt.engine, call["id"])
    return {**view, "recommendation": found.model_dump(mode="json") if found else None,
            "assignment": assigned}


async def readable_call(request: Request, rt: Any, call_id: str, who: Principal
                        ) -> dict[str, Any]:
    """The call as `who` may see it; every look is audited, refused ones too. A call they
    may not see is 'not found', so its existence is not given away."""
    view = await get_call(rt.engine, call_id)
    if not may_read(view["call"], who):
        await record(request, who, "call.read", outcome="denied", call_id=call_id)
        raise NotFound(f"no call {call_id}")
    await record(request, who, "call.read", call_id=call_id)
    return call_view(view, who)


# -- GET /v1/calls: find calls ------------------------------------------------------------

ListStatus = Literal["open", "closed", "queued", "assigned", "en_route", "on_scene",
                     "backup_requested", "cleared"]


class Location(BaseModel):
    address: str | None = None
    district: str | None = None
    lat: float | None = None
    lon: float | None = None


class CallListItem(BaseModel):
    """A call as a list shows it: GET /v1/calls/{call_id}'s `call` as the role may see it,
    cut to service.lifecycle.queries.LIST_FIELDS (no narrative, notes, outcome or personal details),
    with its `decision`. (Optional fields: a role's view may withhold them.)"""

    model_config = ConfigDict(extra="allow")

    id: str
    source: str | None = None
    incident_id: str | None = None
    channel: str | None = None
    nature_code: str | None = None
    nature_text: str | None = None
    priority: int | None = None
    category: str | None = None
    destination: str | None = None
    mode: str | None = None
    team_status: str | None = None
    unit: str | None = None
    disposition: str | None = None
    purpose: str | None = None
    referred_by: str | None = None
    follow_up_of: str | None = None
    location: Location | None = None
    flags: list[str] = []
    # RFC 3339 in UTC, as GET /v1/calls/{call_id} writes them.
    opened_at: str | None = None
    last_event_at: str | None = None
    closed_at: str | None = None
    updated_at: str | None = None
    withheld: list[str] = Field(default=[], description="what the role may not see of "
                                "the call (GET /v1/calls/{call_id} withholds it too)")
    decision: dict[str, Any] | None = Field(default=None, description="the current "
                                            "decision, with its explanation")


class CallPage(BaseModel):
    calls: list[CallListItem]
    next_cursor: str | None = Field(description="the `cursor` of the next page; null on "
                                                 "the last one")


class InvalidCursor(DomainError):
    status = 422
    code = "invalid"


def _cursor(item: dict[str, Any]) -> str:
    """Opaque to clients: where the page ended, (opened_at, id)."""
    raw = f"{item['call']['opened_at']}|{item['call']['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        at, call_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)
                                               ).decode().split("|", 1)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not call_id:
            raise ValueError("not a cursor")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursor("'cursor' is not one this service gave", detail=[
            {"field": "cursor", "reason": "not a next_cursor from an earlier page"}]) from exc
    return when, call_id


def _scope(who: Principal, where: CallFilter) -> CallFilter | None:
    """The filter narrowed to the calls `who` may read at all (the SQL side of may_read,
    so pages stay full); None when that leaves nothing."""
    if who.agency != "*":  # one agency's people and keys: its calls only (issue 17)
        if where.agency not in (None, who.agency):
            return None
        where = dataclasses.replace(where, agency=who.agency)
    if who.role is Role.officer:
        return dataclasses.replace(where, referred_by=who.officer_id) if who.officer_id \
            else None
    if who.role is Role.cad and who.source != "*":
        if not who.source or where.source not in (None, who.source):
            return None
        return dataclasses.replace(where, source=who.source)
    return where


def list_item(view: dict[str, Any], who: Principal) -> dict[str, Any] | None:
    """One listed call as `who` may see it, or None: the same gate and the same narrowing
    as GET /v1/calls/{call_id} (service/calls/visibility.py), in this one place."""
    if not may_read(view["call"], who):
        return None
    seen = call_view(view, who)
    call = seen["call"]
    return {**{k: call[k] for k in LIST_FIELDS if k in call}, "decision": seen["decision"]}


@router.get("", summary="Find calls: newest opened first, filtered, narrowed to what the "
            "role may see; page with `cursor`")
async def find_calls(
        request: Request, rt: RuntimeDep, who: Reader,
        start: Annotated[str | None, Query(alias="from", max_length=40, description=(
            "opened at or after: a date (the program's local midnight) or RFC 3339 with "
            "an offset"))] = None,
        end: Annotated[str | None, Query(alias="to", max_length=40,
                                         description="opened before (not included)")] = None,
        incident_id: Annotated[str | None, Query(min_length=1, max_length=120,
                                                 description="the CAD's incident number")
                               ] = None,
        source: Annotated[str | None, Query(min_length=1, max_length=40, description=(
            "the adapter or CAD: generic, eido, referral, liaison, a key's source"))] = None,
        destination: Literal["call_team", "police", "joint", "crisis_center"] | None = None,
        category: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        status: Annotated[ListStatus | None, Query(description=(
            "open or closed (by the CAD); queued (an open team call nobody has taken); or "
            "a team status"))] = None,
        district: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
        agency: Annotated[str | None, Query(min_length=1, max_length=40, description=(
            "one agency's calls (a person of one agency sees only theirs)"))] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Query(max_length=400, description="next_cursor of "
                                            "the page before")] = None) -> CallPage:
    own = rt.region.policy_of(agency or who.agency)
    zone = (own or rt.policy.compiled).zone  # dates are the agency's local days
    where = CallFilter(agency=agency,
        since=parse_when(start, zone, "from") if start else None,
        until=parse_when(end, zone, "to") if end else None,
        incident_id=incident_id, source=source, destination=destination,
        category=category, status=status, district=district)
    before = _after(cursor) if cursor else None
    scoped = _scope(who, where)
    rows = ([] if scoped is None else
            await list_calls(rt.engine, scoped, before=before, limit=limit + 1))
    page = rows[:limit]
    items = [item for view in page if (item := list_item(view, who)) is not None]
    # One entry per request, naming the filter: a list carries no narrative, notes or
    # personal details (a look at those is GET /v1/calls/{call_id}, audited per call).
    asked = {"from": start, "to": end, "incident_id": incident_id, "source": source,
             "destination": destination, "category": category, "status": status,
             "district": district, "agency": agency}
    await record(request, who, "call.list", detail={
        **{k: v for k, v in asked.items() if v is not None}, "cursor": bool(cursor),
        "count": len(items)})
    return CallPage(calls=[CallListItem.model_validate(i) for i in items],
                    next_cursor=_cursor(page[-1]) if len(rows) > limit else None)


class CallDeliveries(BaseModel):
    call_id: str
    deliveries: list[CallDelivery] = Field(description="in sequence order")


class StatusChanged(BaseModel):
    call_id: str
    status: TeamStatus
    previous: str = Field(description="queued or a team status")
    unit: str | None
    disposition: str | None
    allowed_next: list[str] = Field(description="the statuses it may go to from here")
    checkin_due_at: str | None = Field(description="on scene: when the unit checks in next")
    follow_up: FollowUp | None = Field(description="the follow-up clearing scheduled")
    assignment: Assignment | None = Field(
        default=None, description="assigned: the unit sent and the recommendation as it "
        "stood then")


@router.get("/{call_id}", summary="A call, its current decision and its timeline",
            response_model=CallView, response_model_exclude_unset=True)
async def read_call(call_id: str, request: Request, rt: RuntimeDep,
                    who: Reader) -> dict[str, Any]:
    return await with_units(rt, await readable_call(request, rt, call_id, who), who)


class CallRecommendation(BaseModel):
    call_id: str
    recommendation: Recommendation | None = Field(description="null: not an open team "
                                                  "call waiting for a unit (see assignment)")
    assignment: Assignment | None


@router.get("/{call_id}/recommendation", summary="The unit to send to a team call: "
            "available, with the capabilities its category asks for, nearest (or least "
            "loaded), and why others were passed over; once assigned, what was given",
            response_model=CallRecommendation)
async def read_recommendation(call_id: str, request: Request, rt: RuntimeDep,
                              who: BoardRoles) -> dict[str, Any]:
    # Units, not the call's details: not a look at the call (no call.read), asked again
    # by the pages as units move. These roles may read every call of their agency.
    await policy_for_call(request, rt, call_id, who, "call.recommendation")
    view = await get_call_brief(rt.engine, call_id)
    seen = await with_units(rt, view, who)
    return {"call_id": call_id, "recommendation": seen["recommendation"],
            "assignment": seen["assignment"]}


@router.get("/{call_id}/deliveries", summary="The call's decisions as sent to the CAD's "
            "webhook: status, attempts, last error, next attempt",
            response_model=CallDeliveries, response_model_exclude_unset=True)
async def read_deliveries(call_id: str, request: Request, rt: RuntimeDep,
                          who: Dispatcher) -> dict[str, Any]:
    await policy_for_call(request, rt, call_id, who, "call.deliveries")
    found = await get_deliveries(rt.engine, call_id)
    return {**found, "deliveries": [delivery_view(d, who) for d in found["deliveries"]]}


@router.post(
    "/{call_id}/status",
    summary="Move a team call along its flow: assigned, en_route, on_scene, "
            "backup_requested, cleared (with a disposition)",
    responses={409: {**REFUSED, "description": "not allowed from the current status; lists "
                     "the allowed (stale: the call moved on, explained)"},
               422: {"description": "bad input, or an Idempotency-Key reused"}},
    response_model=StatusChanged, response_model_exclude_unset=True,
)
async def change_status(call_id: str, change: StatusChange, request: Request,
                        response: Response, rt: RuntimeDep, who: Team,
                        idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    change = change.model_copy(update={"by": who.name})
    policy = await policy_for_call(request, rt, call_id, who, "call.status")
    result, replayed = await submit_keyed(rt, who, response, Keyed(
        ChangeStatus(call_id=call_id, change=change,
                     checkin_interval=rt.settings.checkin_interval_seconds,
                     policy=policy, recommend=recommend_settings(rt)),
        call_id=call_id, action=change.status, actor=who.actor, key=key_of(idempotency_key),
        request=change.model_dump(mode="json", exclude={"by"})))
    await record(request, who, "call.status", call_id=call_id,
                 detail={"status": change.status, "disposition": change.disposition,
                         **({"replayed": True} if replayed else {})})
    return result


@router.post("/{call_id}/override", summary="A dispatcher overrides the destination, "
             "with a reason that is kept")
async def override(call_id: str, request_body: OverrideRequest, request: Request,
                   rt: RuntimeDep, who: Dispatcher) -> DecisionView:
    # The record names who is logged in, not whom the body claims.
    body = request_body.model_copy(update={"by": who.name})
    policy = await policy_for_call(request, rt, call_id, who, "call.override")
    decision: Decision = await rt.writer.submit(
        OverrideCall(call_id=call_id, request=body, at=utcnow(), policy=policy))
    await record(request, who, "call.override", call_id=call_id,
                 detail={"destination": body.destination})
    doc = decision.model_dump(mode="json")
    return DecisionView.model_validate(
        decision_view(doc, audience_of(who), is_protected=protected(doc)))
