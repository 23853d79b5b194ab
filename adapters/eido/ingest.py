"""One EIDO into the spine: parse it, tell `created` from `updated`, submit it to the writer.

Shared by `POST /v1/cad/eido` (api/eido.py) and the NENA-STA-024 subscriber
(adapters/eido/subscriber.py), so a document is read the same way whichever way it came.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eido.mapping import MappingCache
from adapters.eido.parse import EidoRejected, Issue, ParsedEido, parse_eido
from routing.jurisdiction import RegionView, UnknownAgency
from rules.evaluate import CompiledPolicy
from service.lifecycle.ingest import IngestEvent, RecordReject
from service.store.db import unavailable_on_outage
from service.store.dbwait import Patience, answer_within
from service.store.tables import ANY_AGENCY, CALL
from service.writing.writer import Writer

SOURCE = "eido"
_mappings = MappingCache()


async def incident_known(engine: AsyncEngine, incident_id: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.execute(select(CALL.c.id).where(
            CALL.c.source == SOURCE, CALL.c.incident_id == incident_id).limit(1))
        return found.first() is not None


async def prepare(document: Any, *, engine: AsyncEngine, policy: CompiledPolicy,
                  mapping_path: str, strict: bool, deadline: Patience | None = None,
                  region: RegionView | None = None, key_agency: str = ANY_AGENCY
                  ) -> tuple[IngestEvent, ParsedEido]:
    """The writer command for one EIDO, and what was read from it.

    In a region of several agencies (`region`), the call is the agency's whose id is the
    $id of one of the EIDO's agency components (the first such), else the sender's key's,
    district's or boundary's (routing/jurisdiction.py); it is then decided by that
    agency's policy.

    Raises MappingInvalid when the mapping file is broken (nothing can be read until it is
    fixed), EidoRejected when the document is refused, every error named, and Unavailable
    when the database is away or silent past `deadline` (service/store/dbwait.py).
    """
    mapping = _mappings.get(mapping_path)
    try:
        parsed = parse_eido(document, mapping=mapping, strict=strict,
                            default_tz=ZoneInfo(policy.policy.program.timezone))
        # Two first EIDOs of one incident racing here both say "created"; the spine folds
        # the second into the call the first made, so the answer is the same.
        with unavailable_on_outage("looking up the EIDO's incident"):
            known = await answer_within(engine, deadline,
                                        incident_known(engine, parsed.incident_id),
                                        "looking up the EIDO's incident")
        named = next((a for a in parsed.agency_ids
                      if region is not None and a in region.jurisdictions.agencies), None)
        event = parsed.event(known=known, agency=named if key_agency in (ANY_AGENCY, named)
                             else None)
    except RecursionError:
        raise EidoRejected([Issue("(body)", "nested too deeply")], []) from None
    claim = None
    if region is not None:
        location = event.location
        try:
            claim = region.jurisdictions.claim(
                key_agency=key_agency, named=event.agency,
                district=location.district if location else None,
                lat=location.lat if location else None, lon=location.lon if location else None)
        except UnknownAgency as exc:
            raise EidoRejected([Issue("agencyComponent", str(exc))], parsed.warnings) from None
        policy = region.policies.get(claim.agency or "", policy)
    return IngestEvent(event=event, policy=policy, units_total=policy.policy.program.units,
                       source=SOURCE, content_addressed=True, claim=claim,
                       region=region), parsed


async def ingest(document: Any, *, writer: Writer, engine: AsyncEngine,
                 policy: CompiledPolicy, mapping_path: str, strict: bool,
                 region: RegionView | None = None, key_agency: str = ANY_AGENCY
                 ) -> tuple[dict[str, Any], ParsedEido]:
    """Store one EIDO and return the spine's answer once it is committed.

    The event id is the document's content hash, so the very same document again is a
    retry: the first answer comes back and nothing is stored twice.
    """
    command, parsed = await prepare(document, engine=engine, policy=policy,
                                    mapping_path=mapping_path, strict=strict,
                                    deadline=writer.patience, region=region,
                                    key_agency=key_agency)
    return await writer.submit(command), parsed


async def keep_reject(writer: Writer, *, path: str, errors: list[dict[str, Any]],
                      body: str, sender: str, keep: int | None) -> int | None:
    """Keep a refused document for an operator (`GET /v1/cad/rejects?source=eido`), among
    the sender's newest `keep` (None when none is kept). A NUL is kept as U+FFFD:
    PostgreSQL text cannot hold one."""
    body = body.replace("\x00", "\ufffd")
    reject_id: int | None = await writer.submit(RecordReject(
        source=SOURCE, path=path[:200], errors=errors, body=body, sender=sender, keep=keep))
    return reject_id
