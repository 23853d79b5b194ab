"""Which unit to send to a team call: available, able (the capabilities the call's
category asks for, rules/programs.py `requires`), nearest by straight-line distance with
an estimated time, or the least loaded when no position is known. The reason says
why nearer units were passed over. Pure: the clock and the units are inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, Field

# Urban driving with lights off: what a crisis team's van averages (a setting).
SPEED_KMH_DEFAULT = 30.0
# A position older than this says little about where the unit is now (a setting).
STALE_AFTER_DEFAULT = timedelta(minutes=15)
# How many passed-over units the reason names; the list has them all.
REASON_NAMES = 3
_EARTH_KM = 6371.0088  # mean radius (IUGG)
_RAD = math.pi / 180

_STATUS_WORDS = {
    "assigned": "assigned to another call", "en_route": "en route to another call",
    "on_scene": "on scene", "backup_requested": "waiting for backup",
    "off_duty": "off duty",
}


class Located(Protocol):
    """What the recommendation reads of a call: where it is, if known."""

    @property
    def lat(self) -> float | None: ...
    @property
    def lon(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class UnitCandidate:
    """A unit as the recommendation weighs it (the service builds it from the roster)."""

    id: str
    capabilities: frozenset[str]
    status: str  # available | assigned | en_route | on_scene | backup_requested | off_duty
    lat: float | None = None
    lon: float | None = None
    position_at: datetime | None = None
    load: int = 0  # calls it took today
    call_sign: str | None = None


class PassedOver(BaseModel):
    unit_id: str
    why: str = Field(description="e.g. 'on scene', 'lacks youth_trained', "
                                 "'position unknown'")


class Recommendation(BaseModel):
    unit_id: str | None = Field(description="the unit to send; null: none is available "
                                            "with what the call needs")
    distance_km: float | None = Field(default=None, description="straight line")
    eta_minutes: int | None = Field(default=None, description="at the speed setting, "
                                                              "to the minute")
    basis: Literal["distance", "load"] | None = Field(
        description="nearest by position, or least loaded when no position is known; "
                    "null with no unit")
    needs: list[str] = Field(default_factory=list, description="the capabilities the "
                             "call's category asks for")
    reason: str
    passed_over: list[PassedOver] = Field(default_factory=list)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    return _h_km(math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2)


def _h_km(h: float) -> float:
    """The great-circle distance from the haversine of the central angle."""
    return 2 * _EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def eta_minutes(distance_km: float, speed_kmh: float) -> int:
    """Minutes at `speed_kmh`, to the nearest minute; at least one (nobody arrives in no
    time). An estimate from a straight line: more precision would mislead."""
    return max(1, math.floor(distance_km / speed_kmh * 60 + 0.5))


def _why_not(unit: UnitCandidate, needs: Sequence[str], wanted: frozenset[str]) -> str | None:
    """Why this unit cannot take the call, or None when it can."""
    if unit.status != "available":
        return _STATUS_WORDS.get(unit.status, unit.status.replace("_", " "))
    if wanted <= unit.capabilities:
        return None
    return f"lacks {', '.join(n for n in needs if n not in unit.capabilities)}"


def _fresh(unit: UnitCandidate, oldest: datetime | None) -> bool:
    """The unit's position is known and, with a clock, recent enough."""
    if unit.lat is None or unit.lon is None:
        return False
    return oldest is None or (unit.position_at is not None and unit.position_at >= oldest)


def _km(d: float) -> str:
    return f"{d:.1f} km" if d >= 0.1 else f"{round(d * 1000)} m"


def _joined(passed: Iterable[PassedOver], phrase: str) -> str:
    parts = [f"{p.unit_id} {phrase} but {p.why}" for p in passed]
    more = len(parts) - REASON_NAMES
    return "; ".join(parts[:REASON_NAMES] + ([f"{more} more passed over"] if more > 0
                                              else []))


def recommend(call: Located, needs: Sequence[str], units: Sequence[UnitCandidate], *,
              speed_kmh: float = SPEED_KMH_DEFAULT, now: datetime | None = None,
              stale_after: timedelta = STALE_AFTER_DEFAULT) -> Recommendation:
    """The unit to send. With the call's position and some able unit's known position:
    the nearest (ties: the less loaded, then by id), and every unit nearer than it is
    passed over with its reason. Otherwise the least loaded able unit (ties by id), and
    the less loaded units are passed over. A position older than `stale_after` at `now`
    is unknown (no `now`: positions are taken as they are)."""
    if speed_kmh <= 0:
        raise ValueError("speed_kmh must be positive")
    wanted = list(dict.fromkeys(needs))
    lat, lon = call.lat, call.lon
    need_set = frozenset(wanted)
    oldest = None if now is None else now - stale_after
    located: list[tuple[float, UnitCandidate, str | None]] = []
    unlocated: list[tuple[UnitCandidate, str | None]] = []
    if lat is not None and lon is not None:
        # Haversine with the call's side worked out once; `h` grows with the distance, so
        # units are compared on it and only the ones reported are turned into km.
        p1, cos_p1, l1 = lat * _RAD, math.cos(lat * _RAD), lon * _RAD
        for u in units:
            why = _why_not(u, wanted, need_set)
            if _fresh(u, oldest):
                p2 = u.lat * _RAD  # type: ignore[operator]
                h = (math.sin((p2 - p1) / 2) ** 2 + cos_p1 * math.cos(p2)
                     * math.sin((u.lon * _RAD - l1) / 2) ** 2)  # type: ignore[operator]
                located.append((h, u, why))
            else:
                unlocated.append((u, why))
    else:
        unlocated = [(u, _why_not(u, wanted, need_set)) for u in units]
    near = [(h, u) for h, u, why in located if why is None]
    if near:
        return _nearest(near, located, unlocated, wanted, speed_kmh)
    if any(why is None for _, why in unlocated):
        return _least_loaded(unlocated, wanted, located=lat is not None and lon is not None)
    return _none_able(located, unlocated, wanted, rostered=bool(units))


def _nearest(near: list[tuple[float, UnitCandidate]],
             located: list[tuple[float, UnitCandidate, str | None]],
             unlocated: list[tuple[UnitCandidate, str | None]], wanted: list[str],
             speed_kmh: float) -> Recommendation:
    h, chosen = min(near, key=lambda t: (t[0], t[1].load, t[1].id))
    dist = _h_km(h)
    passed = sorted(((d, u.id, why) for d, u, why in located if why is not None and d < h),
                    key=lambda t: (t[0], t[1]))
    over = [PassedOver(unit_id=i, why=w) for _, i, w in passed]
    tail = _joined(over, "is nearer")
    # Able units whose position is unknown (or stale) could be nearer: say how many.
    unplaced = sum(why is None for _, why in unlocated)
    if unplaced:
        tail += (("; " if tail else "") + f"{unplaced} able unit"
                 f"{' has' if unplaced == 1 else 's have'} no known position")
    eta = eta_minutes(dist, speed_kmh)
    head = f"{chosen.id}: {_km(dist)}, about {eta} min" + _able(wanted, ", ")
    return Recommendation(
        unit_id=chosen.id, distance_km=round(dist, 3), eta_minutes=eta, basis="distance",
        needs=wanted, reason=head + (f"; {tail}" if tail else ""), passed_over=over)


def _least_loaded(unlocated: list[tuple[UnitCandidate, str | None]], wanted: list[str], *,
                  located: bool) -> Recommendation:
    chosen = min((u for u, why in unlocated if why is None), key=lambda u: (u.load, u.id))
    over = [PassedOver(unit_id=u.id, why=why) for u, why in
            sorted(unlocated, key=lambda t: (t[0].load, t[0].id))
            if why is not None and u.load < chosen.load]
    known = "no position known" if located else "the call's location unknown"
    head = (f"{chosen.id}: least loaded ({chosen.load} call"
            f"{'' if chosen.load == 1 else 's'} today), {known}" + _able(wanted, ", "))
    tail = _joined(over, "has fewer calls")
    return Recommendation(unit_id=chosen.id, basis="load", needs=wanted,
                          reason=head + (f"; {tail}" if tail else ""), passed_over=over)


def _none_able(located: list[tuple[float, UnitCandidate, str | None]],
               unlocated: list[tuple[UnitCandidate, str | None]], wanted: list[str], *,
               rostered: bool) -> Recommendation:
    over = sorted([PassedOver(unit_id=u.id, why=why) for _, u, why in located
                   if why is not None]
                  + [PassedOver(unit_id=u.id, why=why) for u, why in unlocated
                     if why is not None], key=lambda p: p.unit_id)
    if not rostered:
        reason = "No unit on the roster for this program"
    else:
        named = "; ".join(f"{p.unit_id} {p.why}" for p in over[:REASON_NAMES])
        more = len(over) - REASON_NAMES
        reason = (f"No unit available{_able(wanted, ' with ')}: {named}"
                  + (f"; {more} more" if more > 0 else ""))
    return Recommendation(unit_id=None, basis=None, needs=wanted, reason=reason,
                          passed_over=over)


def _able(wanted: list[str], lead: str) -> str:
    """The capabilities asked for, as the reason names them (nothing when none)."""
    return f"{lead}{' '.join(wanted)}" if wanted else ""
