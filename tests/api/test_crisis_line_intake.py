"""988 → mobile team (issue 16): a 988 centre asks for a field visit through the same
intake as a CAD (POST /v1/cad/events with a key of its own: role cad, source 988),
channel crisis_line, nature code VISIT. Under the shipped policy the request goes to the
CALL field team, and off hours it is scheduled for the next shift, not sent to police.
A real server on SQLite and PostgreSQL; the key made by `liaison key create`."""

from __future__ import annotations

from typing import Any

import pytest

from service.settings import Settings
from tests.conftest import running_server
from tests.credentials import liaison_key_create
from tests.factories import event

pytestmark = pytest.mark.asyncio

VISIT = {"channel": "crisis_line", "nature_code": "VISIT",
         "nature_text": "988 requests a mobile team visit",
         "narrative": "Caller calmer after 40 min; agrees to a visit from the team",
         "location": {"address": "1300 1st Ave N", "district": "D2"}}


async def test_a_988_visit_request_at_night_is_deferred_to_the_next_shift_and_by_day_sent(
        database_url: str) -> None:
    async with running_server(Settings(database_url=database_url)) as s:  # shipped policy
        key = await liaison_key_create(database_url, "988-suncoast", "988")
        headers = {"authorization": f"Bearer {key}"}

        async def post(**fields: Any) -> dict[str, Any]:
            r = await s.client.post("/v1/cad/events", json=event(**{**VISIT, **fields}),
                                    headers=headers)
            assert r.status_code == 202, r.text
            body: dict[str, Any] = r.json()
            return body

        night = await post(occurred_at="2026-03-11T02:00:00-04:00")
        d = night["decision"]
        assert (d["destination"], d["program"]["id"], d["category"]) \
            == ("call_team", "call", "mental_health")
        assert d["matched_rules"] == ["crisis-line-visit"]
        assert d["deferred_until"] == "2026-03-11T08:00:00-04:00"  # the next shift
        assert d["not_served_reason"] is None and d["queued"] is None
        assert "A crisis_line intake is deferrable for program 'call'" in d["explanation"]
        # Stored under the centre's own source: its key reads it back, and only it.
        r = await s.client.get(f"/v1/calls/{night['call_id']}", headers=headers)
        assert r.status_code == 200 and r.json()["call"]["source"] == "988"

        day = await post(occurred_at="2026-03-10T14:00:00-04:00")
        assert (day["decision"]["destination"], day["decision"]["deferred_until"]) \
            == ("call_team", None)
        # A crisis-line call that asks for no visit is still the phone line's.
        talk = await post(occurred_at="2026-03-11T02:00:00-04:00", nature_code="CRISIS",
                          nature_text="Caller in distress")
        assert (talk["decision"]["program"]["id"], talk["decision"]["category"]) \
            == ("crisis-line", "crisis_line")
