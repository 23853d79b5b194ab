"""Who is asking: people (password + session cookie) and CAD adapters (API keys).

People: passwords hashed with argon2id; a login makes a session whose random token goes
in the cookie and whose SHA-256 is the row's id, so a stolen database holds no usable
token. A session ends on logout, after `session_idle_minutes` without a request, after
`session_max_hours` in all, or when its user is disabled or their password reset.

Keys: `lk_<id>.<secret>`: the id is public (it names the key in logs and the audit),
the secret is 256 random bits shown once; only its SHA-256 is kept (a slow hash adds
nothing to a secret that cannot be guessed). Rotation makes a second key for the same
client and gives the old one an end time, so the CAD can switch without downtime.

No account exists until an operator makes one (`liaison user add`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.errors import Conflict, DomainError, NotFound, Unauthenticated, Unavailable
from service.settings import Settings
from service.store.db import describe, is_outage, unavailable_on_outage
from service.store.dbwait import Patience, answer_within
from service.store.tables import (
    AGENCY,
    ANY_AGENCY,
    API_KEY,
    DEFAULT_AGENCY,
    SESSION,
    USER,
    as_utc,
    utcnow,
)

log = logging.getLogger("liaison.auth")


class Role(StrEnum):
    cad = "cad"  # a CAD adapter's key: posts events, reads its own decisions
    dispatcher = "dispatcher"
    call_team = "call_team"
    officer = "officer"
    supervisor = "supervisor"  # policies, users, audit
    analyst = "analyst"  # aggregate figures only
    # A crisis centre (988): its counsellors (a page) and its system (a key) work the
    # calls transferred to it (service/lifecycle/transfers.py), and see only those.
    crisis_center = "crisis_center"


PEOPLE_ROLES = tuple(r for r in Role if r is not Role.cad)
# Sources Liaison stores its own intake under: the EIDO adapter and its subscriber,
# officers' referrals from the page, follow-ups the team opens.
RESERVED_SOURCES = frozenset({"eido", "referral", "liaison", "subscriber"})
KEY_PREFIX = "lk_"
MIN_PASSWORD = 12

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs the same time.
    Made at the first login, not at import: every `liaison` command imports this module,
    and an argon2 hash costs a few tenths of a second."""
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Principal:
    """The one who made a request."""

    kind: str  # user | key
    id: str  # user id, or key id
    name: str  # username, or the key's client
    role: Role
    officer_id: str | None = None  # an officer's badge: their referrals
    source: str | None = None  # a CAD key's source: the calls it may read back
    session_id: str | None = None
    # The agency whose calls, units, policy and figures they see and act on (issue 17);
    # `*`: the region's (a regional role, or a key tied to no agency).
    agency: str = ANY_AGENCY

    @property
    def actor(self) -> str:
        """How the audit log names them."""
        return self.name if self.kind == "user" else f"key:{self.id}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- passwords ---------------------------------------------------------------------------


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise DomainError(f"a password needs at least {MIN_PASSWORD} characters")


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, ~120 bits


# -- users -------------------------------------------------------------------------------


async def add_user(engine: AsyncEngine, username: str, role: Role, password: str, *,
                   display_name: str | None = None, officer_id: str | None = None,
                   agency: str = DEFAULT_AGENCY) -> dict[str, Any]:
    """A new person of `agency` (`*`: the region's: they see every agency's calls)."""
    username = username.strip()
    if not username or len(username) > 120:
        raise DomainError("a user name needs 1 to 120 characters")
    if role is Role.cad:
        raise DomainError("CAD adapters use keys (`liaison key create`), not accounts")
    now = utcnow()
    row = {"id": uuid.uuid4().hex, "username": username, "role": role.value,
           "display_name": display_name or username, "password_hash": hash_password(password),
           "officer_id": officer_id or (username if role is Role.officer else None),
           "disabled_at": None, "created_at": now, "password_changed_at": now,
           "agency_id": agency}
    async with engine.begin() as conn:
        await _agency_exists(conn, agency)
        if (await conn.execute(select(USER.c.id).where(USER.c.username == username))).first():
            raise Conflict(f"user {username!r} exists")
        await conn.execute(insert(USER).values(**row))
    return row


async def _agency_exists(conn: Any, agency: str) -> None:
    if agency != ANY_AGENCY and not (await conn.execute(
            select(AGENCY.c.id).where(AGENCY.c.id == agency))).first():
        raise NotFound(f"no agency {agency!r} (`liaison agency list`)")


async def _user(conn: Any, username: str) -> dict[str, Any]:
    row = (await conn.execute(select(USER).where(USER.c.username == username))).mappings().first()
    if row is None:
        raise NotFound(f"no user {username!r}")
    return dict(row)


async def user_agency(engine: AsyncEngine, username: str) -> str | None:
    """The agency of the person of that name (None: there is none): whose audit log a
    failed login under their name belongs in."""
    async with engine.connect() as conn:
        return (await conn.execute(select(USER.c.agency_id).where(
            USER.c.username == username))).scalar_one_or_none()


async def _end_sessions(conn: Any, user_id: str, why: str) -> int:
    done = await conn.execute(update(SESSION).where(SESSION.c.user_id == user_id,
                                                    SESSION.c.ended_at.is_(None))
                              .values(ended_at=utcnow(), ended_why=why))
    return int(done.rowcount or 0)


async def disable_user(engine: AsyncEngine, username: str) -> dict[str, Any]:
    async with engine.begin() as conn:
        user = await _user(conn, username)
        await conn.execute(update(USER).where(USER.c.id == user["id"])
                           .values(disabled_at=utcnow()))
        ended = await _end_sessions(conn, user["id"], "disabled")
    return {"username": username, "disabled": True, "sessions_ended": ended}


async def reset_password(engine: AsyncEngine, username: str, password: str,
                         *, enable: bool = True) -> dict[str, Any]:
    hashed = hash_password(password)
    async with engine.begin() as conn:
        user = await _user(conn, username)
        values: dict[str, Any] = {"password_hash": hashed, "password_changed_at": utcnow()}
        if enable:
            values["disabled_at"] = None
        await conn.execute(update(USER).where(USER.c.id == user["id"]).values(**values))
        ended = await _end_sessions(conn, user["id"], "password_reset")
    return {"username": username, "sessions_ended": ended}


async def list_users(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(
            USER.c.username, USER.c.display_name, USER.c.role, USER.c.officer_id,
            USER.c.agency_id, USER.c.disabled_at, USER.c.created_at)
            .order_by(USER.c.username))).mappings()
        return [dict(r) for r in rows]


# -- sessions ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _best_effort(doing: str) -> AsyncIterator[None]:
    """A bookkeeping write (last use, last activity) a request need not wait for: on a
    full disk, or with the database away or slow, reads still work, so they are not
    refused for want of it."""
    try:
        yield
    except Unavailable as error:
        log.warning("%s skipped: %s", doing, error.message)
    except Exception as error:
        if not is_outage(error):
            raise
        log.warning("%s failed, going on without it: %s", doing, describe(error))


async def _write(engine: AsyncEngine, statement: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(statement)


@dataclass(frozen=True)
class SessionLimits:
    idle: timedelta
    lifetime: timedelta

    @classmethod
    def from_settings(cls, s: Settings) -> SessionLimits:
        return cls(timedelta(minutes=s.session_idle_minutes),
                   timedelta(hours=s.session_max_hours))


async def login(engine: AsyncEngine, username: str, password: str, limits: SessionLimits,
                *, address: str | None) -> tuple[str, Principal]:
    """Check the password; on success a new session and its token. Raises
    Unauthenticated with the same words whatever was wrong."""
    async with engine.connect() as conn:
        row = (await conn.execute(select(USER).where(USER.c.username == username))
               ).mappings().first()
    ok = verify_password(row["password_hash"] if row else None, password)
    if row is None or not ok or row["disabled_at"] is not None:
        raise Unauthenticated("wrong user name or password, or the account is disabled")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(insert(SESSION).values(
            id=sha256(token), user_id=row["id"], created_at=now, last_seen_at=now,
            expires_at=now + limits.lifetime, address=address))
    return token, _user_principal(row, sha256(token))


def _user_principal(row: Any, session_id: str | None) -> Principal:
    return Principal(kind="user", id=row["id"], name=row["username"], role=Role(row["role"]),
                     officer_id=row["officer_id"], session_id=session_id,
                     agency=row["agency_id"])


# A session's last_seen_at is written at most this often: each request need not write.
TOUCH_EVERY = timedelta(seconds=30)


async def session_principal(engine: AsyncEngine, token: str, limits: SessionLimits, *,
                            touch: bool = True, deadline: Patience | None = None
                            ) -> Principal | None:
    """The person behind a session token, or None when the session has ended (ending
    it now if it ran out). `touch` counts the request as activity. The database away, or
    silent past `deadline` (service/store/dbwait.py), raises Unavailable: a database error is
    not a logged-out person (503, retry; not 401, not 500)."""
    sid = sha256(token)
    now = utcnow()
    with unavailable_on_outage("checking the session"):
        row = await answer_within(engine, deadline, _session_row(engine, sid),
                                  "checking the session")
    if row is None or row["ended_at"] is not None:
        return None
    why = None
    if row["disabled_at"] is not None:
        why = "disabled"
    elif now >= as_utc(row["expires_at"]):
        why = "lifetime"
    elif now - as_utc(row["last_seen_at"]) >= limits.idle:
        why = "idle"
    if why:
        async with _best_effort("ending a session"):
            await answer_within(engine, deadline, end_session(engine, sid, why),
                                "ending a session")
        return None
    if touch and now - as_utc(row["last_seen_at"]) >= min(TOUCH_EVERY, limits.idle / 4):
        async with _best_effort("noting a session's activity"):
            await answer_within(engine, deadline, _write(engine, update(SESSION).where(
                SESSION.c.id == sid).values(last_seen_at=now)), "noting activity")
    return Principal(kind="user", id=row["uid"], name=row["username"], role=Role(row["role"]),
                     officer_id=row["officer_id"], session_id=sid, agency=row["agency_id"])


async def _session_row(engine: AsyncEngine, sid: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(
            select(SESSION.c.id, SESSION.c.last_seen_at, SESSION.c.expires_at,
                   SESSION.c.ended_at, USER.c.id.label("uid"), USER.c.username, USER.c.role,
                   USER.c.officer_id, USER.c.disabled_at, USER.c.agency_id)
            .join(USER, USER.c.id == SESSION.c.user_id).where(SESSION.c.id == sid))
        ).mappings().first()


async def end_session(engine: AsyncEngine, session_id: str, why: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(SESSION).where(SESSION.c.id == session_id,
                                                 SESSION.c.ended_at.is_(None))
                           .values(ended_at=utcnow(), ended_why=why))


# -- keys --------------------------------------------------------------------------------


def _split_key(token: str) -> tuple[str, str] | None:
    if not token.startswith(KEY_PREFIX) or "." not in token:
        return None
    key_id, secret = token[len(KEY_PREFIX):].split(".", 1)
    return (key_id, secret) if key_id and secret else None


async def create_key(engine: AsyncEngine, client: str, *, role: Role = Role.cad,
                     source: str | None = None, agency: str = ANY_AGENCY
                     ) -> tuple[str, dict[str, Any]]:
    """A new key: the token (shown once) and its row. A key tied to an `agency` posts
    its calls and reads only that agency's."""
    client = client.strip()
    if not client or len(client) > 120:
        raise DomainError("a key's client name needs 1 to 120 characters")
    if source in RESERVED_SOURCES:
        # A CAD key under one of these would share the events, incidents and calls of
        # Liaison's own intake (EIDO, officers' referrals, follow-ups).
        raise DomainError(f"source {source!r} is Liaison's own; name the CAD instead",
                          reserved=sorted(RESERVED_SOURCES))
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    row = {"id": key_id, "client": client, "role": role.value,
           "source": (source or "generic")[:40], "secret_sha256": sha256(secret),
           "created_at": utcnow(), "expires_at": None, "revoked_at": None,
           "last_used_at": None, "agency_id": agency}
    async with engine.begin() as conn:
        await _agency_exists(conn, agency)
        await conn.execute(insert(API_KEY).values(**row))
    return f"{KEY_PREFIX}{key_id}.{secret}", row


def _live(now: datetime) -> Any:
    return and_(API_KEY.c.revoked_at.is_(None),
                or_(API_KEY.c.expires_at.is_(None), API_KEY.c.expires_at > now))


async def rotate_key(engine: AsyncEngine, client: str, grace: timedelta
                     ) -> tuple[str, dict[str, Any], list[str]]:
    """A new key for `client` (same role and source); the client's live keys keep
    working for `grace`, then stop."""
    now = utcnow()
    async with engine.connect() as conn:
        old = (await conn.execute(select(API_KEY).where(API_KEY.c.client == client, _live(now))
                                  .order_by(API_KEY.c.created_at.desc()))).mappings().all()
    if not old:
        raise NotFound(f"no live key for client {client!r}")
    token, row = await create_key(engine, client, role=Role(old[0]["role"]),
                                  source=old[0]["source"], agency=old[0]["agency_id"])
    ids = [k["id"] for k in old]
    async with engine.begin() as conn:
        await conn.execute(update(API_KEY).where(API_KEY.c.id.in_(ids))
                           .values(expires_at=now + grace))
    return token, row, ids


async def revoke_key(engine: AsyncEngine, key_id: str) -> dict[str, Any]:
    async with engine.begin() as conn:
        done = await conn.execute(update(API_KEY).where(API_KEY.c.id == key_id,
                                                        API_KEY.c.revoked_at.is_(None))
                                  .values(revoked_at=utcnow()))
    if not done.rowcount:
        raise NotFound(f"no live key {key_id!r}")
    return {"id": key_id, "revoked": True}


async def list_keys(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(
            API_KEY.c.id, API_KEY.c.client, API_KEY.c.role, API_KEY.c.source,
            API_KEY.c.agency_id, API_KEY.c.created_at, API_KEY.c.expires_at, API_KEY.c.revoked_at,
            API_KEY.c.last_used_at).order_by(API_KEY.c.client, API_KEY.c.created_at))
        ).mappings()
        return [dict(r) for r in rows]


class KeyCache:
    """Keys seen recently, so the ingest path does not read the key table per event.
    A revoked or expired key stops working within `ttl` seconds on every instance. The
    database away, or silent past `deadline` (service/store/dbwait.py), raises Unavailable: a
    database error is not a bad key (503, retry; not 401, not 500).

    One read per key at a time: the requests that find a key's entry stale together (a
    CAD's connections, each time `ttl` runs out) wait for that one read and its one
    last-use write, instead of each reading, and each updating the same row and waiting
    for the others' row lock (PostgreSQL: 32 such writes took 11 ms each, up to 47)."""

    def __init__(self, engine: AsyncEngine, ttl: timedelta = timedelta(seconds=5),
                 deadline: Patience | None = None) -> None:
        self.engine = engine
        self.ttl = ttl
        self.deadline = deadline
        self._seen: dict[str, tuple[datetime, dict[str, Any] | None]] = {}
        self._reading: dict[str, asyncio.Task[dict[str, Any] | None]] = {}

    async def principal(self, token: str) -> Principal | None:
        parts = _split_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        now = utcnow()
        cached = self._seen.get(key_id)
        if cached is None or now - cached[0] > self.ttl:
            reading = self._reading.get(key_id)
            if reading is None:
                reading = self._reading[key_id] = asyncio.create_task(
                    self._refresh(key_id, now), name="liaison-key-read")
                reading.add_done_callback(lambda done: self._read_ended(key_id, done))
            # Shielded: a caller that goes away (its client hung up) leaves the read to
            # the others waiting on it.
            row = await asyncio.shield(reading)
        else:
            row = cached[1]
        if row is None or not hmac.compare_digest(row["secret_sha256"], sha256(secret)):
            return None
        if row["revoked_at"] is not None or (row["expires_at"] is not None
                                             and now >= as_utc(row["expires_at"])):
            return None
        return Principal(kind="key", id=row["id"], name=row["client"], role=Role(row["role"]),
                         source=row["source"], agency=row["agency_id"])

    async def _refresh(self, key_id: str, now: datetime) -> dict[str, Any] | None:
        """The key's row, read now and kept; its last use noted at most once a minute."""
        with unavailable_on_outage("checking the API key"):
            row = await answer_within(self.engine, self.deadline, self._read(key_id),
                                      "checking the API key")
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key_id] = (now, row)
        if row is not None and (row["last_used_at"] is None
                                or now - as_utc(row["last_used_at"]) > timedelta(minutes=1)):
            async with _best_effort("noting a key's use"):
                await answer_within(self.engine, self.deadline, _write(
                    self.engine, update(API_KEY).where(API_KEY.c.id == key_id)
                    .values(last_used_at=now)), "noting a key's use")
        return row

    def _read_ended(self, key_id: str, done: asyncio.Task[dict[str, Any] | None]) -> None:
        if self._reading.get(key_id) is done:
            del self._reading[key_id]
        if not done.cancelled():
            done.exception()  # retrieved: the callers that waited for it have it raised

    async def _read(self, key_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            found = (await conn.execute(select(API_KEY).where(API_KEY.c.id == key_id))
                     ).mappings().first()
        return dict(found) if found else None
