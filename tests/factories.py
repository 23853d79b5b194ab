"""Builders the tests share (tests import these, not each other's test modules): generic
CAD events, policies as plain dicts and their decisions, hand-made EIDOs, a hand-made
CAD export and its profile."""

from __future__ import annotations

import asyncio
import copy
import csv
import json
import os
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import yaml

from adapters.exports.profile import Profile, parse_profile
from routing.decide import decide_call
from routing.models import Availability, Decision
from routing.whatif import SimCall
from rules.call import CallFacts
from rules.evaluate import Classification, CompiledPolicy, classify, compile_policy
from rules.load import default_policy_text, parse_policy
from rules.models import Policy
from service.access.auth import Role
from service.access.client_auth import TOKEN_ENV
from service.calls.event import CallEvent
from service.lifecycle.ingest import IngestEvent

if TYPE_CHECKING:
    from tests.conftest import Server

ROOT = Path(__file__).resolve().parent.parent

# A private PostgreSQL of a test's own, to freeze and crash (fault tests): tests/pgcluster.py.

# A Tuesday afternoon in New York (EDT, UTC-4): inside the default team hours.
TUESDAY_AFTERNOON = "2026-03-10T14:00:00-04:00"


def policy_doc(
    *,
    rules: list[dict[str, Any]] | None = None,
    exclusions: list[dict[str, Any]] | None = None,
    categories: list[str] | None = None,
    phase: int = 2,
    timezone: str = "America/New_York",
    hours: dict[str, Any] | None = None,
    units: int = 2,
) -> dict[str, Any]:
    """A minimal valid policy document; override any part."""
    program: dict[str, Any] = {"phase": phase, "timezone": timezone, "units": units}
    if hours is not None:
        program["hours"] = hours
    return {
        "policy": {"id": "test-policy", "version": "7"},
        "program": program,
        "categories": categories or ["cat_a", "cat_b", "cat_c"],
        "exclusions": exclusions or [],
        "rules": rules or [{"id": "r", "category": "cat_a", "action": "team",
                            "when": {"nature_code": ["X"]}}],
    }


def compiled(doc: dict[str, Any]) -> CompiledPolicy:
    return compile_policy(parse_policy(doc))


def single_rule(when: dict[str, Any], **program: Any) -> CompiledPolicy:
    """A policy with one rule `r` (category cat_a, action team) holding `when`."""
    return compiled(policy_doc(rules=[{"id": "r", "category": "cat_a", "action": "team",
                                       "when": when}], **program))


def facts(**fields: Any) -> CallFacts:
    fields.setdefault("occurred_at", TUESDAY_AFTERNOON)
    return CallFacts.model_validate(fields)


def run(policy: CompiledPolicy, **fields: Any) -> Classification:
    return classify(facts(**fields), policy)


def matches(when: dict[str, Any], **fields: Any) -> bool:
    """Does a single rule with condition `when` hold for the call?"""
    return run(single_rule(when), **fields).rule_id == "r"


def shipped_doc() -> dict[str, Any]:
    """A fresh, mutable copy of the shipped policy document."""
    return copy.deepcopy(yaml.safe_load(default_policy_text()))


def shipped_with(units: int, version: str, **field: Any) -> CompiledPolicy:
    """The shipped policy as `version`, its first program with `units` (and `field`)."""
    doc = shipped_doc()
    doc["policy"]["version"] = version
    doc["programs"][0].update(units=units, **field)
    return compiled(doc)


def shipped_policy() -> Policy:
    return parse_policy(shipped_doc())


def one_team_doc() -> dict[str, Any]:
    """The shipped policy as it was before response programs: one team (`program:` with
    the hours 08:00-24:00 daily and the 4 units of the CALL field team), no `programs:`,
    no area, no queue, nothing deferred. For tests of the one-team format and of what a
    single team decides; its cases that name programs are left out."""
    doc = shipped_doc()
    field = doc.pop("programs")[0]
    doc["program"].update(hours={"start": "08:00", "end": "24:00",
                                 "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
                          units=field["units"])
    doc["tests"] = [t for t in doc["tests"] if "program" not in t["expect"]
                    and "programs" not in t.get("availability", {})]
    for excl in doc["exclusions"]:  # a follow-up is the one team's (the policy's id)
        if "follow_up" in excl:
            excl["follow_up"]["program"] = doc["policy"]["id"]
    return doc


def one_team_policy() -> Policy:
    return parse_policy(one_team_doc())


def write_policy(path: Path, doc: dict[str, Any]) -> str:
    """`doc` written as a policy file at `path`, for Settings.policy (`liaison serve
    --policy`); its path as a string."""
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return str(path)


def always_open_policy(folder: Path) -> str:
    """The shipped policy with its programs on shift round the clock, written in `folder`, for
    a server (Settings.policy) whose tests are not about hours: what a page does with a
    referral or a follow-up made *now* must not depend on when the suite runs. Its own
    test cases (some about hours) are left out."""
    doc = shipped_doc()
    for program in doc["programs"]:
        if "hours" in program:
            program["hours"] = {"daily": ["00:00-24:00"]}
    doc.pop("tests", None)
    return write_policy(folder / "always-open.yaml", doc)


def everywhere_policy(folder: Path) -> str:
    """The shipped policy with the CALL field team serving every district (its `area`
    left out), written in `folder`: for a server whose tests send calls whose district is
    not St. Petersburg's (hostile text in it, say) and still need them on the team's
    board. Its own test cases are left out."""
    doc = shipped_doc()
    for program in doc["programs"]:
        program.pop("area", None)
    doc.pop("tests", None)
    return write_policy(folder / "everywhere.yaml", doc)


# -- routing ------------------------------------------------------------------------------

def decide(policy: CompiledPolicy, *, units_busy: int = 0, **fields: Any) -> Decision:
    availability = Availability(units_total=policy.policy.program.units, units_busy=units_busy)
    return decide_call(facts(**fields), policy, availability)


# -- generic CAD events -------------------------------------------------------------------

_counter = 0


def event(**fields: Any) -> dict[str, Any]:
    """A valid generic CAD event; keyword arguments replace or add fields."""
    global _counter
    _counter += 1
    body: dict[str, Any] = {
        "event_id": f"ev-{uuid.uuid4().hex}",
        "incident_id": f"INC-{uuid.uuid4().hex[:10]}",
        "type": "created",
        # A Tuesday afternoon in St. Petersburg: inside the shipped policy's team hours.
        "occurred_at": "2026-03-10T14:00:00-04:00",
        "channel": "911",
        "nature_code": "MNTL",
        "nature_text": "Mental person non-violent",
        "priority": 3,
        "narrative": "Adult son talking to himself, not sleeping, no weapons.",
        "location": {"address": "1300 1st Ave N", "district": "D2", "lat": 27.77,
                     "lon": -82.65},
        "flags": [],
    }
    body.update(fields)
    return body


def ingest_event(policy: CompiledPolicy, **fields: Any) -> IngestEvent:
    """The writer's command for a new CAD event (`event(**fields)`) under `policy`, its
    program's units as the policy counts them."""
    return IngestEvent(event=CallEvent.model_validate(event(**fields)), policy=policy,
                       units_total=policy.policy.program.units)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# -- hand-made EIDOs (NENA-STA-024) ------------------------------------------------------

AGENCY = "psap.stpete.example"


STAMP = "2026-03-10T14:00:00-04:00"  # a Tuesday afternoon: within the shipped policy's hours


def pidf(civic: dict[str, str] | None = None, point: tuple[float, float] | None = None) -> str:
    parts = []
    if civic:
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in civic.items())
        parts.append(f'<civicAddress xmlns="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr">'
                     f"{fields}</civicAddress>")
    if point:
        parts.append('<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
                     f"<gml:pos>{point[0]} {point[1]}</gml:pos></gml:Point>")
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
            'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
            'xmlns:gml="http://www.opengis.net/gml" entity="pres:caller@example.com">'
            '<tuple id="t1"><status><gp:geopriv><gp:location-info>'
            + "".join(parts) +
            "</gp:location-info><gp:usage-rules/></gp:geopriv></status></tuple></presence>")


def _prologue(cid: str, at: str) -> dict[str, Any]:
    return {"$id": cid, "lastUpdateTimeStamp": at, "updatedByAgencyReference": {"$ref": AGENCY},
            "updatedByAgentReference": {"$ref": f"ct7@{AGENCY}"}}


def eido(*, unique: str = "a1b2c3", code: str = "MNTL",
         internal_text: str | None = "Mental person non-violent", internal_code: str = "MH1",
         status: list[str] | None = None, priority: int | None = 5,
         notes: list[str] | None = None, at: str = STAMP, beat: str | None = "D2",
         call_type: str | None = "emergency") -> dict[str, Any]:
    """A conformant EIDO (NENA-STA-021.1b) for one incident in St. Petersburg."""
    if notes is None:
        notes = ["<p>Caller says her brother is talking to himself, no weapons.</p>"]
    incident_id = f"urn:emergency:uid:incidentid:{unique}:{AGENCY}"

    def cid(part: str) -> str:
        return f"urn:emergency:uid:eidodatacomponent:{unique}-{part}:{AGENCY}"

    incident: dict[str, Any] = {
        **_prologue(cid("inc"), at), "incidentTypeCommonRegistryText": code,
        "incidentTypeInternalCode": internal_code,
        "incidentStatusCommonRegistryText": status or ["Active"],
        "locationReference": [{"$ref": cid("loc")}],
        "notesReference": [{"$ref": cid(f"note{i}")} for i in range(len(notes))],
    }
    if internal_text is not None:
        incident["incidentTypeInternalText"] = internal_text
    if priority is not None:
        incident["incidentCommonPriorityNumber"] = priority
    if beat is not None:
        incident["beatOrDispatchGroupText"] = beat
    doc: dict[str, Any] = {
        **_prologue(incident_id, at),
        "eidoVersion": "1.0",
        "issuingElementIdentification": f"cad.{AGENCY}",
        "incidentComponent": incident,
        "locationComponent": [{
            **_prologue(cid("loc"), at), "locationTypeDescriptionRegistryText": "CurrentIncident",
            "locationByValue": pidf({"country": "US", "A1": "FL", "A3": "St. Petersburg",
                                     "HNO": "1300", "RD": "1st", "STS": "Ave", "POD": "N"},
                                    (27.7731, -82.6516)),
        }],
        "notesComponent": [{**_prologue(cid(f"note{i}"), at), "notesActionComments": html,
                            "agentReference": {"$ref": f"ct7@{AGENCY}"}}
                           for i, html in enumerate(notes)],
        "agencyComponent": [{**_prologue(AGENCY, at),
                             "agencyRoleDescriptionRegistryText": ["CallReceiving",
                                                                   "Dispatching"],
                             "agencyType": ["psap"], "incidentOwningAgencyIndicator": True}],
        "agentComponent": [{**_prologue(f"ct7@{AGENCY}", at), "agentRoleRegistryText":
                            ["Call Taking"], "agencyReference": {"$ref": AGENCY}}],
        "@context": {"@vocab": "./JSON-LD_Contexts/EmergencyIncidentDataObjectType.jsonld"},
    }
    if call_type is not None:
        doc["callComponent"] = [{
            **_prologue(f"urn:emergency:uid:callid:{unique}:{AGENCY}", at),
            "standardPrimaryCallType": call_type, "direction": "incoming",
            "callStartTimestamp": at, "callStateRegistryText": "callAnswered",
            "locationReference": [{"$ref": cid("loc")}],
        }]
    return doc


def variant(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.update(changes)
    return out


# -- a hand-made CAD export and its profile ----------------------------------------------

# Profiles for San Jose and Milwaukee written as a new user would (tests only).
TEST_PROFILES = Path(__file__).parent / "adapters" / "profiles"


# A made-up city: one row per incident, local Central time, a close time, a channel column.
HEADER = ["call_no", "received", "closed", "type", "type_desc", "prio", "block", "street",
          "beat", "source", "lat", "lon"]


PROFILE: dict[str, Any] = {
    "profile": {"id": "testville", "version": "1", "name": "Testville PD"},
    "columns": {
        "incident_id": "call_no",
        "received_at": "received",
        "closed_at": "closed",
        "nature_code": "type",
        "nature_text": "type_desc",
        "priority": {"column": "prio", "map": {"E": "0"}},
        "address": {"column": ["block", "street"], "null_values": ["0"]},
        "district": {"column": "beat", "null_values": ["-1"]},
        "lat": "lat",
        "lon": "lon",
    },
    "time": {"format": "%m/%d/%Y %H:%M:%S", "timezone": "America/Chicago"},
    "channel": {"default": "911", "rules": [
        {"channel": "non_emergency", "when": {"column": "source", "in": ["PHONE-NE"]}},
        {"channel": "officer_on_scene", "when": {"column": "source", "in": ["FIELD"]}},
    ]},
    "officer_initiated": {"action": "skip", "when": {"column": "type", "in": ["TS", "BC"]}},
    "skip": [{"reason": "information_only", "when": {"column": "type", "prefix": ["INFO"]}}],
    "codes": [
        {"code": ["MH"], "nature_code": "MNTL", "category": "mental_health"},
        {"code": ["DIST"], "when": {"column": "type_desc", "in": ["DRUNK"]},
         "nature_code": "INTOX", "category": "substance_use"},
        {"code": ["DIST"], "nature_code": "DISORD"},
        {"code": ["SHOT"], "nature_code": "SHOOT", "flags": ["weapon", "violence"]},
    ],
}


def profile_doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(PROFILE)
    doc.update(changes)
    return doc


def make_profile(**changes: Any) -> Profile:
    return parse_profile(profile_doc(**changes), "test profile")


def row(**values: str) -> dict[str, str]:
    base = {k: "" for k in HEADER}
    base.update(call_no="T-1", received="03/12/2024 14:05:00", type="MH",
                type_desc="MENTAL HEALTH", prio="2", block="100", street="MAIN ST",
                beat="D1", source="911")  # beat: one of the shipped policy's districts
    base.update(values)
    return base


def write_export(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def write_profile(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def call_row(cid: str, opened: datetime, *, destination: str = "call_team",
             category: str | None = "mental_health", eligible: bool = True,
             not_served: str | None = None, district: str = "D1", basis: str = "rule",
             decided: int = 5, en_route: int | None = None, on_scene: int | None = None,
             cleared: int | None = None, **extra: Any) -> dict[str, Any]:
    """A whole call row; the step times are seconds after `opened` (cleared: after on
    scene)."""
    def after(s: int | None, base: datetime | None = None) -> datetime | None:
        return None if s is None else (base or opened) + timedelta(seconds=s)

    on_scene_at = after(on_scene)
    decision = {"destination": destination, "basis": basis, "category": category,
                "eligible": eligible, "not_served_reason": not_served}
    row: dict[str, Any] = {
        "id": cid, "source": "generic", "incident_id": f"INC-{cid}", "channel": "911",
        "nature_code": "MNTL", "nature_text": "Mental person", "narrative": "secret words",
        "flags": "[]", "opened_at": opened, "last_event_at": opened, "district": district,
        "destination": destination,
        "mode": "police_only" if destination == "police" else "call_direct",
        "category": category, "eligible": eligible, "not_served_reason": not_served,
        "holds_unit": False, "policy_version": "p@1",
        "decision": json.dumps(decision, separators=(",", ":")), "updated_at": opened,
        "purpose": "live", "safety_incident": False, "checkins_missed": 0,
        "received_at": after(decided), "first_decided_at": after(decided),
        "initial_destination": destination, "en_route_at": after(en_route),
        "on_scene_at": on_scene_at, "cleared_at": after(cleared, on_scene_at),
    }
    row.update(extra)
    return row


def history() -> list[dict[str, Any]]:
    rows = _history()
    keys = {k for r in rows for k in r}
    return [{k: r.get(k) for k in sorted(keys)} for r in rows]  # one shape: executemany


def _history() -> list[dict[str, Any]]:
    return [
        call_row("c1", utc(2026, 10, 31, 14, 0), decided=5, en_route=120, on_scene=600,
                 cleared=1800, person_key="P1", age_group="adult",
                 disposition="resolved_on_scene", team_status="cleared"),
        call_row("c2", utc(2026, 11, 1, 5, 30), destination="police", not_served="off_hours",
                 decided=2, person_key="P2", age_group="adult"),
        call_row("c3", utc(2026, 11, 1, 6, 30), destination="police", district="D2",
                 category="disorderly_juvenile", not_served="units_busy", decided=2,
                 person_key="P3", age_group="youth"),
        call_row("c4", utc(2026, 11, 1, 15, 0), destination="joint", district="D2",
                 category="disorderly_juvenile", decided=3, en_route=60, on_scene=300,
                 cleared=600, person_key="P3", age_group="youth",
                 backup_requested_at=utc(2026, 11, 1, 15, 7), safety_incident=True,
                 disposition="police_took_over", team_status="cleared"),
        call_row("c5", utc(2026, 11, 2, 14, 0), destination="police", not_served="override",
                 decided=4, person_key="P1", age_group="adult", initial_destination="call_team",
                 overridden_by="disp-7", override_reason="Caller reports a knife ",
                 overridden_at=utc(2026, 11, 2, 14, 1)),
        call_row("c6", utc(2026, 11, 2, 17, 0), district="D2", category="homelessness",
                 channel="officer_referral", decided=10, en_route=30, on_scene=900,
                 cleared=1200, person_key="P4", age_group="youth", referred_by="badge-1",
                 referred_unit="U1", disposition="referred_to_services", team_status="cleared",
                 outcome="Connected to a shelter bed"),
        call_row("c7", utc(2026, 11, 2, 18, 0), destination="police", category=None,
                 eligible=False, basis="no_rule", decided=1),
        call_row("c11", utc(2026, 11, 2, 20, 0), channel="follow_up", follow_up_of="c1",
                 decided=6, en_route=100, on_scene=400, cleared=600, person_key="P1",
                 age_group="adult", initial_destination="police",
                 disposition="resolved_on_scene", team_status="cleared"),
        call_row("c8", utc(2026, 11, 2, 15, 0), purpose="test", person_key="P9"),
        call_row("c9", utc(2026, 11, 2, 16, 0), purpose="training", safety_incident=True,
                 referred_by="badge-1", channel="officer_referral"),
        call_row("c10", utc(2026, 11, 3, 5, 30), destination="police", not_served="off_hours"),
    ]


def uniform(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = {k for r in rows for k in r}
    return [{k: r.get(k) for k in sorted(keys)} for r in rows]


def gap_history() -> list[dict[str, Any]]:
    """September 2026: D1's eligible calls all go to police (off hours), D2's to the team."""
    rows = []
    base = datetime(2026, 9, 8, 16, 0, tzinfo=UTC)
    for i in range(12):
        rows.append(call_row(f"g1-{i}", base + timedelta(hours=i), destination="police",
                             not_served="off_hours", district="D1"))
        rows.append(call_row(f"g2-{i}", base + timedelta(hours=i, minutes=5), district="D2"))
    return rows


def doc(version: str, **changes: Any) -> dict[str, Any]:
    d: dict[str, Any] = yaml.safe_load(default_policy_text())
    d["policy"]["version"] = version
    d.update(changes)
    return d


def as_yaml(d: dict[str, Any]) -> str:
    return yaml.safe_dump(d, sort_keys=False)


PERSON = {"id": "MN-4411", "name": "Jordan Example", "phone": "727-555-0199", "age": 34}


NARRATIVE = "Sister says he stopped his medication and hears voices."


async def login(server: Server, role: Role) -> httpx.AsyncClient:
    """A client logged in as the role's test user (a session cookie); close it after."""
    client = httpx.AsyncClient(base_url=server.base_url, timeout=30)
    r = await client.post("/v1/session", json={"username": server.creds.users[role],
                                               "password": server.creds.password})
    assert r.status_code == 200, r.text
    return client


def as_role(server: Server, role: Role) -> dict[str, str]:
    """The environment for a `liaison` command acting as `role` (its key in LIAISON_TOKEN)."""
    return {**os.environ, TOKEN_ENV: server.creds.keys[role]}


def no_token() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != TOKEN_ENV}


async def liaison(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`liaison …` as a child process; `env`: its environment (default: no LIAISON_TOKEN)."""
    # Not subprocess.run: the server under test shares this event loop.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", *args, cwd=ROOT, env=env or no_token(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# A square of downtown St. Petersburg (lon, lat), the HEART-style field team's area.
DOWNTOWN = {"type": "Polygon", "coordinates": [[[-82.66, 27.76], [-82.63, 27.76],
                                                [-82.63, 27.78], [-82.66, 27.78],
                                                [-82.66, 27.76]]]}
IN_DOWNTOWN = {"lat": 27.77, "lon": -82.64}
OUT_OF_TOWN = {"lat": 27.90, "lon": -82.70}


def programs_doc(**changes: Any) -> dict[str, Any]:
    """A policy of three programs, tried in order: a field team (two units, weekday and
    Saturday shifts, Christmas off, downtown or district D1, wait limits, referrals and
    follow-ups deferred), a co-response unit (mental health, all day, D1 and D2) and a
    24/7 phone line."""
    doc: dict[str, Any] = {
        "policy": {"id": "three-programs", "version": "1", "name": "Three programs"},
        "program": {"phase": 2, "timezone": "America/New_York"},
        "programs": [
            {"id": "field", "name": "Field team", "mode": "field",
             "categories": ["mental_health", "homelessness", "welfare"],
             "hours": {"mon": ["08:00-12:00", "13:00-20:00"], "tue": ["08:00-12:00",
                                                                      "13:00-20:00"],
                       "wed": ["08:00-12:00", "13:00-20:00"], "thu": ["08:00-12:00",
                                                                      "13:00-20:00"],
                       "fri": ["08:00-12:00", "13:00-20:00"], "sat": ["10:00-18:00"]},
             "dates_off": [{"date": "2026-12-25", "name": "Christmas"}],
             "units": 2,
             "area": {"districts": ["D1"], "polygons": DOWNTOWN},
             "queue": [{"category": "mental_health", "priority": {"min": 3},
                        "max_wait_minutes": 20},
                       {"category": "homelessness", "max_wait_minutes": 45}],
             "max_queued": 3,
             "deferrable": ["officer_referral", "follow_up"]},
            {"id": "co-response", "name": "Co-response", "mode": "co_response",
             "categories": ["mental_health"], "units": 1,
             "hours": {"daily": ["00:00-24:00"]},
             "area": {"districts": ["D1", "D2"]}},
            {"id": "line", "name": "Crisis line", "mode": "phone",
             "categories": ["crisis_line"]},
        ],
        "categories": ["mental_health", "homelessness", "welfare", "crisis_line"],
        "exclusions": [{"id": "weapon", "when": {"flags_any": ["weapon", "violence"]}}],
        "rules": [
            {"id": "line", "category": "crisis_line", "action": "team",
             "needs_field_unit": False, "when": {"channel": ["crisis_line"]}},
            {"id": "mh", "category": "mental_health", "action": "team",
             "when": {"nature_code": ["MNTL"]}},
            {"id": "vag", "category": "homelessness", "action": "team",
             "when": {"nature_code": ["VAG"]}},
            {"id": "welfare", "category": "welfare", "action": "team",
             "when": {"nature_code": ["WELFARE"]}},
        ],
    }
    doc.update(changes)
    return doc


NEW_YORK = ZoneInfo("America/New_York")


def busy_weeks(seed: int, n: int = 3000) -> list[SimCall]:
    """Three weeks of calls, some minutes apart, in crowds: codes the shipped policy sends
    to the team, to police, excludes; referrals (deferred), crisis-line calls, districts in
    and out of the area, priorities, test calls, and a change of clocks (3 November)."""
    rng = random.Random(seed)
    codes = [("MNTL", "Mental person"), ("WELFARE", "Check the welfare"), ("INTOX", "Drunk"),
             ("NOISE", "Loud party"), ("ASSAULT", "Assault"), ("THEFT", "Theft"),
             ("MNTL", "Mental person with a knife"), ("VAG", "Sleeper"), ("OD", "Overdose")]
    channels = ["911"] * 12 + ["non_emergency", "officer_referral", "crisis_line",
                               "follow_up"]
    at = datetime(2024, 10, 28, 6, 0, tzinfo=NEW_YORK)
    calls = []
    for i in range(n):
        at += timedelta(seconds=rng.choice([0, 30, 90, 240, 600, 900, 1800]))
        code, text = rng.choice(codes)
        calls.append(SimCall(f"c{i}", facts(
            nature_code=code, nature_text=text, channel=rng.choice(channels),
            priority=rng.choice([None, 1, 2, 3, 4, 5]),
            district=rng.choice([None, "D1", "D2", "D9"]),
            purpose="test" if rng.random() < 0.03 else "live",
            occurred_at=at.astimezone(NEW_YORK).isoformat())))
    return calls
