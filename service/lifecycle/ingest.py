"""The write side of a call's life: CAD events, team status, dispatcher overrides.

Each class is a writer command: it runs inside the writer's transaction, checks
everything before it writes, and leaves board messages for the live feed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel, Field, field_validator

from routing.decide import apply_backup, apply_override, redecide
from routing.jurisdiction import Claim, RegionView, kept, unclaimed, with_claim
from routing.models import Decision, Destination
from rules.evaluate import CompiledPolicy
from service.calls.event import STORED, CallEvent, canonical_event
from service.calls.fold import CallState, apply_event, fold
from service.calls.history import repeat_keys
from service.calls.people import address_key, age_group, person_key
from service.calls.records import CallRow, DecisionRecord
from service.errors import Conflict
from service.lifecycle.assignment import RecommendSettings, record_assignment
from service.lifecycle.followups import after_exclusion, schedule_follow_up
from service.lifecycle.mutual_aid import aid_offers
from service.lifecycle.recorded import call_summary
from service.lifecycle.recorded import decision_columns as _decision_columns
from service.lifecycle.recorded import record_decision as _record_decision
from service.lifecycle.recorded import state_of as _state_of
from service.lifecycle.repeat import history_in_batch
from service.lifecycle.roster import one_team_availability, units_touched
from service.lifecycle.team import DISPOSITIONS, TRANSITIONS, RightResponder, StatusChange
from service.lifecycle.transfer_record import follow_decision
from service.lifecycle.transfers import withdraw_moved
from service.lifecycle.waiting import (
    after_event,
    not_waiting,
    offer_freed,
    program_states,
    settle,
)
from service.outbox.rows import status_outbox_row
from service.store.ids import time_ordered_id
from service.store.tables import as_utc, utcnow
from service.writing.batch import Batch, Keys, compact_json, held_program


def _same_decision(a: Decision, b: Decision) -> bool:
    keys = ("destination", "mode", "category", "matched_rules", "not_served_reason",
            "policy_version", "eligible", "deferred_until")
    return (all(getattr(a, k) == getattr(b, k) for k in keys)
            and a.program.id == b.program.id and (a.queued is None) == (b.queued is None))


@dataclass
class IngestEvent:
    """Store a CAD event, fold it into its call, decide, and tell the board."""

    event: CallEvent
    policy: CompiledPolicy
    units_total: int
    source: str = "generic"
    # The event id is a hash of the document sent (EIDO): the same id is the same
    # document, even where it now reads differently (`updated` once its call exists).
    content_addressed: bool = False
    # Several agencies (issue 17): whose a new call is (routing/jurisdiction.py), and
    # each agency's policy. A later event of a call keeps the call's agency. Without
    # them the call is `policy`'s agency's, as in a region of one.
    claim: Claim | None = None
    region: RegionView | None = None

    def _whose(self, call: Mapping[str, Any] | None) -> tuple[str | None, CompiledPolicy | None,
                                                               str | None]:
        """The call's agency, its policy in force (None: no agency has the call, or its
        agency has no policy yet) and the step naming the agency (None in a region of
        one agency, whose explanations read as they always did)."""
        if self.region is None:
            return self.policy.agency, self.policy, None
        claim = self.claim
        if call is not None and (call.get("agency_id") is not None or claim is None):
            claim = kept(self.region.jurisdictions.agencies.get(call.get("agency_id") or ""),
                         call.get("agency_id"))
        if claim is None:
            return self.policy.agency, self.policy, None
        several = self.region.jurisdictions.several or claim.agency is None
        return (claim.agency, self.region.policies.get(claim.agency or ""),
                claim.step if several else None)

    def keys(self) -> Keys:
        ev = self.event
        # A `created` event usually opens a call: read its repeat-contact history with the
        # batch's other reads.
        repeat = repeat_keys(person_key(self.source, ev.person),
                             address_key(ev.location.address if ev.location else None)
                             ) if ev.type == "created" else []
        claimed = self.claim.agency if self.claim else None
        return Keys(event_ids=[(self.source, ev.event_id)],
                    incidents=[(self.source, ev.incident_id)],
                    repeat=repeat, agencies=[claimed or self.policy.agency])

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        ev = self.event
        seen = ctx.seen.get((self.source, ev.event_id))
        if seen is not None:
            answer, body = seen
            if not (self.content_addressed or canonical_event(json.loads(body))
                    == ev.canonical()):
                # The sender's idempotency key with another body: a change sent under an
                # old id would otherwise be dropped without a word.
                raise Conflict("this event_id was already used by this sender with a "
                               "different body; send a change as a new event with its own "
                               "event_id", event_id=ev.event_id)
            # A retry: the first answer, and nothing new stored or sent.
            return dict(json.loads(answer))
        agency, policy, step = self._whose(
            await ctx.call_by_incident(self.source, ev.incident_id))
        named = policy is not None and policy.programs.named
        if policy is not None and named:  # what waits: settled up to this event's time
            await settle(ctx, policy, ev.occurred_at)

        call = await ctx.call_by_incident(self.source, ev.incident_id)
        if call is None:
            state = apply_event(None, ev)
            call_id = time_ordered_id()
        else:
            call_id = call["id"]
            if ev.occurred_at >= as_utc(call["last_event_at"]):
                state = apply_event(_state_of(call), ev)
            else:
                # An event from the past: replay every event of the call in CAD order.
                earlier = [CallEvent.model_validate_json(b, context={STORED: True})
                           for b in await ctx.event_bodies(call_id)]
                state = fold([*earlier, ev])

        previous = Decision.model_validate_json(call["decision"]) if call else None
        if policy is None:  # no agency has the call, or its agency has no policy yet
            decision = (previous if previous is not None and state.closed_at is not None
                        else unclaimed(step, ev.occurred_at, no_policy=agency))
            cause = "event"
        else:
            busy = await ctx.units_busy(exclude_call=call_id, agency=policy.agency)
            # Each program's own units busy and queue (a policy of programs): a later
            # program takes a call when an earlier one's units are full, or it waits.
            programs = (await program_states(ctx, policy, exclude_call=call_id)
                        if named else None)
            units_total = (self.units_total if policy is self.policy
                           else policy.policy.program.units)
            # Other agencies' programs the policy may ask (mutual aid): read only for a
            # policy that names some.
            aid = await aid_offers(ctx, policy, self.region or ctx.region,
                                   exclude_call=call_id)
            decision = redecide(state.facts(), policy,
                                await one_team_availability(ctx, policy, units_total, busy),
                                previous, closed=state.closed_at is not None, state=programs,
                                now=ev.occurred_at, aid=aid)
            decision, cause = after_event(previous, decision,
                                          holding=held_program(call) is not None)
            decision = with_claim(decision, step)
        decision_doc = cast(DecisionRecord, decision.model_dump(mode="json"))
        row = _call_row(call_id, self.source, ev.incident_id, state, decision_doc,
                        existing=call, agency=agency)
        history = None
        if call is None:
            row.update({"received_at": row["updated_at"], "first_decided_at": row["updated_at"],
                        "initial_destination": decision_doc["destination"]})
            if state.follow_up_of and (self.source == "liaison" or row["person_key"] is None):
                # A follow-up is about the original call's person, whatever CAD that came from.
                original = await ctx.call_by_id(state.follow_up_of)
                if original is not None and original["person_key"]:
                    row["person_key"] = original["person_key"]
            history = await history_in_batch(ctx, row)
        ctx.save_call(row)
        response = {"call_id": call_id, "event_id": ev.event_id, "decision": decision_doc}
        ctx.add_event({
            "event_id": ev.event_id, "call_id": call_id, "source": self.source,
            "incident_id": ev.incident_id, "type": ev.type, "occurred_at": ev.occurred_at,
            "received_at": utcnow(), "body": ev.model_dump_json(exclude_unset=True),
            "response": compact_json(response),
        })
        if previous is None or not _same_decision(previous, decision):
            _record_decision(ctx, row, decision_doc, cause=cause, event_id=ev.event_id,
                             history=history)
            # 911 → 988: a transfer record with the decision that sends the call there;
            # one the call was decided away from ends.
            follow_decision(ctx, row, previous, decision)
            if previous is not None and previous.destination is Destination.crisis_center:
                await withdraw_moved(ctx, row, decision)
        if policy is not None:
            # An overdose (an exclusion with `follow_up:`): police/EMS go; the team visits
            # later.
            await after_exclusion(ctx, row, decision_doc, policy.policy,
                                  consent=state.follow_up_consent,
                                  consent_given="follow_up_consent" in ev.model_fields_set,
                                  at=ev.occurred_at)
        if policy is not None:  # a unit this call held is free: the queue's next
            await offer_freed(ctx, policy if named else None, call, ctx.calls[call_id],
                              ev.occurred_at)
        closing = state.closed_at is not None and (call is None or call["closed_at"] is None)
        if closing:
            await units_touched(ctx, call, row)  # a closed call frees its unit
        kind = "call_closed" if closing else "call_updated"
        if call is not None or closing:
            ctx.board(call_id, kind, {
                "type": kind, "call_id": call_id, "at": utcnow().isoformat(),
                "event_id": ev.event_id, "call": call_summary(row), "decision": decision_doc,
            })
        return response


def _call_row(call_id: str, source: str, incident_id: str, state: CallState,
              decision: DecisionRecord, *, existing: Mapping[str, Any] | None,
              agency: str | None) -> CallRow:
    return cast(CallRow, {
        "id": call_id, "source": source, "incident_id": incident_id, "agency_id": agency,
        "channel": state.channel, "nature_code": state.nature_code,
        "nature_text": state.nature_text, "narrative": state.narrative,
        "priority": state.priority, "address": state.address, "district": state.district,
        "lat": state.lat, "lon": state.lon, "flags": compact_json(sorted(state.flags)),
        "opened_at": state.opened_at, "last_event_at": state.last_event_at,
        "closed_at": state.closed_at,
        "purpose": state.purpose,
        "person": state.person.model_dump_json(exclude_none=True) if state.person else None,
        "person_key": person_key(source, state.person),
        "age_group": age_group(state.person),
        "address_key": address_key(state.address),
        "referral": state.referral.model_dump_json() if state.referral else None,
        "referred_by": state.referral.officer_id if state.referral else None,
        "referred_unit": state.referral.unit if state.referral else None,
        "follow_up_of": state.follow_up_of,
        # What the team did, and when: kept from the stored row, set by ChangeStatus and
        # OverrideCall; a new call starts with none of it.
        **{k: existing[k] if existing else _FRESH.get(k) for k in _KEPT},
        **_decision_columns(decision, existing),
        "category": decision["category"], "eligible": decision["eligible"],
        "policy_version": decision["policy_version"], "updated_at": utcnow(),
    })


# Columns a CAD event never changes.
_KEPT = ("team_status", "unit", "disposition", "received_at", "first_decided_at",
         "initial_destination", "assigned_at", "en_route_at", "on_scene_at",
         "backup_requested_at", "backup_reason", "cleared_at", "outcome", "safety_incident",
         "overridden_by", "override_reason", "overridden_at", "checkin_due_at",
         "checkins_missed", "team_right_responder", "team_right_responder_note",
         "override_right_responder", "override_right_responder_note")
_FRESH: dict[str, Any] = {"safety_incident": False, "checkins_missed": 0}


# Seconds between safety check-ins of a unit on scene (LIAISON_CHECKIN_INTERVAL_SECONDS).
CHECKIN_INTERVAL_DEFAULT = 900.0


@dataclass
class ChangeStatus:
    call_id: str
    change: StatusChange
    # A unit on scene is asked to check in this often (service/lifecycle/checkins.py); 0: never.
    checkin_interval: float = CHECKIN_INTERVAL_DEFAULT
    # The policy in force: a unit this clears takes the queue's next call (None: not).
    policy: CompiledPolicy | None = None
    # Given: an assignment keeps the unit recommendation as it stood (migration 0022).
    recommend: RecommendSettings | None = None

    def keys(self) -> Keys:
        return Keys(call_ids=[self.call_id])

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        queue = self.policy if self.policy and self.policy.programs.named else None
        at = self.change.at or await ctx.queue_clock() if queue else None
        if queue and at:
            await settle(ctx, queue, at)
        call = await ctx.existing_call(self.call_id)
        before = call.copy()
        if call["destination"] not in (Destination.call_team, Destination.joint):
            raise Conflict("this call is not routed to the CALL team",
                           destination=call["destination"], allowed=[])
        current = call["team_status"] or "queued"
        allowed = list(TRANSITIONS[current])
        new = self.change.status
        if new not in allowed:
            raise Conflict(f"cannot go from {current} to {new}", current=current,
                           allowed=allowed)
        if new == "cleared" and not self.change.disposition:
            raise Conflict("clearing a call needs a disposition", current=current,
                           allowed=allowed, dispositions=list(DISPOSITIONS))
        now = utcnow()
        values: dict[str, Any] = {"team_status": new, "updated_at": now}
        if call[f"{new}_at"] is None:  # type: ignore[literal-required]  # a status's time
            # The first time (what timeliness figures measure): when it happened, if told.
            values[f"{new}_at"] = self.change.at or now
        if self.change.unit:
            values["unit"] = self.change.unit
        backup = None
        if new == "backup_requested":
            # A second request keeps the first reason unless it gives one of its own.
            values["backup_reason"] = self.change.note or call["backup_reason"]
            backup = _backup_decision(call, self.change, at=now)
            if backup is not None:
                values.update(_decision_columns(backup, call))
        if new == "on_scene" and self.checkin_interval > 0:
            values["checkin_due_at"] = now + timedelta(seconds=self.checkin_interval)
        if new == "cleared":
            values["disposition"] = self.change.disposition
            values["outcome"] = self.change.outcome
            values["safety_incident"] = self.change.safety_incident
            values["team_right_responder"] = self.change.right_responder
            values["team_right_responder_note"] = self.change.right_responder_note
            values["checkin_due_at"] = None
        assignment = None
        if new == "assigned" and self.policy is not None and self.recommend is not None:
            assignment = await record_assignment(ctx, self.policy, before, self.change,
                                                 self.recommend,
                                                 at=values.get("assigned_at") or now)
        follow_up = None
        if new == "cleared" and (self.change.follow_up_at or self.change.follow_up_in_hours):
            follow_up = await schedule_follow_up(ctx, call, self.change, now=now)
        call.update(cast(CallRow, values))  # columns of the call, named at run time
        ctx.save_call(call)
        if (queue and at) or before.get("aid_agency_id"):
            await offer_freed(ctx, queue, before, ctx.calls[self.call_id],
                              at or self.change.at or await ctx.queue_clock())
        ctx.board(self.call_id, "status", {
            "type": "status", "call_id": self.call_id, "at": values["updated_at"].isoformat(),
            "from": current, "status": new, "unit": call["unit"],
            "disposition": call["disposition"], "note": self.change.note,
            "by": self.change.by, "call": call_summary(call),
        })
        if ctx.webhook:
            # The CAD hears the team's status too, durable with it, before the decision a
            # backup request makes (docs/webhook.md).
            ctx.add_outbox(status_outbox_row(
                call, status=new, previous=current, at=self.change.at or now,
                disposition_code=DISPOSITIONS[self.change.disposition]
                if new == "cleared" and self.change.disposition else None,
                reason=call["backup_reason"] if new == "backup_requested" else None))
        if backup is not None:
            # To the board, the dispatcher console and (with a webhook) the CAD.
            _record_decision(ctx, call, backup, cause="backup", event_id=None)
        await units_touched(ctx, before, call)  # a unit on the roster: its status changed
        return {"call_id": self.call_id, "status": new, "previous": current,
                "unit": call["unit"], "disposition": call["disposition"],
                "allowed_next": list(TRANSITIONS[new]),
                "checkin_due_at": (call["checkin_due_at"].isoformat()
                                   if call["checkin_due_at"] else None),
                "follow_up": follow_up, "assignment": assignment}


def _backup_decision(call: Mapping[str, Any], change: StatusChange,
                     *, at: datetime) -> DecisionRecord | None:
    """The joint-response decision a backup request makes, or None when the call already
    has one (a second request does not stack)."""
    current = Decision.model_validate_json(call["decision"])
    if current.backup is not None:
        return None
    reason = (change.note or "").strip() or None
    return cast(DecisionRecord, apply_backup(current, by=change.by, reason=reason, at=at)
                .model_dump(mode="json"))


class OverrideRequest(BaseModel):
    destination: Destination
    reason: str = Field(min_length=3, max_length=2000,
                        description="why the dispatcher disagrees; kept on the record")
    by: str = Field(default="dispatcher", min_length=1, max_length=120)
    right_responder: RightResponder | None = Field(
        default=None, description="was the recommended responder the right one? (optional)")
    right_responder_note: str | None = Field(default=None, max_length=500,
                                             description="a short note on that answer")

    @field_validator("destination")
    @classmethod
    def _not_transfer(cls, v: Destination) -> Destination:
        if v is Destination.crisis_center:  # a transfer has a record the centre works
            raise ValueError("a dispatcher cannot transfer a call to the crisis centre; "
                             "the policy does")
        return v


@dataclass
class OverrideCall:
    call_id: str
    request: OverrideRequest
    at: datetime
    policy: CompiledPolicy | None = None  # as ChangeStatus's: the queue's, if it keeps one

    def keys(self) -> Keys:
        return Keys(call_ids=[self.call_id])

    async def apply(self, ctx: Batch) -> Decision:
        call = await ctx.existing_call(self.call_id)
        if call["closed_at"] is not None:
            raise Conflict("the call is closed")
        before = call.copy()
        current = Decision.model_validate_json(call["decision"])
        # An overridden call waits no more: the dispatcher decided.
        decision = not_waiting(apply_override(
            current, destination=self.request.destination, by=self.request.by,
            reason=self.request.reason.strip(), at=self.at))
        doc = cast(DecisionRecord, decision.model_dump(mode="json"))
        call.update({**_decision_columns(doc, call), "updated_at": utcnow(),
                     "overridden_by": self.request.by,
                     "override_reason": self.request.reason.strip(), "overridden_at": self.at,
                     "override_right_responder": self.request.right_responder,
                     "override_right_responder_note": self.request.right_responder_note})
        ctx.save_call(call)
        _record_decision(ctx, call, doc, cause="override", event_id=None)
        queue = self.policy if self.policy and self.policy.programs.named else None
        if queue is not None or before.get("aid_agency_id"):
            at = await ctx.queue_clock()
            if queue is not None:
                await settle(ctx, queue, at)
            await offer_freed(ctx, queue, before, ctx.calls[self.call_id], at)
        return decision


@dataclass
class RecordReject:
    """Keep input a CAD sent that could not be accepted, with the reasons. A `sender`
    keeps its newest `keep` rejects (None: all); older ones go as new ones come."""

    source: str
    path: str
    errors: list[dict[str, Any]]
    body: str
    sender: str | None = None
    keep: int | None = None

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> int | None:
        if self.keep == 0:
            return None
        reject_id = await ctx.add_reject({
            "source": self.source, "path": self.path, "received_at": utcnow(),
            "errors": compact_json(self.errors), "body": self.body[:1_000_000],
            "sender": self.sender})
        if self.sender is not None and self.keep is not None:
            await ctx.trim_rejects(self.sender, self.keep)
        return reject_id
