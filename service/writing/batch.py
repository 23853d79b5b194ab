"""One writer batch as a unit of work: read what the batch needs in a few queries, let the
commands work on that in memory, then write everything with one statement per table
(on PostgreSQL the new rows of four tables in one: service/store/unnest.py).

Why: a statement is a round trip (to SQLite's thread or to PostgreSQL); per event that
was seven of them. Per batch it is now a handful, whatever the batch size.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import (
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncConnection

from routing.jurisdiction import RegionView
from service.calls.history import RepeatKey, found_history, latest, latest_of, repeat_keys
from service.calls.records import CallRow
from service.calls.visibility import restricted_message
from service.errors import NotFound
from service.live.board import BoardRow
from service.store.direct import Direct
from service.store.lists import one_of, text_list
from service.store.tables import (
    AUDIT,
    BOARD,
    CAD_EVENT,
    CALL,
    DECISION,
    DEFAULT_AGENCY,
    OUTBOX,
    QUEUE_SETTLED,
    REJECT,
    TRANSFER,
    TRANSFER_STEP,
    UNIT,
    UTCDateTime,
    as_utc,
    utcnow,
)
from service.store.unnest import Part, insert_together, same_keys

_CALL_COLUMNS = [c.name for c in CALL.columns]
# Built once: building a statement and its cache key costs more than SQLite takes to run
# it, and the writer runs these for every batch.
_UPDATE_CALL = update(CALL).where(CALL.c.id == bindparam("_id"))
_INSERT = {t.name: insert(t) for t in (CALL, CAD_EVENT, DECISION, AUDIT, OUTBOX, TRANSFER,
                                       TRANSFER_STEP, BOARD)}
_INSERT_BOARD_SEQS = insert(BOARD).returning(BOARD.c.seq)
# Event ids are each sender's own: (source, event_id) leads the unique index.
_SEEN_WHERE = (CAD_EVENT.c.source == bindparam("source"),
               one_of(CAD_EVENT.c.event_id, text_list("ids")))
_SEEN_EVENTS = select(CAD_EVENT.c.event_id, CAD_EVENT.c.response,
                      CAD_EVENT.c.body).where(*_SEEN_WHERE)
# (source, incident_id) leads the unique index: name both so it is used.
_CALLS_OF_SOURCE = select(CALL).where(
    CALL.c.source == bindparam("source"),
    one_of(CALL.c.incident_id, text_list("incidents")))
# Test and training calls never count, even one stored as holding a unit before their
# purpose reached the decision.
_HOLDING = (CALL.c.holds_unit.is_(True), CALL.c.closed_at.is_(None),
            CALL.c.purpose == "live",
            or_(CALL.c.team_status.is_(None), CALL.c.team_status != "cleared"))
# Per agency (issue 17): each agency's team units, queue and settling are its own. A unit
# is its agency's: a call another agency's program helps with (mutual aid) holds one of
# the helping agency's units.
_UNIT_AGENCY = func.coalesce(CALL.c.aid_agency_id, CALL.c.agency_id)
# Read for the agencies a batch's commands are about (Keys.agencies, the calls read), in
# one query, when a command first asks: a region of 20 teams holds 20 times the rows a
# batch of one agency's events needs. An agency asked about later is read then.
_AGENCIES = text_list("agencies")
_SET_SETTLED = (update(QUEUE_SETTLED).where(QUEUE_SETTLED.c.agency_id == bindparam("agency"))
                .values(settled_until=bindparam("until")))
_NEXT_SETTLED_ID = select(func.coalesce(func.max(QUEUE_SETTLED.c.id), 0) + 1)
# What the queue and the units need of the agencies a batch is about, in one statement
# (on PostgreSQL a round trip each was a fifth of a small batch's): four parts, told
# apart by `kind`, in the columns of the first (the NULLs typed alike); a fifth for the
# usual batch, its events stored already (`_AGENCY_STATE_AND_SEEN`).
# - "wait": the calls waiting for a program (queued or deferred): a handful, on their own
#   index. Only what the queue orders them by (routing/queue.py): a region's teams may
#   keep many waiting, and a batch reads all of its agencies'; the whole row is read for
#   the one acted upon. The agency is tested on an expression, not the column: SQLite
#   would otherwise seek the agency's index (every call it ever had) over the few waiting
#   calls' own.
# - "held": the calls holding units, and which program's unit each holds: its decision
#   says (a handful of rows: one per unit). Both the units busy and those per program are
#   counted from it.
# - "settled": every agency's mark (a handful of rows), as a batch's events may be of many.
# - "duty": every agency's units on duty per program (`ON_DUTY`), which every decision of
#   a program with a roster reads.
_WAITING_KEYS = ("id", "agency_id", "wait_program", "wait_since", "wait_deadline",
                 "priority")
_NO_TEXT, _NO_TIME = sql_cast(null(), String()), sql_cast(null(), UTCDateTime())
_NO_INT = sql_cast(null(), Integer())
# Per agency and program keeping a roster (any unit not retired), its units on duty; read
# again after a batch's change to a unit (service/units/commands.py roster_counts).
ON_DUTY = (select(UNIT.c.agency_id, UNIT.c.program_id,
                  func.sum(case((UNIT.c.on_duty.is_(True), 1), else_=0)).label("on_duty"))
           .where(UNIT.c.retired.is_(False)).group_by(UNIT.c.agency_id, UNIT.c.program_id))
_DUTY = ON_DUTY.subquery("duty")
_AGENCY_STATE_PARTS = (
    select(literal_column("'wait'", String()).label("kind"), CALL.c.id,
           CALL.c.agency_id.label("agency"), CALL.c.wait_program.label("text"),
           CALL.c.wait_since, CALL.c.wait_deadline, CALL.c.priority)
    .where(CALL.c.wait_program.is_not(None),
           one_of(func.coalesce(CALL.c.agency_id, ""), _AGENCIES)),
    select(literal_column("'held'", String()), _NO_TEXT, _UNIT_AGENCY, CALL.c.decision,
           _NO_TIME, _NO_TIME, _NO_INT)
    .where(*_HOLDING, one_of(_UNIT_AGENCY, _AGENCIES)),
    select(literal_column("'settled'", String()), _NO_TEXT, QUEUE_SETTLED.c.agency_id,
           _NO_TEXT, QUEUE_SETTLED.c.settled_until, _NO_TIME, _NO_INT),
    select(literal_column("'duty'", String()), _NO_TEXT, _DUTY.c.agency_id,
           _DUTY.c.program_id, _NO_TIME, _NO_TIME, _DUTY.c.on_duty))
_AGENCY_STATE = union_all(*_AGENCY_STATE_PARTS)
# The same with a batch's events already stored (`_SEEN_EVENTS`), for the usual batch of
# one CAD's new events, whose agency is known before anything is read: one statement.
_SEEN_PART = select(literal_column("'seen'", String()), CAD_EVENT.c.event_id,
                    CAD_EVENT.c.response, CAD_EVENT.c.body, _NO_TIME, _NO_TIME,
                    _NO_INT).where(*_SEEN_WHERE)
# And with its new calls' repeat-contact history (service/calls/history.py), up to this
# many keys: a round trip fewer for the usual batch. A burst of many new calls reads
# theirs on its own (one statement of hundreds of parts would be built for each size).
_REPEAT_WITH_STATE = 8


# Which of a CAD's incidents (the parameter "incidents", of `_SEEN_PART`'s source) have a
# call: kind "call", the incident id.
_INCIDENTS_PART = select(literal_column("'call'", String()), CALL.c.incident_id, _NO_TEXT,
                         _NO_TEXT, _NO_TIME, _NO_TIME, _NO_INT).where(
    CALL.c.source == bindparam("source"),
    one_of(CALL.c.incident_id, text_list("incidents")))


@functools.lru_cache(maxsize=128)
def _state_and_seen(repeat: tuple[str, ...], incidents: bool) -> Direct:
    """`_AGENCY_STATE` with `_SEEN_PART`, `_INCIDENTS_PART` if `incidents`, and, per key of
    these kinds ("person", "address"; its value the parameter `k{j}`), a row of kind
    "person" or "address": the key, the latest call's outcome, disposition and opening,
    and how many calls hold it."""
    parts = [_INCIDENTS_PART] if incidents else []
    for j, by in enumerate(repeat):
        of = latest_of(by, j)
        parts.append(select(literal_column(f"'{by}'", String()), of.key, CALL.c.outcome,
                            CALL.c.disposition, CALL.c.opened_at, _NO_TIME, of.count)
                     .where(of.where))
    return Direct(union_all(*_AGENCY_STATE_PARTS, _SEEN_PART, *parts))


# The statements every batch runs: on SQLite sent on the writer's cursor itself
# (service/store/direct.py).
_CALLS_OF_SOURCE_DIRECT = Direct(_CALLS_OF_SOURCE)
_AGENCY_STATE_DIRECT = Direct(_AGENCY_STATE)
# An INSERT of rows with these keys, per table: the same for every batch.
_DIRECT_INSERTS: dict[tuple[str, tuple[str, ...]], Direct] = {}


async def _insert(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
                  ) -> None:
    """Insert `rows` in one go (`Direct`: on SQLite on the writer's cursor itself) when
    they all give the same columns, as a batch's rows of a table do; else through
    SQLAlchemy, which fills in what a row leaves out."""
    keys = same_keys(rows)
    if keys is None:
        await conn.execute(_INSERT[table.name], rows)
        return
    direct = _DIRECT_INSERTS.get((table.name, keys))
    if direct is None:
        direct = _DIRECT_INSERTS[(table.name, keys)] = Direct(_INSERT[table.name], keys)
    await direct.run_many(conn, rows)


# The CAD time of the event received last, and when it was: the queue's clock.
_LAST_EVENT = (select(CAD_EVENT.c.occurred_at, CAD_EVENT.c.received_at)
               .order_by(CAD_EVENT.c.id.desc()).limit(1))
_NOT_WAITING = {"wait_program": None, "wait_since": None, "wait_deadline": None}
# Transfers holding a crisis centre's counsellor (service/lifecycle/transfers.py): a handful.
# A test or training call's transfer holds none, as its decision holds no unit.
TRANSFER_OPEN = ("offered", "accepted")
_OPEN_TRANSFERS = (select(TRANSFER.c.id, TRANSFER.c.call_id, TRANSFER.c.program_id,
                          CALL.c.agency_id)
                   .select_from(TRANSFER.join(CALL, CALL.c.id == TRANSFER.c.call_id))
                   .where(TRANSFER.c.status.in_(TRANSFER_OPEN), CALL.c.purpose == "live"))


# orjson with what makes its text the stdlib's: datetimes and dataclasses through
# `default=str` as json.dumps(default=str) gives them, non-str keys as str.
_ORJSON = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
           | orjson.OPT_PASSTHROUGH_DATACLASS)


def compact_json(value: Any) -> str:
    """JSON as Liaison stores and sends it: no spaces; datetimes and the like as str;
    non-ASCII as \\u escapes. orjson makes it (a decision is encoded five times per event,
    ~15 us each with the stdlib, ~2 with orjson); the stdlib where the two would differ:
    non-ASCII text (orjson does not escape it) and what orjson refuses (an int past 64 bits)."""
    try:
        out = orjson.dumps(value, default=str, option=_ORJSON)
        if out.isascii():
            return out.decode()
    except orjson.JSONEncodeError:
        pass
    return json.dumps(value, separators=(",", ":"), default=str)


def occupies_unit(call: CallRow | None) -> bool:
    """The call keeps a team field unit busy: a live call routed to the team, open, not
    cleared (a test or training call never holds a live unit)."""
    return bool(call and call["holds_unit"] and call["closed_at"] is None
                and call["team_status"] != "cleared" and call["purpose"] == "live")


def held_program(call: CallRow | None) -> str | None:
    """The program whose unit the call holds ("": its decision names none, as a one-team
    policy's do), or None when it holds no unit."""
    return _program_of(call["decision"]) if call and occupies_unit(call) else None


def unit_agency(call: CallRow) -> str | None:
    """Whose unit the call holds (if it holds one): the agency helping with it by mutual
    aid, else its own."""
    return call.get("aid_agency_id") or call.get("agency_id")


def _held_by(call: CallRow | None, agency: str) -> str | None:
    """`held_program` of a call holding a unit of `agency`'s; None for another's."""
    return held_program(call) if call and unit_agency(call) == agency else None


def _repeat_keys_of(call: Mapping[str, Any]) -> list[RepeatKey]:
    return repeat_keys(call.get("person_key"), call.get("address_key"))


def no_history() -> dict[str, Any]:
    """A repeat-contact key's history with no calls yet (as service/calls/history.py
    `latest` gives one per key)."""
    return {"count": 0, "last_at": None, "last_outcome": None, "last_disposition": None}


def add_history(found: dict[str, Any], added: Mapping[str, Any]) -> None:
    """Count the calls of `added` (a history of calls opened after those of `found`) into
    `found`: the later of the two latest, one opened at the same moment being the later."""
    found["count"] += added["count"]
    if added["last_at"] is not None and (found["last_at"] is None
                                         or added["last_at"] >= found["last_at"]):
        found.update(last_at=added["last_at"], last_outcome=added["last_outcome"],
                     last_disposition=added["last_disposition"])


def _count_in(found: dict[str, Any], call: Mapping[str, Any]) -> None:
    add_history(found, {"count": 1, "last_at": as_utc(call["opened_at"]),
                        "last_outcome": call["outcome"],
                        "last_disposition": call["disposition"]})


def _history_of(calls: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A key's history from these calls, taken in the order they were opened."""
    found = no_history()
    for call in calls:
        _count_in(found, call)
    return found


@functools.lru_cache(maxsize=2048)
def _program_of(decision: str) -> str:
    """The program id a stored decision names ("" for none). Keyed by the decision's text,
    so never stale: every batch reads every holding call's decision again, and a region's
    teams hold many units."""
    return str(orjson.loads(decision).get("program", {}).get("id") or "")


@dataclass
class Keys:
    """What a command will look up, so the batch can read it all up front."""

    event_ids: list[tuple[str, str]] = field(default_factory=list)  # (source, event_id)
    incidents: list[tuple[str, str]] = field(default_factory=list)
    call_ids: list[str] = field(default_factory=list)
    # A new call's person and address keys: its repeat-contact history (service/calls/history.py).
    repeat: list[RepeatKey] = field(default_factory=list)
    # The agencies whose units and queue it may ask about (a new call's claim).
    agencies: list[str] = field(default_factory=list)


@dataclass
class Batch:
    conn: AsyncConnection
    postgres: bool
    # A CAD webhook is configured: decisions also go to the outbox, in this transaction
    # (adapters/outbound.py delivers them).
    webhook: bool = False
    # The region as the writer knows it now (each agency's policy in force): what a
    # command asks of another agency than its call's (mutual aid). None: one agency.
    region: RegionView | None = None
    calls: dict[str, CallRow] = field(default_factory=dict)
    by_incident: dict[tuple[str, str], str] = field(default_factory=dict)
    # Stored events by (source, event_id): (the answer given, the body as stored).
    seen: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    max_seq: int = 0
    committed_board: list[BoardRow] = field(default_factory=list)
    # Rows were written (not only read): a commit of such a batch shows writes work.
    wrote: bool = False
    _missing_incidents: set[tuple[str, str]] = field(default_factory=set)
    _new: set[str] = field(default_factory=set)
    _dirty: set[str] = field(default_factory=set)
    _events: list[dict[str, Any]] = field(default_factory=list)
    _decisions: list[dict[str, Any]] = field(default_factory=list)
    _board: list[dict[str, Any]] = field(default_factory=list)
    _outbox: list[dict[str, Any]] = field(default_factory=list)
    _audit: list[dict[str, Any]] = field(default_factory=list)
    # Team units busy as stored (read once per agency, by the first command that asks),
    # and this batch's unflushed changes to it: every saved call counts, even one saved
    # before the read (a status change clearing a call, then a new call, in one batch).
    _busy_stored: dict[str, int] = field(default_factory=dict)  # per agency
    _busy_change: Counter[str | None] = field(default_factory=Counter)
    # The same per program: the stored count (read with `_busy_stored`), and this batch's
    # saves that held or hold a unit, (before, after), sorted out when read.
    _held_stored: dict[str, Counter[str]] = field(default_factory=dict)  # agency: program
    _held_saves: list[tuple[CallRow | None, CallRow]] = field(default_factory=list)
    # Stored calls per repeat-contact key: how many, and the latest (service/calls/history.py).
    repeat: dict[RepeatKey, dict[str, Any]] = field(default_factory=dict)
    repeat_read: set[RepeatKey] = field(default_factory=set)
    # The calls this batch opened, by the repeat-contact keys each holds now, and the
    # order they were opened in; and per key, what they add to its history, kept as calls
    # are opened (`new_history`). Going through every call the batch opened, for every
    # new call, was O(n^2) in the batch's size: a CAD's burst at one shelter.
    _new_by_key: dict[RepeatKey, set[str]] = field(default_factory=dict)
    _new_seq: dict[str, int] = field(default_factory=dict)
    _new_history: dict[RepeatKey, dict[str, Any]] = field(default_factory=dict)
    # The agencies whose stored state (waiting calls, units held) was read, with every
    # agency's settling and roster (once, by the first command that asks, `_read_state`),
    # and the ids of every call that waited in this batch (stored or saved since).
    _state_read: set[str] = field(default_factory=set)
    # The agencies the batch's commands are about (their keys, the calls read up front).
    _agencies: set[str] = field(default_factory=set)
    _waiting_ids: set[str] = field(default_factory=set)
    _waiting_stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # _WAITING_KEYS
    # `waiting` by agency, until a save touches a waiting call (it runs for every event).
    _waiting_of: dict[str, list[dict[str, Any]]] | None = None
    # How far the queue has been settled: read once a batch, written once at flush.
    _settled: dict[str, datetime] | None = None  # per agency that has a mark
    _settled_dirty: set[str] = field(default_factory=set)
    _settled_stored: set[str] = field(default_factory=set)  # agencies with a row
    # Per agency, its units on duty per program that keeps a roster (service/units), as
    # stored now: read with the agency's state, dropped when a command changes a unit
    # (the change is written at once, so a read after it sees it). None: read when asked.
    roster: dict[str, dict[str, int]] | None = None
    # Open transfers by id: (call id, program id); read once, kept by the commands that
    # open and end them (service/lifecycle/transfers.py).
    _transfers: dict[str, tuple[str, str, str | None]] | None = None
    _new_transfers: list[dict[str, Any]] = field(default_factory=list)
    _transfer_steps: list[dict[str, Any]] = field(default_factory=list)

    # -- reads ------------------------------------------------------------------------

    async def prefetch(self, keys: list[Keys]) -> None:
        event_ids: dict[str, list[str]] = {}
        for source, event_id in sorted({e for k in keys for e in k.event_ids}):
            event_ids.setdefault(source, []).append(event_id)
        incidents = {i for k in keys for i in k.incidents}
        by_source: dict[str, list[str]] = {}
        for source, incident in sorted(incidents):
            by_source.setdefault(source, []).append(incident)
        call_ids = sorted({c for k in keys for c in k.call_ids})
        repeat = sorted({r for k in keys for r in k.repeat})
        self._agencies.update(a for k in keys for a in k.agencies)
        usual = len(event_ids) == 1 and bool(self._agencies)  # one CAD's new events
        with_state = repeat if usual and len(repeat) <= _REPEAT_WITH_STATE else []
        if repeat and not with_state:
            self.repeat.update(await latest(self.conn, repeat))
            self.repeat_read.update(repeat)
        # The usual batch's incidents (of the same CAD) are looked up in its state read
        # too; only those found are read whole, so a batch of new calls reads no calls.
        if usual:
            [(source, of_source)] = event_ids.items()
            ours = by_source.get(source) if not call_ids and set(by_source) <= {source} \
                else None
            stored = await self._read_state(min(self._agencies), seen=(source, of_source),
                                            repeat=with_state, incidents=ours)
            if ours is not None:
                by_source = {source: stored} if stored else {}
            event_ids = {}
        for source, of_source in event_ids.items():
            rows = await self.conn.execute(_SEEN_EVENTS, {"source": source, "ids": of_source})
            self.seen.update({(source, eid): (resp, body) for eid, resp, body in rows})
        found_calls: list[dict[str, Any]] = []
        if not call_ids and len(by_source) == 1:  # one CAD's events: the usual batch
            [(source, ids)] = by_source.items()
            found_calls = [dict(zip(_CALL_COLUMNS, r, strict=True))
                           for r in await _CALLS_OF_SOURCE_DIRECT.rows(
                               self.conn, {"source": source, "incidents": ids})]
        elif by_source or call_ids:
            conds = [and_(CALL.c.source == source, CALL.c.incident_id.in_(ids))
                     for source, ids in by_source.items()]
            if call_ids:
                conds.append(CALL.c.id.in_(call_ids))
            found = await self.conn.execute(select(CALL).where(or_(*conds)))
            found_calls = [dict(row) for row in found.mappings()]
        for row in found_calls:
            self._remember(cast(CallRow, row))
            self._agencies.update(a for a in (row["agency_id"], row["aid_agency_id"]) if a)
        self._missing_incidents |= {i for i in incidents if i not in self.by_incident}

    def new_history(self, key: RepeatKey, exclude_call: str) -> dict[str, Any] | None:
        """What the calls this batch opened that hold `key` now (but `exclude_call`) add
        to its history: how many, and the latest opened (the one opened last of those
        opened at the same moment), its outcome and disposition. None: none."""
        ids = self._new_by_key.get(key, set())
        if exclude_call in ids:  # (a call's history is asked before it is saved)
            found = _history_of([self.calls[i] for i in sorted(
                ids - {exclude_call}, key=self._new_seq.__getitem__)])
        else:
            if key not in self._new_history:
                self._new_history[key] = _history_of(
                    [self.calls[i] for i in sorted(ids, key=self._new_seq.__getitem__)])
            found = self._new_history[key]
        return dict(found) if found["count"] else None

    def _remember(self, row: CallRow) -> None:
        self.calls[row["id"]] = row
        self.by_incident[(row["source"], row["incident_id"])] = row["id"]

    async def call_by_incident(self, source: str, incident_id: str) -> CallRow | None:
        key = (source, incident_id)
        if key not in self.by_incident and key not in self._missing_incidents:
            row = (await self.conn.execute(select(CALL).where(
                CALL.c.source == source, CALL.c.incident_id == incident_id))).mappings().first()
            if row is None:
                self._missing_incidents.add(key)
            else:
                self._remember(cast(CallRow, dict(row)))
        call_id = self.by_incident.get(key)
        return self.calls[call_id].copy() if call_id else None

    async def call_by_id(self, call_id: str) -> CallRow | None:
        if call_id not in self.calls:
            row = (await self.conn.execute(select(CALL).where(CALL.c.id == call_id))
                   ).mappings().first()
            if row is None:
                return None
            self._remember(cast(CallRow, dict(row)))
        return self.calls[call_id].copy()

    async def existing_call(self, call_id: str) -> CallRow:
        """The call, for a command about it: NotFound (404) when there is none."""
        call = await self.call_by_id(call_id)
        if call is None:
            raise NotFound(f"no call {call_id}")
        return call

    def _to_read(self, read: Container[str], agency: str) -> list[str]:
        """The agencies a first read for `agency` takes: it, and those the batch's
        commands are about that were not read yet."""
        return sorted(a for a in {agency, *self._agencies} if a not in read)

    async def _read_state(self, agency: str, seen: tuple[str, list[str]] | None = None,
                          repeat: Sequence[RepeatKey] = (),
                          incidents: list[str] | None = None) -> list[str]:
        """What the queue and the units need of the agency, as stored (`_AGENCY_STATE`), read
        once: with the batch's other agencies not read yet, and every agency's settling and
        roster; and with `seen`, which of a source's event ids are stored, the
        repeat-contact history of the keys `repeat` (sorted), and which of the source's
        `incidents` have a call (returned)."""
        if agency in self._state_read and seen is None:
            return []
        read = self._to_read(self._state_read, agency)
        self._state_read.update(read)
        self._held_stored.update({a: Counter() for a in read})
        settled: dict[str, datetime] = {}
        roster: dict[str, dict[str, int]] = {}
        if seen is None:
            rows = await _AGENCY_STATE_DIRECT.rows(self.conn, {"agencies": read})
        else:
            statement = _state_and_seen(tuple(by for by, _ in repeat), incidents is not None)
            params = {"agencies": read, "source": seen[0], "ids": seen[1],
                      **{f"k{j}": key for j, (_, key) in enumerate(repeat)}}
            if incidents is not None:
                params["incidents"] = incidents
            rows = await statement.rows(self.conn, params)
            self.repeat_read.update(repeat)  # a key with no calls has no row
        stored: list[str] = []
        for row in rows:
            kind, call_id, of, text, since, deadline, priority = row
            if kind in ("person", "address"):  # call_id: the key; of, text: the latest's
                self.repeat[(kind, call_id)] = found_history(priority, since, of, text)
            elif kind == "call":  # call_id: the incident
                stored.append(call_id)
            elif kind == "seen":  # call_id: the event id; of: the answer given; text: the body
                assert seen is not None
                self.seen[(seen[0], call_id)] = (of, text)
            elif kind == "wait":
                self._waiting_ids.add(call_id)
                self._waiting_stored[call_id] = dict(zip(_WAITING_KEYS, (
                    call_id, of, text, since, deadline, priority), strict=True))
            elif kind == "held":
                self._held_stored[of][_program_of(text)] += 1
            elif kind == "settled":
                settled[of] = as_utc(since)
            else:  # "duty"
                roster.setdefault(of, {})[text] = int(priority or 0)
        self._busy_stored.update({a: self._held_stored[a].total() for a in read})
        self._waiting_of = None
        self.roster = roster  # as stored now: any unit this batch changed is written
        if self._settled is None:  # this batch's own marks are newer
            self._settled = settled
            self._settled_stored = set(settled)
        return stored

    async def units_busy(self, exclude_call: str | None = None,
                         agency: str = DEFAULT_AGENCY) -> int:
        """The agency's team field units in use now, this batch's changes included."""
        await self._read_state(agency)
        own = exclude_call is not None and occupies_unit(self.calls.get(exclude_call)) \
            and unit_agency(self.calls[exclude_call]) == agency
        return self._busy_stored[agency] + self._busy_change[agency] - (1 if own else 0)

    async def units_busy_by_program(self, exclude_call: str | None = None,
                                    agency: str = DEFAULT_AGENCY) -> Counter[str]:
        """The agency's units in use now per program id, this batch's changes included."""
        await self._read_state(agency)
        busy = self._held_stored[agency].copy()
        for before, after in self._held_saves:
            was, now = _held_by(before, agency), _held_by(after, agency)
            if was is not None:
                busy[was] -= 1
            if now is not None:
                busy[now] += 1
        own = _held_by(self.calls.get(exclude_call), agency) if exclude_call else None
        if own is not None:
            busy[own] -= 1
        return +busy  # only positive counts

    async def open_transfers(self) -> dict[str, tuple[str, str, str | None]]:
        """Transfers offered or accepted, by id: (call id, program id, the call's
        agency), this batch's changes included (the caller changes the dict it is given)."""
        if self._transfers is None:
            rows = await self.conn.execute(_OPEN_TRANSFERS)
            self._transfers = {tid: (call_id, pid, agency) for tid, call_id, pid, agency in rows}
            self._transfers.update({t["id"]: (t["call_id"], t["program_id"],
                                              self.calls[t["call_id"]].get("agency_id")
                                              if t["call_id"] in self.calls else None)
                                    for t in self._new_transfers if self._live(t)})
        return self._transfers

    def add_transfer(self, row: dict[str, Any], step: dict[str, Any]) -> None:
        """A new transfer (offered) and its first step, written at flush (after the call
        it is for, which may be new in this batch)."""
        self._new_transfers.append(row)
        self.add_transfer_step(step)
        if self._transfers is not None and self._live(row):
            call = self.calls.get(row["call_id"])
            self._transfers[row["id"]] = (row["call_id"], row["program_id"],
                                          call.get("agency_id") if call else None)

    def _live(self, transfer: dict[str, Any]) -> bool:
        call = self.calls.get(transfer["call_id"])
        return call is None or call["purpose"] == "live"

    def add_transfer_step(self, step: dict[str, Any]) -> None:
        self._transfer_steps.append(step)

    async def counsellors_busy(self, exclude_call: str | None = None,
                               agency: str = DEFAULT_AGENCY) -> Counter[str]:
        """Per crisis centre (program id) of the agency's policy, its counsellors holding
        a transfer."""
        return Counter(pid for call_id, pid, a in (await self.open_transfers()).values()
                       if call_id != exclude_call and a == agency)

    async def waiting(self, agency: str = DEFAULT_AGENCY) -> list[dict[str, Any]]:
        """The agency's open calls waiting for a program, as the queue orders them (the
        keys of `_WAITING_KEYS`), this batch's changes included. Read them, do not change
        them: the list is kept for the next caller."""
        await self._read_state(agency)
        if self._waiting_of is None:
            # Every agency read so far at once: a batch's events may be of several.
            self._waiting_of = {}
            for i in sorted(self._waiting_ids):
                # What this batch holds is newer.
                c: Mapping[str, Any] = self.calls.get(i) or self._waiting_stored[i]
                if c.get("wait_program"):
                    self._waiting_of.setdefault(c.get("agency_id") or "", []).append(
                        {k: c[k] for k in _WAITING_KEYS})
        return self._waiting_of.get(agency, [])

    async def waiting_calls(self, agency: str = DEFAULT_AGENCY) -> list[CallRow]:
        """The agency's open calls waiting for a program, whole, this batch's changes
        included (the queue's view; the writer's commands use `waiting`)."""
        ids = [c["id"] for c in await self.waiting(agency)]
        missing = [i for i in ids if i not in self.calls]
        if missing:
            for row in (await self.conn.execute(select(CALL).where(CALL.c.id.in_(missing)))
                        ).mappings():
                self._remember(cast(CallRow, dict(row)))
        return [self.calls[i].copy() for i in ids]

    async def queued_by_program(self, exclude_call: str | None = None,
                                agency: str = DEFAULT_AGENCY) -> Counter[str]:
        """The agency's calls queued (not deferred) per program id, this batch's changes
        included."""
        return Counter(c["wait_program"] for c in await self.waiting(agency)
                       if c["wait_deadline"] is not None and c["id"] != exclude_call
                       and c["wait_program"] is not None)

    async def queue_clock(self) -> datetime:
        """The queue's now: the CAD time of the event received last plus the wall time
        since it was (live, the wall clock; a replay moves it with the feed)."""
        now = utcnow()
        if self._events:
            last = self._events[-1]
            occurred, received = last["occurred_at"], last["received_at"]
        else:
            row = (await self.conn.execute(_LAST_EVENT)).first()
            if row is None:
                return now
            occurred, received = row
        return as_utc(occurred) + (now - as_utc(received))

    async def settled_until(self, agency: str = DEFAULT_AGENCY) -> datetime | None:
        """How far the agency's queue timers have been worked through (None: never),
        this batch's settling included."""
        await self._read_state(agency)
        assert self._settled is not None  # read with the agency's state
        return self._settled.get(agency)

    async def set_settled_until(self, until: datetime, agency: str = DEFAULT_AGENCY) -> None:
        """Kept for the flush: one write a batch, under the writer's lock."""
        await self.settled_until(agency)
        assert self._settled is not None  # read just now
        self._settled[agency] = until
        self._settled_dirty.add(agency)

    async def _write_settled(self) -> None:
        assert self._settled is not None  # a dirty mark was read first
        stored = sorted(self._settled_dirty & self._settled_stored)
        if stored:  # one statement for every agency whose queue this batch settled
            await self.conn.execute(_SET_SETTLED, [
                {"until": self._settled[a], "agency": a} for a in stored])
        for agency in sorted(self._settled_dirty - self._settled_stored):
            until = self._settled[agency]
            done = await self.conn.execute(_SET_SETTLED, {"until": until, "agency": agency})
            if done.rowcount == 0:
                new_id = (await self.conn.execute(_NEXT_SETTLED_ID)).scalar_one()
                await self.conn.execute(insert(QUEUE_SETTLED), {
                    "id": new_id, "agency_id": agency, "settled_until": until})

    async def event_bodies(self, call_id: str) -> list[str]:
        """Every stored event of a call, in arrival order, this batch's included."""
        rows = await self.conn.execute(select(CAD_EVENT.c.body)
                                       .where(CAD_EVENT.c.call_id == call_id)
                                       .order_by(CAD_EVENT.c.id))
        return [*rows.scalars(), *(e["body"] for e in self._events if e["call_id"] == call_id)]

    # -- writes (buffered until flush) ------------------------------------------------

    def save_call(self, row: CallRow) -> None:
        before = self.calls.get(row["id"])
        if before is None:
            self._new.add(row["id"])
            self._new_seq[row["id"]] = len(self._new_seq)
            self._missing_incidents.discard((row["source"], row["incident_id"]))
        else:
            row = {**before, **row}
        if row["id"] in self._new:
            self._index_new(before, row)
        if row.get("wait_program") or row["id"] in self._waiting_ids:
            self._waiting_of = None
        if row.get("wait_program"):
            if row["closed_at"] is not None:
                row = cast(CallRow, {**row, **_NOT_WAITING})  # a closed call waits no more
            else:
                self._waiting_ids.add(row["id"])
        holds, held = occupies_unit(row), occupies_unit(before)
        if holds or held:
            # A call's agency never changes once it has one (service/lifecycle/ingest.py);
            # the agency whose unit it holds may (mutual aid).
            if held:
                assert before is not None
                self._busy_change[unit_agency(before)] -= 1
            if holds:
                self._busy_change[unit_agency(row)] += 1
            self._held_saves.append((before, row))
        self._dirty.add(row["id"])
        self._remember(row)

    def _index_new(self, before: CallRow | None, row: CallRow) -> None:
        was = set(_repeat_keys_of(before)) if before else set()
        now = set(_repeat_keys_of(row))
        for key in was - now:
            self._new_by_key[key].discard(row["id"])
        for key in now - was:
            self._new_by_key.setdefault(key, set()).add(row["id"])
        for key in was | now:
            found = self._new_history.get(key)
            if found is None:
                continue
            if before is None:  # the latest opened: what it adds is added
                _count_in(found, row)
            else:  # a call opened earlier changed: counted again when asked
                del self._new_history[key]

    def add_event(self, row: dict[str, Any]) -> None:
        self._events.append(row)
        self.seen[(row["source"], row["event_id"])] = (row["response"], row["body"])

    def add_decision(self, row: dict[str, Any]) -> None:
        self._decisions.append(row)

    def board(self, call_id: str, type_: str, message: dict[str, Any],
              agency: str | None = None) -> None:
        """Append a board message; the database gives it its seq at flush. Its restricted
        form (dispatchers) is made now, once, from the call as this batch holds it. Its
        agency is the call's (or `agency`, for a message about no call: a unit's); a
        call nobody claimed has none, and its messages go to the region's boards only."""
        body = compact_json(message)
        call = self.calls.get(call_id)
        restricted = restricted_message(message, call)
        self._board.append({"call_id": call_id, "type": type_, "created_at": utcnow(),
                            "body": body, "restricted_body": body if restricted is message
                            else compact_json(restricted),
                            "agency_id": call.get("agency_id") if call else agency,
                            "aid_agency_id": call.get("aid_agency_id") if call else None})

    def add_outbox(self, row: dict[str, Any]) -> None:
        """Queue a webhook delivery; the database gives it its id (the sequence) at flush."""
        self._outbox.append(row)

    def add_audit(self, row: dict[str, Any]) -> None:
        self._audit.append(row)

    @property
    def board_rows(self) -> int:
        return len(self._board)

    async def add_reject(self, row: dict[str, Any]) -> int:
        self.wrote = True
        res = await self.conn.execute(insert(REJECT).returning(REJECT.c.id), row)
        return int(res.scalar_one())

    async def trim_rejects(self, sender: str, keep: int) -> None:
        """Drop a sender's rejects but the newest `keep` (one statement, on its index)."""
        oldest_dropped = (select(REJECT.c.id).where(REJECT.c.sender == sender)
                          .order_by(REJECT.c.id.desc()).limit(1).offset(keep)
                          .scalar_subquery())
        await self.conn.execute(delete(REJECT).where(REJECT.c.sender == sender,
                                                     REJECT.c.id <= oldest_dropped))

    async def _insert_together(self, calls: list[dict[str, Any]]) -> list[int]:
        """PostgreSQL: the batch's new calls, events, decisions and board messages in one
        statement (service/store/unnest.py: a round trip and an execution each was most
        of a small batch's cost); the board messages' seqs, in the order written. Rows of
        a table that give different columns go in a statement of their own."""
        parts: list[Part] = []
        for table, rows in ((CALL, calls), (CAD_EVENT, self._events),
                            (DECISION, self._decisions)):
            if not rows:
                continue
            if same_keys(rows) is None:
                await self.conn.execute(_INSERT[table.name], rows)
            else:
                parts.append((table, rows))
        if self._board:  # last: its seqs are the statement's RETURNING
            parts.append((BOARD, self._board))
        if not parts:
            return []
        found = await insert_together(self.conn, parts, "seq" if self._board else None)
        # A sequence numbers the rows ascending in the order inserted (the statement
        # inserts them in the list's order): sorted, they are the rows' own.
        return sorted(int(seq) for seq in found)

    async def _insert_board(self) -> list[int]:
        """SQLite: write the batch's board messages; their seqs, in the order written."""
        # SQLite: RETURNING in the rows' order is one statement per row (SQLAlchemy cannot
        # rely on SQLite's order of RETURNING rows), 16 of a 16-event batch's 27 statements.
        # One INSERT of them all instead, its seqs in any order: `seq` is the rowid, so in
        # a transaction holding the write lock SQLite numbers the rows one after another
        # from the last, and sorted they are the rows' own.
        found = await self.conn.execute(_INSERT_BOARD_SEQS, self._board)
        return sorted(int(seq) for seq in found.scalars())

    async def flush(self) -> None:
        conn = self.conn
        new: list[Mapping[str, Any]] = [self.calls[i] for i in self._dirty if i in self._new]
        changed = [{**{k: v for k, v in self.calls[i].items() if k != "id"}, "_id": i}
                   for i in self._dirty if i not in self._new]
        self.wrote = self.wrote or bool(new or changed or self._events or self._decisions
                                        or self._audit or self._outbox or self._board
                                        or self._settled_dirty or self._transfer_steps)
        if self._settled_dirty:
            await self._write_settled()
        # The new calls, events, decisions and board messages: the board messages' seqs.
        new_rows = [{k: r[k] for k in _CALL_COLUMNS} for r in new]
        if self.postgres:
            seqs = await self._insert_together(new_rows)
        else:
            for table, rows in ((CALL, new_rows), (CAD_EVENT, self._events),
                                (DECISION, self._decisions)):
                if rows:
                    await _insert(conn, table, rows)
            seqs = await self._insert_board() if self._board else []
        if changed:
            await conn.execute(_UPDATE_CALL, changed)
        if self._new_transfers:
            await conn.execute(_INSERT["transfer"], self._new_transfers)
        if self._transfer_steps:
            await conn.execute(_INSERT["transfer_step"], self._transfer_steps)
        if self._audit:
            await conn.execute(_INSERT["audit_log"], self._audit)
        if self._outbox:
            # In decision order, so a call's outbox ids increase as its decisions did.
            await conn.execute(_INSERT["outbox"], self._outbox)
        if self._board:
            self.committed_board = [BoardRow(int(seq), row["body"], row["restricted_body"],
                                             row["agency_id"], row["aid_agency_id"])
                                    for seq, row in zip(seqs, self._board, strict=True)]
            self.max_seq = max(row.seq for row in self.committed_board)
