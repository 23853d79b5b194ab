"""Care figures (issue 16) over a real server on both databases: connections to care by
service type, handoffs confirmed within the confirmation time, declines by reason (for
supervisors), by district and age group; JSON, CSV and the /metrics page. Test calls'
handoffs are left out like every test call."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from service.access.auth import Role
from service.settings import Settings
from service.store.tables import utcnow
from tests.conftest import Server, eventually, running_server

pytestmark = pytest.mark.asyncio

RANGE = {"from": "2026-03-01", "to": "2026-04-01"}
PROVIDERS = {"peer-line": ["warm_line", "peer_support"], "safe-harbor": ["shelter", "housing"],
             "food-bank": ["food"]}


@pytest_asyncio.fixture
async def quiet(database_url: str) -> AsyncIterator[Server]:
    # The sweeper's hourly round: no follow-up is raised while the steps are recorded.
    async with running_server(Settings(database_url=database_url,
                                       field_sweep_seconds=3600)) as s:
        yield s


def ago(hours: float) -> str:
    return (utcnow() - timedelta(hours=hours)).isoformat()


async def handoff(s: Server, call_id: str, provider: str, at: float,
                  *steps: tuple[str, float, str | None]) -> None:
    r = await s.client.post(f"/v1/calls/{call_id}/care",
                            json={"provider_id": provider, "at": ago(at)})
    assert r.status_code == 201, r.text
    for status, when, reason in steps:
        body: dict[str, Any] = {"status": status, "at": ago(when), "reason": reason}
        got = await s.client.post(f"/v1/care/{r.json()['id']}/steps", json=body)
        assert got.status_code == 200, got.text


async def a_call(s: Server, district: str, age_group: str, **more: Any) -> str:
    r = await s.post_event(location={"address": "1 Main St", "district": district},
                           person={"age_group": age_group}, **more)
    assert r.status_code == 202, r.text
    return str(r.json()["call_id"])


def row(rows: list[dict[str, Any]], group: str) -> tuple[Any, ...]:
    [r] = [x for x in rows if x["group"] == group]
    return (r["handoffs"], r["connected"], r["confirmed_in_time"], r["declined"], r["open"],
            r["warm_line"])


async def test_care_figures(quiet: Server) -> None:
    s = quiet
    for pid, services in PROVIDERS.items():
        r = await s.client.put(f"/v1/providers/{pid}", json={"name": pid.title(),
                                                             "services": services})
        assert r.status_code == 200, r.text
    one = await a_call(s, "D1", "adult")
    two = await a_call(s, "D2", "youth")
    three = await a_call(s, "D2", "youth")
    drill = await a_call(s, "D1", "adult", purpose="test")
    await handoff(s, one, "peer-line", 50, ("connected", 49, None))  # in time
    await handoff(s, one, "safe-harbor", 60, ("accepted", 59, None),
                  ("connected", 5, None))  # connected, 55 h after the offer
    await handoff(s, two, "safe-harbor", 3, ("declined", 2, "No beds"))
    await handoff(s, three, "food-bank", 3, ("declined", 2, "  no   BEDS "))
    await handoff(s, three, "peer-line", 1)  # still open
    await handoff(s, drill, "food-bank", 3, ("connected", 2, None))  # a test call

    got = (await s.client.get("/v1/metrics", params=RANGE)).json()
    by_service = got["care_by_service"]
    [everything] = [x for x in by_service if x["group"] == "all"]
    assert row(by_service, "all") == (5, 2, 1, 2, 1, 2)
    assert (everything["connected_share"], everything["confirmed_share"]) == (0.4, 0.2)
    assert everything["follow_ups_raised"] == 0
    assert row(by_service, "warm_line") == (2, 1, 1, 0, 1, 2)
    assert row(by_service, "shelter") == row(by_service, "housing") == (2, 1, 0, 1, 0, 0)
    assert row(by_service, "food") == (1, 0, 0, 1, 0, 0)
    assert [x["group"] for x in got["care_by_district"]] == ["D1", "D2"]
    assert row(got["care_by_district"], "D1") == (2, 2, 1, 0, 0, 1)
    assert row(got["care_by_age_group"], "youth") == (3, 0, 0, 2, 1, 1)
    assert got["care_declined_reasons"] == [{"reason": "no beds", "declined": 2}]

    one_district = (await s.client.get("/v1/metrics", params={**RANGE, "district": "D2"})
                    ).json()
    assert row(one_district["care_by_service"], "all") == (3, 0, 0, 2, 1, 1)

    res = await s.client.get("/v1/metrics/care_by_service.csv", params=RANGE)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(res.text))}
    assert (rows["all"]["handoffs"], rows["all"]["confirmed_share"]) == ("5", "0.2")
    page = await s.client.get("/metrics", params=RANGE)
    assert page.status_code == 200 and "Care after the call" in page.text
    assert "no beds" in page.text

    # Reasons are free text: supervisors only.
    analyst = s.creds.bearer(Role.analyst)
    seen = (await s.client.get("/v1/metrics", params=RANGE, headers=analyst)).json()
    assert seen["care_declined_reasons"] is None
    assert row(seen["care_by_service"], "all") == (5, 2, 1, 2, 1, 2)
    r = await s.client.get("/v1/metrics/care_declined_reasons.csv", params=RANGE,
                           headers=analyst)
    assert r.status_code == 403


async def test_a_raised_follow_up_is_counted(database_url: str) -> None:
    async with running_server(Settings(database_url=database_url, field_sweep_seconds=0.2,
                                       care_confirm_hours=12)) as s:
        r = await s.client.put("/v1/providers/peer-line", json={"name": "Peer",
                                                                "services": ["warm_line"]})
        assert r.status_code == 200, r.text
        call_id = await a_call(s, "D1", "adult")
        await handoff(s, call_id, "peer-line", 13)

        async def raised() -> bool:
            got = (await s.client.get("/v1/metrics", params=RANGE)).json()
            return row(got["care_by_service"], "all") == (1, 0, 0, 0, 1, 1) and \
                got["care_by_service"][0]["follow_ups_raised"] == 1

        await eventually(raised, "the late handoff's follow-up counted")
