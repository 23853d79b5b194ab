"""Figures, the what-if and the board of one agency, or of the region (issue 17), on
SQLite and PostgreSQL: a regional supervisor sees the agencies side by side and may narrow
to one; a supervisor of one agency gets theirs only, another agency's is 'not found'
(audited); a what-if runs over one agency's calls with its versions; a regional board may
follow one agency, another agency's board closes with 4404.

Two agencies from tests/api/test_agencies.py: `default` (America/New_York) and `west`
(America/Chicago). LATE is 00:30 on 10 March in New York and 23:30 on 9 March in Chicago:
the same call is on another local day in each agency's figures.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import select

from service.access.auth import Role
from service.store.tables import AUDIT
from tests.api.test_agencies import key, post, region, west_policy, where
from tests.conftest import Server, eventually

pytestmark = pytest.mark.asyncio

LATE = "2026-03-10T04:30:00Z"
RANGE = {"from": "2026-03-01", "to": "2026-04-01"}


async def three_calls(s: Server) -> dict[str, str]:
    """A call of each agency at LATE, and one no agency claims."""
    calls = {}
    for name, place in (("default", where("D2")), ("west", where("W1", 38.5, -90.5)),
                        ("none", where("X9", 10.0, 10.0))):
        r = await post(s, occurred_at=LATE, location=place)
        assert r.status_code == 202, r.text
        calls[name] = r.json()["call_id"]
    return calls


def days(body: dict[str, Any]) -> set[str]:
    return {r["day"] for r in body["volume_daily"] if r["dimension"] == "channel"}


async def audited(s: Server, action: str, target: str) -> bool:
    async with s.runtime.engine.connect() as conn:
        rows = (await conn.execute(select(AUDIT.c.outcome).where(
            AUDIT.c.action == action, AUDIT.c.target == target))).scalars().all()
    return "denied" in rows


async def test_a_regional_supervisor_sees_the_agencies_side_by_side(database_url: str) -> None:
    async with region(database_url) as s:
        await three_calls(s)
        # The test client's key is the region's: every call, in the default agency's zone.
        r = await s.client.get("/v1/metrics", params={**RANGE, "by": "agency"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["agency"], body["timezone"]) == (None, "America/New_York")
        assert body["outcomes"]["calls"] == 3
        assert days(body) == {"2026-03-10"}
        side = {f["group"]: f["calls"] for f in body["by_agency"]}
        assert side == {"default": 1, "west": 1, "none": 1}
        assert [f["group"] for f in body["by_agency"]] == ["default", "none", "west"]
        # Without by=agency, no side-by-side section (the answers as before agencies).
        plain = (await s.client.get("/v1/metrics", params=RANGE)).json()
        assert plain["by_agency"] is None and plain["outcomes"]["calls"] == 3
        # One agency: its calls only, on its own local days.
        west = (await s.client.get("/v1/metrics", params={**RANGE, "agency": "west"})).json()
        assert (west["agency"], west["timezone"]) == ("west", "America/Chicago")
        assert west["outcomes"]["calls"] == 1 and days(west) == {"2026-03-09"}
        # The side by side as CSV, and an agency that does not exist.
        r = await s.client.get("/v1/metrics/by_agency.csv", params=RANGE)
        assert r.status_code == 200
        assert [line.split(",")[:2] for line in r.text.splitlines()] == [
            ["group", "calls"], ["default", "1"], ["none", "1"], ["west", "1"]]
        r = await s.client.get("/v1/metrics", params={**RANGE, "agency": "nowhere"})
        assert r.status_code == 404
        # The figures page: the choice of agency, and the agencies side by side.
        page = (await s.client.get("/metrics", params=RANGE)).text
        assert '<select name="agency">' in page and 'id="by-agency"' in page
        assert "St. Petersburg (default)" in page and "West County (west)" in page
        page = (await s.client.get("/metrics", params={**RANGE, "agency": "west"})).text
        assert '<option value="west" selected>' in page and 'id="by-agency"' not in page
        assert "America/Chicago" in page and "agency west" in page


async def test_a_supervisor_of_one_agency_gets_its_figures_only(database_url: str) -> None:
    async with region(database_url) as s:
        await three_calls(s)
        west = await key(s, "sup-west", Role.supervisor, "west")
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30, headers=west) as c:
            body = (await c.get("/v1/metrics", params={**RANGE, "by": "agency"})).json()
            assert (body["agency"], body["timezone"]) == ("west", "America/Chicago")
            assert body["outcomes"]["calls"] == 1
            assert [(f["group"], f["calls"]) for f in body["by_agency"]] == [("west", 1)]
            same = (await c.get("/v1/metrics", params={**RANGE, "agency": "west"})).json()
            assert same["outcomes"] == body["outcomes"]
            # Another agency's figures: not found, as one that does not exist; audited.
            for path in ("/v1/metrics", "/v1/metrics/outcomes.csv", "/metrics",
                         "/v1/policies/all/scorecard"):
                r = await c.get(path, params={**RANGE, "agency": "default"})
                assert r.status_code == 404, (path, r.text)
            r = await c.get("/reports/monthly", params={"month": "2026-03",
                                                        "agency": "default"})
            assert r.status_code == 404
            assert await audited(s, "figures.agency", "default")
            # Their page offers no choice of agency.
            page = (await c.get("/metrics", params=RANGE)).text
            assert 'name="agency"' not in page and 'id="by-agency"' not in page
            # The scorecard of their own versions, over their own calls.
            r = await c.get("/v1/policies/all/scorecard",
                            params={"since": RANGE["from"], "until": RANGE["to"]})
            assert r.status_code == 200, r.text
            assert r.json()["calls"] == 1


async def wait_done(s: Server, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30, headers=headers) as c:
            body: dict[str, Any] = (await c.get(f"/v1/what-if/{job_id}")).json()
        return body if body["status"] != "running" else None

    found: dict[str, Any] = await eventually(done, f"what-if {job_id} to finish", every=0.05)
    return found


async def test_a_what_if_runs_over_one_agencys_calls_with_its_versions(
        database_url: str) -> None:
    async with region(database_url) as s:
        await three_calls(s)
        await post(s, occurred_at="2026-03-11T18:00:00Z", location=where("W2", 38.5, -90.5))
        west = await key(s, "sup-west", Role.supervisor, "west")
        window = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30, headers=west) as c:
            draft = west_policy().replace('version: "1"', 'version: "2"', 1)
            r = await c.post("/v1/policies", content=draft,
                             headers={"content-type": "text/yaml"})
            assert r.status_code == 201, r.text
            r = await c.post("/v1/policies/2/what-if", json=window)
            assert r.status_code == 202, r.text
            job = await wait_done(s, r.json()["job_id"], west)
            assert job["status"] == "done", job
            assert (job["candidate"], job["baseline"]) == ("west-county@2", "west-county@1")
            assert job["report"]["calls"] == 2  # west's two, not default's nor nobody's
            assert job["agency"] == "west"
            west_job = job["job_id"]
            # Another agency's versions are not theirs to try.
            r = await c.post("/v1/policies/1/what-if?agency=default", json=window)
            assert r.status_code == 404
        # A regional supervisor's what-if is of the default agency's unless they say.
        r = await s.client.post("/v1/policies/1/what-if", json=window)
        job = await wait_done(s, r.json()["job_id"], s.creds.bearer(Role.supervisor))
        assert (job["candidate"], job["report"]["calls"]) == ("st-petersburg-call@1", 1)
        r = await s.client.post("/v1/policies/1/what-if?agency=west", json=window)
        job = await wait_done(s, r.json()["job_id"], s.creds.bearer(Role.supervisor))
        assert (job["candidate"], job["report"]["calls"]) == ("west-county@1", 2)
        # West's report is west's: another agency's supervisor finds no such job.
        ours = await key(s, "sup-default", Role.supervisor, "default")
        async with httpx.AsyncClient(base_url=s.base_url, timeout=30, headers=ours) as c:
            assert (await c.get(f"/v1/what-if/{west_job}")).status_code == 404
            assert (await c.get(f"/v1/what-if/{west_job}/changed.csv")).status_code == 404


async def test_a_regional_board_follows_one_agency_and_another_agencys_is_refused(
        database_url: str) -> None:
    async with region(database_url) as s:
        regional = s.creds.bearer(Role.supervisor)
        async with websockets.connect(f"{s.ws_url}/v1/board?after=0&agency=west",
                                      additional_headers=regional) as ws:
            calls = await three_calls(s)
            last = (await post(s, location=where("W2", 38.5, -90.5))).json()["call_id"]
            seen: list[str] = []
            while last not in seen:
                seen.append(json.loads(await ws.recv())["call_id"])
            assert calls["west"] in seen and calls["default"] not in seen
        # A person of one agency asking for another's board: closed with 4404, audited.
        mine = await key(s, "disp-a", Role.dispatcher, "default")
        async with websockets.connect(f"{s.ws_url}/v1/board?after=0&agency=west",
                                      additional_headers=mine) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
        assert await audited(s, "board.agency", "west")
        # Their own, by name: as without it.
        async with websockets.connect(f"{s.ws_url}/v1/board?after=0&agency=default",
                                      additional_headers=mine) as ws:
            mine_seen: list[str] = []
            while calls["default"] not in mine_seen:
                mine_seen.append(json.loads(await ws.recv())["call_id"])
