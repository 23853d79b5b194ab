"""Replays through a real server (SQLite and PostgreSQL): the first 2,000 rows of each real
export, a hand-made export that exercises every outcome, a re-run that stores nothing
twice, and `liaison replay` / `liaison profile check` as real subprocesses."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from adapters.exports.mapping import Mapper
from adapters.exports.replay import (
    Capacity,
    ReplaySummary,
    ServerUnavailable,
    cad_order,
    replay_export,
)
from service.access.auth import Role
from service.access.client_auth import TOKEN_ENV
from tests.conftest import ROOT, WAIT, Server, free_port, start_subprocess
from tests.factories import make_profile, profile_doc, row, write_export, write_profile
from tests.shared_data import NASHVILLE, SAN_DIEGO, shared_export, shipped_mapper

SUBSET = 2_000


@pytest.fixture
def cad_key(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """replay_export sends LIAISON_TOKEN, as `liaison replay` does: the CAD role's key."""
    monkeypatch.setenv(TOKEN_ENV, server.creds.keys[Role.cad])


async def scalar(server: Server, sql: str, **params: object) -> int:
    async with server.runtime.engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def stored(server: Server, profile_id: str) -> tuple[int, int]:
    """(events, calls) the server holds from one profile's replays."""
    like = f"{profile_id}:%"
    events = await scalar(server, "SELECT count(*) FROM cad_event WHERE event_id LIKE :p",
                          p=like)
    calls = await scalar(server, 'SELECT count(DISTINCT call_id) FROM cad_event '
                                 'WHERE event_id LIKE :p', p=like)
    return events, calls


def assert_accounted(s: ReplaySummary, rows: int) -> None:
    assert s.rows == rows == s.accounted, s.to_dict()
    assert s.stopped is None
    assert s.destinations.total() == s.accepted == s.categories.total()


@pytest.mark.asyncio
@pytest.mark.usefixtures("cad_key")
async def test_san_diego_subset(server: Server) -> None:
    path = shared_export(SAN_DIEGO)
    mapper = shipped_mapper("san-diego", path)
    s = await replay_export(path, mapper, url=server.base_url, limit=SUBSET,
                            progress=None)
    assert_accounted(s, SUBSET)
    assert s.accepted > 1_000 and not s.rejected
    assert set(s.skipped) == {"officer_initiated", "administrative", "information_only"}
    assert s.events == s.accepted  # one created event a row
    assert await stored(server, "san-diego") == (s.events, s.accepted)
    # Every 5150 is classified as mental health, whoever ends up going.
    mental = {d: n for (c, d), n in s.categories.items() if c == "mental_health"}
    assert sum(mental.values()) > 0
    assert set(s.destinations) <= {"police", "call_team", "joint"}

    again = await replay_export(path, mapper, url=server.base_url, limit=300, progress=None)
    assert_accounted(again, 300)
    assert await stored(server, "san-diego") == (s.events, s.accepted)  # nothing twice


@pytest.mark.asyncio
@pytest.mark.usefixtures("cad_key")
async def test_nashville_subset(server: Server) -> None:
    path = shared_export(NASHVILLE)
    s = await replay_export(path, shipped_mapper("nashville", path), url=server.base_url,
                            limit=SUBSET, progress=None)
    assert_accounted(s, SUBSET)
    assert s.accepted > 1_400 and not s.rejected
    assert set(s.skipped) <= {"officer_initiated", "administrative"}
    assert await stored(server, "nashville") == (s.events, s.accepted)
    assert {c for c, _ in s.categories} >= {"mental_health", "(none)"}


@pytest.mark.asyncio
@pytest.mark.usefixtures("cad_key")
async def test_every_outcome_through_the_server(server: Server, tmp_path: Path) -> None:
    rows = [row(call_no="A1"),                                      # accepted
            row(call_no="A2", type="DIST", type_desc="DRUNK",       # accepted, then closed
                closed="03/12/2024 15:00:00"),
            row(call_no="A3", type="TS"),                           # skipped
            row(call_no="A4", type="INFOX"),                        # skipped
            row(call_no="A5", type=""),                             # 422 from the server
            row(call_no="A6", received="yesterday"),                # not sent
            row(call_no="A7", type="SHOT", type_desc="SHOTS FIRED",  # accepted, excluded
                source="FIELD")]
    export = write_export(tmp_path / "calls.csv", rows)
    mapper = Mapper(make_profile(), lookup_dirs=[])
    s = await replay_export(export, mapper, url=server.base_url, progress=None)
    assert_accounted(s, 7)
    assert (s.accepted, s.events) == (3, 4)
    assert s.skipped == {"officer_initiated": 1, "information_only": 1}
    unreadable = "not sent: columns.received_at: is not format '%m/%d/%Y %H:%M:%S'"
    assert s.rejected == {
        "nature_code: a created event must carry the call's nature code": 1, unreadable: 1}
    # A reason is the same for every row that fails alike; the rows are its examples.
    assert s.examples[unreadable] == ["row 6 (incident A6): 'yesterday'"]
    assert s.examples["nature_code: a created event must carry the call's nature code"] == [
        "row 5 (incident A5)"]
    assert s.categories == {("mental_health", "call_team"): 1,
                            ("substance_use", "call_team"): 1, ("(none)", "police"): 1}
    assert await scalar(server, "SELECT count(*) FROM cad_reject") == 1
    assert await scalar(server, 'SELECT count(*) FROM "call" WHERE incident_id = :i '
                                "AND closed_at IS NOT NULL", i="A2") == 1

    again = await replay_export(export, mapper, url=server.base_url, progress=None)
    assert again.to_dict() | {"seconds": 0, "rows_per_second": 0} == \
        s.to_dict() | {"seconds": 0, "rows_per_second": 0}
    assert await stored(server, "testville") == (4, 3)


def test_events_go_out_in_cad_time_order() -> None:
    mp = Mapper(make_profile(), lookup_dirs=[])
    rows = [mp.map_row(1, row(call_no="A", received="03/12/2024 14:00:00",
                              closed="03/12/2024 16:00:00")),
            mp.map_row(2, row(call_no="B", received="03/12/2024 15:00:00")),
            mp.map_row(3, row(call_no="C", received="03/12/2024 13:00:00",
                              closed="03/12/2024 12:00:00"))]  # closed before it opened
    order = [(state.mapped.incident_id, event["type"]) for state, _, event in cad_order(rows)]
    assert order == [("C", "created"), ("C", "closed"), ("A", "created"), ("B", "created"),
                     ("A", "closed")]


@pytest.mark.asyncio
@pytest.mark.usefixtures("cad_key")
async def test_closing_calls_frees_the_team(server: Server, tmp_path: Path) -> None:
    """Six team calls ten minutes apart, one at a time; the shipped policy has four units.
    Closes sent at their CAD time free units for later calls; calls never closed do not
    (the calls are priority 1: they may not wait for a unit)."""

    def calls(prefix: str, day: int) -> Path:
        rows = [row(call_no=f"{prefix}{i}", received=f"03/{day}/2024 14:{10 * i:02d}:00",
                    prio="1") for i in range(6)]
        return write_export(tmp_path / f"{prefix}.csv", rows)

    closing = make_profile(events={"assume_closed_after_minutes": 15})
    s = await replay_export(calls("C", 12), Mapper(closing, lookup_dirs=[]),
                            url=server.base_url, concurrency=1, progress=None)
    assert (s.accepted, s.events) == (6, 12)
    assert s.destinations == {"call_team": 6}
    never = await replay_export(calls("N", 13), Mapper(make_profile(), lookup_dirs=[]),
                                url=server.base_url, concurrency=1, progress=None)
    assert never.destinations == {"call_team": 4, "police": 2}
    assert never.not_served == {"units_busy": 2}


def team_calls(prefix: str, day: int) -> list[dict[str, str]]:
    """Capacity decides who goes: four team calls (13:00-13:03 Chicago, in the shipped
    policy's hours) hold its four units until 13:10; E at 13:05 finds none free; F0-F3
    (13:11-13:14) each find the unit a close freed."""
    at = f"03/{day:02d}/2024 13"
    # Priority 1: a call finding every unit busy may not wait (the shipped policy's queue).
    return [*(row(call_no=f"{prefix}A{i}", received=f"{at}:0{i}:00", closed=f"{at}:10:00",
                  prio="1") for i in range(4)),
            row(call_no=f"{prefix}E", received=f"{at}:05:00", prio="1"),
            *(row(call_no=f"{prefix}F{i}", received=f"{at}:1{1 + i}:00", prio="1")
              for i in range(4))]


@pytest.mark.asyncio
@pytest.mark.usefixtures("cad_key")
async def test_the_default_replay_decides_in_cad_time_order(server: Server,
                                                             tmp_path: Path) -> None:
    """With events in flight at once (the default), the server still decides each call as
    a one-at-a-time replay would: the unit a close frees goes to the next call in CAD time,
    not to whichever request arrived first. (Before, F0-F3 went to police as units_busy:
    they were sent while the closes waited for their calls' answers.)"""
    export = write_export(tmp_path / "order.csv", team_calls("O", 12))
    s = await replay_export(export, Mapper(make_profile(), lookup_dirs=[]),
                            url=server.base_url, progress=None)
    assert (s.accepted, s.events) == (9, 13)
    by_call = {c.incident_id: (c.destination, c.not_served_reason) for c in s.calls}
    assert by_call == {**{f"OA{i}": ("call_team", "") for i in range(4)},
                       "OE": ("police", "units_busy"),
                       **{f"OF{i}": ("call_team", "") for i in range(4)}}
    assert (s.order, s.out_of_step) == ("cad", 0)


@pytest.mark.asyncio
@pytest.mark.usefixtures("cad_key")
async def test_ordered_replay_decides_as_one_at_a_time(server: Server, tmp_path: Path) -> None:
    """Eighty team calls from 21:00 Chicago time, each closed after 5-40 minutes, so the
    four units run full and free again and again until the team's hours end (midnight in
    New York) and the rest go as off hours: 32 in flight decide every call exactly as one
    event at a time does. (Priority 1: a call finding the units full may not wait.)"""
    rng = random.Random(7)

    def afternoon(prefix: str, day: int) -> Path:
        rows, minute = [], 0
        for i in range(80):
            minute += rng.choice((0, 1, 2, 3, 5))
            start = datetime(2024, 3, day, 21, 0) + timedelta(minutes=minute)
            end = start + timedelta(minutes=rng.randint(5, 40))
            rows.append(row(call_no=f"{prefix}{i}", received=f"{start:%m/%d/%Y %H:%M:%S}",
                            closed=f"{end:%m/%d/%Y %H:%M:%S}", prio="1"))
        return write_export(tmp_path / f"{prefix}.csv", rows)

    state = rng.getstate()
    one = await replay_export(afternoon("S", 13), Mapper(make_profile(), lookup_dirs=[]),
                              url=server.base_url, concurrency=1, progress=None)
    rng.setstate(state)  # the same calls, a day later (every call above is closed by then)
    many = await replay_export(afternoon("M", 14), Mapper(make_profile(), lookup_dirs=[]),
                               url=server.base_url, concurrency=32, progress=None)

    def outcomes(s: ReplaySummary) -> list[tuple[str, str, str]]:
        """Each call's decision, in CAD-time order, named by its number (S7 and M7 are the
        same call a day apart)."""
        return [(c.incident_id[1:], c.destination, c.not_served_reason) for c in s.calls]

    assert one.accepted == many.accepted == 80
    seen = Counter((d, why) for _, d, why in outcomes(one))
    assert seen[("police", "units_busy")] > 5  # capacity did decide
    assert seen[("police", "off_hours")] > 5  # and the hours
    assert outcomes(many) == outcomes(one)
    assert many.out_of_step == 0


def decision(holds: bool = False, not_served: str | None = None, busy: int = 0,
             within: bool = True) -> dict[str, object]:
    return {"destination": "call_team" if holds else "police", "needs_field_unit": True,
            "not_served_reason": not_served,
            "program": {"units_total": 4, "units_busy": busy, "timezone": "America/New_York",
                        "hours": "08:00-24:00 mon,tue,wed,thu,fri,sat,sun",
                        "within_hours": within}}


def test_capacity_sends_together_only_what_every_order_decides_alike() -> None:
    noon = datetime(2024, 3, 12, 12, tzinfo=ZoneInfo("America/New_York"))
    night = noon.replace(hour=3)
    cap = Capacity(limit=32)
    assert cap.kind(0, True, False, noon) == "alone"  # the program is not known yet
    cap.send("alone")
    assert cap.side("create") is None  # nothing beside an event sent alone
    cap.answered("alone", "alone", 0, decision(holds=True, busy=0), False)
    assert (cap.units, cap.busy) == (4, 1)
    # Three more can go together: each finds a unit whatever the order.
    for _ in range(3):
        assert cap.kind(0, True, False, noon) == "create"
        assert cap.side("create") == "free"
        cap.send("create")
    assert cap.side("create") is None  # a fourth might find none, or the last one
    assert cap.kind(0, True, False, night) == "free"  # outside the hours: never waits
    assert cap.side("free") == "free"
    for _ in range(3):
        cap.answered("create", "free", 0, decision(holds=True), False)
    assert cap.busy == 4
    assert cap.side("create") == "full"  # none free in any order: any number together
    cap.send("create")
    assert cap.side("frees") is None  # a close would free a unit for it, or not
    cap.answered("create", "full", 0, decision(not_served="units_busy"), False)
    assert cap.side("frees") == "free"
    cap.send("frees")
    assert cap.side("create") is None  # it might be decided before the close, or after
    cap.answered("frees", "free", 1, decision(holds=True), True)
    assert cap.busy == 3 and cap.side("create") == "free"
    assert cap.kind(0, False, True, noon) == "alone"  # an incident sent a second time
    # A call expected to find a unit finds none: another source holds them. From now on,
    # one event at a time.
    cap.send("create")
    cap.answered("create", "free", 0, decision(not_served="units_busy", busy=4), False)
    assert (cap.strict, cap.out_of_step) == (True, 1)
    assert cap.kind(0, True, False, night) == "alone"


@pytest.mark.asyncio
async def test_rate_paces_the_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import Settings
    from tests.conftest import running_server

    export = write_export(tmp_path / "calls.csv", [row(call_no=f"R{i}") for i in range(10)])
    async with running_server(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db")
                              ) as server:
        monkeypatch.setenv(TOKEN_ENV, server.creds.keys[Role.cad])
        started = time.monotonic()
        s = await replay_export(export, Mapper(make_profile(), lookup_dirs=[]),
                                url=server.base_url, rate=40, progress=None)
        took = time.monotonic() - started
    assert s.accepted == 10
    assert took >= 9 / 40  # the tenth row leaves 9/40 s after the first


@pytest.mark.asyncio
async def test_no_server_is_an_error(tmp_path: Path) -> None:
    export = write_export(tmp_path / "calls.csv", [row()])
    with pytest.raises(ServerUnavailable, match="cannot reach Liaison at"):
        await replay_export(export, Mapper(make_profile(), lookup_dirs=[]),
                            url=f"http://127.0.0.1:{free_port()}", progress=None)


async def read_http(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    """One HTTP/1.1 message (request or response) with a Content-Length body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = next((int(line.split(":")[1]) for line in head.split("\r\n")
                   if line.lower().startswith("content-length:")), 0)
    return head, await reader.readexactly(length) if length else b""


class HoldingProxy:
    """The network between a CAD and a real Liaison, slow for one answer: the answer to
    incident `held`'s created event is kept back until the answer to incident `until`'s
    has gone out (or WAIT passes: then `timed_out`)."""

    def __init__(self, upstream: str, held: str, until: str) -> None:
        self.port = int(upstream.rsplit(":", 1)[1])
        self.held, self.until = held, until
        self.released = asyncio.Event()
        self.timed_out = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while True:
                head, body = await read_http(reader)
                up_writer.write(head.encode() + body)
                await up_writer.drain()
                answer_head, answer = await read_http(up_reader)
                sent = json.loads(body) if head.startswith("POST") else {}
                incident = sent.get("incident_id") if sent.get("type") == "created" else None
                if incident == self.held:
                    try:
                        await asyncio.wait_for(self.released.wait(), WAIT)
                    except TimeoutError:
                        self.timed_out = True
                writer.write(answer_head.encode() + answer)
                await writer.drain()
                if incident == self.until:
                    self.released.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            up_writer.close()
            writer.close()


@pytest.mark.asyncio
@pytest.mark.usefixtures("cad_key")
async def test_calls_are_listed_in_cad_time_order_whatever_order_answers_come_in(
        server: Server, tmp_path: Path) -> None:
    """The summary's calls are in CAD-time order, not in the order their answers arrived:
    with events in flight that order is the network's. (Before, a slow answer moved its
    call down the list, and two replays that decided every call alike listed them
    differently.) Unordered, the three go together, and K1's answer is held until K2's
    is through. (An ordered replay sends team-eligible calls one at a time; see
    `Capacity`.)"""
    export = write_export(tmp_path / "k.csv", [
        row(call_no=f"K{i}", received=f"03/12/2024 14:0{i}:00") for i in range(3)])
    proxy = HoldingProxy(server.base_url, held="K1", until="K2")
    listener = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        s = await replay_export(export, Mapper(make_profile(), lookup_dirs=[]),
                                url=f"http://127.0.0.1:{port}", concurrency=4,
                                ordered=False, progress=None)
    assert proxy.released.is_set() and not proxy.timed_out  # K2 was answered before K1
    assert [c.incident_id for c in s.calls] == ["K0", "K1", "K2"]
    assert {c.destination for c in s.calls} == {"call_team"}


class FakeLiaison:
    """Just enough of Liaison over raw HTTP/1.1 to misbehave on purpose: every event is
    first answered 503 (busy) or 429 (the key's rate limit), alternately, to retry after a
    moment; after `answer` events, connections are dropped without a word."""

    def __init__(self, answer: int) -> None:
        self.answer = answer
        self.posts = 0
        self.accepted: list[str] = []
        self.busy_sent: set[str] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head, body = await read_http(reader)
                if head.startswith("GET /v1/health"):
                    status, payload, extra = 200, b"{}", ""
                else:
                    self.posts += 1
                    event_id = json.loads(body)["event_id"]
                    if len(self.accepted) >= self.answer:
                        break  # gone: the connection closes unanswered
                    if event_id not in self.busy_sent:
                        self.busy_sent.add(event_id)
                        status, payload = (503, b'{"error":"unavailable"}') \
                            if len(self.busy_sent) % 2 else (429, b'{"error":"rate_limited"}')
                        extra = "Retry-After: 0.01\r\n"
                    else:
                        self.accepted.append(event_id)
                        status, extra = 202, ""
                        payload = json.dumps({"call_id": "c", "event_id": event_id, "decision": {
                            "destination": "police", "category": None}}).encode()
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                             f"{extra}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.asyncio
async def test_busy_is_retried_and_a_server_gone_midway_stops_the_replay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.exports.replay.TRANSPORT_BACKOFF", (0.01, 0.01))
    fake = FakeLiaison(answer=5)
    listener = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    export = write_export(tmp_path / "calls.csv", [
        row(call_no=f"G{i}", received=f"03/12/2024 14:{i:02d}:00") for i in range(20)])
    async with listener:
        s = await replay_export(export, Mapper(make_profile(), lookup_dirs=[]),
                                url=f"http://127.0.0.1:{port}", concurrency=4,
                                ordered=False, progress=None)
    # each retried after its 503 or 429
    assert len(fake.accepted) == len(set(fake.accepted)) == 5
    assert s.accepted == s.events == 5
    assert s.rejected == {"not sent: the server stopped answering": 15}
    assert s.rows == s.accounted == 20
    assert s.stopped is not None and "no answer after 3 tries" in s.stopped
    assert "STOPPED EARLY" in s.render()
    # Its health report names no policy: the replay cannot compare time zones, and says so.
    assert s.warnings == [f"could not learn the time zone of the policy in force at "
                          f"http://127.0.0.1:{port}: check its program.timezone is "
                          "America/Chicago"]


def liaison(*args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """`liaison …`; `env`: its environment (default: this one without LIAISON_TOKEN)."""
    env = env or {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    return subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_replay_command(tmp_path: Path) -> None:
    path = shared_export(NASHVILLE)
    sp = start_subprocess(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", tmp_path)
    try:
        # Without a key every row is refused, and the summary says what to set.
        refused = liaison("replay", str(path), "--profile", "nashville", "--url", sp.base_url,
                          "--limit", "20", "--no-progress", "--json")
        assert refused.returncode == 0, refused.stderr
        reasons = json.loads(refused.stdout)["rejected"]
        assert [why for why in reasons if f"set {TOKEN_ENV}" in why], reasons
        assert json.loads(refused.stdout)["accepted"] == 0

        env = sp.env(Role.cad)
        calls_csv = tmp_path / "calls.csv"
        result = liaison("replay", str(path), "--profile", "nashville", "--url", sp.base_url,
                         "--limit", "300", "--as-fast-as-possible", "--json",
                         "--calls-csv", str(calls_csv), env=env)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["rows"] == 300 == summary["accepted"] + sum(
            summary["skipped"].values()) + sum(summary["rejected"].values())
        assert sum(summary["destinations"].values()) == summary["accepted"] > 200
        assert "replay nashville [" in result.stderr  # the progress bar
        # Nashville is Central time; the shipped policy keeps hours in New York time.
        zone = ("the profile's times are America/Chicago but policy st-petersburg-call@1 "
                "keeps team hours in America/New_York (1 h ahead of the city's clock on ")
        assert summary["warnings"][0].startswith(zone), summary["warnings"]
        assert f"liaison replay: WARNING: {zone}" in result.stderr
        assert summary["order"] == "cad"
        # One line per accepted call, in CAD-time order, with the server's call id.
        with open(calls_csv, newline="", encoding="utf-8") as f:
            calls = list(csv.DictReader(f))
        assert list(calls[0]) == ["incident_id", "call_id", "occurred_at", "destination",
                                  "category", "not_served_reason"]
        assert len(calls) == summary["accepted"]
        assert Counter(c["destination"] for c in calls) == summary["destinations"]
        assert all(len(c["call_id"]) == 32 for c in calls)
        assert [c["occurred_at"] for c in calls] == sorted(
            (c["occurred_at"] for c in calls), key=datetime.fromisoformat)
        assert sp.creds is not None
        with httpx.Client(base_url=sp.base_url, headers={
                "authorization": f"Bearer {sp.creds.keys[Role.supervisor]}"}) as client:
            for call in calls[:5]:  # the server's own call ids
                got = client.get(f"/v1/calls/{call['call_id']}").raise_for_status().json()
                assert got["call"]["incident_id"] == call["incident_id"], got
        text_run = liaison("replay", str(path), "--profile", "nashville", "--url", sp.base_url,
                           "--limit", "300", "--rate", "1000", "--no-progress", env=env)
        assert text_run.returncode == 0, text_run.stderr
        assert text_run.stderr == ""
        assert f"       300  rows read from {path}" in text_run.stdout
        assert "decisions by destination: police" in text_run.stdout
        assert "  decided in CAD-time order" in text_run.stdout
        assert f"  WARNING: {zone}" in text_run.stdout
    finally:
        sp.stop()
    down = liaison("replay", str(path), "--profile", "nashville", "--url",
                   f"http://127.0.0.1:{free_port()}", "--limit", "5")
    assert down.returncode == 2
    assert "liaison: cannot reach Liaison at" in down.stderr


def test_profile_check_command(tmp_path: Path) -> None:
    path = shared_export(SAN_DIEGO)
    result = liaison("profile", "check", "san-diego", "--sample", str(path), "--rows", "1000")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("san-diego: profile san-diego@1 is valid")
    assert f"     1,000  rows read from {path}" in out
    assert "  categories the policy reaches:" in out
    assert "officer_initiated" in out and "examples:" in out
    # A city onboarded by a profile file alone, no code.
    own = write_profile(tmp_path / "testville.yaml", profile_doc())
    export = write_export(tmp_path / "calls.csv", [row(), row(call_no="T-2", type="TS")])
    result = liaison("profile", "check", str(own), "--sample", str(export))
    assert result.returncode == 0, result.stderr
    assert "       1  would be sent (1 events)" in result.stdout
