"""Transfer figures (issue 16), hand-computed: six calls transferred to the crisis
centre, each taken to a known end by the centre's key, then GET /v1/metrics, its CSV and
the /metrics page. A real server on SQLite and PostgreSQL.

By hand: accepted after 60, 120, 180 and 300 s (four); one declined; one still offered.
Outcomes now: offered 1, accepted 1 (D, not yet ended), declined 1, completed 1, returned
2. Accepted of answered: 4 / (4 + 1) = 0.8. To accept, nearest rank over [60, 120, 180,
300]: p50 the 2nd = 120 s, p90 the 4th (ceil 3.6) = 300 s. Reasons: returned "needs
in-person visit" twice (written two ways), declined "no spanish speaker" once.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from service.access.auth import Role
from tests.api.test_queue import at, post, serving
from tests.api.test_transfers import CENTRE, PROGRAMS, step, the_transfer

pytestmark = pytest.mark.asyncio

RANGE = {"from": "2026-03-01", "to": "2026-04-01"}
# Per call (offered at 14:0n local = 18:0n UTC): its steps as (status, seconds after the
# offer, reason).
PLAN: dict[str, list[tuple[str, int, str | None]]] = {
    "A": [("accepted", 60, None), ("completed", 900, None)],
    "B": [("accepted", 180, None), ("returned", 600, "Needs in-person visit")],
    "C": [("declined", 30, "No Spanish speaker")],
    "D": [("accepted", 300, None)],
    "E": [],
    "F": [("accepted", 120, None), ("returned", 400, "  needs IN-PERSON   visit ")],
}


def utc(minute: int, seconds: int) -> str:
    total = minute * 60 + seconds
    return f"2026-03-10T{18 + total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}Z"


async def test_transfer_figures_by_outcome_time_to_accept_and_reasons(
        database_url: str, tmp_path: Path) -> None:
    programs = [{**CENTRE, "units": 10}, *PROGRAMS[1:]]
    async with serving(database_url, tmp_path, programs) as s:
        for n, (key, steps) in enumerate(PLAN.items()):
            call = await post(s, occurred_at=at(f"14:0{n}"))
            assert call["decision"]["destination"] == "crisis_center", key
            t = await the_transfer(s, call["call_id"])
            for status, after, reason in steps:
                body: dict[str, Any] = {"status": status, "at": utc(n, after)}
                if reason:
                    body["reason"] = reason
                r = await step(s, t["id"], **body)
                assert r.status_code == 200, r.text
        r = await s.client.get("/v1/metrics", params=RANGE)
        assert r.status_code == 200, r.text
        m = r.json()
        assert m["transfers"] == [{
            "program": "988", "transfers": 6, "offered": 1, "accepted": 1, "declined": 1,
            "completed": 1, "returned": 2, "withdrawn": 0, "accept_share": 0.8,
            "to_accept_p50_s": 120.0, "to_accept_p90_s": 300.0}]
        assert m["transfer_reasons"] == [
            {"program": "988", "status": "declined", "reason": "no spanish speaker",
             "transfers": 1},
            {"program": "988", "status": "returned", "reason": "needs in-person visit",
             "transfers": 2}]
        # The free-text reasons are supervisors' only, as override reasons are.
        r = await s.client.get("/v1/metrics", params=RANGE,
                               headers=s.creds.bearer(Role.analyst))
        assert r.json()["transfers"][0]["transfers"] == 6
        assert r.json()["transfer_reasons"] is None
        # CSV, like the other tables.
        r = await s.client.get("/v1/metrics/transfers.csv", params=RANGE)
        assert r.status_code == 200, r.text
        [row] = list(csv.DictReader(io.StringIO(r.text)))
        assert (row["program"], row["returned"], row["to_accept_p90_s"]) \
            == ("988", "2", "300.0")
        r = await s.client.get("/v1/metrics/transfer_reasons.csv", params=RANGE)
        assert "needs in-person visit,2" in r.text
        # And on the page.
        r = await s.client.get("/metrics", params=RANGE)
        assert r.status_code == 200
        assert "Transfers to the crisis centre by outcome" in r.text
        assert "needs in-person visit" in r.text
