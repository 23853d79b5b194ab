"""The demo's region (issue 17): two agencies in two time zones on one server.

`default` runs the policy the demo was started with (the shipped St. Petersburg one unless
`--policy`), in its own zone, districts D1-D4; `west` is a made-up county in Central time
whose policy is the same one with its zone, id and districts changed. The feed
(service/cli/simulator.py) posts calls in both agencies' districts, so the board, the
console and the figures show two agencies' calls, each decided on its own clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from routing.jurisdiction import AgencyRecord
from service.errors import Conflict
from service.policy.region import add_agency, list_agencies, update_agency
from service.store.tables import DEFAULT_AGENCY


@dataclass(frozen=True)
class FeedArea:
    """Where the feed's calls for one agency are: its districts, a place, its streets
    and the team's unit names."""

    agency: str
    districts: tuple[str, ...]
    lat: float
    lon: float
    streets: tuple[str, ...]
    unit_prefix: str


DEFAULT_AREA = FeedArea(
    DEFAULT_AGENCY, ("D1", "D2", "D3", "D4"), 27.77, -82.66,
    ("1st Ave N", "Central Ave", "4th St S", "MLK St N", "22nd St S", "Dr MLK Jr St S",
     "9th Ave N", "34th St N", "Beach Dr NE", "18th Ave S"), "CALL")
WEST_AREA = FeedArea(
    "west", ("W1", "W2", "W3"), 38.63, -90.35,
    ("Manchester Rd", "Big Bend Blvd", "Lindbergh Blvd", "Olive Blvd", "Clayton Rd"),
    "WEST")
AREAS = (DEFAULT_AREA, WEST_AREA)
WEST = AgencyRecord(id="west", name="West County (demo)", timezone="America/Chicago",
                    districts=list(WEST_AREA.districts))


def agency_policy(text: str, agency: AgencyRecord, policy_id: str) -> str:
    """A policy document as another agency's: its id, its time zone, every district list
    naming the agency's districts; its test cases (written for the first zone's clock)
    left out."""
    doc = yaml.safe_load(text)
    doc["policy"]["id"] = policy_id
    doc["program"]["timezone"] = agency.timezone
    doc.pop("tests", None)

    def districts(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "districts" and isinstance(value, list):
                    node[key] = list(agency.districts)
                else:
                    districts(value)
        elif isinstance(node, list):
            for item in node:
                districts(item)

    districts(doc)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


async def demo_region(engine: AsyncEngine, policy_text: str) -> list[AgencyRecord]:
    """Make the demo's second agency if it is not there (its policy from `policy_text`,
    the default agency's), and give the default agency its districts if it has none,
    so the feed's districts say whose each call is. Returns the agencies."""
    agencies = {a.id: a for a in await list_agencies(engine)}
    default = agencies.get(DEFAULT_AGENCY)
    if default is not None and not default.districts:
        await update_agency(engine, default.model_copy(
            update={"districts": list(DEFAULT_AREA.districts)}))
    if WEST.id not in agencies:
        try:
            await add_agency(engine, WEST, agency_policy(policy_text, WEST, "west-county-demo"),
                             author="liaison demo")
        except Conflict:
            pass  # another instance made it first
    return await list_agencies(engine)
