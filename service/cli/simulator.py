"""A built-in CAD simulator for the demo: a realistic mix of calls posted to the real
endpoint, with later updates (some turn dangerous), closes, and the team working its
calls through to clear. The calls are spread over the region's agencies (each call in
one agency's districts, which say whose it is: service/cli/demo_region.py)."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from service.cli.demo_region import AREAS, FeedArea

log = logging.getLogger("liaison.simulator")


@dataclass(frozen=True)
class Template:
    weight: int
    nature_code: str
    nature_text: str
    narrative: str
    channel: str = "911"
    flags: tuple[str, ...] = ()


# Roughly the share of a city's calls: most are police matters; a few percent fit CALL.
TEMPLATES: tuple[Template, ...] = (
    Template(14, "ALRBA", "Burglar alarm audible", "Alarm company reports front door zone."),
    Template(10, "TSTOP", "Traffic stop", "Unit on a traffic stop."),
    Template(8, "SUSP", "Suspicious incident", "Caller reports a person checking car doors."),
    Template(6, "MVA", "Motor vehicle accident", "Two cars, no injuries reported."),
    Template(5, "ASSAULT", "Assault", "Caller says a man hit her at the bus stop.",
             flags=("violence",)),
    Template(4, "LARCENY", "Larceny", "Bike stolen from rack overnight."),
    Template(3, "DVNA", "Domestic non-violent", "Couple arguing loudly, caller concerned."),
    Template(6, "MNTL", "Mental person non-violent",
             "Caller's adult son is not sleeping, talking to himself, no weapons in the home."),
    Template(3, "SUICTHRT", "Attempt or threatening suicide",
             "Caller's friend texted that she wants to end it; she is at home alone."),
    Template(4, "WELFARE", "Welfare check", "Neighbor has not seen the elderly resident in days."),
    Template(4, "INTOX", "Intoxicated person", "Man intoxicated and sleeping on a bench."),
    Template(4, "VAG", "Vagrant/Panhandler", "Person panhandling at the intersection."),
    Template(2, "TRESPASS", "Trespass", "Homeless man sleeping in the church doorway."),
    Template(3, "CDX", "Civil dispute", "Neighbor dispute over a fence line, both calm."),
    Template(2, "JUV", "Juvenile offense", "Group of teens refusing to leave the store."),
    Template(2, "TRUANT", "Truant", "School resource reports a student who left campus.",
             channel="non_emergency"),
    Template(2, "EDP", "Emotional disturbance", "Person shouting in the street, appears confused.",
             channel="officer_on_scene"),
    Template(2, "CITASST", "Public assistance", "Officer refers a family needing shelter.",
             channel="officer_referral"),
    Template(1, "CRISIS", "Crisis line call", "Caller wants to talk to someone tonight.",
             channel="crisis_line"),
)


class Simulator:
    def __init__(self, base_url: str, *, rate_per_min: float = 30.0,
                 seed: int | None = None, keys: dict[str, str] | None = None,
                 areas: tuple[FeedArea, ...] = AREAS) -> None:
        self.base_url = base_url.rstrip("/")
        # API keys by role: the CAD's (events) and the team's (status changes).
        self.keys = keys or {}
        self.rate = max(rate_per_min, 0.1)
        self.rng = random.Random(seed)
        self.weights = [t.weight for t in TEMPLATES]
        self.areas = areas
        self.sent = 0
        # What the feed did, for the demo's periodic summary (not a log line per request).
        self.calls: Counter[str] = Counter()  # new calls by first destination
        self.agencies: Counter[str] = Counter()  # new calls by the agency that has them
        self.steps = 0  # team status changes
        self.failed = 0

    def summary(self) -> str:
        by = ", ".join(f"{d} {n}" for d, n in self.calls.most_common())
        whose = ", ".join(f"{a} {n}" for a, n in sorted(self.agencies.items()))
        return (f"{sum(self.calls.values())} calls ({by or 'none yet'}"
                f"{'; agencies ' + whose if whose else ''}), "
                f"{self.steps} team status changes, {self.failed} refused or failed")

    async def report(self, every: float, say: Callable[[str], None]) -> None:
        """Say the summary every `every` seconds, while it changes."""
        last = ""
        while True:
            await asyncio.sleep(every)
            now = self.summary()
            if now != last:
                say(f"{datetime.now().astimezone():%H:%M:%S} demo feed so far: {now}")
                last = now

    def make_call(self, now: datetime) -> dict[str, Any]:
        t = self.rng.choices(TEMPLATES, self.weights)[0]
        area = self.rng.choice(self.areas)
        lat = area.lat + self.rng.uniform(-0.05, 0.05)
        lon = area.lon + self.rng.uniform(-0.05, 0.05)
        return {
            "event_id": uuid.uuid4().hex,
            "incident_id": f"SIM-{now:%y%m%d}-{self.rng.randrange(10**6):06d}",
            "type": "created",
            "occurred_at": now.isoformat(),
            "channel": t.channel,
            "nature_code": t.nature_code,
            "nature_text": t.nature_text,
            "priority": self.rng.randint(1, 5),
            "narrative": t.narrative,
            "location": {"address": f"{self.rng.randint(100, 4999)} "
                                    f"{self.rng.choice(area.streets)}",
                         "district": self.rng.choice(area.districts),
                         "lat": round(lat, 5), "lon": round(lon, 5)},
            "flags": list(t.flags),
        }

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            tasks: set[asyncio.Task[None]] = set()
            while not stop.is_set():
                call = self.make_call(datetime.now(UTC))
                task = asyncio.create_task(self._life(client, call))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(self.rng.expovariate(self.rate / 60.0))
            for task in tasks:
                task.cancel()

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]
                    ) -> dict[str, Any] | None:
        try:
            role = "cad" if path.startswith("/v1/cad/") else "call_team"
            key = self.keys.get(role)
            headers = {"authorization": f"Bearer {key}"} if key else None
            r = await client.post(path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            self.failed += 1
            log.warning("simulator could not reach Liaison: %s", exc)
            return None
        if r.status_code >= 400:
            self.failed += 1
            log.warning("simulator got %s for %s: %s", r.status_code, path, r.text[:200])
            return None
        self.sent += 1
        if path.endswith("/status"):
            self.steps += 1
        return dict(r.json())

    def _area(self, call: dict[str, Any]) -> FeedArea:
        district = call["location"]["district"]
        return next(a for a in self.areas if district in a.districts)

    async def _life(self, client: httpx.AsyncClient, call: dict[str, Any]) -> None:
        """One incident from creation to close, on a compressed clock."""
        answer = await self._post(client, "/v1/cad/events", call)
        if answer is None:
            return
        decision = answer["decision"]
        self.calls[decision["destination"]] += 1
        self.agencies[self._area(call).agency] += 1  # the districts it was posted for
        await asyncio.sleep(self.rng.uniform(3, 10))
        if self.rng.random() < 0.08:
            # Something new comes in: the caller now mentions a weapon.
            await self._post(client, "/v1/cad/events", {
                "event_id": uuid.uuid4().hex, "incident_id": call["incident_id"],
                "type": "updated", "occurred_at": datetime.now(UTC).isoformat(),
                "flags": ["weapon"],
                "narrative": call["narrative"] + " Caller now says he has a knife.",
            })
            decision = {"destination": "police"}
        if decision["destination"] in ("call_team", "joint") and decision.get(
                "needs_field_unit", True):
            unit = f"{self._area(call).unit_prefix}-{self.rng.randint(1, 4)}"
            path = f"/v1/calls/{answer['call_id']}/status"
            for status in ("assigned", "en_route", "on_scene"):
                if await self._post(client, path, {"status": status, "unit": unit}) is None:
                    break
                await asyncio.sleep(self.rng.uniform(2, 8))
            else:
                if self.rng.random() < 0.05:
                    await self._post(client, path, {"status": "backup_requested"})
                    await asyncio.sleep(self.rng.uniform(2, 5))
                await self._post(client, path, {"status": "cleared", "disposition": self.rng.choice(
                    ["resolved_on_scene", "referred_to_services", "transported"])})
        await asyncio.sleep(self.rng.uniform(2, 6))
        await self._post(client, "/v1/cad/events", {
            "event_id": uuid.uuid4().hex, "incident_id": call["incident_id"], "type": "closed",
            "occurred_at": datetime.now(UTC).isoformat()})
