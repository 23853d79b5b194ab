"""Replay a city's export into a running Liaison, as its CAD would have sent it.

Rows are mapped with a profile, sent in CAD-time order to `POST /v1/cad/events`
(paced at a rate, or as fast as the server takes them with several events in flight, yet
decided as one at a time in CAD-time order would be: see `Capacity`), and every row is
accounted for: accepted, skipped (the profile's reason) or rejected (the server's 422
reason, or why it was not sent). Event ids come from the row, so a re-run is answered
from what the server already stored and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO
from zoneinfo import ZoneInfo

import httpx
from pydantic import ValidationError

from adapters.exports.mapping import Mapped, Mapper
from adapters.exports.profile import zone_warning
from routing.availability import within_hours
from rules.models import Hours, Program
from service.access.client_auth import auth_headers, unauthorised_hint
from service.store.tables import DEFAULT_AGENCY

NONE = "(none)"
EVENTS_PATH = "/v1/cad/events"
NOT_SENT_UNREACHABLE = "not sent: the server stopped answering"
# A connection error is retried with these pauses, then the replay stops.
TRANSPORT_BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0)
# A 503 (the writer's queue is full) or a 429 (the key's rate limit) is retried after its
# Retry-After, this many times.
BUSY_RETRIES = 30
BUSY = (429, 503)


def reject_reason(detail: Iterable[dict[str, Any]]) -> str:
    """One line from a 422 detail: every field and why."""
    return "; ".join(f"{d.get('field', '?')}: {d.get('reason', '?')}" for d in detail)


class ServerUnavailable(Exception):
    """Liaison cannot be reached, or says it cannot take events."""


class AgencyRefused(Exception):
    """The server refuses the agency the rows are for (none such, or not the key's): every
    row would be refused alike, so the replay stops at the first."""


EXAMPLES = 3
CALL_COLUMNS = ("incident_id", "call_id", "occurred_at", "destination", "category",
                "not_served_reason")
# Added for a policy of programs: the program that served the call (or kept it, or was
# tried first) and whether it waited (queued or deferred) before its final decision.
PROGRAM_COLUMNS = ("program_id", "waited")


@dataclass(frozen=True)
class CallRow:
    """One decided call as `--calls-csv` writes it (replay and simulate alike)."""

    incident_id: str
    call_id: str  # the server's; simulate has none
    occurred_at: datetime | None
    destination: str
    category: str
    not_served_reason: str
    row: int = 0  # the export's row, to keep calls at one time in the export's order
    program_id: str = ""
    waited: str = ""  # "true" or "false"; empty: not known


def cad_time(c: CallRow) -> tuple[bool, float, int]:
    """Sort key: CAD-time order, calls at one time in the export's order, untimed last."""
    return (c.occurred_at is None, c.occurred_at.timestamp() if c.occurred_at else 0.0, c.row)


def write_calls_csv(calls: Iterable[CallRow], out: TextIO, *, programs: bool = False
                    ) -> int:
    """The calls as CSV (CALL_COLUMNS, and PROGRAM_COLUMNS with `programs`, in CAD-time
    order); how many."""
    rows = sorted(calls, key=cad_time)
    columns = CALL_COLUMNS + (PROGRAM_COLUMNS if programs else ())
    w = csv.writer(out)
    w.writerow(columns)
    for c in rows:
        values = {**vars(c), "occurred_at": c.occurred_at.isoformat() if c.occurred_at else ""}
        w.writerow([values[col] for col in columns])
    return len(rows)


@dataclass
class ReplaySummary:
    profile: str
    export: str
    url: str
    rows: int = 0
    accepted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    events: int = 0
    destinations: Counter[str] = field(default_factory=Counter)
    categories: Counter[tuple[str, str]] = field(default_factory=Counter)
    not_served: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    stopped: str | None = None  # why the replay stopped early
    agency: str | None = None  # whose calls the rows are (--agency or the profile's)
    agency_refused: str | None = None  # the server's reason, when it refused that agency
    order: Literal["cad", "sent"] = "cad"
    out_of_step: int = 0  # decisions that showed the server's units moving with other calls
    warnings: list[str] = field(default_factory=list)
    # Three rows for each reason a row was rejected: rows alike count as one reason.
    examples: dict[str, list[str]] = field(default_factory=dict)
    # In CAD-time order (`cad_time`) once the replay is done, not in the order rows were
    # answered: with events in flight that order is the network's, not the export's.
    calls: list[CallRow] = field(default_factory=list)

    def example(self, reason: str, m: Mapped, value: str | None = None) -> None:
        got = self.examples.setdefault(reason, [])
        if len(got) < EXAMPLES:
            got.append(f"row {m.row} (incident {m.incident_id or '?'})"
                       + (f": '{value}'" if value is not None else ""))

    @property
    def accounted(self) -> int:
        return self.accepted + self.skipped.total() + self.rejected.total()

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        by_category: dict[str, dict[str, int]] = {}
        for (category, destination), n in sorted(self.categories.items()):
            by_category.setdefault(category, {})[destination] = n
        return {
            "profile": self.profile, "export": self.export, "url": self.url,
            "agency": self.agency,
            "rows": self.rows, "accepted": self.accepted,
            "skipped": dict(self.skipped.most_common()),
            "rejected": dict(self.rejected.most_common()),
            "events": self.events, "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "destinations": dict(self.destinations.most_common()),
            "categories": by_category,
            "not_served": dict(self.not_served.most_common()),
            "stopped": self.stopped,
            "order": self.order, "out_of_step": self.out_of_step,
            "warnings": self.warnings, "examples": self.examples,
        }

    def render(self) -> str:
        w = 8
        out = [f"replay {self.profile} -> {self.url}"
               + (f" (agency {self.agency})" if self.agency else ""),
               f"  {self.rows:>{w},}  rows read from {self.export} in {self.seconds:.1f} s "
               f"({self.rows_per_second:,.0f} rows/s; {self.events:,} events posted)",
               f"  {self.accepted:>{w},}  accepted"]
        for title, counts in (("skipped", self.skipped), ("rejected", self.rejected)):
            out.append(f"  {counts.total():>{w},}  {title}")
            for reason, n in counts.most_common():
                out.append(f"  {'':>{w}}  {n:>{w},}  {reason}")
                out.extend(f"  {'':>{w}}  {'':>{w}}    e.g. {e}"
                           for e in self.examples.get(reason, []))
        if self.destinations:
            out.append("  decisions by destination: " + ", ".join(
                f"{d} {n:,}" for d, n in self.destinations.most_common()))
            dests = sorted(self.destinations)
            cats = sorted({c for c, _ in self.categories}, key=lambda c: (c == NONE, c))
            width = max(len("category"), *(len(c) for c in cats))
            out.append("  decisions by category:")
            out.append(f"      {'category':<{width}}" + "".join(f"  {d:>{w + 1}}" for d in dests))
            for c in cats:
                out.append(f"      {c:<{width}}" + "".join(
                    f"  {self.categories[(c, d)]:>{w + 1},}" for d in dests))
        if self.not_served:
            out.append("  eligible for the team but not served: " + ", ".join(
                f"{r} {n:,}" for r, n in self.not_served.most_common()))
        out.append("  decided in CAD-time order" if self.order == "cad" else
                   "  sent in CAD-time order, decided as they arrived (--unordered)")
        if self.out_of_step:
            out.append("  the server's team units moved with calls this replay did not send: "
                       "sent one event at a time from then on")
        out.extend(f"  WARNING: {w}" for w in self.warnings)
        if self.stopped:
            out.append(f"  STOPPED EARLY: {self.stopped}")
        return "\n".join(out)


class Progress:
    """A one-line progress bar on a terminal; on anything else a line every tenth."""

    def __init__(self, total: int, stream: TextIO | None, label: str) -> None:
        self.total, self.stream, self.label = max(total, 1), stream, label
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._tty = bool(stream and stream.isatty())
        self._next_tenth = 1

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.stream is None:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._drawn >= 0.1 or self.done >= self.total:
                self._drawn = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        elif self.done * 10 >= self._next_tenth * self.total:
            self._next_tenth = self.done * 10 // self.total + 1
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        frac = min(self.done / self.total, 1.0)
        rate = self.done / max(now - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * int(frac * 30)
        return (f"{self.label} [{bar:<30}] {self.done:,}/{self.total:,} rows sent "
                f"{rate:,.0f}/s eta {int(eta) // 60}:{int(eta) % 60:02d} ")

    def close(self) -> None:
        if self.stream is not None and self._tty:
            self.stream.write("\r" + self._line(time.monotonic()) + "\n")
            self.stream.flush()


async def check_server(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """Liaison's health report; ServerUnavailable unless it answers ready."""
    try:
        r = await client.get("/v1/health", timeout=10)
    except httpx.HTTPError as exc:
        raise ServerUnavailable(f"cannot reach Liaison at {url}: {exc!r}") from None
    if r.status_code != 200:
        raise ServerUnavailable(f"Liaison at {url} is not ready ({r.status_code}): "
                                f"{r.text[:300]}")
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def policy_zone(health: dict[str, Any]) -> tuple[str, str] | None:
    """(policy version, its program.timezone) in force at the server, as its health report
    names them; None from a server that does not say."""
    policy = health.get("policy")
    if not isinstance(policy, dict):
        return None
    version, zone = policy.get("version"), policy.get("timezone")
    return (version, zone) if isinstance(version, str) and isinstance(zone, str) else None


def _retry_after(r: httpx.Response) -> float:
    try:
        return min(max(float(r.headers.get("Retry-After", "1")), 0.05), 30.0)
    except ValueError:
        return 1.0


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    """POST one event, retrying what a CAD retries: a dropped connection, a 503 and a 429.
    The event id is the same on every try, so a retry is never stored twice."""
    failures = busy = 0
    while True:
        try:
            r = await client.post(EVENTS_PATH, json=body)
        except httpx.TransportError as exc:
            if failures >= len(TRANSPORT_BACKOFF):
                raise ServerUnavailable(f"no answer after {failures + 1} tries: "
                                        f"{exc!r}") from None
            await asyncio.sleep(TRANSPORT_BACKOFF[failures])
            failures += 1
            continue
        if r.status_code in BUSY and busy < BUSY_RETRIES:
            busy += 1
            await asyncio.sleep(_retry_after(r))
            continue
        return r


def _why(r: httpx.Response) -> str:
    if hint := unauthorised_hint(r.status_code):
        return f"HTTP {r.status_code}: {hint}"
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code}: {r.text[:200]}"
    if r.status_code == 422 and isinstance(body, dict) and isinstance(body.get("detail"), list):
        return reject_reason(body["detail"])
    message = (body.get("message") or body.get("error")) if isinstance(body, dict) else body
    return f"HTTP {r.status_code}: {message}"


def _agency_reason(r: httpx.Response) -> str | None:
    """The server's reason when a 422 is about the event's `agency`."""
    try:
        detail = r.json().get("detail")
    except (ValueError, AttributeError):
        return None
    reasons = [d.get("reason", "?") for d in detail if isinstance(d, dict)
               and d.get("field") == "agency"] if isinstance(detail, list) else []
    return "; ".join(reasons) or None


def _agency_zone(summary: ReplaySummary, timeline: list[tuple[_Row, int, dict[str, Any]]],
                 mapper: Mapper, first: datetime | None) -> None:
    """The zone warning for another agency's policy, from its first decision (which
    names that policy's version and time zone)."""
    decision = next((row.decision for row, k, _ in timeline
                     if k == 0 and row.decision), None)
    program = (decision or {}).get("program") or {}
    zone, version = program.get("timezone"), (decision or {}).get("policy_version")
    if isinstance(zone, str) and isinstance(version, str) and version != "none":
        if warning := zone_warning(mapper.profile, zone, version, first):
            summary.warnings.append(warning)


@dataclass
class _Row:
    """A row being sent: its events go out in CAD-time order among all rows' events."""

    mapped: Mapped
    pending: int
    created: asyncio.Event = field(default_factory=asyncio.Event)
    decision: dict[str, Any] | None = None
    call_id: str | None = None
    rejected: str | None = None


def cad_order(rows: list[Mapped]) -> list[tuple[_Row, int, dict[str, Any]]]:
    """Every event to send, in the order the CAD would have sent it: by CAD time, a call's
    created event before its closed event (even where the export closes it earlier)."""
    out = []
    for m in rows:
        state = _Row(m, pending=len(m.events))
        opened = m.at.timestamp() if m.at else 0.0
        for k, event in enumerate(m.events):
            at = opened if k == 0 else max(opened, m.closed.timestamp() if m.closed else opened)
            out.append(((at, k, m.row), state, k, event))
    out.sort(key=lambda t: t[0])
    return [(state, k, event) for _, state, k, event in out]


def holds_unit(decision: dict[str, Any]) -> bool:
    """The call keeps a team field unit busy, as the server counts it."""
    return (decision.get("destination") in ("call_team", "joint")
            and bool(decision.get("needs_field_unit", True)))


# How an event may be sent beside the others in flight (see `Capacity`).
Kind = Literal["alone", "create", "frees", "free"]
# What a created event sent beside others is sure to see: units free, or none free.
Side = Literal["free", "full", "alone"]


@dataclass
class Capacity:
    """What the replay knows of the team's units, from the server's own answers, so that
    several events can be in flight while every decision that reads the units is made as
    a one-at-a-time replay in CAD-time order would make it.

    A created event may be decided before or after the others in flight: it is sent only
    when every order gives the same answer, that is when every created event in flight sees
    a unit free whatever else in flight is decided first (`busy + creates <= units`), or
    none free (`busy - freeing >= units`, closes in flight that free a unit counted).
    A closed event that frees a unit keeps to the same rule. Other closed events, and
    created events outside the team's hours (the answers name the program's hours and
    zone), change nothing the rules read. Until the program is known, after a call is sent
    a second time (the export repeats an incident), or once an answer contradicts what was
    expected (another source is sending, the policy changed), an event goes alone."""

    limit: int
    ordered: bool = True  # False: any event goes whenever a connection is free
    units: int | None = None  # the team's units, from the latest answer
    program: Program | None = None  # its hours and zone, from the latest answer
    _zone: ZoneInfo | None = None
    _hours_text: str = ""
    busy: int = 0  # units held, after every answered event
    creates: int = 0  # created events in flight
    freeing: int = 0  # closed events in flight that free a unit
    in_flight: int = 0
    alone: bool = False  # the event in flight must be the only one
    strict: bool = False  # out of step with the server: every event alone from now on
    out_of_step: int = 0

    def kind(self, k: int, first_time: bool, holds: bool, at: datetime | None) -> Kind:
        if not self.ordered:
            return "free"
        if self.strict or self.units is None or (k == 0 and not first_time):
            return "alone"
        if k == 0:
            return "create" if self.in_hours(at) else "free"
        return "frees" if holds else "free"

    def in_hours(self, at: datetime | None) -> bool:
        """Within the team's hours, or not known to be outside them."""
        if self.program is None or self._zone is None or at is None:
            return True
        return within_hours(self.program, at.astimezone(self._zone))

    def _learn(self, program: dict[str, Any]) -> None:
        """The program as a decision states it: units, and hours as `08:00-24:00 mon,tue`."""
        if isinstance(program.get("units_total"), int):
            self.units = program["units_total"]
        text, zone = program.get("hours"), program.get("timezone")
        if not isinstance(text, str) or not isinstance(zone, str) or text == self._hours_text:
            return
        self._hours_text = text
        try:
            if text.startswith("daily ") and "," not in text and ";" not in text:
                # A program's hours as the programs format says them: one daily shift.
                window, days = text.removeprefix("daily "), "mon,tue,wed,thu,fri,sat,sun"
            else:
                window, days = text.split(" ", 1)
            start, end = window.split("-")
            self.program = Program(phase=1, timezone=zone, units=self.units or 0,
                                   hours=Hours.model_validate({"start": start, "end": end,
                                                               "days": days.split(",")}))
            self._zone = ZoneInfo(zone)
        except (ValueError, ValidationError):
            self.program = None  # unread: every call may be within hours

    def side(self, kind: Kind) -> Side | None:
        """What the event may be sent with now: None to wait for answers."""
        if self.alone or self.in_flight >= self.limit:
            return None
        if kind == "alone":
            return "alone" if self.in_flight == 0 else None
        units = self.units or 0
        creates = self.creates + (kind == "create")
        freeing = self.freeing + (kind == "frees")
        if creates == 0 or kind == "free" or self.busy + creates <= units:
            return "free"
        if self.busy - freeing >= units:
            return "full"
        return None

    def send(self, kind: Kind) -> None:
        self.in_flight += 1
        self.alone = kind == "alone"
        self.creates += kind == "create"
        self.freeing += kind == "frees"

    def answered(self, kind: Kind, side: Side, k: int, decision: dict[str, Any] | None,
                 held_before: bool) -> None:
        """An event is answered: `decision` is its call's, None if it was not stored;
        `held_before`: the call held a unit before (for a closed event, `k` > 0)."""
        self.in_flight -= 1
        self.alone = False
        self.creates -= kind == "create"
        self.freeing -= kind == "frees"
        if decision is None or not self.ordered:
            return
        if k > 0:
            self.busy -= held_before  # a closed call's unit is free
            return
        program = decision.get("program") or {}
        self._learn(program)
        holds = holds_unit(decision)
        if kind == "free" and (holds or program.get("within_hours") is True):
            # Sent as outside the team's hours, it was not: one event at a time from now.
            self.out_of_step += 1
            self.strict = True
        elif kind == "alone":
            # Decided with nothing else in flight: the server's own count is exact.
            if isinstance(program.get("units_busy"), int):
                self.busy = program["units_busy"] + holds
        elif kind == "create":
            self.busy += holds
            if (side == "free" and decision.get("not_served_reason") == "units_busy") or (
                    side == "full" and holds):
                # Not what every order gives: the server's units move with calls this
                # replay does not send. From here on, one event at a time.
                self.out_of_step += 1
                self.strict = True


async def replay_export(path: Path, mapper: Mapper, *, url: str, rate: float | None = None,
                        concurrency: int = 32, limit: int | None = None, ordered: bool = True,
                        progress: TextIO | None = sys.stderr) -> ReplaySummary:
    """Replay an export into Liaison at `url`: `rate` events per second, or None for as fast
    as the server takes them, up to `concurrency` events in flight. `ordered` (the default)
    keeps every decision that reads the team's units as a replay of one event at a time in
    CAD-time order would make it (see `Capacity`); without it, events are only sent in
    that order and may be decided in another. Raises ServerUnavailable if Liaison does not
    answer first."""
    started = time.monotonic()
    summary = ReplaySummary(profile=mapper.profile.label, export=str(path), url=url,
                            order="cad" if ordered else "sent", agency=mapper.agency)
    to_send: list[Mapped] = []
    for m in mapper.map_file(path, limit=limit):
        summary.rows += 1
        if m.outcome == "skip":
            summary.skipped[m.reason or "?"] += 1
        elif m.outcome == "fail":
            why = f"not sent: {m.reason}"
            summary.rejected[why] += 1
            summary.example(why, m, m.value)
        else:
            to_send.append(m)
    timeline = cad_order(to_send)

    # One client per connection, each with one keep-alive connection: httpx's pool looks
    # over all its connections on every request, which costs more than the request itself.
    # They share one TLS context: building one reads the CA bundle (~20 ms each).
    tls = httpx.create_ssl_context()
    limit_in_flight = max(1, concurrency)
    clients = [httpx.AsyncClient(base_url=url, timeout=30, verify=tls,
                                 limits=httpx.Limits(max_connections=1),
                                 headers=auth_headers())
               for _ in range(limit_in_flight)]
    async with contextlib.AsyncExitStack() as stack:
        for c in clients:
            await stack.enter_async_context(c)
        health = await check_server(clients[0], url)
        # The health report names the default agency's policy; another agency's zone is
        # learnt from its first decision instead (`_agency_zone`, after the replay).
        elsewhere = mapper.agency not in (None, DEFAULT_AGENCY)
        zone = policy_zone(health)
        first = min((m.at for m in to_send if m.at), default=None)
        if elsewhere:
            pass  # see `_agency_zone`
        elif zone is None:
            summary.warnings.append(f"could not learn the time zone of the policy in force at "
                                    f"{url}: check its program.timezone is "
                                    f"{mapper.profile.time.timezone}")
        elif warning := zone_warning(mapper.profile, zone[1], zone[0], first):
            summary.warnings.append(warning)
        if progress is not None:
            for warning in summary.warnings:
                progress.write(f"liaison replay: WARNING: {warning}\n")
        bar = Progress(len(timeline), progress, f"replay {mapper.profile.profile.id}")
        await _send_in_order(timeline, clients, summary, bar, rate=rate, ordered=ordered)
    bar.close()
    if elsewhere:
        _agency_zone(summary, timeline, mapper, first)
    summary.calls.sort(key=cad_time)
    summary.seconds = time.monotonic() - started
    return summary


async def _send_in_order(timeline: list[tuple[_Row, int, dict[str, Any]]],
                         clients: list[httpx.AsyncClient], summary: ReplaySummary,
                         bar: Progress, *, rate: float | None, ordered: bool) -> None:
    """Send the events in timeline order, each when `Capacity` lets it go beside those in
    flight (or, unordered, whenever a connection is free)."""
    cap = Capacity(limit=len(clients), ordered=ordered)
    idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    for c in clients:
        idle.put_nowait(c)
    changed = asyncio.Condition()
    holds: dict[str, bool] = {}  # incident -> its call holds a unit, per the latest answer
    sent_incidents: set[str] = set()
    t0 = time.monotonic()

    def ready(kind: Kind) -> bool:
        return summary.stopped is not None or cap.side(kind) is not None

    async def one(client: httpx.AsyncClient, row: _Row, k: int, event: dict[str, Any],
                  kind: Kind, side: Side) -> None:
        incident = row.mapped.incident_id or ""
        held = holds.get(incident, False)
        try:
            await _send_event(client, row, k, event, summary)
        except ServerUnavailable as exc:
            summary.stopped = summary.stopped or str(exc)
            row.rejected = NOT_SENT_UNREACHABLE
        except AgencyRefused as exc:
            summary.agency_refused = summary.agency_refused or str(exc)
            summary.stopped = summary.stopped or f"the server refused agency " \
                                                 f"{summary.agency!r}: {exc}"
            row.rejected = f"agency: {exc}"
        finally:
            idle.put_nowait(client)
            stored = row.rejected is None
            decision = row.decision if stored else None
            if k == 0 and decision is not None:
                holds[incident] = holds_unit(decision)
            elif k > 0 and stored:
                holds[incident] = False  # closed: its unit is free
            async with changed:
                cap.answered(kind, side, k, decision if stored else None, held)
                changed.notify_all()
            _done(row, k, summary, bar)

    async with asyncio.TaskGroup() as tg:
        for i, (row, k, event) in enumerate(timeline):
            if k > 0:
                await row.created.wait()  # a call is closed once it is known to be open
            if row.rejected or summary.stopped:
                row.rejected = row.rejected or NOT_SENT_UNREACHABLE
                _done(row, k, summary, bar)
                continue
            if rate:
                await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            incident = row.mapped.incident_id or ""
            kind: Kind = cap.kind(k, incident not in sent_incidents, holds.get(incident, False),
                                  row.mapped.at)
            async with changed:
                await changed.wait_for(functools.partial(ready, kind))
                side = cap.side(kind)
                if summary.stopped or side is None:
                    row.rejected = NOT_SENT_UNREACHABLE
                    _done(row, k, summary, bar)
                    continue
                cap.send(kind)
            sent_incidents.add(incident)
            tg.create_task(one(await idle.get(), row, k, event, kind, side))
    summary.out_of_step = cap.out_of_step


def _done(row: _Row, k: int, summary: ReplaySummary, bar: Progress) -> None:
    if k == 0:
        row.created.set()
    bar.advance()
    row.pending -= 1
    if row.pending == 0:
        _account(row, summary)


async def _send_event(client: httpx.AsyncClient, row: _Row, k: int, event: dict[str, Any],
                      summary: ReplaySummary) -> None:
    r = await _post(client, event)
    if r.status_code != 202:
        if (r.status_code == 422 and "agency" in event
                and (refused := _agency_reason(r)) is not None):
            raise AgencyRefused(refused)
        row.rejected = _why(r)
        return
    summary.events += 1
    if k == 0:
        body = r.json()
        row.decision = body.get("decision") or {}
        row.call_id = body.get("call_id")


def _account(row: _Row, summary: ReplaySummary) -> None:
    """Count a row once all its events are answered (or will not be sent)."""
    if row.rejected:
        summary.rejected[row.rejected] += 1
        summary.example(row.rejected, row.mapped)
        return
    summary.accepted += 1
    d = row.decision or {}
    destination = str(d.get("destination") or NONE)
    summary.destinations[destination] += 1
    summary.categories[(str(d.get("category") or NONE), destination)] += 1
    if d.get("not_served_reason"):
        summary.not_served[str(d["not_served_reason"])] += 1
    summary.calls.append(CallRow(
        incident_id=row.mapped.incident_id or "", call_id=row.call_id or "",
        occurred_at=row.mapped.at, destination=str(d.get("destination") or ""),
        category=str(d.get("category") or ""),
        not_served_reason=str(d.get("not_served_reason") or ""), row=row.mapped.row))
