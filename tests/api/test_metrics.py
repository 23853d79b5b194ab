"""Program figures over HTTP against a real uvicorn, on SQLite and PostgreSQL: JSON, CSV,
the /metrics page, the monthly report, and who may see what."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from service.access.auth import Role
from service.store.tables import CALL
from tests.conftest import Server
from tests.factories import call_row, gap_history, history, uniform

pytestmark = pytest.mark.asyncio
RANGE = {"from": "2026-10-31", "to": "2026-11-03"}


async def seed(server: Server, rows: list[dict[str, Any]]) -> None:
    async with server.runtime.engine.begin() as conn:
        await conn.execute(insert(CALL), uniform(rows))


def client(server: Server, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=30, headers=headers)


async def test_figures_csv_and_access(server: Server) -> None:
    mine = call_row("c12", datetime(2026, 10, 1, 15, tzinfo=UTC), channel="officer_referral",
                    category="homelessness", referred_by="badge-officer",
                    disposition="resolved_on_scene", team_status="cleared",
                    outcome="Talked it through")
    # A behavioural-health referral: its outcome text stays with the team.
    protected = call_row("c13", datetime(2026, 10, 1, 14, tzinfo=UTC),
                         channel="officer_referral", category="mental_health",
                         referred_by="badge-officer", disposition="referred_to_services",
                         team_status="cleared", outcome="Hears voices, took him to a clinic")
    await seed(server, [*history(), mine, protected])

    res = await server.client.get("/v1/metrics", params=RANGE)
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["timezone"] == "America/New_York"
    assert doc["outcomes"]["calls"] == 8 and doc["outcomes"]["contacts"] == 4
    assert doc["outcomes"]["without_police_share"] == 0.75
    assert doc["referrals_by_officer"][0]["group"] == "badge-1"
    d2 = (await server.client.get("/v1/metrics", params={**RANGE, "district": "D2"})).json()
    assert d2["outcomes"]["calls"] == 3

    res = await server.client.get("/v1/metrics/outcomes.csv", params=RANGE)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(res.text)))
    assert (row["calls"], row["contacts"], row["backup_rate"]) == ("8", "4", "0.25")
    res = await server.client.get("/v1/metrics/coverage_by_reason.csv", params=RANGE)
    assert {r["reason"]: r["calls"] for r in csv.DictReader(io.StringIO(res.text))} == {
        "off_hours": "1", "units_busy": "1", "wait_exceeded": "0", "outside_area": "0",
        "override": "1", "no_rule": "1"}
    res = await server.client.get("/v1/metrics/overrides_by_reason.csv", params=RANGE)
    assert "caller reports a knife" in res.text
    assert (await server.client.get("/v1/metrics/nope.csv", params=RANGE)).status_code == 404
    bad = await server.client.get("/v1/metrics", params={"from": "2026-11-03",
                                                         "to": "2026-11-01"})
    assert bad.status_code == 422
    bad = await server.client.get("/v1/metrics", params={"from": "2026-11-03T00:00:00"})
    assert bad.status_code == 422

    # Analysts: aggregates only; no per-person tables, no call ids, no narratives.
    async with client(server, **server.creds.bearer(Role.analyst)) as analyst:
        res = await analyst.get("/v1/metrics", params=RANGE)
        assert res.status_code == 200
        doc = res.json()
        assert doc["referrals_by_officer"] is None and doc["overrides_by_dispatcher"] is None
        assert doc["overrides_by_reason"] is None
        assert not re.search(r'"c\d+"', res.text) and "secret words" not in res.text
        assert "badge-1" not in res.text and "disp-7" not in res.text
        res = await analyst.get("/v1/metrics/referrals_by_officer.csv", params=RANGE)
        assert res.status_code == 403
        assert (await analyst.get("/v1/metrics/referrals_by_unit.csv",
                                  params=RANGE)).status_code == 200
        assert (await analyst.get("/v1/metrics/my-referrals")).status_code == 403

    # Officers: not the aggregates; their own referrals' outcomes, nobody else's.
    async with client(server, **server.creds.bearer(Role.officer)) as key:
        assert (await key.get("/v1/metrics", params=RANGE)).status_code == 403
    async with client(server) as browser:
        res = await browser.post("/v1/session", json={
            "username": server.creds.users[Role.officer], "password": server.creds.password})
        assert res.status_code == 200, res.text
        res = await browser.get("/v1/metrics/my-referrals")
        assert res.status_code == 200, res.text
        assert [(r["call_id"], r["outcome"], r["withheld"]) for r in res.json()] == [
            ("c12", "Talked it through", None), ("c13", None, ["outcome"])]
        assert res.json()[1]["disposition"] == "referred_to_services"
        res = await browser.get("/v1/metrics/my-referrals", params={"officer": "badge-1"})
        assert [r["call_id"] for r in res.json()] == ["c12", "c13"]  # the parameter is ignored
    res = await server.client.get("/v1/metrics/my-referrals",
                                  params={"officer": "badge-officer"})
    assert [r["outcome"] for r in res.json()][1] == "Hears voices, took him to a clinic"
    res = await server.client.get("/v1/metrics/my-referrals", params={"officer": "badge-1"})
    assert [r["call_id"] for r in res.json()] == ["c6"]  # a supervisor names the officer

    async with client(server) as anonymous:
        assert (await anonymous.get("/v1/metrics", params=RANGE)).status_code == 401
        assert (await anonymous.get("/metrics")).status_code == 401
        assert (await anonymous.get("/reports/monthly?month=2026-11")).status_code == 401


def assert_csp_clean(page: str) -> None:
    assert "<script" not in page and "style=" not in page and "<style" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


async def test_page_and_monthly_report(server: Server) -> None:
    await seed(server, [*history(), *gap_history()])
    res = await server.client.get("/reports/monthly", params={"month": "2026-11"})
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    assert "Monthly report, November 2026" in page
    assert page.count("<svg") >= 6 and page.count("<table") >= 10
    assert_csp_clean(page)
    assert "/static/metrics.css" in page
    assert "class=\"flag\"" not in page  # a handful of calls: too few to compare
    assert (await server.client.get("/reports/monthly",
                                    params={"month": "2026-13"})).status_code == 422

    res = await server.client.get("/reports/monthly", params={"month": "2026-09"})
    assert "class=\"flag\"" in res.text
    assert "share of eligible calls handled by police is 100% for district D1" in res.text

    res = await server.client.get("/metrics", params={"from": "2026-09-01",
                                                      "to": "2026-10-01"})
    assert res.status_code == 200
    page = res.text
    assert_csp_clean(page)
    assert 'class="flag"' in page and 'data-dimension="district"' in page
    assert 'name="viewport"' in page and "sr-only" in page
    assert "/v1/metrics/outcomes.csv?" in page
    css = await server.client.get("/static/metrics.css")
    assert css.status_code == 200


async def test_ingested_calls_count_and_test_calls_do_not(server: Server) -> None:
    live = await server.post_event(person={"id": "p-1", "age": 15})
    assert live.status_code == 202, live.text
    test = await server.post_event(purpose="test")
    assert test.status_code == 202, test.text
    res = await server.client.get("/v1/metrics", params={"from": "2026-03-10",
                                                         "to": "2026-03-11"})
    doc = res.json()
    assert doc["outcomes"]["calls"] == 1 and doc["outcomes"]["unique_clients"] == 1
    assert [g["group"] for g in doc["equity_age_group"]] == ["youth"]
    [t] = [t for t in doc["timeliness"] if t["measure"] == "to_decision"
           and t["dimension"] == "all"]
    assert t["calls"] == 1
    [hour] = [h for h in doc["volume_hour_of_week"] if h["dimension"] == "destination"]
    assert (hour["day"], hour["hour"]) == ("Tue", 14)  # 14:00-04:00 is Tuesday 14h local


async def test_figures_follow_the_real_workflow(server: Server) -> None:
    """Calls through the real ingest, status and override routes: what the writers store
    is what the figures read."""
    day = {"from": "2026-03-10", "to": "2026-03-11"}
    team = (await server.post_event(person={"id": "p-7", "age": 34})).json()
    assert team["decision"]["destination"] == "call_team", team
    status = f"/v1/calls/{team['call_id']}/status"
    for body in ({"status": "assigned", "unit": "CALL-1"}, {"status": "en_route"},
                 {"status": "on_scene"}, {"status": "backup_requested", "note": "crowd"},
                 {"status": "cleared", "disposition": "resolved_on_scene",
                  "outcome": "Calm, stayed with family"}):
        res = await server.client.post(status, json=body)
        assert res.is_success, res.text
    other = (await server.post_event(person={"id": "p-7", "age": 34})).json()
    res = await server.client.post(f"/v1/calls/{other['call_id']}/override", json={
        "destination": "police", "reason": "Caller mentions a knife", "by": "disp-3"})
    assert res.is_success, res.text

    doc = (await server.client.get("/v1/metrics", params=day)).json()
    o = doc["outcomes"]
    assert (o["calls"], o["eligible"], o["contacts"], o["unique_clients"]) == (2, 2, 1, 1)
    assert (o["backup_requests"], o["without_police"]) == (1, 0)  # backup made it joint
    assert o["destination_changed"] == 2  # backup (team -> joint), override (-> police)
    assert {r["reason"]: r["calls"] for r in doc["coverage_by_reason"]}["override"] == 1
    assert [r["overrides"] for r in doc["overrides_by_change"]] == [1]
    assert doc["overrides_by_change"][0]["group"] == "call_team -> police"
    assert [r["group"] for r in doc["overrides_by_reason"]] == ["caller mentions a knife"]
    assert sum(r["overrides"] for r in doc["overrides_by_dispatcher"]) == 1
    measures = {(t["measure"], t["dimension"]): t["calls"] for t in doc["timeliness"]}
    assert measures[("to_en_route", "all")] == 1 and measures[("on_scene", "all")] == 1
