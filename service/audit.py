"""The audit log: append-only, ids and actions only.

Who (a username or `key:<id>`), their role, from where, when, what (`call.read`,
`call.status`, `call.override`, `policy.publish`, `login`, `login.failed`, `key.use`,
`access.denied`, ...), which call, and the outcome. `detail` holds ids and codes, never
narrative text, names or phone numbers: `safe_detail` keeps only short, plain values of
the keys it is given, and the tests check that a call's narrative never reaches the log.
Rows go through the writer, so they are ordered and batched with everything else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.tables import AUDIT, CALL, as_utc, utcnow
from service.writing.batch import Batch, Keys

# Keys a detail may carry; their values must be ids, codes or numbers.
DETAIL_KEYS = frozenset({"status", "destination", "from", "version", "policy_id", "method",
                         "path", "roles", "key_id", "client", "username", "role", "reason_code",
                         "why", "count", "job_id", "disposition", "sessions_ended",
                         "follow_up_id", "format",
                         # the roster (api/units.py): ids, words and numbers, never members
                         "unit_id", "program", "on_duty", "capabilities", "retention_hours",
                         "sources",
                         # care (api/care.py): providers and handoffs, ids and words only
                         "provider_id", "services", "imported", "created", "updated",
                         "replayed",  # a field action sent again under its key
                         # crisis plans and cautions a look at a call showed (ids only)
                         "plan_ids", "caution_ids",
                         # a call listing's filter (GET /v1/calls)
                         "to", "incident_id", "source", "category", "district", "cursor",
                         # an agency (issue 17), and whether a policy came with it
                         "agency", "policy"})
_MAX_VALUE = 120


def safe_detail(detail: dict[str, Any] | None) -> str | None:
    if not detail:
        return None
    kept: dict[str, Any] = {}
    for key, value in detail.items():
        if key not in DETAIL_KEYS:
            raise ValueError(f"audit detail {key!r} is not an id or code")
        if isinstance(value, str):
            value = value[:_MAX_VALUE]
        elif isinstance(value, list):
            value = [str(v)[:_MAX_VALUE] for v in value][:20]
        elif not isinstance(value, int | float | bool) and value is not None:
            value = str(value)[:_MAX_VALUE]
        kept[key] = value
    return json.dumps(kept, separators=(",", ":"), sort_keys=True)


class AuditRecord(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str | None
    address: str | None
    action: str
    call_id: str | None
    target: str | None
    outcome: str
    detail: dict[str, Any] | None
    agency_id: str | None = None  # the actor's agency (`*`: the region's)


def entry(*, actor: str, role: str | None, address: str | None, action: str,
          outcome: str = "ok", call_id: str | None = None, target: str | None = None,
          detail: dict[str, Any] | None = None, agency: str | None = None
          ) -> dict[str, Any]:
    return {"at": utcnow(), "actor": actor[:120], "role": role, "address": address,
            "action": action, "call_id": call_id, "target": target and target[:200],
            "outcome": outcome, "detail": safe_detail(detail), "agency_id": agency}


@dataclass
class RecordAudit:
    """A writer command: append audit rows."""

    rows: list[dict[str, Any]]

    def keys(self) -> Keys:
        return Keys()

    async def apply(self, ctx: Batch) -> None:
        for row in self.rows:
            ctx.add_audit(row)


def _record(row: Any) -> AuditRecord:
    return AuditRecord(id=row.id, at=as_utc(row.at), actor=row.actor, role=row.role,
                       address=row.address, action=row.action, call_id=row.call_id,
                       target=row.target, outcome=row.outcome,
                       detail=json.loads(row.detail) if row.detail else None,
                       agency_id=row.agency_id)


def _query(*, actor: str | None, call_id: str | None, action: str | None,
           since: datetime | None, until: datetime | None, after_id: int | None,
           agency: str | None = None) -> Any:
    a = AUDIT.c
    q = select(AUDIT)
    if agency:
        # An agency's entries: its people's and keys', and any about one of its calls
        # (or a call it helps with by mutual aid), whoever made them.
        # A look-up of each entry's call by its key, not a list of every call the agency
        # ever had.
        theirs = select(CALL.c.id).where(CALL.c.id == a.call_id, or_(
            CALL.c.agency_id == agency, CALL.c.aid_agency_id == agency)).exists()
        q = q.where(or_(a.agency_id == agency, theirs))
    if actor:
        q = q.where(a.actor == actor)
    if call_id:
        q = q.where(a.call_id == call_id)
    if action:
        q = q.where(a.action == action)
    if since:
        q = q.where(a.at >= since)
    if until:
        q = q.where(a.at < until)
    if after_id:
        q = q.where(a.id > after_id)
    return q.order_by(a.id)


async def search(engine: AsyncEngine, *, actor: str | None = None, call_id: str | None = None,
                 action: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, after_id: int | None = None,
                 limit: int = 500, agency: str | None = None) -> list[AuditRecord]:
    """Entries oldest first; `agency`: that agency's only (None: the region's, all)."""
    q = _query(actor=actor, call_id=call_id, action=action, since=since, until=until,
               after_id=after_id, agency=agency).limit(limit)
    async with engine.connect() as conn:
        return [_record(r) for r in (await conn.execute(q)).all()]


async def export_lines(engine: AsyncEngine, **filters: Any) -> AsyncIterator[str]:
    """Every matching row as a JSON line, read in pages so a year of log streams."""
    after = 0
    while True:
        page = await search(engine, **filters, after_id=after, limit=2000)
        for rec in page:
            yield rec.model_dump_json() + "\n"
        if len(page) < 2000:
            return
        after = page[-1].id
