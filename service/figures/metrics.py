"""Program figures, computed by SQL in the database (SQLite and PostgreSQL alike).

Every figure covers the live calls (test and training calls are left out) opened in
[start, end), optionally in one district. One pass over the range (an indexed range scan,
migration 0006) copies the calls in scope, narrowed to what the figures read, into a
temporary table of the connection; every figure is then a grouped query over that table
and hands back at most a few thousand rows. No call is loaded into Python.

What the figures mean (the README's "Program figures" says the same):

- contacts: calls whose current destination is the CALL team or a joint response.
- without police: contacts the team handled alone (destination `call_team`) with no
  police backup requested.
- timeliness, from the CAD's opening of the call (`opened_at`), in whole seconds: to
  Liaison's first decision, to en route, to on scene; and time on scene (on scene to
  cleared). Median and 90th percentile with percentile_cont's interpolation, exact: from
  per-value counts and a running count (SUM ... OVER), on both databases.
- coverage gap: eligible calls the team did not serve, by reason (off_hours, units_busy,
  wait_exceeded, outside_area, override), plus calls no rule classified (no_rule: no
  category), by hour of week and district.
- programs (issue 13): per response program a call's decision names (the one that took
  it, kept it or was tried first): eligible calls, served (a team or joint response),
  reach, calls queued and deferred, waits that ended served or fell back, and the queue
  waits (from when a call began to wait to the decision that ended it) p50/p90 in
  minutes, with the timeliness figures' exact percentiles.
- hours of week and days are in the program's timezone: the UTC offsets in force over
  the range are worked out in Python (a DST change splits the range) and applied in SQL.
- agencies (issue 17): a scope of one agency counts its calls (and its units, rosters
  and follow-ups) only; a region-wide scope (agency None) counts every call, those no
  agency claimed too. `by_agency`: the outcome figures of each agency side by side
  (`none`: the calls no agency claimed), one grouped query over the scope.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    case,
    cast,
    column,
    extract,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    table,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from routing.schedule import duty_seconds
from rules.evaluate import CompiledPolicy
from service.figures.assignments import RecommendationRow as RecommendationRow  # re-exported
from service.figures.assignments import recommendation_figures
from service.figures.care import CareReasonRow, CareRow, care_figures
from service.figures.transfers import TransferReasonRow as TransferReasonRow  # re-exported
from service.figures.transfers import TransferRow as TransferRow  # re-exported
from service.figures.transfers import transfer_figures
from service.figures.units import UnitUtilisationRow as UnitUtilisationRow  # re-exported
from service.figures.units import roster_programs, unit_figures
from service.store.tables import CALL, UTCDateTime, as_utc, utcnow

TEAM = ("call_team", "joint")
REASONS = ("off_hours", "units_busy", "wait_exceeded", "outside_area", "override", "no_rule")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
GAP_THRESHOLD = 0.10  # equity: a rate differing by more than this between groups is flagged
GAP_MIN_CALLS = 10  # ... among groups with at least this many calls in the rate's base
NONE = "none"  # a call without a category (no rule matched) or district


# -- results ------------------------------------------------------------------------------


class VolumeDay(BaseModel):
    day: date
    dimension: Literal["channel", "category", "destination"]
    value: str
    calls: int


class VolumeHour(BaseModel):
    hour_of_week: int  # 0 = Monday 00:00-01:00 local time
    day: str
    hour: int
    dimension: Literal["channel", "category", "destination"]
    value: str
    calls: int


class Figures(BaseModel):
    """The program figures for one group of calls (all of them, a district, an age group)."""

    group: str
    calls: int
    eligible: int
    eligible_served: int
    reach: float | None  # eligible calls the team served, of eligible calls
    police_handled: int  # calls whose current destination is police
    police_share_of_eligible: float | None
    destination_changed: int  # the first decision's destination differs from the current
    contacts: int  # team or joint
    unique_clients: int  # distinct people among contacts, where the CAD identified them
    contacts_without_identity: int
    without_police: int
    without_police_share: float | None
    backup_requests: int
    backup_rate: float | None
    safety_incidents: int
    follow_up_calls: int


class FollowUps(BaseModel):
    scheduled: int
    completed: int
    # Of those, the ones the policy scheduled after a call an exclusion sent to police/EMS
    # (the shipped policy: after an overdose).
    after_exclusion_scheduled: int = 0
    after_exclusion_completed: int = 0


class Timeliness(BaseModel):
    measure: Literal["to_decision", "to_en_route", "to_on_scene", "on_scene"]
    dimension: Literal["all", "destination", "category"]
    value: str
    calls: int
    median_seconds: float
    p90_seconds: float


class ProgramRow(BaseModel):
    """One response program's reach and queue (`none`: calls no program was named for)."""

    program: str
    eligible: int
    served: int  # eligible calls a team (or joint response) served
    reach: float | None
    queued: int
    deferred: int
    waited_served: int  # waited, then its program's unit took it
    fell_back: int  # waited, then went elsewhere (police: wait_exceeded)
    waits: int  # waits that ended, what the percentiles are of
    wait_p50_minutes: float | None
    wait_p90_minutes: float | None
    # Its units' time: held by its calls within the range, and available: with a roster,
    # its units' hours on duty (service/figures/units.py), else its hours in the policy
    # in force times its units; utilisation is the one over the other.
    unit_hours_busy: float = 0.0
    unit_hours_available: float | None = None
    utilisation: float | None = None
    units_from: Literal["roster", "policy"] | None = None


class QueueWaitRow(BaseModel):
    """Waits that ended (taken or fallen back) for one program and category."""

    program: str
    category: str
    waits: int
    wait_p50_minutes: float
    wait_p90_minutes: float


class GapReason(BaseModel):
    reason: str
    calls: int


class GapCell(BaseModel):
    hour_of_week: int
    day: str
    hour: int
    reason: str
    calls: int


class GapDistrict(BaseModel):
    district: str
    reason: str
    calls: int


class EquityFlag(BaseModel):
    dimension: Literal["district", "age_group"]
    rate: str
    highest_group: str
    highest: float
    lowest_group: str
    lowest: float
    gap: float
    message: str


class ReferralRow(BaseModel):
    group: str  # the officer, or the unit
    referrals: int
    to_team: int
    without_police: int
    backup_requests: int
    cleared: int
    resolved_on_scene: int
    referred_to_services: int
    transported: int
    police_took_over: int
    refused_services: int
    safety_incidents: int


class OverrideRow(BaseModel):
    group: str  # the dispatcher, the reason, or "from -> to"
    overrides: int
    to_police: int
    to_team: int
    cleared: int
    backup_requests: int
    safety_incidents: int


class MyReferral(BaseModel):
    """One of an officer's own referrals and what became of it: no narrative, no names."""

    call_id: str
    opened_at: datetime
    district: str | None
    category: str | None
    destination: str
    team_status: str | None
    disposition: str | None
    outcome: str | None
    withheld: list[str] | None = Field(
        default=None, description="what was held back from this reader (outcome on a "
                                  "behavioural-health call); absent for supervisors")


class Metrics(BaseModel):
    start: datetime
    end: datetime
    district: str | None
    timezone: str
    agency: str | None = Field(default=None, description="the agency whose calls count; "
                               "null: every agency's, and calls no agency claimed")
    volume_daily: list[VolumeDay]
    volume_hour_of_week: list[VolumeHour]
    outcomes: Figures
    follow_ups: FollowUps
    timeliness: list[Timeliness]
    coverage_by_reason: list[GapReason]
    coverage_heatmap: list[GapCell]
    coverage_by_district: list[GapDistrict]
    equity_district: list[Figures]
    equity_age_group: list[Figures]
    equity_flags: list[EquityFlag]
    # Performance figures per person: supervisors only (None for analysts).
    referrals_by_officer: list[ReferralRow] | None
    referrals_by_unit: list[ReferralRow]
    overrides_by_dispatcher: list[OverrideRow] | None
    overrides_by_reason: list[OverrideRow] | None  # free text: supervisors only
    overrides_by_change: list[OverrideRow]
    programs: list[ProgramRow] = Field(default_factory=list)
    queue_waits: list[QueueWaitRow] = Field(default_factory=list)
    # The unit recommendation (service/figures/assignments.py): all and by basis; by who
    # assigned (per person: supervisors only, None for analysts).
    recommendations: list[RecommendationRow] = Field(default_factory=list)
    recommendations_by_assigner: list[RecommendationRow] | None = None
    # Each unit's hours on duty, busy, calls and utilisation (unit ids and call signs).
    units: list[UnitUtilisationRow] = Field(default_factory=list)
    # Care after the call (service/figures/care.py): handoffs by service type, district
    # and age group; declines by reason (free text: supervisors only, None for analysts).
    care_by_service: list[CareRow] = Field(default_factory=list)
    care_by_district: list[CareRow] = Field(default_factory=list)
    care_by_age_group: list[CareRow] = Field(default_factory=list)
    care_declined_reasons: list[CareReasonRow] | None = None
    # 911 → 988 transfers (service/figures/transfers.py): by outcome and time to accept;
    # the declines and returns by reason (free text: supervisors only, None for analysts).
    transfers: list[TransferRow] = Field(default_factory=list)
    transfer_reasons: list[TransferReasonRow] | None = None
    # Each agency's outcome figures side by side (group: the agency id; `none`: calls no
    # agency claimed), when asked for (`by=agency`).
    by_agency: list[Figures] | None = None


# Tables of a Metrics, for CSV: name -> (attribute, row model). The order is the page's.
TABLES: dict[str, type[BaseModel]] = {
    "volume_daily": VolumeDay, "volume_hour_of_week": VolumeHour, "outcomes": Figures,
    "follow_ups": FollowUps, "timeliness": Timeliness, "coverage_by_reason": GapReason,
    "coverage_heatmap": GapCell, "coverage_by_district": GapDistrict,
    "equity_district": Figures, "equity_age_group": Figures, "equity_flags": EquityFlag,
    "referrals_by_officer": ReferralRow, "referrals_by_unit": ReferralRow,
    "overrides_by_dispatcher": OverrideRow, "overrides_by_reason": OverrideRow,
    "overrides_by_change": OverrideRow, "programs": ProgramRow,
    "queue_waits": QueueWaitRow, "recommendations": RecommendationRow,
    "recommendations_by_assigner": RecommendationRow, "units": UnitUtilisationRow,
    "care_by_service": CareRow, "care_by_district": CareRow, "care_by_age_group": CareRow,
    "care_declined_reasons": CareReasonRow,
    "transfers": TransferRow, "transfer_reasons": TransferReasonRow,
    "by_agency": Figures,
}
SUPERVISOR_ONLY = frozenset({"referrals_by_officer", "overrides_by_dispatcher",
                             "overrides_by_reason", "recommendations_by_assigner",
                             "care_declined_reasons", "transfer_reasons"})


def table_rows(result: Metrics, name: str) -> list[BaseModel] | None:
    value = getattr(result, name)
    if value is None:
        return None
    return list(value) if isinstance(value, list) else [value]


def to_csv(model: type[BaseModel], rows: list[BaseModel]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    fields = list(model.model_fields)
    writer.writerow(fields)
    for row in rows:
        doc = row.model_dump(mode="json")
        writer.writerow(["" if doc[f] is None else _csv_safe(doc[f]) for f in fields])
    return out.getvalue()


def _csv_safe(value: Any) -> Any:
    """A spreadsheet must not run a cell as a formula (free text: override reasons)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


# -- scope and time ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    start: datetime
    end: datetime
    district: str | None = None
    zone: ZoneInfo = ZoneInfo("America/New_York")
    agency: str | None = None  # one agency's calls; None: the region's, every call

    def where(self) -> list[ColumnElement[bool]]:
        conds: list[ColumnElement[bool]] = [
            CALL.c.purpose == "live", CALL.c.opened_at >= self.start,
            CALL.c.opened_at < self.end]
        if self.district is not None:
            conds.append(CALL.c.district == self.district)
        if self.agency is not None:
            conds.append(CALL.c.agency_id == self.agency)
        return conds


def offset_segments(zone: ZoneInfo, start: datetime, end: datetime
                    ) -> list[tuple[datetime, int]]:
    """The zone's UTC offsets over [start, end): (from, offset in seconds), in order; the
    first starts at `start`. A change is found day by day, then to the second."""
    def off(t: datetime) -> int:
        delta = t.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    start, end = start.astimezone(UTC), end.astimezone(UTC)
    segments = [(start, off(start))]
    t = start
    while t < end:
        nxt = min(t + timedelta(days=1), end)
        if off(nxt) != segments[-1][1]:
            lo, hi = t, nxt  # off(lo) is the current offset, off(hi) the new one
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if off(mid) == segments[-1][1]:
                    lo = mid
                else:
                    hi = mid
            hi = hi.replace(microsecond=0)
            segments.append((hi, off(hi)))
        t = nxt
    return segments


class Sql:
    """The few expressions that differ between SQLite and PostgreSQL."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def epoch(self, col: Any) -> ColumnElement[int]:
        """Whole seconds since 1970-01-01 UTC."""
        if self.pg:
            return cast(func.floor(extract("epoch", col)), BigInteger)
        # julianday() is several times cheaper than strftime('%s'); the tiny addition
        # absorbs its floating-point error so whole seconds stay whole (floor, as above).
        return cast((func.julianday(col) - 2440587.5) * 86400.0 + 0.0001, Integer)

    def seconds(self, later: Any, earlier: Any) -> ColumnElement[int]:
        """Whole seconds between two times (each taken to its second), the same on both."""
        return self.epoch(later) - self.epoch(earlier)

    def local_epoch(self, scope: Scope) -> ColumnElement[int]:
        segments = offset_segments(scope.zone, scope.start, scope.end)
        offset: ColumnElement[int]
        if len(segments) == 1:
            offset = literal(segments[0][1], Integer)
        else:
            offset = case(*[(CALL.c.opened_at < at, literal(prev, Integer))
                            for (at, _), (_, prev) in zip(segments[1:], segments, strict=False)],
                          else_=literal(segments[-1][1], Integer))
        return self.epoch(CALL.c.opened_at) + offset


def _group(column: Any) -> ColumnElement[str]:
    """A grouping key without bound parameters, so PostgreSQL matches SELECT and GROUP BY."""
    return func.coalesce(column, literal_column(f"'{NONE}'"))


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _hour_name(how: int) -> tuple[str, int]:
    return DAYS[how // 24], how % 24


# -- queries -----------------------------------------------------------------------------
#
# One pass over the range: the calls in scope are copied, narrowed to what the figures
# read and with their local day and hour of week worked out, into a temporary table of
# this connection (SQLite and PostgreSQL alike); every figure is then a grouped query
# over that small table instead of another walk through the call table's wide rows.

_SCOPE = Table(
    "metrics_scope", MetaData(),
    Column("day", Integer), Column("how", Integer), Column("channel", String(32)),
    Column("category", String(64)), Column("destination", String(16)),
    Column("district", String(120)), Column("age_group", String(16)),
    Column("eligible", Boolean), Column("not_served_reason", String(32)),
    Column("no_rule", Boolean), Column("changed", Boolean), Column("person_key", String(64)),
    Column("backup", Boolean), Column("safety_incident", Boolean),
    Column("follow_up", Boolean), Column("referral", Boolean),
    Column("referred_by", String(120)), Column("referred_unit", String(64)),
    Column("cleared", Boolean), Column("disposition", String(64)),
    Column("overridden", Boolean), Column("overridden_by", String(120)),
    Column("override_reason", Text), Column("initial_destination", String(16)),
    *(Column(m, Integer) for m in ("to_decision", "to_en_route", "to_on_scene", "on_scene")),
    Column("program", String(120)), Column("wait_kind", String(16)),
    Column("wait_outcome", String(16)), Column("wait", Integer), Column("held", Integer),
    Column("agency", String(40)),
    prefixes=["TEMPORARY"],
)
T = _SCOPE.c


def _held_seconds(scope: Scope, sql: Sql) -> ColumnElement[int]:
    """Seconds within the scope a call kept one of its program's units: from when a unit
    took it (its wait's end, else its opening) to when the team cleared it or the CAD
    closed it (still held: the scope's end). Null for a call that held none."""
    c = CALL.c
    # (BigInteger: a far month's epoch seconds pass 2**31)
    lo, hi = (literal(int(t.timestamp()), BigInteger) for t in (scope.start, scope.end))
    took = sql.epoch(case((c.wait_outcome == "served", c.wait_ended_at), else_=c.opened_at))
    freed = func.coalesce(sql.epoch(c.cleared_at), sql.epoch(c.closed_at), hi)
    start = case((took < lo, lo), else_=took)
    end = case((freed > hi, hi), else_=freed)
    held = and_(c.holds_unit.is_(True), c.program_id.is_not(None),
                or_(c.wait_kind.is_(None), c.wait_outcome == "served"))
    return case((and_(held, end > start), end - start), else_=None)


async def _fill_scope(conn: AsyncConnection, scope: Scope, sql: Sql) -> None:
    c = CALL.c
    local = sql.local_epoch(scope)
    values: dict[str, Any] = {
        "day": local // 86400, "how": (local // 3600 + 72) % 168, "channel": c.channel,
        "category": _group(c.category), "destination": c.destination,
        "district": _group(c.district), "age_group": _group(c.age_group),
        "eligible": c.eligible, "not_served_reason": c.not_served_reason,
        # No rule classified the call (none matched, or the rules failed): no category.
        "no_rule": c.category.is_(None),
        "changed": and_(c.initial_destination.is_not(None),
                        c.initial_destination != c.destination),
        "person_key": c.person_key, "backup": c.backup_requested_at.is_not(None),
        "safety_incident": c.safety_incident, "follow_up": c.follow_up_of.is_not(None),
        "referral": or_(c.referred_by.is_not(None), c.channel == "officer_referral"),
        "referred_by": _group(c.referred_by), "referred_unit": _group(c.referred_unit),
        "cleared": c.cleared_at.is_not(None), "disposition": c.disposition,
        "overridden": c.overridden_at.is_not(None), "overridden_by": _group(c.overridden_by),
        "override_reason": _group(func.lower(func.trim(c.override_reason))),
        "initial_destination": func.coalesce(c.initial_destination, literal_column("'?'")),
        "to_decision": sql.seconds(c.first_decided_at, c.opened_at),
        "to_en_route": sql.seconds(c.en_route_at, c.opened_at),
        "to_on_scene": sql.seconds(c.on_scene_at, c.opened_at),
        "on_scene": sql.seconds(c.cleared_at, c.on_scene_at),
        "program": _group(c.program_id), "wait_kind": c.wait_kind,
        "wait_outcome": c.wait_outcome, "wait": sql.seconds(c.wait_ended_at, c.waited_from),
        "held": _held_seconds(scope, sql), "agency": _group(c.agency_id),
    }
    await conn.run_sync(lambda sync: _SCOPE.drop(sync, checkfirst=True))
    await conn.run_sync(lambda sync: _SCOPE.create(sync))
    names = list(values)
    await conn.execute(insert(_SCOPE).from_select(
        names, select(*(v.label(k) for k, v in values.items())).where(*scope.where())))


async def _drop_scope(conn: AsyncConnection) -> None:
    await conn.rollback()  # PostgreSQL: the table goes with the transaction
    await conn.run_sync(lambda sync: _SCOPE.drop(sync, checkfirst=True))
    await conn.commit()


_TEAM = T.destination.in_(TEAM)
_ELIGIBLE = T.eligible == true()
_BACKUP = T.backup == true()


def _figure_columns() -> list[Any]:
    return [
        func.count().label("calls"),
        _count_if(_ELIGIBLE).label("eligible"),
        _count_if(and_(_ELIGIBLE, T.destination != "police")).label("eligible_served"),
        _count_if(T.destination == "police").label("police_handled"),
        _count_if(and_(_ELIGIBLE, T.destination == "police")).label("eligible_police"),
        _count_if(T.changed == true()).label("destination_changed"),
        _count_if(_TEAM).label("contacts"),
        func.count(func.distinct(case((_TEAM, T.person_key)))).label("unique_clients"),
        _count_if(and_(_TEAM, T.person_key.is_(None))).label("no_identity"),
        _count_if(and_(T.destination == "call_team", ~_BACKUP)).label("without_police"),
        _count_if(and_(_TEAM, _BACKUP)).label("backup_requests"),
        _count_if(T.safety_incident == true()).label("safety_incidents"),
        _count_if(T.follow_up == true()).label("follow_up_calls"),
    ]


def _figures(group: str, r: Any) -> Figures:
    return Figures(
        group=group, calls=r.calls, eligible=r.eligible, eligible_served=r.eligible_served,
        reach=_share(r.eligible_served, r.eligible), police_handled=r.police_handled,
        police_share_of_eligible=_share(r.eligible_police, r.eligible),
        destination_changed=r.destination_changed, contacts=r.contacts,
        unique_clients=r.unique_clients, contacts_without_identity=r.no_identity,
        without_police=r.without_police, without_police_share=_share(r.without_police,
                                                                      r.contacts),
        backup_requests=r.backup_requests, backup_rate=_share(r.backup_requests, r.contacts),
        safety_incidents=r.safety_incidents, follow_up_calls=r.follow_up_calls)


async def _outcomes(conn: AsyncConnection) -> Figures:
    row = (await conn.execute(select(*_figure_columns()).select_from(_SCOPE))).one()
    return _figures("all", row)


async def _equity(conn: AsyncConnection, column: Any) -> list[Figures]:
    q = select(column.label("g"), *_figure_columns()).group_by(column).order_by(column)
    return [_figures(r.g, r) for r in (await conn.execute(q)).all()]


def _flags(dimension: Literal["district", "age_group"], groups: list[Figures], *,
           threshold: float, min_calls: int) -> list[EquityFlag]:
    flags = []
    rates: dict[str, tuple[str, str, str]] = {
        "police_share_of_eligible": ("eligible", "police_share_of_eligible",
                                     "share of eligible calls handled by police"),
        "backup_rate": ("contacts", "backup_rate", "share of team contacts needing backup"),
        "reach": ("eligible", "reach", "share of eligible calls the team served"),
    }
    for rate, (base, attr, words) in rates.items():
        known = [(g.group, getattr(g, attr)) for g in groups
                 if g.group != NONE and getattr(g, base) >= min_calls
                 and getattr(g, attr) is not None]
        if len(known) < 2:
            continue
        hi = max(known, key=lambda x: x[1])
        lo = min(known, key=lambda x: x[1])
        gap = round(hi[1] - lo[1], 4)
        if gap > threshold:
            flags.append(EquityFlag(
                dimension=dimension, rate=rate, highest_group=hi[0], highest=hi[1],
                lowest_group=lo[0], lowest=lo[1], gap=gap,
                message=(f"The {words} is {hi[1]:.0%} for {dimension.replace('_', ' ')} "
                         f"{hi[0]} and {lo[1]:.0%} for {lo[0]}: a gap of {gap:.0%}, over "
                         f"the {threshold:.0%} threshold.")))
    return flags


async def _volume(conn: AsyncConnection) -> tuple[list[VolumeDay], list[VolumeHour]]:
    epoch0 = date(1970, 1, 1)
    # Per local day by channel, category and destination: one grouped query.
    keys = (T.day, T.channel, T.category, T.destination)
    q = select(*keys, func.count().label("n")).group_by(*keys)
    sums: dict[tuple[str, date, str], int] = defaultdict(int)
    for r in (await conn.execute(q)).all():
        day = epoch0 + timedelta(days=int(r.day))
        for dim in ("channel", "category", "destination"):
            sums[(dim, day, getattr(r, dim))] += r.n
    order = {"channel": 0, "category": 1, "destination": 2}
    daily = [VolumeDay(day=day, dimension=dim, value=value, calls=n)  # type: ignore[arg-type]
             for (dim, day, value), n in sorted(sums.items(),
                                                key=lambda kv: (order[kv[0][0]], kv[0][1:]))]
    # Per hour of week by channel, category and destination: one grouped query.
    keys = (T.how, T.channel, T.category, T.destination)
    q = select(*keys, func.count().label("n")).group_by(*keys)
    per_hour: dict[tuple[str, int, str], int] = defaultdict(int)
    for r in (await conn.execute(q)).all():
        for dim in ("channel", "category", "destination"):
            per_hour[(dim, int(r.how), getattr(r, dim))] += r.n
    hourly = []
    for (dim, how, value), n in sorted(per_hour.items(),
                                       key=lambda kv: (order[kv[0][0]], kv[0][1:])):
        dname, hour = _hour_name(how)
        hourly.append(VolumeHour(hour_of_week=how, day=dname, hour=hour,
                                 dimension=dim, value=value, calls=n))  # type: ignore[arg-type]
    return daily, hourly


_MEASURES = ("to_decision", "to_en_route", "to_on_scene", "on_scene")


def _percentiles(hist: Any, keys: tuple[str, ...]) -> Select[Any]:
    """Per group of `keys`, from a histogram of whole values (columns v, c: the count of
    each value), the count n and the values at ranks floor(p*(n-1))+1 and the one after,
    for p = 0.5 and 0.9: a running count (SUM ... OVER) finds them, on both databases."""
    part = [hist.c[k] for k in keys]
    running = select(
        *part, hist.c.v,
        cast(func.sum(hist.c.c).over(partition_by=part, order_by=hist.c.v,
                                     rows=(None, 0)), BigInteger).label("cum"),
        cast(func.sum(hist.c.c).over(partition_by=part), BigInteger).label("n"),
    ).subquery("r")
    r = running.c
    cols = [*(r[k] for k in keys), func.max(r.n).label("n")]
    for tag, tenth in (("p50", 5), ("p90", 9)):
        rank = (r.n - 1) * tenth // 10 + 1  # percentile_cont: position p*(n-1), 0-based
        cols.append(func.min(case((r.cum >= rank, r.v))).label(f"{tag}_lo"))
        cols.append(func.min(case((r.cum >= rank + 1, r.v))).label(f"{tag}_hi"))
    return select(*cols).group_by(*(r[k] for k in keys))


def _interpolated(row: Any) -> tuple[float, float]:
    """percentile_cont's p50 and p90 from a `_percentiles` row."""
    n = int(row.n)
    values = []
    for tag, tenth in (("p50", 5), ("p90", 9)):
        frac = ((n - 1) * tenth % 10) / 10
        lo, hi = float(getattr(row, f"{tag}_lo")), getattr(row, f"{tag}_hi")
        values.append(lo if hi is None or frac == 0 else lo + frac * (float(hi) - lo))
    return values[0], values[1]


async def _timeliness(conn: AsyncConnection) -> list[Timeliness]:
    """Median and 90th percentile with percentile_cont's interpolation, exact over whole
    seconds: each (measure, group) is counted per distinct value, and a running count
    (SUM ... OVER) finds the values at ranks floor(p*(n-1))+1 and the one after."""
    # Counts per (measure, destination, category, value): one pass over the scope per
    # measure; every grouping below adds these up.
    base = union_all(*(
        select(literal_column(f"'{m}'").label("measure"), T.destination, T.category,
               T[m].label("v"), func.count().label("c"))
        .where(T[m].is_not(None), T[m] >= 0).group_by(T.destination, T.category, T[m])
        for m in _MEASURES)).cte("b")
    parts: list[Select[Any]] = []
    for dim in ("all", "destination", "category"):
        grp = literal_column("'all'") if dim == "all" else base.c[dim]
        parts.append(select(base.c.measure, literal_column(f"'{dim}'").label("dim"),
                            cast(grp, String(64)).label("grp"), base.c.v,
                            func.sum(base.c.c).label("c"))
                     .group_by(base.c.measure, base.c.v,
                               *([] if dim == "all" else [base.c[dim]])))
    hist = union_all(*parts).subquery("h")
    out = []
    for row in (await conn.execute(_percentiles(hist, ("measure", "dim", "grp")))).all():
        p50, p90 = _interpolated(row)
        out.append(Timeliness(measure=row.measure, dimension=row.dim, value=row.grp,
                              calls=int(row.n), median_seconds=round(p50, 1),
                              p90_seconds=round(p90, 1)))
    order = {m: i for i, m in enumerate(_MEASURES)}
    out.sort(key=lambda t: (order[t.measure], t.dimension != "all", t.dimension, t.value))
    return out


async def _programs(conn: AsyncConnection) -> tuple[list[ProgramRow], list[QueueWaitRow]]:
    """Per program: eligible calls, served, queued, deferred and how waits ended (one
    grouped query), and the waits' p50/p90 (one more, over waits that ended), also per
    program and category."""
    # A call still waiting is not served yet.
    served = and_(_ELIGIBLE, T.destination != "police",
                  or_(T.wait_kind.is_(None), T.wait_outcome == "served"))
    q = (select(T.program, _count_if(_ELIGIBLE).label("eligible"),
                _count_if(served).label("served"),
                _count_if(T.wait_kind == "queued").label("queued"),
                _count_if(T.wait_kind == "deferred").label("deferred"),
                _count_if(T.wait_outcome == "served").label("waited_served"),
                _count_if(T.wait_outcome == "fell_back").label("fell_back"),
                func.coalesce(func.sum(T.held), 0).label("held"))
         .where(or_(_ELIGIBLE, T.wait_kind.is_not(None))).group_by(T.program))
    rows = (await conn.execute(q)).all()
    ended = (T.wait_outcome.is_not(None), T.wait.is_not(None), T.wait >= 0)
    hist = (select(T.program, T.wait.label("v"), func.count().label("c"))
            .where(*ended).group_by(T.program, T.wait).subquery("h"))
    waits = {r.program: r for r in (await conn.execute(_percentiles(hist, ("program",))))}
    by_category = (select(T.program, T.category, T.wait.label("v"), func.count().label("c"))
                   .where(*ended).group_by(T.program, T.category, T.wait).subquery("hc"))
    per_category = []
    for r in (await conn.execute(_percentiles(by_category, ("program", "category")))).all():
        c50, c90 = _interpolated(r)
        per_category.append(QueueWaitRow(program=r.program, category=r.category,
                                         waits=int(r.n), wait_p50_minutes=round(c50 / 60, 1),
                                         wait_p90_minutes=round(c90 / 60, 1)))
    per_category.sort(key=lambda w: (w.program == NONE, w.program, w.category))
    out = []
    for r in sorted(rows, key=lambda r: (r.program == NONE, r.program)):
        w = waits.get(r.program)
        p50, p90 = _interpolated(w) if w is not None else (None, None)
        out.append(ProgramRow(
            program=r.program, eligible=r.eligible, served=r.served,
            reach=_share(r.served, r.eligible), queued=r.queued, deferred=r.deferred,
            waited_served=r.waited_served, fell_back=r.fell_back,
            waits=int(w.n) if w is not None else 0,
            wait_p50_minutes=None if p50 is None else round(p50 / 60, 1),
            wait_p90_minutes=None if p90 is None else round(p90 / 60, 1),
            unit_hours_busy=round(int(r.held) / 3600, 3)))
    return out, per_category


async def _coverage(conn: AsyncConnection
                    ) -> tuple[list[GapReason], list[GapCell], list[GapDistrict]]:
    not_served = and_(_ELIGIBLE, T.not_served_reason.is_not(None))
    reason = case((not_served, T.not_served_reason), else_=literal_column("'no_rule'"))
    # One grouped query (hour of week, district, reason); the three views are its sums.
    inner = select(T.how, T.district, reason.label("reason")).where(
        or_(not_served, T.no_rule == true())).subquery("c")
    q = select(inner.c.how, inner.c.district, inner.c.reason, func.count().label("n")
               ).group_by(inner.c.how, inner.c.district, inner.c.reason)
    by_reason = {r: 0 for r in REASONS}
    by_cell: dict[tuple[int, str], int] = defaultdict(int)
    by_district: dict[tuple[str, str], int] = defaultdict(int)
    for r in (await conn.execute(q)).all():
        by_reason[r.reason] = by_reason.get(r.reason, 0) + r.n
        by_cell[(int(r.how), r.reason)] += r.n
        by_district[(r.district, r.reason)] += r.n
    reasons = [GapReason(reason=k, calls=v) for k, v in by_reason.items()]
    cells = []
    for (how, why), n in sorted(by_cell.items()):
        day, hour = _hour_name(how)
        cells.append(GapCell(hour_of_week=how, day=day, hour=hour, reason=why, calls=n))
    districts = [GapDistrict(district=d, reason=why, calls=n)
                 for (d, why), n in sorted(by_district.items())]
    return reasons, cells, districts


def _referral_columns() -> list[Any]:
    cols = [func.count().label("referrals"), _count_if(_TEAM).label("to_team"),
            _count_if(and_(T.destination == "call_team", ~_BACKUP)).label("without_police"),
            _count_if(_BACKUP).label("backup_requests"),
            _count_if(T.cleared == true()).label("cleared"),
            _count_if(T.safety_incident == true()).label("safety_incidents")]
    for d in ("resolved_on_scene", "referred_to_services", "transported", "police_took_over",
              "refused_services"):
        cols.append(_count_if(T.disposition == d).label(d))
    return cols


def _summed(rows: list[Any], key: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Add up grouped rows by one of their keys; most first."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        acc = out.setdefault(getattr(r, key), dict.fromkeys(fields, 0))
        for f in fields:
            acc[f] += getattr(r, f)
    ranked = sorted(out.items(), key=lambda kv: (-kv[1][fields[0]], kv[0]))
    return [{"group": g, **v} for g, v in ranked[:200]]


_REFERRAL_FIELDS = tuple(k for k in ReferralRow.model_fields if k != "group")
_OVERRIDE_FIELDS = tuple(k for k in OverrideRow.model_fields if k != "group")


async def _referrals(conn: AsyncConnection) -> tuple[list[ReferralRow], list[ReferralRow]]:
    """Per officer and per unit: one query grouped by both."""
    q = (select(T.referred_by.label("officer"), T.referred_unit.label("unit"),
                *_referral_columns())
         .where(T.referral == true()).group_by(T.referred_by, T.referred_unit))
    rows = list((await conn.execute(q)).all())
    return ([ReferralRow(**d) for d in _summed(rows, "officer", _REFERRAL_FIELDS)],
            [ReferralRow(**d) for d in _summed(rows, "unit", _REFERRAL_FIELDS)])


async def _overrides(conn: AsyncConnection
                     ) -> tuple[list[OverrideRow], list[OverrideRow], list[OverrideRow]]:
    """By dispatcher, by reason, by change of destination: one query grouped by all three."""
    keys = (T.overridden_by, T.override_reason, T.initial_destination, T.destination)
    q = (select(*keys, func.count().label("overrides"),
                _count_if(T.destination == "police").label("to_police"),
                _count_if(_TEAM).label("to_team"),
                _count_if(T.cleared == true()).label("cleared"),
                _count_if(_BACKUP).label("backup_requests"),
                _count_if(T.safety_incident == true()).label("safety_incidents"))
         .where(T.overridden == true()).group_by(*keys))
    rows = [SimpleNamespace(**r._asdict(), who=r.overridden_by, why=r.override_reason,
                            change=f"{r.initial_destination} -> {r.destination}")
            for r in (await conn.execute(q)).all()]
    return tuple([OverrideRow(**d) for d in _summed(rows, key, _OVERRIDE_FIELDS)]
                 for key in ("who", "why", "change"))  # type: ignore[return-value]


async def _follow_ups(conn: AsyncConnection, scope: Scope) -> FollowUps:
    """Follow-ups (the field workflow's table, migration 0005) scheduled (created) and
    completed within the range, for live calls (of the district); and of them, those an
    exclusion's `follow_up` scheduled (migration 0027)."""
    fu = table("follow_up", column("call_id"), column("status"), column("exclusion"),
               column("created_at", UTCDateTime()), column("completed_at", UTCDateTime()))
    created = and_(fu.c.created_at >= scope.start, fu.c.created_at < scope.end)
    completed = and_(fu.c.status == "completed", fu.c.completed_at >= scope.start,
                     fu.c.completed_at < scope.end)
    of_call = [CALL.c.id == fu.c.call_id, CALL.c.purpose == "live"]
    if scope.district is not None:
        of_call.append(CALL.c.district == scope.district)
    if scope.agency is not None:
        of_call.append(CALL.c.agency_id == scope.agency)
    # From the (small) follow_up table, each row checked against its call by primary key.
    policy = fu.c.exclusion.is_not(None)
    q = (select(_count_if(created).label("scheduled"), _count_if(completed).label("completed"),
                _count_if(and_(created, policy)).label("after_exclusion_scheduled"),
                _count_if(and_(completed, policy)).label("after_exclusion_completed"))
         .select_from(fu).where(or_(created, completed),
                                select(CALL.c.id).where(*of_call).exists()))
    r = (await conn.execute(q)).one()
    return FollowUps(**r._mapping)


def _with_shifts(rows: list[ProgramRow], policy: CompiledPolicy | None, scope: Scope,
                 roster: dict[str, float]) -> list[ProgramRow]:
    """Each program's available unit-hours over the scope and its utilisation: a program
    that keeps a roster (`roster`: its units' seconds on duty), its units' hours on duty;
    another, its hours in the policy in force times its units."""
    ps = policy.programs if policy is not None else None
    out = []
    for row in rows:
        if row.program in roster:
            hours, source = roster[row.program] / 3600, "roster"
        else:
            i = ps.position(row.program) if ps is not None else None
            units = ps.programs[i].units if ps is not None and i is not None else None
            if policy is None or ps is None or i is None or not units:
                out.append(row)
                continue
            hours = duty_seconds(ps.weeks[i], ps.days_off[i], scope.start, scope.end,
                                 policy.zone) * units / 3600
            source = "policy"
        out.append(row.model_copy(update={
            "unit_hours_available": round(hours, 3), "units_from": source,
            "utilisation": round(row.unit_hours_busy / hours, 4) if hours else None}))
    return out


async def compute(engine: AsyncEngine, scope: Scope, *, supervisor: bool = True,
                  threshold: float = GAP_THRESHOLD, min_calls: int = GAP_MIN_CALLS,
                  policy: CompiledPolicy | None = None,
                  care_confirm_hours: float = 48.0, by_agency: bool = False) -> Metrics:
    """Every figure for the scope. Analysts (supervisor=False) get no per-person tables.
    `policy`: the one in force, for the programs' hours and units (utilisation);
    `care_confirm_hours`: a handoff connected within it counts as confirmed in time;
    `by_agency`: each agency's outcome figures side by side too."""
    sql = Sql(engine.dialect.name)
    async with engine.connect() as conn:
        if sql.pg:
            # One snapshot for every table of the answer, while calls keep coming in.
            await conn.execution_options(isolation_level="REPEATABLE READ")
        await _fill_scope(conn, scope, sql)
        try:
            daily, hourly = await _volume(conn)
            outcomes = await _outcomes(conn)
            timeliness = await _timeliness(conn)
            reasons, cells, districts = await _coverage(conn)
            by_district = await _equity(conn, T.district)
            by_age = await _equity(conn, T.age_group)
            agencies = await _equity(conn, T.agency) if by_agency else None
            officers, by_unit = await _referrals(conn)
            dispatchers, reasons_, by_change = await _overrides(conn)
            follow_ups = await _follow_ups(conn, scope)
            programs, queue_waits = await _programs(conn)
            recommended, by_assigner = await recommendation_figures(conn, scope.where())
            # Duty counts to the range's end or now, whichever is sooner.
            units, on_duty = await unit_figures(conn, scope.where(), scope.start,
                                                min(scope.end, utcnow()), scope.agency)
            roster = {p: on_duty.get(p, 0.0)
                      for p in await roster_programs(conn, scope.agency) | set(on_duty)}
            programs = _with_shifts(programs, policy, scope, roster)
            care = await care_figures(conn, scope.where(), care_confirm_hours)
            transfers, transfer_reasons = await transfer_figures(conn, scope.where())
        finally:
            await _drop_scope(conn)
    # Per-person performance figures and free text: supervisors only.
    by_officer = officers if supervisor else None
    by_dispatcher = dispatchers if supervisor else None
    by_reason = reasons_ if supervisor else None
    flags = (_flags("district", by_district, threshold=threshold, min_calls=min_calls)
             + _flags("age_group", by_age, threshold=threshold, min_calls=min_calls))
    return Metrics(
        start=scope.start, end=scope.end, district=scope.district, timezone=scope.zone.key,
        agency=scope.agency, by_agency=agencies,
        volume_daily=daily, volume_hour_of_week=hourly, outcomes=outcomes,
        follow_ups=follow_ups, timeliness=timeliness, coverage_by_reason=reasons,
        coverage_heatmap=cells, coverage_by_district=districts, equity_district=by_district,
        equity_age_group=by_age, equity_flags=flags, referrals_by_officer=by_officer,
        referrals_by_unit=by_unit, overrides_by_dispatcher=by_dispatcher,
        overrides_by_reason=by_reason, overrides_by_change=by_change, programs=programs,
        queue_waits=queue_waits, recommendations=recommended,
        recommendations_by_assigner=by_assigner if supervisor else None, units=units,
        care_by_service=care.by_service, care_by_district=care.by_district,
        care_by_age_group=care.by_age_group,
        care_declined_reasons=care.declined_reasons if supervisor else None,
        transfers=transfers, transfer_reasons=transfer_reasons if supervisor else None)


async def my_referrals(engine: AsyncEngine, officer_id: str, *, start: datetime | None = None,
                       end: datetime | None = None, limit: int = 500,
                       agency: str | None = None) -> list[MyReferral]:
    """An officer's own referrals and what became of them (live calls only; of one
    agency, when given)."""
    c = CALL.c
    conds = [c.purpose == "live", c.referred_by == officer_id]
    if agency is not None:
        conds.append(c.agency_id == agency)
    if start is not None:
        conds.append(c.opened_at >= start)
    if end is not None:
        conds.append(c.opened_at < end)
    q = (select(c.id, c.opened_at, c.district, c.category, c.destination, c.team_status,
                c.disposition, c.outcome).where(*conds)
         .order_by(c.opened_at.desc()).limit(limit))
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [MyReferral(call_id=r.id, opened_at=as_utc(r.opened_at), district=r.district,
                       category=r.category, destination=r.destination,
                       team_status=r.team_status, disposition=r.disposition,
                       outcome=r.outcome) for r in rows]


def month_range(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """'YYYY-MM' -> the month's [start, end) in the program's timezone."""
    year, mon = (int(p) for p in month.split("-"))
    start = datetime(year, mon, 1, tzinfo=zone)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return start, end


def heatmap_grid(cells: list[GapCell]) -> list[list[int]]:
    """7 x 24 counts (Monday first) of not-served calls, every reason together."""
    grid = [[0] * 24 for _ in range(7)]
    for cell in cells:
        grid[cell.hour_of_week // 24][cell.hour_of_week % 24] += cell.calls
    return grid


def daily_totals(rows: list[VolumeDay], dimension: str) -> dict[str, dict[date, int]]:
    out: dict[str, dict[date, int]] = defaultdict(dict)
    for r in rows:
        if r.dimension == dimension:
            out[r.value][r.day] = r.calls
    return dict(out)


def fmt_seconds(s: float | None) -> str:
    if s is None or math.isnan(s):
        return "–"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
