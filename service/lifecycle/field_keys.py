"""The field board's actions, once each: idempotency keys, and stale actions explained.

The board queues a member's status changes and check-ins on the device (web/static/
offline.js) and sends them when it can, each with the `Idempotency-Key` made when the
member acted; a lost answer means the same request comes again. `Keyed` wraps the writer
command so that, in the command's own transaction:

- a key seen before (from the same person) with the same request gets the first answer
  and records nothing; with another request it is refused (422, as the IETF draft
  "The Idempotency-Key HTTP Header Field" says for a reused key);
- an action the call has moved past (another member cleared it meanwhile) gets a 409
  that names the current status, who changed it and when, and a sentence a page shows.

Only accepted actions keep their key: a refused one recorded nothing, so its retry is
judged again against the call as it is then (as the CAD events' idempotency does,
service/lifecycle/ingest.py). Keys older than `field_key_hours` are deleted as the next
keyed action is stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import delete, insert, select

from service.errors import Conflict, DomainError
from service.lifecycle.team import TRANSITIONS
from service.store.tables import BOARD, FIELD_ACTION, iso_utc, utcnow
from service.writing.batch import Batch, Keys, compact_json
from service.writing.writer import Command

# Field keys are kept a week: far longer than a device retries an answer it lost.
FIELD_KEY_HOURS_DEFAULT = 168.0

# "<who> had already <done> ...": what each status means, as a page says it.
DONE = {
    "queued": "put this call back in the queue",
    "assigned": "taken this call",
    "en_route": "set off to this call",
    "on_scene": "arrived on scene",
    "backup_requested": "requested police backup on this call",
    "cleared": "cleared this call",
}
ASKED = {"checkin": "check-in", **{s: s.replace("_", " ") for s in TRANSITIONS}}


class KeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"


class StaleAction(Conflict):
    code = "stale"


@dataclass(frozen=True)
class Answered:
    """The command's answer, and whether it is the first one given again."""

    body: dict[str, Any]
    replayed: bool = False


def request_hash(action: str, call_id: str, body: dict[str, Any]) -> str:
    """The request a key stands for, as a hash: equal bodies hash equal however sent."""
    doc = json.dumps({"action": action, "call_id": call_id, "body": body},
                     sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


@dataclass
class Keyed:
    """A field action (`action`: the status it asks for, or "checkin") around its writer
    command. `key` None: no key was sent; stale actions are still explained."""

    command: Command
    call_id: str
    action: str
    actor: str
    key: str | None
    request: dict[str, Any]
    keep_hours: float = FIELD_KEY_HOURS_DEFAULT
    # The program's time zone: a sentence's times as the team's clocks show them.
    zone: tzinfo | None = None

    def keys(self) -> Keys:
        return self.command.keys()

    async def apply(self, ctx: Batch) -> Answered:
        digest = request_hash("checkin" if self.action == "checkin" else "status",
                              self.call_id, self.request)
        if self.key is not None:
            seen = (await ctx.conn.execute(
                select(FIELD_ACTION.c.request_sha256, FIELD_ACTION.c.response).where(
                    FIELD_ACTION.c.actor == self.actor, FIELD_ACTION.c.key == self.key))
            ).first()
            if seen is not None:
                if seen[0] != digest:
                    raise KeyReused(
                        "this Idempotency-Key was already used for another request; make "
                        "a new key for each action", idempotency_key=self.key)
                return Answered(dict(json.loads(seen[1])), replayed=True)
        try:
            answer = await self.command.apply(ctx)
        except Conflict as refused:
            raise await self._explained(ctx, refused) from None
        if self.key is not None:
            # In this transaction, so the key is stored exactly when the change is (and a
            # second command of this batch with the same key sees it).
            now = utcnow()
            await ctx.conn.execute(delete(FIELD_ACTION).where(
                FIELD_ACTION.c.created_at < now - timedelta(hours=self.keep_hours)))
            await ctx.conn.execute(insert(FIELD_ACTION), {
                "actor": self.actor, "key": self.key, "call_id": self.call_id,
                "action": "checkin" if self.action == "checkin" else "status",
                "request_sha256": digest, "response": compact_json(answer),
                "created_at": now})
            ctx.wrote = True
        return Answered(dict(answer))

    async def _explained(self, ctx: Batch, refused: Conflict) -> Conflict:
        """A refusal because the call moved on, told as what happened; others unchanged."""
        extra = refused.extra
        call = await ctx.call_by_id(self.call_id)
        stale = "destination" in extra or ("current" in extra and (
            self.action == "checkin" or self.action not in extra.get("allowed", [])))
        if call is None or not stale:
            return refused  # not stale: e.g. clearing without a disposition
        hhmm = self._hhmm
        asked = f"'{ASKED.get(self.action, self.action)}'"
        if self.request.get("at"):  # when the member acted (a change queued offline)
            asked += f" at {hhmm(str(self.request['at']))}"
        unit, by, at = call["unit"], None, iso_utc(call["updated_at"])
        if call["closed_at"] is not None:
            at = iso_utc(call["closed_at"])
            sentence = f"The CAD closed this call at {hhmm(at)}"
        elif "destination" in extra:
            by, at = call["overridden_by"], iso_utc(call["overridden_at"]) or at
            dest = str(extra["destination"]).replace("_", " ")
            sentence = (f"A dispatcher ({by}) sent this call to {dest} at {hhmm(at)}" if by
                        else f"This call went to {dest}, not the team")
        elif extra["current"] == "queued":
            sentence = "Nobody has taken this call yet"
        else:
            last = await _last_status(ctx, self.call_id) or {}
            by, at = last.get("by"), last.get("at") or at
            who = " ".join(filter(None, [unit, f"({by})" if by and by != unit else None]))
            sentence = (f"{who or 'Someone'} had already "
                        f"{DONE.get(extra['current'], extra['current'])} at {hhmm(at)}")
        return StaleAction(f"{sentence}: your {asked} was not recorded.",
                           **{"current": call["team_status"] or "queued", **extra},
                           asked=self.action, changed_by=by, unit=unit, changed_at=at)

    def _hhmm(self, iso: str | None) -> str:
        if not iso:
            return "an earlier time"
        when = datetime.fromisoformat(iso)
        return (when.astimezone(self.zone).strftime("%H:%M") if self.zone
                else when.astimezone(UTC).strftime("%H:%M UTC"))


async def _last_status(ctx: Batch, call_id: str) -> dict[str, Any] | None:
    """The call's latest status message (who moved it, when), as the board got it."""
    body = (await ctx.conn.execute(
        select(BOARD.c.body).where(BOARD.c.call_id == call_id, BOARD.c.type == "status")
        .order_by(BOARD.c.seq.desc()).limit(1))).scalar()
    return dict(json.loads(body)) if body else None

