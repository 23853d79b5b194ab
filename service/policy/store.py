"""Routing policies stored as versions (table `policy_version`).

Each agency (issue 17) has its own versions: a version is `draft`, `published` (at most
one row per agency: its policy in force) or `superseded`, and publishing, scheduling and
rolling back touch only that agency's rows.
Its label is the document's own `policy.version`, unique per policy id, so the
`policy_version` every decision carries (`<policy id>@<version>`) names the row.

Publishing supersedes the published row; rolling back re-marks an earlier (superseded)
row published — no copy is made, so decisions after a rollback carry the old label again.
A scheduled publish (`publish_at`) is done by whichever instance sees it due first, and
only over the version that was in force when it was scheduled (`scheduled_over`): if
another version was published meanwhile (a fix, a rollback), the schedule is dropped with
a `schedule_note` saying why, rather than silently undoing that change. A supervisor can
also cancel a schedule (`unschedule`).
Every write is a short transaction of its own (policy writes are rare; they do not go
through the call writer). On PostgreSQL the writes take the same advisory lock as the
writer, so two instances never publish at once.
"""

from __future__ import annotations

import difflib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rules.load import load_policy_text
from rules.models import Policy
from service.errors import Conflict, Invalid, NotFound
from service.store.db import WRITE_LOCK_KEY
from service.store.tables import AGENCY, CALL, DEFAULT_AGENCY, POLICY_VERSION, utcnow

T = POLICY_VERSION

log = logging.getLogger("liaison.policy")
DRAFT, PUBLISHED, SUPERSEDED = "draft", "published", "superseded"


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=old_name, tofile=new_name))


def label(row: Any) -> str:
    return f"{row.policy_id}@{row.version}"


def summary(row: Any) -> dict[str, Any]:
    return {"id": row.id, "agency": row.agency_id, "policy_id": row.policy_id,
            "version": row.version,
            "label": label(row), "status": row.status, "author": row.author,
            "comment": row.comment,
            "created_at": row.created_at.isoformat(),
            "published_at": row.published_at.isoformat() if row.published_at else None,
            "publish_at": row.publish_at.isoformat() if row.publish_at else None,
            "schedule_note": row.schedule_note,
            "parent_id": row.parent_id}


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})


async def list_versions(engine: AsyncEngine, agency: str | None = None) -> list[Any]:
    """The versions of one agency (None: of every agency), oldest first."""
    query = select(T).order_by(T.c.id)
    if agency is not None:
        query = query.where(T.c.agency_id == agency)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def published(engine: AsyncEngine, agency: str = DEFAULT_AGENCY) -> Any | None:
    """The agency's version in force, or None."""
    async with engine.connect() as conn:
        return (await conn.execute(select(T).where(T.c.status == PUBLISHED,
                                                   T.c.agency_id == agency)
                                   .order_by(T.c.id.desc()).limit(1))).first()


async def all_published(engine: AsyncEngine) -> dict[str, tuple[int, datetime | None]]:
    """Each agency's version in force, by agency id, as (row id, published at): what
    tells a poll whether it changed (one query; the documents are read only for those
    that did, with `row_by_id`)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(T.c.agency_id, T.c.id, T.c.published_at)
                                   .where(T.c.status == PUBLISHED).order_by(T.c.id))).all()
    return {agency: (row_id, published_at) for agency, row_id, published_at in rows}


async def get_version(engine: AsyncEngine, ref: str, agency: str | None = None) -> Any:
    """A version by its label (`3`) or its full label (`my-city@3`); with `agency`,
    only that agency's."""
    policy_id, _, version = ref.rpartition("@")
    query = select(T).where(T.c.version == version)
    if policy_id:
        query = query.where(T.c.policy_id == policy_id)
    if agency is not None:
        query = query.where(T.c.agency_id == agency)
    async with engine.connect() as conn:
        rows = list((await conn.execute(query)).all())
    if not rows:
        raise NotFound(f"no policy version {ref!r}")
    if len(rows) > 1:
        raise Conflict(f"version {ref!r} exists for several policy ids; "
                       "name it as <policy id>@<version>",
                       candidates=[label(r) for r in rows])
    return rows[0]


def parse(document: str) -> Policy:
    return load_policy_text(document, "document")


async def bootstrap(engine: AsyncEngine, document: str, policy: Policy,
                    agency: str = DEFAULT_AGENCY) -> Any:
    """On first start (no published version of the agency), store `document` as its
    first published version (author "system"); return the published row either way.
    An agency with no version yet takes the document's time zone as its own."""
    row = await published(engine, agency)
    if row is not None:
        return row
    try:
        async with engine.begin() as conn:
            await _lock(conn)
            if (await conn.execute(select(T.c.id).where(T.c.status == PUBLISHED,
                                                        T.c.agency_id == agency))).first():
                pass  # another instance was first
            else:
                now = utcnow()
                await conn.execute(T.insert().values(
                    agency_id=agency, policy_id=policy.policy.id,
                    version=policy.policy.version,
                    status=PUBLISHED, document=document, author="system",
                    comment="the policy in force when versions were first stored",
                    created_at=now, published_at=now, diff_from_parent=""))
                if not (await conn.execute(select(T.c.id).where(
                        T.c.agency_id == agency, T.c.status != PUBLISHED))).first():
                    await conn.execute(update(AGENCY).where(AGENCY.c.id == agency).values(
                        timezone=policy.program.timezone, updated_at=now))
    except IntegrityError:
        pass  # a concurrent start stored it
    row = await published(engine, agency)
    assert row is not None
    return row


async def agency_zone(engine: AsyncEngine, agency: str) -> str:
    """The agency's time zone; NotFound when there is no such agency."""
    async with engine.connect() as conn:
        zone = (await conn.execute(select(AGENCY.c.timezone)
                                   .where(AGENCY.c.id == agency))).scalar()
    if zone is None:
        raise NotFound(f"no agency {agency!r}")
    return str(zone)


async def _check_mutual_aid(engine: AsyncEngine, policy: Policy, agency: str) -> None:
    """Mutual aid names other agencies that exist (their programs are judged by the policy
    they have in force when a call needs them, as that may change)."""
    if not policy.mutual_aid:
        return
    async with engine.connect() as conn:
        known = set((await conn.execute(select(AGENCY.c.id))).scalars())
    for i, aid in enumerate(policy.mutual_aid):
        if aid.agency == agency:
            raise Invalid(f"mutual_aid[{i}].agency", "is this policy's own agency: mutual "
                          "aid is another agency's program")
        if aid.agency not in known:
            raise Invalid(f"mutual_aid[{i}].agency", f"no agency {aid.agency!r}")


async def create_draft(engine: AsyncEngine, document: str, *, author: str,
                       comment: str, agency: str = DEFAULT_AGENCY) -> Any:
    """Store a valid document as a draft of the agency's; its parent is the agency's
    published version. Its time zone must be the agency's (its hours are the agency's)."""
    policy = parse(document)  # PolicyInvalid → 422
    zone = await agency_zone(engine, agency)
    if policy.program.timezone != zone:
        raise Invalid("program.timezone", f"agency {agency!r} is in {zone}; this policy "
                      f"says {policy.program.timezone}: a policy's hours are its agency's")
    await _check_mutual_aid(engine, policy, agency)
    parent = await published(engine, agency)
    diff = unified_diff(parent.document if parent else "", document,
                        label(parent) if parent else "(none)",
                        policy.version_label)
    try:
        async with engine.begin() as conn:
            await _lock(conn)
            result = await conn.execute(T.insert().values(
                agency_id=agency,
                policy_id=policy.policy.id, version=policy.policy.version, status=DRAFT,
                document=document, author=author, comment=comment, created_at=utcnow(),
                parent_id=parent.id if parent else None, diff_from_parent=diff))
            new_id = result.inserted_primary_key[0]  # type: ignore[index]
    except IntegrityError:
        raise Conflict(f"version {policy.version_label} already exists; give the "
                       "document a new policy.version (a policy id and version name one "
                       "version in the whole region: name an agency's policy after it)"
                       ) from None
    async with engine.connect() as conn:
        return (await conn.execute(select(T).where(T.c.id == new_id))).one()


async def publish(engine: AsyncEngine, row_id: int, *, from_status: tuple[str, ...]) -> Any:
    """Make the row the published one, superseding the one in force, in one transaction."""
    now = utcnow()
    async with engine.begin() as conn:
        await _lock(conn)
        # Write first: SQLite takes its write lock here, waiting (busy_timeout) if needed.
        done = await conn.execute(
            update(T).where(T.c.id == row_id, T.c.status.in_(from_status))
            .values(status=PUBLISHED, published_at=now, publish_at=None, scheduled_over=None,
                    schedule_note=None))
        if done.rowcount != 1:
            raise Conflict("the version changed meanwhile; it cannot be published now")
        await _supersede_others(conn, row_id)
    async with engine.connect() as conn:
        return (await conn.execute(select(T).where(T.c.id == row_id))).one()


async def schedule(engine: AsyncEngine, row_id: int, at: datetime) -> Any:
    """Publish the draft at `at`, over the version in force now (and only over it)."""
    in_force = POLICY_VERSION.alias("in_force")
    async with engine.begin() as conn:
        await _lock(conn)
        done = await conn.execute(update(T).where(T.c.id == row_id, T.c.status == DRAFT)
                                  .values(publish_at=at, schedule_note=None, scheduled_over=(
                                      select(in_force.c.id)
                                      .where(in_force.c.status == PUBLISHED,
                                             in_force.c.agency_id == T.c.agency_id)
                                      .scalar_subquery())))
        if done.rowcount != 1:
            raise Conflict("only a draft can be scheduled for publishing")
    return await row_by_id(engine, row_id)


async def unschedule(engine: AsyncEngine, row_id: int) -> Any:
    """Cancel a draft's scheduled publish; it stays a draft."""
    async with engine.begin() as conn:
        await _lock(conn)
        done = await conn.execute(
            update(T).where(T.c.id == row_id, T.c.status == DRAFT, T.c.publish_at.is_not(None))
            .values(publish_at=None, scheduled_over=None))
        if done.rowcount != 1:
            raise Conflict("the version has no scheduled publish to cancel")
    return await row_by_id(engine, row_id)


async def publish_due(engine: AsyncEngine) -> list[Any]:
    """Publish every scheduled draft whose time has come (the latest due wins), each only
    over the version it was scheduled over. The rows published."""
    async with engine.connect() as conn:
        due = list((await conn.execute(
            select(T.c.id).where(T.c.status == DRAFT, T.c.publish_at.is_not(None),
                                 T.c.publish_at <= utcnow())
            .order_by(T.c.publish_at, T.c.id))).scalars())
    published_rows = []
    for row_id in due:
        try:
            published_rows.append(await _publish_scheduled(engine, row_id))
        except Conflict:
            pass  # another instance published it first, or dropped its schedule
    return [r for r in published_rows if r is not None]


async def _publish_scheduled(engine: AsyncEngine, row_id: int) -> Any | None:
    """Publish a due draft if the version in force is the one it was scheduled over;
    otherwise drop the schedule and say why. None when not published."""
    async with engine.begin() as conn:
        await _lock(conn)
        # Write first: SQLite takes its write lock here, so what we read next is current.
        claimed = await conn.execute(
            update(T).where(T.c.id == row_id, T.c.status == DRAFT, T.c.publish_at.is_not(None))
            .values(publish_at=T.c.publish_at))
        if claimed.rowcount != 1:
            raise Conflict("no longer scheduled")
        row = await _row_in(conn, row_id)
        in_force = (await conn.execute(select(T).where(T.c.status == PUBLISHED,
                                                      T.c.agency_id == row.agency_id))
                    ).first()
        if row.scheduled_over is None or (in_force is not None
                                          and in_force.id == row.scheduled_over):
            await conn.execute(update(T).where(T.c.id == row_id).values(
                status=PUBLISHED, published_at=utcnow(), publish_at=None,
                scheduled_over=None))
            await _supersede_others(conn, row_id)
            return await _row_in(conn, row_id)
        over = (await conn.execute(select(T).where(T.c.id == row.scheduled_over))).first()
        note = (f"not published at {row.publish_at.isoformat()}: "
                f"{label(in_force) if in_force else 'another version'} was published after "
                f"this was scheduled over {label(over) if over else 'an earlier version'}; "
                "review it against the version in force and schedule it again")
        await conn.execute(update(T).where(T.c.id == row_id).values(
            publish_at=None, scheduled_over=None, schedule_note=note))
    log.warning("scheduled publish of %s dropped: %s", label(row), note)
    return None


async def _supersede_others(conn: AsyncConnection, row_id: int) -> None:
    """The published row's agency's other published version is superseded; no other
    agency's is touched."""
    agency = select(T.c.agency_id).where(T.c.id == row_id).scalar_subquery()
    await conn.execute(update(T).where(T.c.status == PUBLISHED, T.c.id != row_id,
                                       T.c.agency_id == agency).values(status=SUPERSEDED))


async def row_by_id(engine: AsyncEngine, row_id: int) -> Any:
    """A stored version, whole (versions are never deleted)."""
    async with engine.connect() as conn:
        return await _row_in(conn, row_id)


async def _row_in(conn: AsyncConnection, row_id: int) -> Any:
    return (await conn.execute(select(T).where(T.c.id == row_id))).one()


async def history_codes(engine: AsyncEngine) -> dict[str, int]:
    """How often each nature code occurs among the stored calls (for gap warnings)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(CALL.c.nature_code, func.count())
                                   .group_by(CALL.c.nature_code))).all()
    return {code: int(n) for code, n in rows if code}




async def nature_codes(engine: AsyncEngine, since: datetime) -> list[dict[str, Any]]:
    """The nature codes of the live calls opened since `since`, most calls first, each with
    its most common nature text: what the policy editor offers to pick from.

    One query over the `opened_at` index, grouped by (code, text) in the database; the
    texts of a code are few, so choosing each code's commonest is done here."""
    calls = func.count().label("calls")
    async with engine.connect() as conn:
        rows = (await conn.execute(
            select(CALL.c.nature_code, CALL.c.nature_text, calls)
            .where(CALL.c.opened_at >= since, CALL.c.purpose == "live",
                   CALL.c.nature_code != "")
            .group_by(CALL.c.nature_code, CALL.c.nature_text))).all()
    codes: dict[str, dict[str, Any]] = {}
    for code, nature_text, n in sorted(rows, key=lambda r: (-int(r.calls), r.nature_text or "")):
        entry = codes.setdefault(code, {"code": code, "text": nature_text or "", "calls": 0})
        entry["calls"] += int(n)
    return sorted(codes.values(), key=lambda c: (-c["calls"], c["code"]))
