"""The recommendation figures' arithmetic (service/figures/assignments.py): percentiles
as percentile_cont, and what each column counts, on assignments made by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from service.figures.assignments import _row, percentile

T0 = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


def test_percentile_is_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([6, 8, 12, 20], 0.5) == 10.0  # 8 + 0.5 * (12 - 8)
    assert percentile([20, 6, 12, 8], 0.9) == 17.6  # 12 + 0.7 * (20 - 12), order-free


def a(*, ready: int, assigned: int, scene: int | None, unit: str | None, km: float | None,
      eta: int | None, taken: bool) -> SimpleNamespace:
    """An assignment: minutes after T0 it was ready, assigned and on scene."""
    return SimpleNamespace(
        ready_at=T0 + timedelta(minutes=ready), at=T0 + timedelta(minutes=assigned),
        on_scene_at=None if scene is None else T0 + timedelta(minutes=scene),
        recommended_unit=unit, distance_km=km, eta_minutes=eta, taken=taken)


def test_each_column_counts_what_it_says() -> None:
    rows = [a(ready=0, assigned=4, scene=10, unit="C1", km=2.0, eta=4, taken=True),
            a(ready=0, assigned=2, scene=20, unit="C2", km=6.0, eta=12, taken=False),
            a(ready=5, assigned=15, scene=None, unit=None, km=None, eta=None, taken=False),
            # A device's `at` before the decision: its time to assign is left out.
            a(ready=30, assigned=29, scene=33, unit="C3", km=1.0, eta=2, taken=True)]
    r = _row("all", rows)
    assert (r.assignments, r.recommended, r.taken, r.taken_share) == (4, 3, 2, 0.6667)
    assert (r.to_assign_p50_minutes, r.to_assign_p90_minutes) == (4.0, 8.8)  # 2, 4, 10: 4 + 0.8 * 6
    assert (r.distance_p50_km, r.eta_p50_minutes) == (2.0, 4.0)
    # Taken only: C1 6 min (estimate 4), C3 4 min (estimate 2).
    assert (r.to_scene_p50_minutes, r.eta_error_p50_minutes) == (5.0, 2.0)
