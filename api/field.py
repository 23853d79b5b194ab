"""The field workflow behind the board: safety check-ins and follow-ups.

Police backup is the status change to `backup_requested` (api/calls.py); repeat contact
is in `GET /v1/calls/{id}` and on a new call's first board message (`history`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.access import CredentialsFirst, Principal, Role, allow, record
from api.agency_scope import policy_for_call
from api.answers import FollowUp
from api.deps import RuntimeDep
from routing.models import DecisionView
from service.errors import NotFound
from service.lifecycle.checkins import CheckIn, CheckInRequest
from service.lifecycle.field_keys import Answered, Keyed
from service.lifecycle.followups import CloseFollowUp, get_follow_up, list_follow_ups
from service.lifecycle.open_followup import OpenFollowUp
from service.store.tables import ANY_AGENCY

router = APIRouter(tags=["field"], route_class=CredentialsFirst)

Team = Annotated[Principal, allow(Role.call_team, Role.supervisor)]
Reader = Annotated[Principal, allow(Role.call_team, Role.supervisor)]


class CheckedIn(BaseModel):
    call_id: str
    checked_in_at: str
    checkin_due_at: str | None = Field(description="the next one; null with check-ins off")
    checkins_missed: int = Field(description="misses since the last check-in: 0 now")
    missed_before: int = Field(description="misses this check-in ended")


# The field board's key for one action (web/static/offline.js makes a UUID when the member
# acts); a structured-field string's quotes ("…", as the IETF draft writes it) are allowed.
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", pattern=r'^"?[A-Za-z0-9._:-]{1,100}"?$',
    description="one per action, the same on every retry: a retry gets the first answer "
                "and records nothing; reused for another request: 422")]
REPLAYED = "Idempotent-Replayed"  # on an answer given again: "true"


class ActionRefused(BaseModel):
    """A field action refused (409). When the call moved on meanwhile (`error`: stale),
    what it is now, who moved it and when, and `message`, a sentence a page can show."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="stale: the call moved on; conflict: otherwise")
    message: str
    current: str | None = Field(default=None, description="the call's status now")
    allowed: list[str] | None = Field(default=None, description="what it may go to now")
    asked: str | None = Field(default=None, description="the status asked for, or checkin")
    changed_by: str | None = Field(default=None, description="who moved it there")
    changed_at: str | None = Field(default=None, description="when it was recorded")
    unit: str | None = None


REFUSED = {"model": ActionRefused}


def key_of(header: str | None) -> str | None:
    return header.strip('"') if header else None


async def submit_keyed(rt: Any, who: Principal, response: Response, keyed: Keyed
                       ) -> tuple[dict[str, Any], bool]:
    """Run a field action through the writer, once per key; the answer, and whether it
    was the first one given again (then also said in the Idempotent-Replayed header)."""
    keyed.keep_hours = rt.settings.field_key_hours
    keyed.zone = rt.policy.compiled.zone
    answered: Answered = await rt.writer.submit(keyed)
    if answered.replayed:
        response.headers[REPLAYED] = "true"
    return answered.body, answered.replayed


class FollowUpList(BaseModel):
    follow_ups: list[FollowUp] = Field(description="by due time")


class FollowUpOpened(BaseModel):
    follow_up: FollowUp
    call_id: str = Field(description="the call it was opened as")
    decision: DecisionView | None = Field(default=None, description="that call's decision "
                                          "(absent when it had been opened before)")
    already: bool | None = Field(default=None, description="true: it had been opened before")


class FollowUpClosed(BaseModel):
    follow_up: FollowUp
    already: bool | None = Field(default=None, description="true: it was in that state already")


@router.post("/v1/calls/{call_id}/checkin", response_model=CheckedIn,
             summary="A team member on scene checks in: all is well; the next check-in is "
                     "one interval away and earlier misses are forgotten",
             responses={409: {**REFUSED, "description": "the call's unit is not on scene "
                              "(stale: the call moved on, explained)"},
                        422: {"description": "bad input, or an Idempotency-Key reused"}})
async def check_in(call_id: str, request: Request, response: Response, rt: RuntimeDep,
                   who: Team, body: CheckInRequest | None = None,
                   idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    body = (body or CheckInRequest()).model_copy(update={"by": who.name})
    await policy_for_call(request, rt, call_id, who, "call.checkin")
    result, replayed = await submit_keyed(rt, who, response, Keyed(
        CheckIn(call_id=call_id, request=body, interval=rt.settings.checkin_interval_seconds),
        call_id=call_id, action="checkin", actor=who.actor, key=key_of(idempotency_key),
        request=body.model_dump(mode="json", exclude={"by"})))
    await record(request, who, "call.checkin", call_id=call_id,
                 detail={"replayed": True} if replayed else None)
    return result


@router.get("/v1/follow-ups", summary="Follow-ups by due time, with the original call",
            response_model=FollowUpList, response_model_exclude_unset=True)
async def follow_ups(rt: RuntimeDep, who: Reader,
                     status: Literal["scheduled", "opened", "completed", "cancelled"] | None
                     = None,
                     due_before: AwareDatetime | None = Query(
                         default=None, description="only those due before this time"),
                     call_id: str | None = Query(default=None, max_length=40,
                                                 description="of this original call"),
                     limit: int = Query(default=200, ge=1, le=1000)) -> dict[str, Any]:
    # One agency's people: follow-ups of its calls only (issue 17).
    return {"follow_ups": await list_follow_ups(
        rt.engine, status=status, due_before=due_before, call_id=call_id, limit=limit,
        agency=None if who.agency == ANY_AGENCY else who.agency)}


async def _follow_up_policy(request: Request, rt: Any, who: Principal, follow_up_id: str,
                            action: str) -> Any:
    """The policy of the follow-up's call's agency, once `who` may act on that agency's
    calls (another agency's follow-up is 'not found')."""
    call_id = (await get_follow_up(rt.engine, follow_up_id))["call_id"]
    try:
        return await policy_for_call(request, rt, call_id, who, action)
    except NotFound:
        raise NotFound(f"no follow-up {follow_up_id}") from None


@router.get("/v1/follow-ups/{follow_up_id}", summary="One follow-up", response_model=FollowUp,
            response_model_exclude_unset=True)
async def follow_up(follow_up_id: str, request: Request, rt: RuntimeDep,
                    who: Reader) -> dict[str, Any]:
    await _follow_up_policy(request, rt, who, follow_up_id, "follow_up.read")
    return await get_follow_up(rt.engine, follow_up_id)


@router.post("/v1/follow-ups/{follow_up_id}/open",
             summary="Open a follow-up: a call with channel follow_up, linked to the "
                     "original (follow_up_of), routed by the policy in force",
             responses={409: {"description": "the follow-up is completed or cancelled"}},
             response_model=FollowUpOpened, response_model_exclude_unset=True)
async def open_follow_up(follow_up_id: str, request: Request, rt: RuntimeDep,
                         who: Team) -> dict[str, Any]:
    # Opened as a call of the original call's agency, decided by its policy.
    compiled = await _follow_up_policy(request, rt, who, follow_up_id, "follow_up.open")
    result = await rt.writer.submit(OpenFollowUp(
        follow_up_id=follow_up_id, policy=compiled,
        units_total=compiled.policy.program.units, by=who.name))
    await record(request, who, "follow_up.open", call_id=result.get("call_id"),
                 target=follow_up_id)
    return result  # type: ignore[no-any-return]


class CloseRequest(BaseModel):
    note: str | None = Field(default=None, max_length=2000,
                             description="how it went (complete) or why not (cancel)")


async def _close(follow_up_id: str, to: Literal["completed", "cancelled"], request: Request,
                 rt: Any, who: Principal, body: CloseRequest | None) -> dict[str, Any]:
    note = body.note if body else None
    action = "follow_up.complete" if to == "completed" else "follow_up.cancel"
    await _follow_up_policy(request, rt, who, follow_up_id, action)
    result = await rt.writer.submit(CloseFollowUp(follow_up_id=follow_up_id, to=to,
                                                  by=who.name, note=note))
    await record(request, who, action, target=follow_up_id)
    return result  # type: ignore[no-any-return]


@router.post("/v1/follow-ups/{follow_up_id}/complete", summary="The follow-up was done",
             responses={409: {"description": "the follow-up was cancelled"}},
             response_model=FollowUpClosed, response_model_exclude_unset=True)
async def complete_follow_up(follow_up_id: str, request: Request, rt: RuntimeDep, who: Team,
                             body: CloseRequest | None = None) -> dict[str, Any]:
    return await _close(follow_up_id, "completed", request, rt, who, body)


@router.post("/v1/follow-ups/{follow_up_id}/cancel", summary="The follow-up will not happen",
             responses={409: {"description": "the follow-up was completed"}},
             response_model=FollowUpClosed, response_model_exclude_unset=True)
async def cancel_follow_up(follow_up_id: str, request: Request, rt: RuntimeDep, who: Team,
                           body: CloseRequest | None = None) -> dict[str, Any]:
    return await _close(follow_up_id, "cancelled", request, rt, who, body)
