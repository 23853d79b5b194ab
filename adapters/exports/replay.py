"""Replay a city's export into a running Liaison, as its CAD would have sent it.

Rows are mapped with a profile, sent in CAD-time order to `POST /v1/cad/events`
(paced at a rate, or as fast as the server takes them over several connections), and
every row is accounted for: accepted, skipped (the profile's reason) or rejected (the
server's 422 reason, or why it was not sent). Event ids come from the row, so a re-run
is answered from what the server already stored and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from adapters.exports.mapping import Mapped, Mapper
from service.client_auth import auth_headers, unauthorised_hint

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
            "rows": self.rows, "accepted": self.accepted,
            "skipped": dict(self.skipped.most_common()),
            "rejected": dict(self.rejected.most_common()),
            "events": self.events, "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "destinations": dict(self.destinations.most_common()),
            "categories": by_category,
            "not_served": dict(self.not_served.most_common()),
            "stopped": self.stopped,
        }

    def render(self) -> str:
        w = 8
        out = [f"replay {self.profile} -> {self.url}",
               f"  {self.rows:>{w},}  rows read from {self.export} in {self.seconds:.1f} s "
               f"({self.rows_per_second:,.0f} rows/s; {self.events:,} events posted)",
               f"  {self.accepted:>{w},}  accepted"]
        for title, counts in (("skipped", self.skipped), ("rejected", self.rejected)):
            out.append(f"  {counts.total():>{w},}  {title}")
            out.extend(f"  {'':>{w}}  {n:>{w},}  {reason}" for reason, n in counts.most_common())
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


async def check_server(client: httpx.AsyncClient, url: str) -> None:
    """Raise ServerUnavailable unless Liaison answers its health check."""
    try:
        r = await client.get("/v1/health", timeout=10)
    except httpx.HTTPError as exc:
        raise ServerUnavailable(f"cannot reach Liaison at {url}: {exc!r}") from None
    if r.status_code != 200:
        raise ServerUnavailable(f"Liaison at {url} is not ready ({r.status_code}): "
                                f"{r.text[:300]}")


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


@dataclass
class _Row:
    """A row being sent: its events go out in CAD-time order among all rows' events."""

    mapped: Mapped
    pending: int
    created: asyncio.Event = field(default_factory=asyncio.Event)
    decision: dict[str, Any] | None = None
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


async def replay_export(path: Path, mapper: Mapper, *, url: str, rate: float | None = None,
                        concurrency: int = 32, limit: int | None = None,
                        progress: TextIO | None = sys.stderr) -> ReplaySummary:
    """Replay an export into Liaison at `url`: `rate` events per second, or None for as fast
    as the server takes them. Raises ServerUnavailable if Liaison does not answer first."""
    started = time.monotonic()
    summary = ReplaySummary(profile=mapper.profile.label, export=str(path), url=url)
    to_send: list[Mapped] = []
    for m in mapper.map_file(path, limit=limit):
        summary.rows += 1
        if m.outcome == "skip":
            summary.skipped[m.reason or "?"] += 1
        elif m.outcome == "fail":
            summary.rejected[f"not sent: {m.reason}"] += 1
        else:
            to_send.append(m)
    timeline = cad_order(to_send)

    # One client per worker, each with one keep-alive connection: httpx's pool looks over
    # all its connections on every request, which costs more than the request itself.
    # They share one TLS context: building one reads the CA bundle (~20 ms each).
    tls = httpx.create_ssl_context()
    clients = [httpx.AsyncClient(base_url=url, timeout=30, verify=tls,
                                 limits=httpx.Limits(max_connections=1),
                                 headers=auth_headers())
               for _ in range(max(1, concurrency))]
    async with contextlib.AsyncExitStack() as stack:
        for c in clients:
            await stack.enter_async_context(c)
        await check_server(clients[0], url)
        bar = Progress(len(timeline), progress, f"replay {mapper.profile.profile.id}")
        queue: Iterator[tuple[int, tuple[_Row, int, dict[str, Any]]]] = iter(enumerate(timeline))
        t0 = time.monotonic()

        async def worker(client: httpx.AsyncClient) -> None:
            # Events are taken in timeline order, so a closed event's created event has
            # always been taken already, by this worker or another: waiting for it is safe.
            for i, (row, k, event) in queue:
                try:
                    if k > 0:
                        await row.created.wait()
                    if row.rejected:
                        continue
                    if summary.stopped:
                        row.rejected = NOT_SENT_UNREACHABLE
                        continue
                    if rate:
                        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
                    await _send_event(client, row, k, event, summary)
                except ServerUnavailable as exc:
                    summary.stopped = summary.stopped or str(exc)
                    row.rejected = NOT_SENT_UNREACHABLE
                finally:
                    if k == 0:
                        row.created.set()
                    bar.advance()
                    row.pending -= 1
                    if row.pending == 0:
                        _account(row, summary)

        async with asyncio.TaskGroup() as tg:
            for c in clients:
                tg.create_task(worker(c))
    bar.close()
    summary.seconds = time.monotonic() - started
    return summary


async def _send_event(client: httpx.AsyncClient, row: _Row, k: int, event: dict[str, Any],
                      summary: ReplaySummary) -> None:
    r = await _post(client, event)
    if r.status_code != 202:
        row.rejected = _why(r)
        return
    summary.events += 1
    if k == 0:
        row.decision = r.json().get("decision") or {}


def _account(row: _Row, summary: ReplaySummary) -> None:
    """Count a row once all its events are answered (or will not be sent)."""
    if row.rejected:
        summary.rejected[row.rejected] += 1
        return
    summary.accepted += 1
    d = row.decision or {}
    destination = str(d.get("destination") or NONE)
    summary.destinations[destination] += 1
    summary.categories[(str(d.get("category") or NONE), destination)] += 1
    if d.get("not_served_reason"):
        summary.not_served[str(d["not_served_reason"])] += 1
