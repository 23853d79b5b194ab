"""Database tables. Times are stored in UTC; JSON documents as text so SQLite and
PostgreSQL store exactly the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel

from service.errors import NotFound

# SQLite only auto-assigns an INTEGER PRIMARY KEY; PostgreSQL wants a 64-bit identity.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both databases.

    SQLite's driver would otherwise drop the offset and keep the wall-clock time."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give an offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


def _not_null(column: str) -> dict[str, Any]:
    """Index only the rows where `column` has a value (both databases)."""
    where = text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


def _ts(**kw: object) -> Column:  # type: ignore[type-arg]
    return Column(UTCDateTime(), **kw)  # type: ignore[arg-type]


def utcnow() -> datetime:
    return datetime.now(UTC)


# How far ahead of our clock a time a person's device or a feed sends may be (a device's
# clock runs a little ahead): a status change's, a duty change's, a position's `at`.
AHEAD_TOLERANCE = timedelta(seconds=120)


def not_ahead(at: datetime, refused: str) -> datetime:
    """`at`, unless it is more than AHEAD_TOLERANCE ahead of now: then ValueError, saying
    `refused` (e.g. "a position cannot be from the future") and the tolerance."""
    if at > utcnow() + AHEAD_TOLERANCE:
        raise ValueError(f"{refused} (more than {int(AHEAD_TOLERANCE.total_seconds())} s "
                         "ahead of now)")
    return at


async def row_by_id(conn: AsyncConnection, table: Table, row_id: str,
                    missing: str) -> dict[str, Any]:
    """The row of `table` whose `id` is `row_id`; NotFound saying `missing` when none."""
    row = (await conn.execute(select(table).where(table.c.id == row_id))).mappings().first()
    if row is None:
        raise NotFound(missing)
    return dict(row)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_utc(value: datetime | None) -> str | None:
    """A stored time as RFC 3339 in UTC, or None."""
    return as_utc(value).isoformat() if value else None


# The agency a database made before agencies became (migration 0029), and the word for
# "every agency" (a regional person, a key tied to none).
DEFAULT_AGENCY = "default"
ANY_AGENCY = "*"


class Agency(SQLModel, table=True):
    """A jurisdiction the answering point dispatches for (issue 17): its own policy
    versions, time zone, teams and calls. Its boundary is a list of CAD districts and/or
    a GeoJSON (Multi)Polygon; a call in it is its call (service/policy/region.py)."""

    __tablename__ = "agency"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64)
    districts: str = Field(default="[]", sa_type=Text)  # JSON list of district names
    boundary: str | None = Field(default=None, sa_type=Text)  # GeoJSON geometry
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


AGENCY: Table = Agency.__table__  # type: ignore[attr-defined]


class Call(SQLModel, table=True):
    """A call's folded current state and its current decision."""

    __tablename__ = "call"
    __table_args__ = (
        UniqueConstraint("source", "incident_id", name="uq_call_source_incident"),
        Index("ix_call_open_units", "holds_unit", "closed_at"),
        # The program figures select calls by when they were opened (migration 0006).
        Index("ix_call_opened_at", "opened_at"),
        Index("ix_call_district_opened_at", "district", "opened_at"),
        # Open and recently changed calls, for a board opening (migration 0009).
        Index("ix_call_closed_at", "closed_at"),
        Index("ix_call_updated_at", "updated_at"),
        # GET /v1/calls?incident_id=: the incident number alone (migration 0014).
        Index("ix_call_incident_id", "incident_id"),
        # Repeat contact: a key's calls counted and its latest found from the index alone,
        # ties on opened_at broken by id (migrations 0007, 0008).
        Index("ix_call_person_key_opened_at_id", "person_key", "opened_at", "id",
              **_not_null("person_key")),
        Index("ix_call_address_key_opened_at_id", "address_key", "opened_at", "id",
              **_not_null("address_key")),
        # Mostly empty columns: only the rows with a value are indexed (migration 0007).
        Index("ix_call_referred_by", "referred_by", **_not_null("referred_by")),
        Index("ix_call_follow_up_of", "follow_up_of", **_not_null("follow_up_of")),
        # The calls waiting for a program, oldest first (migration 0017).
        Index("ix_call_wait_program_since", "wait_program", "wait_since",
              **_not_null("wait_program")),
        # One agency's calls by when they were opened (migration 0029).
        Index("ix_call_agency_opened_at", "agency_id", "opened_at"),
        # The few calls another agency helps with (migration 0030).
        Index("ix_call_aid_agency_id", "aid_agency_id", **_not_null("aid_agency_id")),
    )

    id: str = Field(primary_key=True, max_length=40)
    source: str = Field(max_length=40)
    incident_id: str = Field(max_length=120)
    # The agency whose call it is (migration 0029); None: no agency claimed it.
    agency_id: str | None = Field(default=DEFAULT_AGENCY, max_length=40,
                                  sa_column_kwargs={"server_default": DEFAULT_AGENCY})
    # The agency whose program helps with it, by mutual aid (migration 0030; its
    # decision's `aid`): its people see the call too, and its units count it as held.
    aid_agency_id: str | None = Field(default=None, max_length=40)
    channel: str = Field(max_length=32)
    nature_code: str = Field(max_length=64)
    nature_text: str = Field(sa_type=Text)
    narrative: str | None = Field(default=None, sa_type=Text)
    priority: int | None = None
    address: str | None = Field(default=None, sa_type=Text)
    district: str | None = Field(default=None, max_length=120)
    lat: float | None = None
    lon: float | None = None
    flags: str = Field(default="[]", sa_type=Text)
    opened_at: datetime = Field(sa_column=_ts(nullable=False))
    last_event_at: datetime = Field(sa_column=_ts(nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    team_status: str | None = Field(default=None, max_length=32)
    unit: str | None = Field(default=None, max_length=64)
    disposition: str | None = Field(default=None, max_length=64)
    destination: str = Field(max_length=16, index=True)
    mode: str = Field(max_length=40)
    category: str | None = Field(default=None, max_length=64)
    eligible: bool = False
    not_served_reason: str | None = Field(default=None, max_length=32)
    # True while the call occupies a team field unit (team or joint, not phone-only).
    holds_unit: bool = False
    policy_version: str = Field(max_length=120)
    decision: str = Field(sa_type=Text)
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
    # -- who the call is about, and where it came from (issues 5-7) --------------------
    # live | test | training: test and training calls are left out of every figure.
    purpose: str = Field(default="live", max_length=16)
    # The CAD's person record, as JSON (name, phone, age): personal details, shown to
    # call_team and supervisor only. `person_key` is a keyed hash of the CAD's person id:
    # repeat contact and unique clients without the id itself.
    person: str | None = Field(default=None, sa_type=Text)
    person_key: str | None = Field(default=None, max_length=64)
    age_group: str | None = Field(default=None, max_length=16)  # youth | adult
    # The address folded to one spelling (case, spaces, punctuation) for repeat contact.
    address_key: str | None = Field(default=None, max_length=300)
    referred_by: str | None = Field(default=None, max_length=120)
    referred_unit: str | None = Field(default=None, max_length=64)
    referral: str | None = Field(default=None, sa_type=Text)  # consent, contact: JSON
    follow_up_of: str | None = Field(default=None, max_length=40)
    # -- when things happened (Liaison's clock), for timeliness figures ----------------
    received_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    first_decided_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    initial_destination: str | None = Field(default=None, max_length=16)
    assigned_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    en_route_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    on_scene_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    backup_requested_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    backup_reason: str | None = Field(default=None, sa_type=Text)
    cleared_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    outcome: str | None = Field(default=None, sa_type=Text)
    safety_incident: bool = False
    overridden_by: str | None = Field(default=None, max_length=120)
    override_reason: str | None = Field(default=None, sa_type=Text)
    overridden_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # Safety check-ins of a unit on scene: when the next is due, how many were missed.
    checkin_due_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    checkins_missed: int = 0
    # -- waiting for a program (issue 13; service/lifecycle/waiting.py) ----------------
    # The program an open call waits for (queued or deferred), from when (queued: since;
    # deferred: its shift's start), and when it falls back (null: deferred, never).
    wait_program: str | None = Field(default=None, max_length=120)
    wait_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    wait_deadline: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # -- what the program figures read of a call's waits (migration 0019) -------------
    # The program its decision names (took it, kept it, or was tried first); the kind of
    # its first wait (queued | deferred), from when (queued: since; deferred: the call's
    # time) to the decision that took it or let it fall back, and how (served |
    # fell_back; null while waiting or if it never waited).
    program_id: str | None = Field(default=None, max_length=120)
    wait_kind: str | None = Field(default=None, max_length=16)
    waited_from: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    wait_ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    wait_outcome: str | None = Field(default=None, max_length=16)
    # -- "was this the right responder?" (issue 15; migration 0025) --------------------
    # yes | no | unsure, optional: the team's at clearing, a dispatcher's at an override
    # (the latest of each), with a short note. Scorecard counts only; never in a call view.
    team_right_responder: str | None = Field(default=None, max_length=8)
    team_right_responder_note: str | None = Field(default=None, sa_type=Text)
    override_right_responder: str | None = Field(default=None, max_length=8)
    override_right_responder_note: str | None = Field(default=None, sa_type=Text)


class CadEvent(SQLModel, table=True):
    """Every accepted CAD event, as received; `response` is replayed for retries."""

    __tablename__ = "cad_event"
    # An event id is its sender's idempotency key, not a global one: two CADs may use the
    # same id (migration 0013).
    __table_args__ = (Index("uq_cad_event_source_event_id", "source", "event_id",
                            unique=True),)

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    event_id: str = Field(max_length=200)
    call_id: str = Field(max_length=40, index=True)
    source: str = Field(max_length=40)
    incident_id: str = Field(max_length=120)
    type: str = Field(max_length=16)
    occurred_at: datetime = Field(sa_column=_ts(nullable=False))
    received_at: datetime = Field(sa_column=_ts(nullable=False))
    body: str = Field(sa_type=Text)
    response: str = Field(sa_type=Text)


class DecisionRecord(SQLModel, table=True):
    """Every decision a call has had, with what caused it."""

    __tablename__ = "decision"

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    call_id: str = Field(max_length=40, index=True)
    cause: str = Field(max_length=32)  # event | override
    event_id: str | None = Field(default=None, max_length=200)
    destination: str = Field(max_length=16)
    policy_version: str = Field(max_length=120)
    decision: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_column=_ts(nullable=False))


class BoardMessage(SQLModel, table=True):
    """The live feed, in database order: `seq` is what boards resume from."""

    __tablename__ = "board_message"

    seq: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                            autoincrement=True))
    call_id: str = Field(max_length=40, index=True)
    type: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    body: str = Field(sa_type=Text)
    # The same message as dispatchers see it (service/calls/visibility.py), made once when it
    # is written; null on rows written before it existed.
    restricted_body: str | None = Field(default=None, sa_type=Text)
    # The agency of the message's call, or unit's (migration 0029): a board of one
    # agency's people gets only its messages; null (a call nobody claimed) the region's.
    agency_id: str | None = Field(default=DEFAULT_AGENCY, max_length=40,
                                  sa_column_kwargs={"server_default": DEFAULT_AGENCY})
    # The agency helping with the call by mutual aid (migration 0030): its boards get the
    # message too.
    aid_agency_id: str | None = Field(default=None, max_length=40)


class CadReject(SQLModel, table=True):
    """Input a CAD sent that we could not accept, kept for an operator to inspect."""

    __tablename__ = "cad_reject"
    # A sender's newest rejects, for the per-sender cap (migration 0013).
    __table_args__ = (Index("ix_cad_reject_sender_id", "sender", "id"),)

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    source: str = Field(max_length=40)
    path: str = Field(max_length=200)
    received_at: datetime = Field(sa_column=_ts(nullable=False))
    errors: str = Field(sa_type=Text)
    body: str = Field(sa_type=Text)
    # Who sent it: `key:<id>` (as the audit log names keys) or `subscriber` (the EIDO
    # subscription); None on rejects kept before migration 0013.
    sender: str | None = Field(default=None, max_length=120)


# Core tables for the hot paths (SQLModel's class attribute is invisible to type checkers).
CALL: Table = Call.__table__  # type: ignore[attr-defined]
CAD_EVENT: Table = CadEvent.__table__  # type: ignore[attr-defined]
DECISION: Table = DecisionRecord.__table__  # type: ignore[attr-defined]
BOARD: Table = BoardMessage.__table__  # type: ignore[attr-defined]
REJECT: Table = CadReject.__table__  # type: ignore[attr-defined]


class OutboxMessage(SQLModel, table=True):
    """A decision (or change of one) waiting for, or done with, delivery to the CAD's
    webhook. Written in the decision's own transaction; `id` orders a call's deliveries
    and is the `sequence` the CAD sees. See service/outbox/ and adapters/outbound.py."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_call_id_id", "call_id", "id"),
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    delivery_id: str = Field(max_length=40, unique=True)
    call_id: str = Field(max_length=40)
    cause: str = Field(max_length=32)  # event | override
    event_id: str | None = Field(default=None, max_length=200)
    payload: str = Field(sa_type=Text)  # the body without its sequence, spliced in on send
    status: str = Field(max_length=16)  # pending | delivered | failed (given up)
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    last_attempt_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    next_attempt_at: datetime = Field(sa_column=_ts(nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # When its current run of failed attempts began: the give-up clock (None while it has
    # not failed since it was written, delivered or retried by hand).
    failing_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # Which worker holds the row while it is being sent, and until when (PostgreSQL with
    # several instances: nobody else sends it meanwhile; a crashed holder's lease runs out).
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]


class PolicyVersion(SQLModel, table=True):
    """A routing policy as stored: one row per version of a policy id. At most one row is
    `published` (in force); publishing or rolling back supersedes it. `version` is the
    document's own `policy.version`, so decisions (`<policy id>@<version>`) name the row."""

    __tablename__ = "policy_version"
    __table_args__ = (
        UniqueConstraint("policy_id", "version", name="uq_policy_version_label"),
        Index("ix_policy_version_status", "status"),
        Index("ix_policy_version_agency_status", "agency_id", "status"),
    )

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    # Whose policy it is: each agency publishes and rolls back its own (migration 0029).
    agency_id: str = Field(default=DEFAULT_AGENCY, max_length=40,
                           sa_column_kwargs={"server_default": DEFAULT_AGENCY})
    policy_id: str = Field(max_length=120)
    version: str = Field(max_length=120)
    status: str = Field(max_length=16)  # draft | published | superseded
    document: str = Field(sa_type=Text)  # the YAML exactly as given
    author: str = Field(max_length=120)
    comment: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    published_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    publish_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # A scheduled publish: the version in force when it was scheduled (it publishes only
    # over that one), and why a due one did not publish (migration 0011).
    scheduled_over: int | None = None
    schedule_note: str | None = Field(default=None, sa_type=Text)
    parent_id: int | None = None
    diff_from_parent: str = Field(default="", sa_type=Text)


POLICY_VERSION: Table = PolicyVersion.__table__  # type: ignore[attr-defined]


class AppUser(SQLModel, table=True):
    """A person who logs in to the pages. No default account exists: an operator adds
    them (`liaison user add`)."""

    __tablename__ = "app_user"

    id: str = Field(primary_key=True, max_length=40)
    username: str = Field(max_length=120, unique=True)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    # argon2id, with its parameters and salt in the string.
    password_hash: str = Field(sa_type=Text)
    # An officer's badge or unit: ties the referrals they make to them.
    officer_id: str | None = Field(default=None, max_length=120)
    # The agency whose calls, units, policy and figures they see; `*`: the region's.
    agency_id: str = Field(default=DEFAULT_AGENCY, max_length=40,
                           sa_column_kwargs={"server_default": DEFAULT_AGENCY})
    disabled_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    password_changed_at: datetime = Field(sa_column=_ts(nullable=False))


class ApiKey(SQLModel, table=True):
    """A CAD adapter's key. The secret is shown once; only its SHA-256 is kept (the
    secret is 256 random bits, so a slow hash adds nothing). Rotation adds a second key
    for the same client and gives the old one an end time."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=40)  # the public part of the key
    client: str = Field(max_length=120, index=True)  # e.g. "pinellas-cad"
    role: str = Field(default="cad", max_length=16)
    # The calls a CAD key may read back are the ones it posted (call.source).
    source: str = Field(max_length=40)
    # The agency a key posts for and reads (migration 0029); `*`: any (the event, or
    # where the call is, names the agency).
    agency_id: str = Field(default=ANY_AGENCY, max_length=40,
                           sa_column_kwargs={"server_default": ANY_AGENCY})
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    last_used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class UserSession(SQLModel, table=True):
    """A login. The cookie carries a random token; only its SHA-256 is kept here."""

    __tablename__ = "user_session"

    id: str = Field(primary_key=True, max_length=64)  # sha256 of the token
    user_id: str = Field(max_length=40, index=True)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    last_seen_at: datetime = Field(sa_column=_ts(nullable=False))
    expires_at: datetime = Field(sa_column=_ts(nullable=False))  # the absolute lifetime
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    ended_why: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=64)


class AuditEntry(SQLModel, table=True):
    """Append-only: who did or looked at what, when, from where. Never narrative text,
    names or phone numbers: ids, actions and outcomes only."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_actor_at", "actor", "at"),
        Index("ix_audit_log_call_at", "call_id", "at"),
        Index("ix_audit_log_agency_at", "agency_id", "at"),
    )

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    at: datetime = Field(sa_column=_ts(nullable=False, index=True))
    actor: str = Field(max_length=120)  # username, or "key:<id>", or "anonymous"
    role: str | None = Field(default=None, max_length=16)
    address: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=64)  # e.g. call.read, call.status, login.failed
    call_id: str | None = Field(default=None, max_length=40)
    target: str | None = Field(default=None, max_length=200)
    outcome: str = Field(max_length=16)  # ok | denied | failed
    detail: str | None = Field(default=None, sa_type=Text)  # JSON, ids only
    # The actor's agency (issue 17; `*`: the region's; None: nobody logged in).
    agency_id: str | None = Field(default=None, max_length=40)


USER: Table = AppUser.__table__  # type: ignore[attr-defined]
API_KEY: Table = ApiKey.__table__  # type: ignore[attr-defined]
SESSION: Table = UserSession.__table__  # type: ignore[attr-defined]
AUDIT: Table = AuditEntry.__table__  # type: ignore[attr-defined]


class FollowUp(SQLModel, table=True):
    """A proactive follow-up the team scheduled when clearing a call: due at `due_at`,
    announced on the board once due, opened as a call of its own (channel `follow_up`,
    `follow_up_of` the original), then completed or cancelled.
    See service/lifecycle/followups.py."""

    __tablename__ = "follow_up"
    __table_args__ = (Index("ix_follow_up_status_due_at", "status", "due_at"),)

    id: str = Field(primary_key=True, max_length=40)
    call_id: str = Field(max_length=40, index=True)  # the original call
    due_at: datetime = Field(sa_column=_ts(nullable=False))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    created_by: str | None = Field(default=None, max_length=120)
    note: str | None = Field(default=None, sa_type=Text)
    status: str = Field(max_length=16)  # scheduled | opened | completed | cancelled
    follow_up_call_id: str | None = Field(default=None, max_length=40)
    # When the board was told it is due (follow_up_due), so it is told once.
    announced_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    opened_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    completed_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # Who completed or cancelled it, and why (cancelled) or how it went (completed).
    closed_by: str | None = Field(default=None, max_length=120)
    closed_note: str | None = Field(default=None, sa_type=Text)
    # Scheduled by the policy (issue 16): the exclusion that asked for it (`medical` for an
    # overdose), the program to visit, and whether the CAD said the person consented
    # (None: it did not say). Null on the team's own follow-ups.
    exclusion: str | None = Field(default=None, max_length=120)
    program_id: str | None = Field(default=None, max_length=120)
    consent: bool | None = None


FOLLOW_UP: Table = FollowUp.__table__  # type: ignore[attr-defined]


class Transfer(SQLModel, table=True):
    """A call transferred from 911 to a crisis centre (a program of mode transfer), made
    with the decision that sends it there: offered → accepted | declined; accepted →
    completed | returned. Offered or accepted, it holds one of the centre's counsellors.
    See service/lifecycle/transfers.py."""

    __tablename__ = "transfer"
    __table_args__ = (Index("ix_transfer_status_offered_at", "status", "offered_at"),)

    id: str = Field(primary_key=True, max_length=40)
    call_id: str = Field(max_length=40, index=True)
    program_id: str = Field(max_length=120)
    status: str = Field(max_length=16)  # offered | accepted | declined | completed | returned
    offered_at: datetime = Field(sa_column=_ts(nullable=False))
    accepted_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    ended_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    # The last step's reason (declined and returned need one).
    reason: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class TransferStep(SQLModel, table=True):
    """One step of a transfer: when it happened (`at`, not ahead of our clock), by whom,
    why; `recorded_at` when Liaison heard of it."""

    __tablename__ = "transfer_step"

    id: int | None = Field(default=None, primary_key=True)
    transfer_id: str = Field(max_length=40, index=True)
    status: str = Field(max_length=16)
    at: datetime = Field(sa_column=_ts(nullable=False))
    by: str = Field(max_length=120)
    reason: str | None = Field(default=None, sa_type=Text)
    recorded_at: datetime = Field(sa_column=_ts(nullable=False))


TRANSFER: Table = Transfer.__table__  # type: ignore[attr-defined]
TRANSFER_STEP: Table = TransferStep.__table__  # type: ignore[attr-defined]
# The check-in sweeper's query (service/lifecycle/checkins.py): calls whose check-in is due.
Index("ix_call_checkin_due_at", CALL.c.checkin_due_at, **_not_null("checkin_due_at"))


class WhatIfJobRow(SQLModel, table=True):
    """A what-if run over stored calls (service/policy/whatif.py): kept in the database so any
    instance can show its progress and report, and a restart does not lose it. The
    instance running it writes `done` and `updated_at` as it goes; a running job whose
    `updated_at` stops moving was lost with its instance."""

    __tablename__ = "what_if_job"
    __table_args__ = (Index("ix_what_if_job_started_at", "started_at"),)

    id: str = Field(primary_key=True, max_length=40)
    # Whose calls and versions it ran over (migration 0029): that agency's people read it.
    agency_id: str = Field(default=DEFAULT_AGENCY, max_length=40,
                           sa_column_kwargs={"server_default": DEFAULT_AGENCY})
    candidate: str = Field(max_length=250)
    baseline: str = Field(max_length=250)
    start_at: datetime = Field(sa_column=_ts(nullable=False))  # the range [start_at, end_at)
    end_at: datetime = Field(sa_column=_ts(nullable=False))
    seed: int
    status: str = Field(max_length=16)  # running | done | failed
    done: int = 0
    total: int | None = None
    started_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    error: str | None = Field(default=None, sa_type=Text)
    report: str | None = Field(default=None, sa_type=Text)  # WhatIfReport JSON, once done
    changed_csv: str | None = Field(default=None, sa_type=Text)  # every changed call


WHAT_IF_JOB: Table = WhatIfJobRow.__table__  # type: ignore[attr-defined]


class WriteProbe(SQLModel, table=True):
    """One row per running instance, rewritten by /v1/health while writes are failing
    (service/writing/health.py): a write that commits shows the database takes writes again."""

    __tablename__ = "write_probe"

    instance: str = Field(primary_key=True, max_length=80)
    written_at: datetime = Field(sa_column=_ts(nullable=False))


WRITE_PROBE: Table = WriteProbe.__table__  # type: ignore[attr-defined]


class QueueSettled(SQLModel, table=True):
    """How far in time an agency's queue timers have been worked through (one row per
    agency): service/lifecycle/waiting.py settles what happened after it, once."""

    __tablename__ = "queue_settled"
    __table_args__ = (UniqueConstraint("agency_id", name="uq_queue_settled_agency_id"),)

    id: int = Field(primary_key=True)
    agency_id: str = Field(default=DEFAULT_AGENCY, max_length=40,
                           sa_column_kwargs={"server_default": DEFAULT_AGENCY})
    settled_until: datetime = Field(sa_column=_ts(nullable=False))


QUEUE_SETTLED: Table = QueueSettled.__table__  # type: ignore[attr-defined]


class UnitRow(SQLModel, table=True):
    """A program's field unit, as a supervisor keeps it (service/units/, migration 0020).
    Members and capabilities are JSON lists; its status and call are derived from the
    team's status changes, never stored here."""

    __tablename__ = "unit"
    __table_args__ = (Index("ix_unit_program_id", "program_id"),)

    id: str = Field(primary_key=True, max_length=40)
    # The agency whose team it is (migration 0029): its program ids are that agency's.
    agency_id: str = Field(default=DEFAULT_AGENCY, max_length=40,
                           sa_column_kwargs={"server_default": DEFAULT_AGENCY})
    program_id: str = Field(max_length=120)
    call_sign: str = Field(max_length=80)
    members: str = Field(default="[]", sa_type=Text)
    capabilities: str = Field(default="[]", sa_type=Text)
    on_duty: bool = False
    duty_since: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    retired: bool = False  # kept for the record (audit, figures); not on the roster
    updated_at: datetime = Field(sa_column=_ts(nullable=False))


class UnitSetting(SQLModel, table=True):
    """The roster's settings (one row, id 1): how long unit positions are kept."""

    __tablename__ = "unit_setting"

    id: int = Field(primary_key=True)
    position_retention_s: int
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_by: str | None = Field(default=None, max_length=120)


class UnitPositionRow(SQLModel, table=True):
    """Where a unit was (its device or an AVL feed said), kept for the retention a
    supervisor sets (migration 0021)."""

    __tablename__ = "unit_position"
    __table_args__ = (Index("ix_unit_position_unit_at", "unit_id", "at"),
                      Index("ix_unit_position_at", "at"))

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    unit_id: str = Field(max_length=40)
    lat: float
    lon: float
    accuracy_m: float | None = None
    at: datetime = Field(sa_column=_ts(nullable=False))  # when the unit was there
    source: str = Field(max_length=16)  # device | avl
    received_at: datetime = Field(sa_column=_ts(nullable=False))


class UnitDutyRow(SQLModel, table=True):
    """A unit's spell on duty, from signing on to signing off (null while on duty):
    written with every change of duty (service/units/commands.py, migration 0024), so the
    figures know each unit's hours on duty in a range. One open spell per unit at most."""

    __tablename__ = "unit_duty"
    __table_args__ = (Index("ix_unit_duty_unit_on_at", "unit_id", "on_at"),
                      Index("ix_unit_duty_on_at", "on_at"),
                      Index("ux_unit_duty_open", "unit_id", unique=True,
                            sqlite_where=text("off_at IS NULL"),
                            postgresql_where=text("off_at IS NULL")))

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    unit_id: str = Field(max_length=40)
    program_id: str = Field(max_length=120)  # the unit's program during the spell
    on_at: datetime = Field(sa_column=_ts(nullable=False))
    off_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


UNIT: Table = UnitRow.__table__  # type: ignore[attr-defined]
UNIT_SETTING: Table = UnitSetting.__table__  # type: ignore[attr-defined]
UNIT_POSITION: Table = UnitPositionRow.__table__  # type: ignore[attr-defined]
UNIT_DUTY: Table = UnitDutyRow.__table__  # type: ignore[attr-defined]


class FieldAction(SQLModel, table=True):
    """A team member's action from the field board, by its idempotency key (the board makes
    one when the member acts, and sends it again with every retry): the first answer is
    given again and nothing is recorded twice. Written in the action's own transaction;
    pruned after `field_key_hours` (service/lifecycle/field_keys.py, migration 0022)."""

    __tablename__ = "field_action"
    __table_args__ = (Index("ix_field_action_created_at", "created_at"),)

    # A key is its sender's own (as a CAD's event id is): another person's same key is
    # another action, and never gets the first person's answer.
    actor: str = Field(primary_key=True, max_length=120)
    key: str = Field(primary_key=True, max_length=100)
    call_id: str = Field(max_length=40)
    action: str = Field(max_length=32)  # status | checkin
    # SHA-256 of the request (action, call, body): only a hash, so no second copy of a
    # note or an outcome is kept here.
    request_sha256: str = Field(max_length=64)
    response: str = Field(sa_type=Text)  # the first answer, as JSON
    created_at: datetime = Field(sa_column=_ts(nullable=False))


FIELD_ACTION: Table = FieldAction.__table__  # type: ignore[attr-defined]


class AssignmentRow(SQLModel, table=True):
    """A team call's assignment and the recommendation given at that moment
    (service/lifecycle/assignment.py, migration 0023): the figures compare the unit
    recommended, its distance and estimated time, with the unit sent and when it got there."""

    __tablename__ = "assignment"
    __table_args__ = (Index("ix_assignment_at", "at"),)

    call_id: str = Field(primary_key=True, max_length=40)
    at: datetime = Field(sa_column=_ts(nullable=False))  # when it was assigned
    assigned_unit: str | None = Field(default=None, max_length=64)
    recommended_unit: str | None = Field(default=None, max_length=64)
    distance_km: float | None = None
    eta_minutes: int | None = None
    basis: str | None = Field(default=None, max_length=16)  # distance | load
    reason: str = Field(sa_type=Text)
    # The unit assigned is the one recommended (false when none was, or another was sent).
    taken: bool = False
    by: str | None = Field(default=None, max_length=120)


ASSIGNMENT: Table = AssignmentRow.__table__  # type: ignore[attr-defined]


class ProviderRow(SQLModel, table=True):
    """A provider of care in the directory supervisors keep (issue 16, migration 0026):
    what it offers (`services`, JSON list of SERVICES in service/lifecycle/providers.py),
    for whom, when, how many places today, how to reach it. Retired, not deleted: the
    handoffs made to it keep their provider."""

    __tablename__ = "provider"

    id: str = Field(primary_key=True, max_length=60)
    name: str = Field(max_length=200)
    services: str = Field(sa_type=Text)  # JSON list
    eligibility: str | None = Field(default=None, sa_type=Text)
    hours: str | None = Field(default=None, sa_type=Text)  # as the provider states them
    capacity: int | None = None  # open places today; null: not known
    contact: str | None = Field(default=None, sa_type=Text)
    active: bool = True
    updated_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_by: str | None = Field(default=None, max_length=120)


class CareReferralRow(SQLModel, table=True):
    """A warm handoff of a call's person to a provider (service/lifecycle/care.py):
    offered, then accepted, connected or declined. The provider's name and services are
    kept as they were when offered (the figures count by them; a provider may change).
    `follow_up_id`: the follow-up raised once when it was not connected in time."""

    __tablename__ = "care_referral"
    __table_args__ = (Index("ix_care_referral_status_offered_at", "status", "offered_at"),
                      Index("ix_care_referral_offered_at", "offered_at"))

    id: str = Field(primary_key=True, max_length=40)
    call_id: str = Field(max_length=40, index=True)
    provider_id: str = Field(max_length=60)
    provider_name: str = Field(max_length=200)
    services: str = Field(sa_type=Text)  # JSON list, the provider's when offered
    status: str = Field(max_length=16)  # offered | accepted | connected | declined
    note: str | None = Field(default=None, sa_type=Text)
    offered_at: datetime = Field(sa_column=_ts(nullable=False))
    offered_by: str | None = Field(default=None, max_length=120)
    status_at: datetime = Field(sa_column=_ts(nullable=False))  # the latest step's time
    connected_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    declined_reason: str | None = Field(default=None, sa_type=Text)
    follow_up_id: str | None = Field(default=None, max_length=40)


class CareStepRow(SQLModel, table=True):
    """One step of a handoff, timed (`at`: when it happened, as told) and by whom."""

    __tablename__ = "care_step"
    __table_args__ = (Index("ix_care_step_referral_id", "referral_id"),)

    id: int | None = Field(default=None, sa_column=Column(_SEQ, primary_key=True,
                                                           autoincrement=True))
    referral_id: str = Field(max_length=40)
    status: str = Field(max_length=16)
    at: datetime = Field(sa_column=_ts(nullable=False))
    by: str | None = Field(default=None, max_length=120)
    reason: str | None = Field(default=None, sa_type=Text)
    recorded_at: datetime = Field(sa_column=_ts(nullable=False))


PROVIDER: Table = ProviderRow.__table__  # type: ignore[attr-defined]
CARE_REFERRAL: Table = CareReferralRow.__table__  # type: ignore[attr-defined]
CARE_STEP: Table = CareStepRow.__table__  # type: ignore[attr-defined]
class CrisisPlanRow(SQLModel, table=True):
    """A short plan the team wrote for a person, with their consent, until it expires
    (issue 16, service/lifecycle/crisis_plans.py, migration 0027). Found for a call by its
    folded address (service/calls/people.address_key) or its phone's digits; shown to the
    team and supervisors only, each look audited. Deleted by the field sweeper once expired."""

    __tablename__ = "crisis_plan"
    __table_args__ = (Index("ix_crisis_plan_address_key", "address_key"),
                      Index("ix_crisis_plan_phone_key", "phone_key",
                            **_not_null("phone_key")),
                      Index("ix_crisis_plan_expires_at", "expires_at"))

    id: str = Field(primary_key=True, max_length=40)
    person: str = Field(max_length=120)  # the name as the team knows them
    address: str = Field(max_length=300)
    address_key: str = Field(max_length=300)
    phone: str | None = Field(default=None, max_length=40)
    phone_key: str | None = Field(default=None, max_length=20)  # its last ten digits
    helps: str | None = Field(default=None, sa_type=Text)
    avoid: str | None = Field(default=None, sa_type=Text)
    contacts: str | None = Field(default=None, sa_type=Text)  # who to call
    consent_by: str = Field(max_length=120)
    consent_at: datetime = Field(sa_column=_ts(nullable=False))
    consent_how: str = Field(max_length=16)
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_by: str | None = Field(default=None, max_length=120)
    updated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class PremiseCautionRow(SQLModel, table=True):
    """A caution for an address (a dog, a steep stair, a person who must not be
    startled), until it expires; found, shown and swept as crisis plans are."""

    __tablename__ = "premise_caution"
    __table_args__ = (Index("ix_premise_caution_address_key", "address_key"),
                      Index("ix_premise_caution_expires_at", "expires_at"))

    id: str = Field(primary_key=True, max_length=40)
    address: str = Field(max_length=300)
    address_key: str = Field(max_length=300)
    text: str = Field(sa_type=Text)
    expires_at: datetime = Field(sa_column=_ts(nullable=False))
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_by: str | None = Field(default=None, max_length=120)
    updated_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


CRISIS_PLAN: Table = CrisisPlanRow.__table__  # type: ignore[attr-defined]
PREMISE_CAUTION: Table = PremiseCautionRow.__table__  # type: ignore[attr-defined]
