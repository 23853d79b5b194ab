"""Two `liaison serve` processes on one PostgreSQL database sweep the same check-ins and
follow-ups: each miss is alerted once, each due follow-up announced once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import eventually, start_subprocess
from tests.factories import event

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio]


async def test_two_instances_alert_each_miss_once(postgres_url: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISON_CHECKIN_INTERVAL_SECONDS", "1.0")
    monkeypatch.setenv("LIAISON_FIELD_SWEEP_SECONDS", "0.05")
    a = start_subprocess(postgres_url, tmp_path)
    b = start_subprocess(postgres_url, tmp_path, creds=a.creds)
    try:
        async with a.client() as ca, b.client() as cb:
            r = await ca.post("/v1/cad/events", json=event())
            assert r.status_code == 202, r.text
            call_id = r.json()["call_id"]
            for step in ("assigned", "en_route", "on_scene"):
                r = await cb.post(f"/v1/calls/{call_id}/status",
                                  json={"status": step, "unit": "CALL-1"})
                assert r.status_code == 200, r.text
            due = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
            other = (await ca.post("/v1/cad/events", json=event())).json()["call_id"]
            for step in ("assigned", "on_scene"):
                await ca.post(f"/v1/calls/{other}/status", json={"status": step})
            r = await ca.post(f"/v1/calls/{other}/status", json={
                "status": "cleared", "disposition": "resolved_on_scene", "follow_up_at": due})
            assert r.status_code == 200, r.text

            async def timeline(client: httpx.AsyncClient, cid: str) -> list[str]:
                return [m["type"] for m in (await client.get(f"/v1/calls/{cid}")).json()[
                    "timeline"]]

            async def three_misses_and_the_follow_up() -> bool:
                alerts = [t for t in await timeline(ca, call_id)
                          if t in ("checkin_missed", "checkin_escalated")]
                return len(alerts) >= 3 and "follow_up_due" in await timeline(cb, other)

            # Both instances sweep all along (every 0.05 s), so a doubled alert or a doubled
            # announcement would be there by the third miss.
            await eventually(three_misses_and_the_follow_up,
                             "three missed check-ins and the due follow-up", every=0.1)
            r = await cb.post(f"/v1/calls/{call_id}/status",
                              json={"status": "cleared", "disposition": "resolved_on_scene"})
            assert r.status_code == 200, r.text
            view = (await ca.get(f"/v1/calls/{call_id}")).json()
            other_view = (await cb.get(f"/v1/calls/{other}")).json()
        types = [m["type"] for m in view["timeline"]]
        alerts = [m for m in view["timeline"]
                  if m["type"] in ("checkin_missed", "checkin_escalated")]
        assert len(alerts) >= 3, types
        # One alert per miss: 1, 2, 3... never the same count twice.
        assert [m["missed"] for m in alerts] == list(range(1, len(alerts) + 1)), types
        assert types.count("checkin_missed") == 1
        assert [m["type"] for m in other_view["timeline"]].count("follow_up_due") == 1
        for m in alerts[1:]:
            assert m["type"] == "checkin_escalated"
        assert view["call"]["checkin_due_at"] is None
    finally:
        a.stop()
        b.stop()
