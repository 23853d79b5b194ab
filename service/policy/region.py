"""The region: its agencies (table `agency`) and each one's policy in force (issue 17).

One answering point dispatches for several agencies. Each has a record (id, name, time
zone, districts and/or a GeoJSON boundary) and its own policy versions, published and
rolled back on their own (service/policy/store.py). `Region` holds, per agency, the
policy in force (a PolicyHolder) and the index that says whose a new call is
(routing/jurisdiction.py); every instance re-reads both on the policy watch's beat, so a
publish or a new agency made on one instance reaches the others.

The `default` agency is the one a database made before agencies became (migration 0029);
a file given with `--policy` is its policy, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from routing.jurisdiction import AgencyRecord, Jurisdictions, RegionView
from rules.evaluate import CompiledPolicy
from rules.load import load_policy_text
from service.errors import Conflict, Invalid, NotFound
from service.policy import store as policy_store
from service.policy.holder import PolicyHolder
from service.store.stopping import StepGuard, Stopping
from service.store.tables import AGENCY, DEFAULT_AGENCY, utcnow

log = logging.getLogger("liaison.policy")


def _record(row: Any) -> AgencyRecord:
    return AgencyRecord(id=row.id, name=row.name, timezone=row.timezone,
                        districts=json.loads(row.districts or "[]"),
                        boundary=json.loads(row.boundary) if row.boundary else None)


async def list_agencies(engine: AsyncEngine) -> list[AgencyRecord]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(AGENCY).order_by(AGENCY.c.id))).all()
    return [_record(r) for r in rows]


def _values(agency: AgencyRecord) -> dict[str, Any]:
    return {"name": agency.name, "timezone": agency.timezone,
            "districts": json.dumps(agency.districts),
            "boundary": json.dumps(agency.boundary) if agency.boundary else None,
            "updated_at": utcnow()}


async def add_agency(engine: AsyncEngine, agency: AgencyRecord,
                     document: str | None = None, *, author: str = "system") -> AgencyRecord:
    """A new agency; with `document` (a policy whose time zone is the agency's), that
    policy as its first published version. Without one its calls go to police, saying
    it has no policy in force, until one is published."""
    if document is not None:
        policy = load_policy_text(document, "the agency's policy")  # PolicyInvalid → 422
        if policy.program.timezone != agency.timezone:
            raise Invalid("program.timezone", f"agency {agency.id!r} is in "
                          f"{agency.timezone}; this policy says {policy.program.timezone}")
    now = utcnow()
    async with engine.begin() as conn:
        if (await conn.execute(select(AGENCY.c.id).where(AGENCY.c.id == agency.id))).first():
            raise Conflict(f"agency {agency.id!r} exists")
        await conn.execute(insert(AGENCY).values(id=agency.id, created_at=now,
                                                 **_values(agency)))
    if document is not None:
        row = await policy_store.create_draft(engine, document, author=author,
                                              comment=f"agency {agency.id}'s first policy",
                                              agency=agency.id)
        await policy_store.publish(engine, row.id, from_status=(policy_store.DRAFT,))
    return agency


async def update_agency(engine: AsyncEngine, agency: AgencyRecord) -> AgencyRecord:
    """Change an agency's name, districts or boundary. Its time zone changes only with
    its policy's (a new version saying the new zone), so the two never disagree."""
    async with engine.begin() as conn:
        row = (await conn.execute(select(AGENCY).where(AGENCY.c.id == agency.id))).first()
        if row is None:
            raise NotFound(f"no agency {agency.id!r}")
        if row.timezone != agency.timezone:
            raise Conflict(f"agency {agency.id!r} is in {row.timezone}: a time zone changes "
                           "with the agency's policy, not here")
        await conn.execute(update(AGENCY).where(AGENCY.c.id == agency.id)
                           .values(**_values(agency)))
    return agency


@dataclass
class Region:
    """Every agency's record and policy in force. `default` is the `default` agency's
    holder (the file or shipped policy at start-up), always there."""

    default: PolicyHolder
    holders: dict[str, PolicyHolder] = field(default_factory=dict)
    jurisdictions: Jurisdictions = field(default_factory=lambda: Jurisdictions([]))

    def __post_init__(self) -> None:
        self.holders.setdefault(DEFAULT_AGENCY, self.default)

    def policy_of(self, agency: str | None) -> CompiledPolicy | None:
        """The agency's policy in force, or None (no such agency, or no policy yet)."""
        holder = self.holders.get(agency) if agency is not None else None
        return holder.compiled if holder is not None else None

    def policies(self) -> Mapping[str, CompiledPolicy]:
        """Each agency's policy in force, by agency id."""
        return {a: h.compiled for a, h in self.holders.items()
                if a in self.jurisdictions.agencies or a == DEFAULT_AGENCY}

    def view(self) -> RegionView:
        """What a writer command needs: whose a call is, each agency's policy."""
        return RegionView(self.jurisdictions, self.policies())

    def agency(self, agency_id: str | None) -> AgencyRecord | None:
        return self.jurisdictions.agencies.get(agency_id) if agency_id else None

    async def sync(self, engine: AsyncEngine) -> bool:
        """Re-read the agencies and put each one's newly published version in force
        (publishing any scheduled version that is due first). True when anything
        changed."""
        agencies = await list_agencies(engine)
        changed = [a.model_dump() for a in agencies] != [
            a.model_dump() for a in self.jurisdictions.agencies.values()]
        if changed:
            self.jurisdictions = Jurisdictions(agencies)
        await policy_store.publish_due(engine)
        for agency_id, seen in (await policy_store.all_published(engine)).items():
            holder = self.holders.get(agency_id)
            if holder is None or seen != holder.seen:
                row = await policy_store.row_by_id(engine, seen[0])
                changed = self.adopt(agency_id, row) or changed
        return changed

    def adopt(self, agency: str, row: Any) -> bool:
        """Put a published version of the agency's in force (an agency seen for the first
        time gets its holder); False when the row does not load."""
        holder = self.holders.get(agency)
        if holder is not None:
            return holder.adopt(row)
        made = PolicyHolder.stored(agency, row)
        if made is not None:
            self.holders[agency] = made
        return made is not None

    async def watch(self, engine: AsyncEngine, interval: float, guard: StepGuard) -> None:
        """Poll the database: how every instance learns of a publish or an agency made on
        another one, and how a scheduled publish takes effect."""
        while True:
            await asyncio.sleep(interval)
            try:
                async with guard.step():
                    await self.sync(engine)
            except Stopping:
                return
            except Exception as exc:  # noqa: BLE001 - the policies in force stay
                log.warning("could not check for newly published policies: %s", exc)
