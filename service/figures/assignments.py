"""Figures of the unit recommendation (issue 14), from the assignments kept with it
(migration 0022) and their calls in scope: how long a team call waited for a unit to
be assigned, the distance and estimated time recommended against the time the unit took
to get there, and how often the recommendation was taken.

- `to_assign`: from when the call became the team's to assign (the end of its wait, if
  it waited for a program, else its first decision) to its assignment.
- `to_scene`: assigned → on scene, for the calls whose recommended unit was sent (the
  estimate is about that unit); `eta_error` is to_scene − the estimate, same calls.
Percentiles as percentile_cont (linear between ranks), in Python: assignments in a
month are few, a single pass over them is cheap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from service.store.tables import ASSIGNMENT, CALL, as_utc

ALL = "all"
NO_RECOMMENDATION = "none"


class RecommendationRow(BaseModel):
    """Assignments of one group: all, by the recommendation's basis (distance, load,
    none), or (supervisors only) by who assigned."""

    group: str
    assignments: int
    recommended: int = Field(description="a unit was recommended")
    taken: int = Field(description="the recommended unit was the one assigned")
    taken_share: float | None = Field(description="taken, of those with a recommendation")
    to_assign_p50_minutes: float | None
    to_assign_p90_minutes: float | None
    distance_p50_km: float | None
    eta_p50_minutes: float | None
    to_scene_p50_minutes: float | None = Field(description="assigned to on scene, the "
                                               "recommended unit sent")
    eta_error_p50_minutes: float | None = Field(description="actual minus estimated time "
                                                "to scene, same calls")


def percentile(values: Sequence[float], p: float) -> float | None:
    """percentile_cont: linear between the ranks around p·(n−1)."""
    if not values:
        return None
    ordered = sorted(values)
    at = p * (len(ordered) - 1)
    lo = int(at)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (at - lo) * (ordered[hi] - ordered[lo])


def _minutes(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (as_utc(later) - as_utc(earlier)).total_seconds() / 60


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _row(group: str, rows: Sequence[Any]) -> RecommendationRow:
    recommended = [r for r in rows if r.recommended_unit is not None]
    taken = [r for r in recommended if r.taken]
    to_assign = [m for r in rows if (m := _minutes(r.at, r.ready_at)) is not None and m >= 0]
    to_scene = [(m, r.eta_minutes) for r in taken
                if (m := _minutes(r.on_scene_at, r.at)) is not None and m >= 0]
    errors = [m - eta for m, eta in to_scene if eta is not None]
    return RecommendationRow(
        group=group, assignments=len(rows), recommended=len(recommended), taken=len(taken),
        taken_share=round(len(taken) / len(recommended), 4) if recommended else None,
        to_assign_p50_minutes=_r(percentile(to_assign, 0.5)),
        to_assign_p90_minutes=_r(percentile(to_assign, 0.9)),
        distance_p50_km=_r(percentile([r.distance_km for r in recommended
                                       if r.distance_km is not None], 0.5), 2),
        eta_p50_minutes=_r(percentile([float(r.eta_minutes) for r in recommended
                                       if r.eta_minutes is not None], 0.5)),
        to_scene_p50_minutes=_r(percentile([m for m, _ in to_scene], 0.5)),
        eta_error_p50_minutes=_r(percentile(errors, 0.5)))


def _grouped(rows: Iterable[Any], key: str) -> list[RecommendationRow]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        groups[getattr(r, key) or NO_RECOMMENDATION].append(r)
    return [_row(g, groups[g]) for g in sorted(groups)]


async def recommendation_figures(conn: AsyncConnection, where: list[ColumnElement[bool]]
                                 ) -> tuple[list[RecommendationRow], list[RecommendationRow]]:
    """(all and by basis, by who assigned) for the calls `where` selects."""
    a, c = ASSIGNMENT.c, CALL.c
    # Ready to assign: when a wait for the program ended with its unit taking the call,
    # else when the call was first decided.
    rows = (await conn.execute(
        select(a.at, a.by, a.recommended_unit, a.distance_km, a.eta_minutes, a.basis,
               a.taken, c.on_scene_at, c.first_decided_at, c.wait_outcome, c.wait_ended_at)
        .join(CALL, c.id == a.call_id).where(*where))).all()
    shaped = [_Assignment(r) for r in rows]
    return [_row(ALL, shaped), *_grouped(shaped, "basis")], _grouped(shaped, "by")


class _Assignment:
    """One assignment with when its call was ready to assign."""

    __slots__ = ("at", "basis", "by", "distance_km", "eta_minutes", "on_scene_at",
                 "ready_at", "recommended_unit", "taken")

    def __init__(self, r: Any) -> None:
        self.at, self.by, self.basis = r.at, r.by, r.basis
        self.recommended_unit, self.distance_km = r.recommended_unit, r.distance_km
        self.eta_minutes, self.taken, self.on_scene_at = r.eta_minutes, r.taken, r.on_scene_at
        self.ready_at = (r.wait_ended_at if r.wait_outcome == "served" and r.wait_ended_at
                         else r.first_decided_at)
