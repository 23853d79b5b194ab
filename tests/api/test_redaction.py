"""Protected text reaches only those who may read it, in every output of a call.

Calls carry a unique marker in every free-text and personal field (narrative, the
person's id, name and phone, the referral contact, status notes, a check-in note, the
backup note, the override reason, the outcome, the follow-up note and its closing note).
Then the test walks every GET route of the route table (a new route is caught: an
unknown path parameter fails), the answers of every other route a restricted role may
call, every board message type (live and replayed, scope all and live), the webhook
bodies a test CAD receives and each call's EIDO, for every role: CAD keys of source `*`
and of another source, a dispatcher, the team, the officer who referred and one who did
not, a supervisor, an analyst. A marker must appear exactly where the role may see it:

- the team and supervisors: everything a supervisor's answer holds;
- dispatchers, officers and CAD keys, on calls they may read: never the person's details
  or the referral contact; on behavioural-health calls (here mental health, and the
  team's follow-up calls) no narrative, notes, backup reason or outcome; never another
  call's text (repeat-contact history, a follow-up call's note from its first call);
  override reasons, the dispatcher's own text, everywhere;
- analysts: no marker anywhere.

What a restricted reader does not see is named in a `withheld` list of the same output.
The oracle is written here from SECURITY.md's rules, not from service/calls/visibility.py.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.routing import APIRoute
from sqlalchemy import func, insert, select

from service.access.auth import Role, add_user, create_key
from service.calls.visibility import MESSAGE_TYPES
from service.figures.metrics import TABLES
from service.settings import Settings
from service.store.tables import BOARD, OUTBOX, utcnow
from tests.conftest import Server, eventually, running_server
from tests.credentials import PASSWORD, declaration, route_table
from tests.fakes import SECRET, Cad, cad

pytestmark = pytest.mark.asyncio

FULL = {"call_team", "supervisor"}
RESTRICTED = {"cad", "cad_other", "dispatcher", "officer", "officer_other"}
READERS = sorted(FULL | RESTRICTED | {"analyst"})
PROTECTED = {"P", "G", "R", "FU"}  # mental health (P, G, R) and the team's follow-up call
OFFICER_CALLS = {"P", "N", "R"}  # referred by badge-officer
# Where a kind of marker may be named in `withheld` (a backup note is also a status
# note; a follow-up note becomes the follow-up call's narrative).
NAMES = {"person": {"person"}, "contact": {"referral_contact"}, "narrative": {"narrative"},
         "notes": {"notes", "narrative"}, "backup": {"backup_reason", "notes"},
         "outcome": {"outcome"}, "care": {"care"}}
T = "2026-03-10T{}-04:00"  # a Tuesday afternoon: within the team's hours
RANGE = {"from": "2026-03-01", "to": "2026-04-01"}
# Query parameters a GET route needs to show its data.
QUERY: dict[str, dict[str, str]] = {
    "/v1/metrics": RANGE, "/v1/metrics/{table}.csv": RANGE, "/metrics": RANGE,
    "/reports/monthly": {"month": "2026-03"},
    "/v1/metrics/my-referrals": {"officer": "badge-officer"},
    "/v1/referrals": {"officer": "badge-officer"},
    "/v1/deliveries": {"status": "delivered"},
}
# Routes other than GET a restricted role may call, and where their answers are checked.
ANSWERS_CHECKED = {("POST", "/v1/cad/events"), ("POST", "/v1/calls/{call_id}/override"),
                   ("POST", "/v1/referrals")}
# Routes other than GET with no call in their answer.
NO_CALL_DATA = {("POST", "/v1/session"), ("DELETE", "/v1/session"),
                # An AVL feed's positions: the units it moved (no call's text).
                ("POST", "/v1/units/positions")}
# Same answer as POST /v1/cad/events (service.calls.visibility.answer_view): a new call's
# decision; its EIDO body needs the reference material in ../shared.
SAME_AS_EVENTS = {("POST", "/v1/cad/eido")}
# A crisis centre's step: its answer's call is narrowed as GET /v1/transfers/{id}'s, which
# tests/api/test_transfers.py checks for the crisis_center role.
# A counsellor's handoff to care of a call transferred to its centre (404 for any other):
# the handoff whole, as the team sees it, which the same file checks.
CHECKED_ELSEWHERE = {("POST", "/v1/transfers/{transfer_id}/steps"),
                     ("POST", "/v1/calls/{call_id}/care"),
                     ("POST", "/v1/care/{referral_id}/steps")}


@dataclass(frozen=True)
class Marker:
    text: str
    call: str  # the call whose text it is: P, N, G, H, R
    kind: str  # person, contact, narrative, notes, backup, outcome, override


@dataclass
class Walk:
    server: Server
    the_cad: Cad
    clients: dict[str, httpx.AsyncClient]
    markers: list[Marker] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # call key -> call id
    follow_ups: dict[str, str] = field(default_factory=dict)  # call key -> follow-up id
    answers: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def mark(self, call: str, kind: str) -> str:
        text = f"zq{kind}{call.lower()}{uuid.uuid4().hex[:10]}"
        self.markers.append(Marker(text, call, kind))
        return text

    def key_of(self, call_id: str) -> str | None:
        return next((k for k, v in self.ids.items() if v == call_id), None)

    def found(self, text: str) -> set[Marker]:
        return {m for m in self.markers if m.text in text}

    def may_read(self, role: str, call: str) -> bool:
        if role in FULL or role in ("dispatcher", "cad"):
            return True
        if role == "officer":
            return call in OFFICER_CALLS
        return False  # cad_other (another source), officer_other, analyst

    def visible(self, role: str, m: Marker, own: set[str] | None) -> bool:
        """May `role` read marker `m` in an output about the calls `own` (None: a list of
        calls, each item its own)?"""
        if role in FULL:
            return True
        if role == "analyst" or not self.may_read(role, m.call):
            return False
        if own is not None and self.ids[m.call] not in own:
            return False  # another call's text
        if m.kind in ("person", "contact", "care"):
            return False
        return m.kind == "override" or m.call not in PROTECTED

    def check(self, role: str, where: str, reference: set[Marker], got: set[Marker],
              own: set[str] | None, withheld: set[str] | None) -> None:
        """`got`: the markers in `role`'s output; `reference`: in the full output."""
        expected = {m for m in reference if self.visible(role, m, own)}
        assert got == expected, (
            f"{role} at {where}: shown but not allowed "
            f"{sorted((m.call, m.kind) for m in got - expected)}, missing "
            f"{sorted((m.call, m.kind) for m in expected - got)}")
        if withheld is None or role in FULL:
            return
        for m in reference - got:
            if self.may_read(role, m.call):
                assert NAMES[m.kind] & withheld, (
                    f"{role} at {where}: {m.call}'s {m.kind} held back, but `withheld` "
                    f"says only {sorted(withheld)}")


def withheld_in(doc: Any) -> set[str]:
    """Every `withheld` list in a JSON document, and an EIDO routing note's line."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == "withheld" and isinstance(v, list):
                out |= set(v)
            else:
                out |= withheld_in(v)
    elif isinstance(doc, list):
        for v in doc:
            out |= withheld_in(v)
    elif isinstance(doc, str) and "<dt>withheld</dt>" in doc:
        line = re.search(r'<dt>withheld</dt><dd><data value="([^"]*)"', doc)
        out |= set(line.group(1).split()) if line else set()
    return out


class Stream:
    """A board websocket read into a list in the background."""

    def __init__(self, server: Server, role: Role, query: str = "") -> None:
        self.server, self.role, self.query = server, role, query
        self.frames: list[tuple[dict[str, Any], str]] = []
        self._task: asyncio.Task[None] | None = None
        self._open = asyncio.Event()

    async def start(self) -> Stream:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._open.wait(), 10)
        return self

    async def _run(self) -> None:
        async with self.server.connect_board(self.query, role=self.role) as ws:
            self._open.set()
            async for text in ws:
                self.frames.append((json.loads(text), str(text)))

    def reached(self, seq: int) -> bool:
        return max((m["seq"] for m, _ in self.frames), default=0) >= seq

    def by_seq(self) -> dict[int, tuple[dict[str, Any], str]]:
        return {m["seq"]: (m, t) for m, t in self.frames}

    def seen(self, type_: str, call_id: str) -> bool:
        return any(m["type"] == type_ and m["call_id"] == call_id for m, _ in self.frames)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@pytest_asyncio.fixture
async def walk(database_url: str) -> AsyncIterator[Walk]:
    async with cad() as the_cad:
        settings = Settings(database_url=database_url, webhook_url=the_cad.url,
                            webhook_secret=SECRET, webhook_poll_interval=0.1,
                            checkin_interval_seconds=1.0, field_sweep_seconds=0.2)
        async with running_server(settings) as server:
            engine = server.runtime.engine
            other_key, _ = await create_key(engine, "other-cad", role=Role.cad, source="other")
            await add_user(engine, "test-officer-other", Role.officer, PASSWORD,
                           officer_id="badge-other")
            clients: dict[str, httpx.AsyncClient] = {}
            for role in Role:
                if role is not Role.officer:
                    clients[role.value] = httpx.AsyncClient(
                        base_url=server.base_url, timeout=30, headers=server.creds.bearer(role))
            clients["cad_other"] = httpx.AsyncClient(
                base_url=server.base_url, timeout=30,
                headers={"authorization": f"Bearer {other_key}"})
            for name, user in (("officer", server.creds.users[Role.officer]),
                               ("officer_other", "test-officer-other")):
                c = httpx.AsyncClient(base_url=server.base_url, timeout=30)
                r = await c.post("/v1/session", json={"username": user, "password": PASSWORD})
                assert r.status_code == 200, r.text
                clients[name] = c
            try:
                yield Walk(server, the_cad, clients)
            finally:
                for c in clients.values():
                    await c.aclose()


async def ok(response: Awaitable[httpx.Response], status: int = 200) -> dict[str, Any]:
    r = await response
    assert r.status_code == status, r.text
    return dict(r.json())


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": f"ev-{uuid.uuid4().hex}", "type": "created",
            "occurred_at": T.format("14:00:00"), "channel": "911", "priority": 3,
            "flags": [], **fields}


async def make_calls(w: Walk, live: Stream) -> None:
    """Every kind of output, each free-text and personal field carrying a marker."""
    c = w.clients
    team, dispatcher = c["call_team"], c["dispatcher"]

    async def status(key: str, new: str, **more: Any) -> None:
        await ok(team.post(f"/v1/calls/{w.ids[key]}/status", json={"status": new, **more}))

    async def created(key: str, code: str, text: str, address: str, **more: Any) -> None:
        if "person" not in more:
            more["person"] = {"id": w.mark(key, "person"), "name": w.mark(key, "person"),
                              "phone": w.mark(key, "person")}
        body = event(incident_id=f"INC-{key}-{uuid.uuid4().hex[:8]}", nature_code=code,
                     nature_text=text, narrative=w.mark(key, "narrative"),
                     location={"address": address, "district": "D2"}, **more)
        answer = await ok(c["cad"].post("/v1/cad/events", json=body), 202)
        w.ids[key] = answer["call_id"]
        w.answers.append(("cad", key, answer))

    async def team_flow(key: str, **clear: Any) -> None:
        await status(key, "assigned", unit="CALL-1", note=w.mark(key, "notes"))
        await status(key, "en_route")
        await status(key, "on_scene", note=w.mark(key, "notes"))
        await ok(team.post(f"/v1/calls/{w.ids[key]}/checkin",
                           json={"note": w.mark(key, "notes")}))
        await status(key, "backup_requested", note=w.mark(key, "backup"))
        # The dispatcher's answer holds the decision, with the team's backup request.
        answer = await ok(dispatcher.post(f"/v1/calls/{w.ids[key]}/override", json={
            "destination": "joint", "reason": w.mark(key, "override")}))
        w.answers.append(("dispatcher", key, answer))
        await status(key, "on_scene")
        await status(key, "cleared", disposition="referred_to_services",
                     outcome=w.mark(key, "outcome"), follow_up_note=w.mark(key, "notes"),
                     **clear)

    # The roster: the program's four units, on duty, so the team's status changes tell
    # the board how each unit stands (`unit` messages).
    for n in range(1, 5):
        await ok(c["supervisor"].put(f"/v1/units/CALL-{n}", json={
            "program_id": "call", "on_duty": True}))
    referral = {"officer_id": "badge-officer", "consent": True, "unit": "D2-A"}
    # P: an officer's mental-health referral (protected); N: a homelessness one.
    await created("P", "MNTL", "Mental person non-violent", "10 Marker Lane",
                  channel="officer_referral",
                  referral={**referral, "contact": w.mark("P", "contact")})
    await created("N", "VAG", "Sleeping in doorway", "20 Marker Lane",
                  channel="officer_referral",
                  referral={**referral, "contact": w.mark("N", "contact")})
    due = (utcnow() - timedelta(minutes=1)).isoformat()
    await team_flow("P", follow_up_at=due)
    await team_flow("N", follow_up_in_hours=48)

    # G: a CAD's mental-health call; missed check-ins; backup; CAD update; cleared; closed.
    await created("G", "MNTL", "Mental person non-violent", "30 Marker Lane")
    g = w.ids["G"]
    await status("G", "assigned", unit="CALL-2")
    await status("G", "on_scene")
    await eventually(lambda: live.seen("checkin_escalated", g), "a missed check-in escalated")
    await status("G", "backup_requested", note=w.mark("G", "backup"))
    incident = (await ok(team.get(f"/v1/calls/{g}")))["call"]["incident_id"]
    for type_, at in (("updated", "14:20:00"), ("closed", "14:40:00")):
        if type_ == "closed":
            await status("G", "cleared", disposition="resolved_on_scene",
                         outcome=w.mark("G", "outcome"))
        # The CAD's answer to an update holds the decision with the backup request.
        answer = await ok(c["cad"].post("/v1/cad/events", json={
            "event_id": f"ev-{uuid.uuid4().hex}", "incident_id": incident, "type": type_,
            "occurred_at": T.format(at), "priority": 2}), 202)
        w.answers.append(("cad", "G", answer))
    await eventually(lambda: live.seen("call_closed", g), "G closed on the board")

    # H: the same person again: G's outcome in its repeat-contact history.
    person = {"id": next(m.text for m in w.markers if m.call == "G" and m.kind == "person"),
              "name": w.mark("H", "person")}
    await created("H", "CDX", "Neighbor dispute", "40 Marker Lane",
                  occurred_at=T.format("15:00:00"), person=person)
    history = (await ok(team.get(f"/v1/calls/{w.ids['H']}")))["history"]
    assert history and history["by"] == "person" and "zqoutcomeg" in history["last_outcome"]

    # Follow-ups: P's is due (the sweeper says so), opened and completed; N's cancelled.
    listed = (await ok(team.get("/v1/follow-ups")))["follow_ups"]
    w.follow_ups = {w.key_of(f["call_id"]) or "?": f["id"] for f in listed}
    await eventually(lambda: live.seen("follow_up_due", w.ids["P"]), "P's follow-up due")
    opened = await ok(team.post(f"/v1/follow-ups/{w.follow_ups['P']}/open"))
    w.ids["FU"] = opened["call_id"]
    await ok(team.post(f"/v1/follow-ups/{w.follow_ups['P']}/complete",
                       json={"note": w.mark("P", "notes")}))
    await ok(team.post(f"/v1/follow-ups/{w.follow_ups['N']}/cancel",
                       json={"note": w.mark("N", "notes")}))

    # R: the officer refers through the form (mental health).
    answer = await ok(c["officer"].post("/v1/referrals", json={
        "who": w.mark("R", "person"), "where": "50 Marker Lane", "what": w.mark("R", "narrative"),
        "concern": "mental_health", "consent": True, "contact": w.mark("R", "contact")}), 202)
    w.ids["R"] = answer["call_id"]
    w.answers.append(("officer", "R", answer))

    # Care: N (not protected: its notes are the dispatcher's to read) handed to a
    # provider, declined with a reason; the handoff is the team's alone (`care`).
    await ok(c["supervisor"].put("/v1/providers/safe-harbor", json={
        "name": "Safe Harbor", "services": ["shelter"]}))
    handoff = await ok(team.post(f"/v1/calls/{w.ids['N']}/care", json={
        "provider_id": "safe-harbor", "note": w.mark("N", "care")}), 201)
    await ok(team.post(f"/v1/care/{handoff['id']}/steps", json={
        "status": "declined", "reason": w.mark("N", "care")}))


def fill(path: str, w: Walk) -> list[str]:
    """Concrete paths for a route; an unknown parameter fails, so a new route is walked."""
    values = {
        "call_id": list(w.ids.values()),
        "follow_up_id": list(w.follow_ups.values()),
        "table": sorted(TABLES),
        "version": ["1"],
        # Supervisor-only routes that hold no call's text: one value each.
        "job_id": ["no-such-job"], "reject_id": ["1"], "unit_id": ["CALL-1"],
        "provider_id": ["safe-harbor"],
        # The walk's policy has no crisis centre: no transfer (tests/api/test_transfers.py
        # checks what each role sees of one).
        "transfer_id": ["no-such-transfer"],
    }
    paths = [path]
    for name in re.findall(r"\{([^}]+)\}", path):
        assert name in values, (f"the redaction walk cannot fill {{{name}}} in {path}: "
                                "add it to tests/api/test_redaction.py `fill`")
        paths = [p.replace(f"{{{name}}}", v) for p in paths for v in values[name]]
    return paths


async def walk_routes(w: Walk) -> int:
    """Every GET route for every role, each against the supervisor's answer; the number
    of answers checked."""
    checked = 0
    for entry in route_table(w.server.app):
        route = entry.route
        roles = declaration(route)
        if not isinstance(route, APIRoute) or roles in (None, "public"):
            continue
        assert isinstance(roles, tuple)
        for method in sorted(entry.methods or ()):
            if method == "HEAD":
                continue
            if method != "GET":
                key = (method, entry.path)
                restricted = {r.value for r in roles} - FULL
                assert (key in ANSWERS_CHECKED | NO_CALL_DATA | SAME_AS_EVENTS
                        | CHECKED_ELSEWHERE or not restricted), (
                    f"{method} {entry.path} answers {sorted(restricted)}: check its answer "
                    "in tests/api/test_redaction.py")
                continue
            for path in fill(entry.path, w):
                params = QUERY.get(entry.path, {})
                ref = await w.clients["supervisor"].get(path, params=params)
                reference = w.found(ref.text)
                own = ({m.group(1)} if (m := re.match(r"/v1/calls/([^/]+)", path))
                       else None)
                for role in READERS:
                    r = await w.clients[role].get(path, params=params)
                    got = w.found(r.text)
                    checked += 1
                    if not 200 <= r.status_code < 300:
                        assert not got, (role, path, r.status_code)
                        continue
                    try:
                        doc = r.json()
                    except ValueError:
                        doc = None  # CSV or HTML: figures for supervisors and analysts
                    w.check(role, f"GET {path}", reference, got, own,
                            withheld_in(doc) if doc is not None else None)
    return checked


def check_board(w: Walk, reference: Stream, streams: dict[str, Stream], last: int
                ) -> set[str]:
    """Each stream against the supervisor's replay of everything, seq by seq."""
    full = reference.by_seq()
    assert max(full) >= last
    types = set()
    for name, stream in streams.items():
        role = name.split(":")[0]
        got = stream.by_seq()
        assert max(got) >= last, name
        for seq, (msg, text) in got.items():
            ref_msg, ref_text = full[seq]
            assert (msg["type"], msg["call_id"]) == (ref_msg["type"], ref_msg["call_id"])
            types.add(msg["type"])
            w.check(role, f"board {name} seq {seq} ({msg['type']})", w.found(ref_text),
                    w.found(text), {msg["call_id"]}, withheld_in(msg))
    return types


def decision_markers(w: Walk, key: str, decision: dict[str, Any]) -> set[Marker]:
    """What the full form of a call's decision quotes: the team's backup note, the
    dispatcher's override reason (only these: a decision holds no other text)."""
    kinds = {"backup"} if decision.get("backup") else set()
    kinds |= {"override"} if decision.get("override") else set()
    return {m for m in w.markers if m.call == key and m.kind in kinds}


def status_markers(w: Walk, key: str, body: dict[str, Any]) -> set[Marker]:
    """What the full form of a team status sent to the CAD quotes: the backup reason."""
    if body["status"] != "backup_requested":
        return set()
    return {m for m in w.markers if m.call == key and m.kind == "backup"}


async def last_seq(w: Walk) -> int:
    async with w.server.runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.max(BOARD.c.seq)))).scalar_one())


async def test_each_role_sees_each_marker_exactly_where_it_may(walk: Walk) -> None:
    w = walk
    board_roles = ("supervisor", "call_team", "dispatcher")
    live = {role: await Stream(w.server, Role(role)).start() for role in board_roles}
    streams: dict[str, Stream] = {}
    try:
        await make_calls(w, live["supervisor"])
        # Every call is cleared or queued now: no check-in falls due any more.
        last = await last_seq(w)
        for role in board_roles:
            streams[f"{role}:live"] = live[role]
            for query in ("?after=0", "?after=0&scope=live"):
                streams[f"{role}:replay{query}"] = await Stream(
                    w.server, Role(role), query).start()
        for name, stream in streams.items():
            await eventually(functools.partial(stream.reached, last), f"{name} up to seq {last}")
    finally:
        for stream in {*live.values(), *streams.values()}:
            await stream.stop()
    types = check_board(w, streams["supervisor:replay?after=0"], streams, last)
    # A transfer's message needs a policy with a crisis centre, and withholds nothing:
    # walked in tests/api/test_transfers.py (each board role receives it whole).
    walked = set(MESSAGE_TYPES) - {"transfer"}
    assert types == walked, f"message types not walked: {walked - types}"

    # Answers to what restricted roles post: a decision without protected text.
    for role, key, answer in w.answers:
        got = w.found(json.dumps(answer))
        decision = answer.get("decision", answer)  # an override's answer is the decision
        w.check(role, f"{role}'s answer about {key}",
                decision_markers(w, key, decision) | got, got, {w.ids[key]},
                withheld_in(answer))
    [override] = [a for r, k, a in w.answers if r == "dispatcher" and k == "P"]
    assert override["withheld"] == ["backup_reason"] and override["backup"]["reason"] is None
    assert "(reason withheld)" in override["explanation"]

    # The CAD's webhook: the `cad` role's view of every decision of every call.
    async def all_settled() -> bool:
        async with w.server.runtime.engine.connect() as conn:
            return not int((await conn.execute(select(func.count()).select_from(OUTBOX)
                                               .where(OUTBOX.c.status != "delivered"))
                            ).scalar_one())

    await eventually(all_settled, "every webhook delivery settled")
    shown: set[Marker] = set()
    for attempt in w.the_cad.delivered():
        of = w.key_of(attempt.call_id)
        assert of, attempt.call_id
        got = w.found(json.dumps(attempt.body))
        shown |= got
        quoted = (decision_markers(w, of, attempt.body["decision"])
                  if attempt.body["type"] == "decision" else status_markers(w, of, attempt.body))
        w.check("cad", f"webhook {attempt.cause} of {of}", quoted | got, got,
                {attempt.call_id}, withheld_in(attempt.body))
    assert {(m.call, m.kind) for m in shown} == {
        ("P", "override"), ("N", "override"), ("N", "backup")}

    assert await walk_routes(w) > 400
    # The walk is not empty: every marker reaches those who see everything, and what a
    # dispatcher may see reaches them.
    assert w.found(await all_text(w, "supervisor")) == set(w.markers)
    assert {(m.call, m.kind) for m in w.found(await all_text(w, "dispatcher"))} == {
        ("P", "override"), ("N", "override"), ("H", "narrative"),
        *(("N", kind) for kind in ("narrative", "notes", "backup", "outcome"))}


async def all_text(w: Walk, role: str) -> str:
    """Everything `role` reads of the calls and their board."""
    c = w.clients[role]
    parts = []
    for call_id in w.ids.values():
        parts += [(await c.get(f"/v1/calls/{call_id}")).text,
                  (await c.get(f"/v1/calls/{call_id}/eido")).text]
    async with w.server.connect_board("?after=0", role=Role(role)) as ws:
        last = await last_seq(w)
        seq = 0
        while seq < last:
            text = await asyncio.wait_for(ws.recv(), 10)
            parts.append(str(text))
            seq = json.loads(text)["seq"]
    return "\n".join(parts)


async def test_a_board_row_written_before_restricted_bodies_is_narrowed_as_protected(
        database_url: str) -> None:
    """Rows from before the restricted form was kept: a dispatcher gets them without notes,
    whatever their call (its category is not in the row)."""
    async with running_server(Settings(database_url=database_url)) as server:
        note = f"zqnotes{uuid.uuid4().hex[:10]}"
        body = {"type": "status", "call_id": "c-old", "at": datetime.now(UTC).isoformat(),
                "from": "on_scene", "status": "backup_requested", "note": note}
        async with server.runtime.engine.begin() as conn:
            await conn.execute(insert(BOARD).values(
                call_id="c-old", type="status", created_at=utcnow(),
                body=json.dumps(body, separators=(",", ":")), restricted_body=None))
        for role, shown in ((Role.supervisor, True), (Role.dispatcher, False)):
            async with server.connect_board("?after=0", role=role) as ws:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert msg["type"] == "status"
            assert (note in json.dumps(msg)) is shown
            assert shown or msg["withheld"] == ["notes"]
