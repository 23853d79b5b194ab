"""Whose call it is: the agency (jurisdiction) that claims a call, and why. Pure.

A regional answering point dispatches for several agencies (issue 17). A call's agency
is, in this order: the one its CAD key is tied to; the one the event names (`agency`);
the one whose districts list the call's district; the one whose boundary (GeoJSON)
holds its coordinates; the only agency, when there is one. A call no agency claims goes
to police, the safe default, saying so (`unclaimed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from routing.models import Decision, Destination, Mode, ProgramContext
from rules.areas import AreaIndex, geojson_errors, polygons
from rules.base import valid_timezone
from rules.evaluate import CompiledPolicy

ANY = "*"  # a key or a person of no one agency: the region's
AGENCY_ID = r"^[a-z0-9][a-z0-9_-]{0,39}$"

How = Literal["key", "event", "district", "boundary", "sole", "kept", "none"]


class AgencyRecord(BaseModel):
    """An agency as stored (table `agency`) and as the API takes it."""

    id: str = Field(pattern=AGENCY_ID, description="lower-case letters, digits, - and _")
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(description="IANA time zone, e.g. America/Chicago")
    districts: list[str] = Field(default_factory=list, description="CAD districts that are "
                                 "this agency's")
    boundary: dict[str, Any] | None = Field(default=None, description="a GeoJSON Polygon, "
                                            "MultiPolygon, Feature or FeatureCollection")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return valid_timezone(v)

    @field_validator("districts")
    @classmethod
    def _districts(cls, v: list[str]) -> list[str]:
        cleaned = [d.strip() for d in v]
        if any(not d for d in cleaned):
            raise ValueError("a district name cannot be empty")
        return sorted(set(cleaned))

    @field_validator("boundary")
    @classmethod
    def _boundary(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            errors = geojson_errors(v)
            if errors:
                raise ValueError("; ".join(f"{p or 'boundary'}: {why}" for p, why in errors))
        return v


@dataclass(frozen=True)
class Claim:
    """The agency a call is for (None: none claims it), how it was found, and the
    explanation step that says so."""

    agency: str | None
    how: How
    step: str


class UnknownAgency(ValueError):
    """The event names an agency that does not exist, or not the one its key posts for."""


class Jurisdictions:
    """The region's agencies, indexed for `claim`."""

    def __init__(self, agencies: Sequence[AgencyRecord]) -> None:
        self.agencies = {a.id: a for a in agencies}
        self._by_district: dict[str, list[str]] = {}
        for a in sorted(agencies, key=lambda a: a.id):
            for d in a.districts:
                self._by_district.setdefault(d.casefold(), []).append(a.id)
        ordered = sorted((a for a in agencies if a.boundary), key=lambda a: a.id)
        self._ids = [a.id for a in ordered]
        self._areas = AreaIndex([(i, polygons(a.boundary or {}))
                                 for i, a in enumerate(ordered)]) if ordered else None

    @property
    def several(self) -> bool:
        return len(self.agencies) > 1

    def _named(self, agency_id: str, how: How, why: str) -> Claim:
        a = self.agencies[agency_id]
        return Claim(agency_id, how,
                     f"Agency '{a.id}' ({a.name}, {a.timezone}) has this call: {why}.")

    def claim(self, *, key_agency: str = ANY, named: str | None = None,
              district: str | None = None, lat: float | None = None,
              lon: float | None = None) -> Claim:
        """Whose call a new call is. Raises UnknownAgency for an agency the event names
        that does not exist, or that is not the one its key is tied to."""
        if named is not None and named not in self.agencies:
            raise UnknownAgency(f"no agency {named!r}; agencies: "
                                f"{', '.join(sorted(self.agencies)) or 'none'}")
        if key_agency != ANY:
            if named is not None and named != key_agency:
                raise UnknownAgency(f"this key posts for agency {key_agency!r}, not "
                                    f"{named!r}")
            if key_agency not in self.agencies:
                return self._none(f"its CAD key is tied to agency {key_agency!r}, which no "
                                  "longer exists")
            return self._named(key_agency, "key", "its CAD key is tied to it")
        if named is not None:
            return self._named(named, "event", "the event names it")
        if district:
            owners = self._by_district.get(district.strip().casefold(), [])
            if len(owners) == 1:
                a = self.agencies[owners[0]]
                return Claim(a.id, "district", f"Agency '{a.id}' ({a.name}, {a.timezone}) "
                                               f"has this call: district {district} is its.")
        if lat is not None and lon is not None and self._areas is not None:
            inside = sorted(self._areas.containing(lat, lon))
            if inside:
                a = self.agencies[self._ids[inside[0]]]
                return Claim(a.id, "boundary", f"Agency '{a.id}' ({a.name}, {a.timezone}) "
                                               "has this call: it is inside its boundary.")
        if len(self.agencies) == 1:
            (a,) = self.agencies.values()
            return Claim(a.id, "sole", f"Agency '{a.id}' ({a.name}) has this call: it is "
                                       "the only agency.")
        where = ", ".join(filter(None, [f"district {district}" if district else None,
                                        f"at {lat:.5f},{lon:.5f}"
                                        if lat is not None and lon is not None else None]))
        return self._none(f"no agency claims it ({where or 'no district or place given'}, "
                          "and the event names none)")

    @staticmethod
    def _none(why: str) -> Claim:
        return Claim(None, "none", f"No agency has this call: {why}.")


def kept(agency: AgencyRecord | None, agency_id: str | None) -> Claim:
    """The claim of a call that already has its agency (a later event of it)."""
    if agency_id is None:
        return Jurisdictions._none("none claimed it when it came in")
    name = f" ({agency.name}, {agency.timezone})" if agency else ""
    return Claim(agency_id, "kept", f"Agency '{agency_id}'{name} has this call.")


def unclaimed(step: str | None, at: datetime, *, no_policy: str | None = None) -> Decision:
    """The decision for a call no agency can take: none claims it (`step` says so), or
    its agency (`no_policy`) has no policy in force. Police respond, the safe default,
    saying why."""
    factors = [step] if step else []
    if no_policy is not None:
        factors.append(f"Agency '{no_policy}' has no policy in force yet.")
    factors.append("Sent to police, the safe default.")
    return Decision(
        destination=Destination.police, mode=Mode.police_only, category=None,
        policy_version="none", matched_rules=[], explanation=" ".join(factors),
        basis="no_agency", eligible=False, factors=factors,
        program=ProgramContext(phase=1, timezone="UTC", hours="", local_time="",
                               within_hours=False, units_total=0, units_busy=0),
        decided_at=at)


@dataclass(frozen=True)
class RegionView:
    """What a writer command needs to know of the region: whose a call is, and each
    agency's policy in force (service/policy/region.py makes it)."""

    jurisdictions: Jurisdictions
    policies: Mapping[str, CompiledPolicy]

    def step_for(self, agency_id: str | None) -> str | None:
        """The explanation step naming a kept call's agency; None in a region of one
        agency (its explanations read as they always did)."""
        if not self.jurisdictions.several:
            return None
        return kept(self.jurisdictions.agencies.get(agency_id or ""), agency_id).step


def with_claim(decision: Decision, step: str | None) -> Decision:
    """The decision with the step that says whose call it is first (when there is one
    and it is not there yet)."""
    if step is None or (decision.factors and decision.factors[0] == step):
        return decision
    factors = [step, *decision.factors]
    return decision.model_copy(update={"factors": factors, "explanation": " ".join(factors)})
