"""Opening a follow-up as a call of its own: a `follow_up` call linked to the original,
routed by policy like any new call (it goes through IngestEvent)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from rules.evaluate import CompiledPolicy
from service.calls.event import CallEvent
from service.errors import Conflict, NotFound
from service.lifecycle.followups import SOURCE, follow_up_row, view
from service.lifecycle.ingest import IngestEvent
from service.store.tables import FOLLOW_UP, utcnow
from service.writing.batch import Batch, Keys


@dataclass
class OpenFollowUp:
    """Open a follow-up: a `follow_up` call linked to the original, routed by policy."""

    follow_up_id: str
    policy: CompiledPolicy
    units_total: int
    by: str | None = None

    @property
    def event_id(self) -> str:
        return f"follow-up-{self.follow_up_id}-open"

    def keys(self) -> Keys:
        return Keys(event_ids=[(SOURCE, self.event_id)],
                    incidents=[(SOURCE, f"follow-up-{self.follow_up_id}")])

    async def apply(self, ctx: Batch) -> dict[str, Any]:
        row = await follow_up_row(ctx.conn, self.follow_up_id)
        original = await ctx.call_by_id(row["call_id"])
        if row["status"] == "opened":
            return {"follow_up": view(row, original), "call_id": row["follow_up_call_id"],
                    "already": True}
        if row["status"] != "scheduled":
            raise Conflict(f"the follow-up is {row['status']}", status=row["status"])
        if original is None:
            raise NotFound(f"the original call {row['call_id']} is gone")
        now = utcnow()
        narrative = f"Proactive follow-up of call {original['incident_id']}"
        if row["note"]:
            narrative += f": {row['note']}"
        location = {k: original[k] for k in ("address", "district", "lat", "lon")
                    if original[k] is not None}
        event = CallEvent.model_validate({
            "event_id": self.event_id, "incident_id": f"follow-up-{self.follow_up_id}",
            "type": "created", "occurred_at": now, "channel": "follow_up",
            "nature_code": "FOLLOWUP",
            "nature_text": f"Follow-up: {original['nature_text']}"[:500],
            "narrative": narrative, "location": location or None, "flags": [],
            "purpose": original["purpose"], "follow_up_of": original["id"],
            "person": json.loads(original["person"]) if original["person"] else None,
        })
        result = await IngestEvent(event=event, policy=self.policy,
                                   units_total=self.units_total, source=SOURCE).apply(ctx)
        values = {"status": "opened", "follow_up_call_id": result["call_id"],
                  "opened_at": now}
        await ctx.conn.execute(update(FOLLOW_UP).where(FOLLOW_UP.c.id == row["id"])
                               .values(**values))
        row.update(values)
        doc = view(row, original, now=now)
        ctx.board(original["id"], "follow_up_opened", {
            "type": "follow_up_opened", "call_id": original["id"], "at": now.isoformat(),
            "by": self.by, "follow_up": doc, "follow_up_call_id": result["call_id"],
            "decision": result["decision"]})
        return {"follow_up": doc, "call_id": result["call_id"],
                "decision": result["decision"]}
