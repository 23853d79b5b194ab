"""911 → 988 transfers: a call the policy sends to a crisis centre (a program of mode
transfer) and what the centre does with it (docs/programs.md "Crisis centres").

A transfer is made with the decision that sends the call there (`follow_decision`, in
the same writer batch): `offered`. The centre's counsellors (a page) or its system (a
key of role crisis_center) record the steps (`StepTransfer`): accepted or declined;
accepted → completed or returned. Offered or accepted, it holds one of the centre's
counsellors (service/lifecycle/waiting.py program_states counts them). Declined or
returned, the call is decided again without that centre (routing.decide.after_transfer)
and the new decision goes to the board and the CAD like any other. Liaison itself ends
a transfer (`withdrawn`) when a CAD update decides the call away from the centre.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from routing.decide import after_transfer
from routing.models import Decision, Destination
from rules.evaluate import CompiledPolicy
from service.calls.records import CallRow, DecisionRecord
from service.errors import Conflict
from service.lifecycle.recorded import decision_columns, record_decision
from service.lifecycle.recorded import state_of as _state_of
from service.lifecycle.roster import one_team_availability
from service.lifecycle.transfer_record import LIAISON, NEXT, announce, follow_decision, view
from service.lifecycle.waiting import program_states, settle
from service.store.tables import TRANSFER, TRANSFER_STEP, as_utc, not_ahead, row_by_id, utcnow
from service.writing.batch import Batch, Keys

TransferStatus = Literal["offered", "accepted", "declined", "completed", "returned",
                         "withdrawn"]
StepStatus = Literal["accepted", "declined", "completed", "returned"]
REDECIDES = ("declined", "returned")  # the call needs another response


class StepRequest(BaseModel):
    """A step the crisis centre records: `at` when it happened (default now; not ahead
    of our clock), a reason (required when it declines or returns the call)."""

    status: StepStatus
    reason: str | None = Field(default=None, max_length=2000,
                               description="why: required for declined and returned")
    at: AwareDatetime | None = Field(default=None, description="when it happened "
                                     "(default: now); not ahead of our clock")

    @field_validator("at")
    @classmethod
    def _not_ahead(cls, v: datetime | None) -> datetime | None:
        return None if v is None else not_ahead(v, "a step cannot be from the future")

    @model_validator(mode="after")
    def _reason(self) -> StepRequest:
        self.reason = (self.reason or "").strip() or None
        if self.status in REDECIDES and (self.reason is None or len(self.reason) < 3):
            raise ValueError(f"a {self.status} transfer needs a reason (3 characters or "
                             "more): the call is decided again with it")
        return self


async def withdraw_moved(ctx: Batch, call: Mapping[str, Any], decision: Decision) -> None:
    """A CAD update decided an open transfer's call away from its centre: Liaison ends
    the transfer (`withdrawn`), so it no longer holds a counsellor."""
    open_ = await ctx.open_transfers()
    for tid, (call_id, pid, _) in list(open_.items()):
        if call_id != call["id"] or (decision.destination is Destination.crisis_center
                                     and decision.program.id == pid):
            continue
        reason = f"the call was decided again: {decision.destination.value}"
        await _end(ctx, tid, "withdrawn", at=decision.decided_at, by=LIAISON, reason=reason)
        row = await _row(ctx.conn, tid)
        announce(ctx, call, view(row, await _steps(ctx.conn, tid)))


async def _end(ctx: Batch, transfer_id: str, status: str, *, at: datetime, by: str,
               reason: str | None) -> None:
    values: dict[str, Any] = {"status": status, "reason": reason, "updated_at": utcnow()}
    if status == "accepted":
        values["accepted_at"] = at
    else:
        values["ended_at"] = at
        (await ctx.open_transfers()).pop(transfer_id, None)  # its counsellor is free
    await ctx.conn.execute(update(TRANSFER).where(TRANSFER.c.id == transfer_id)
                           .values(**values))
    # Written now (not at flush): the answer shows the transfer with this step.
    await ctx.conn.execute(insert(TRANSFER_STEP).values(
        transfer_id=transfer_id, status=status, at=at, by=by, reason=reason,
        recorded_at=utcnow()))


async def _row(conn: Any, transfer_id: str) -> dict[str, Any]:
    return await row_by_id(conn, TRANSFER, transfer_id, f"no transfer {transfer_id}")


async def _steps(conn: Any, transfer_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(select(TRANSFER_STEP).where(
        TRANSFER_STEP.c.transfer_id == transfer_id).order_by(TRANSFER_STEP.c.id))
    return [dict(r) for r in rows.mappings()]


@dataclass
class StepTransfer:
    """The crisis centre records a step of a transfer; declined or returned, the call is
    decided again (and that decision sent like any other)."""

    transfer_id: str
    step: StepRequest
    by: str
    policy: CompiledPolicy
    units_total: int

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        row = await _row(ctx.conn, self.transfer_id)
        current, new = row["status"], self.step.status
        allowed = list(NEXT[current])
        if new not in allowed:
            raise Conflict(f"cannot go from {current} to {new}", current=current,
                           allowed=allowed)
        at = as_utc(self.step.at) if self.step.at else utcnow()
        if at < as_utc(row["offered_at"]):
            raise Conflict("a step cannot come before the transfer was offered",
                           current=current, allowed=allowed)
        named = self.policy.programs.named
        if named:  # what waits: settled up to now before the call is decided again
            await settle(ctx, self.policy, await ctx.queue_clock())
        await _end(ctx, self.transfer_id, new, at=at, by=self.by, reason=self.step.reason)
        call = await ctx.existing_call(row["call_id"])
        decision = None
        if new in REDECIDES:
            decision = await self._decide_again(ctx, call, row["program_id"], at)
        doc = view(await _row(ctx.conn, self.transfer_id),
                   await _steps(ctx.conn, self.transfer_id))
        announce(ctx, call, doc)
        return {"transfer": doc, "decision": decision}

    async def _decide_again(self, ctx: Batch, call: CallRow, program_id: str,
                            at: datetime) -> DecisionRecord | None:
        previous = Decision.model_validate_json(call["decision"])
        if previous.destination is not Destination.crisis_center \
                or previous.program.id != program_id:
            return None  # the call was decided away meanwhile: nothing to take back
        policy = self.policy
        states = (await program_states(ctx, policy, exclude_call=call["id"])
                  if policy.programs.named else None)
        busy = await ctx.units_busy(exclude_call=call["id"], agency=policy.agency)
        availability = await one_team_availability(ctx, policy, self.units_total, busy)
        decision = after_transfer(
            _state_of(call).facts(), policy, availability, previous, program_id=program_id,
            outcome=cast(Literal["declined", "returned"], self.step.status), by=self.by,
            reason=self.step.reason or "", at=at, state=states)
        doc = cast(DecisionRecord, decision.model_dump(mode="json"))
        call.update({**decision_columns(doc, call), "updated_at": utcnow()})  # type: ignore[typeddict-item]
        ctx.save_call(call)
        record_decision(ctx, call, doc, cause=f"transfer_{self.step.status}", event_id=None)
        follow_decision(ctx, call, previous, decision)  # to another crisis centre, maybe
        return doc


# -- reads -------------------------------------------------------------------------------

async def list_transfers(engine: AsyncEngine, *, status: str | None = None,
                         call_id: str | None = None, limit: int = 200
                         ) -> list[dict[str, Any]]:
    """Transfers, newest offered first, each with its steps."""
    t = TRANSFER.c
    query = select(TRANSFER).order_by(t.offered_at.desc(), t.id).limit(limit)
    if status is not None:
        query = query.where(t.status == status)
    if call_id is not None:
        query = query.where(t.call_id == call_id)
    async with engine.connect() as conn:
        rows = [dict(r) for r in (await conn.execute(query)).mappings()]
        steps: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
        if rows:
            found = await conn.execute(select(TRANSFER_STEP).where(
                TRANSFER_STEP.c.transfer_id.in_(list(steps))).order_by(TRANSFER_STEP.c.id))
            for s in found.mappings():
                steps[s["transfer_id"]].append(dict(s))
    return [view(r, steps[r["id"]]) for r in rows]


async def get_transfer(engine: AsyncEngine, transfer_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        return view(await _row(conn, transfer_id), await _steps(conn, transfer_id))
