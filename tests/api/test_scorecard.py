"""The rule scorecard over HTTP, against a real uvicorn on SQLite and PostgreSQL: a history
made through the real CAD, status and override routes, and its figures computed by hand."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from service.access.auth import Role
from tests.conftest import Server

pytestmark = pytest.mark.asyncio
RANGE = {"since": "2026-03-10", "until": "2026-03-11"}
START = datetime.fromisoformat("2026-03-10T09:00:00-04:00")  # a Tuesday, team hours


async def open_call(server: Server, n: int, **fields: Any) -> tuple[str, dict[str, Any]]:
    res = await server.post_event(occurred_at=(START + timedelta(minutes=10 * n)).isoformat(),
                                  **{"incident_id": f"SC-{n}", **fields})
    assert res.is_success, res.text
    return res.json()["call_id"], res.json()["decision"]


async def through(server: Server, call_id: str, n: int, *steps: dict[str, Any]) -> None:
    """Move a team call along, each step a minute after the call (its `at`)."""
    for i, body in enumerate(steps, 1):
        at = (START + timedelta(minutes=10 * n + i)).isoformat()
        res = await server.client.post(f"/v1/calls/{call_id}/status", json={**body, "at": at})
        assert res.is_success, res.text


def cleared(disposition: str = "resolved_on_scene", **more: Any) -> tuple[dict[str, Any], ...]:
    return ({"status": "assigned", "unit": "CALL-1"}, {"status": "on_scene"},
            {"status": "cleared", "disposition": disposition, **more})


async def override(server: Server, call_id: str, destination: str, reason: str,
                   **more: Any) -> None:
    res = await server.client.post(f"/v1/calls/{call_id}/override", json={
        "destination": destination, "reason": reason, **more})
    assert res.is_success, res.text


async def seed(server: Server) -> dict[str, str]:
    """Eleven mental-health calls (3 of the 10 the team took needed police: over-broad),
    five weapon calls (3 overridden to the team and cleared without police: too narrow),
    and one call outside the range."""
    ids: dict[str, str] = {}
    plan: list[tuple[dict[str, Any], ...]] = [
        *(cleared() for _ in range(6)),
        cleared("police_took_over"),
        ({"status": "assigned", "unit": "CALL-1"}, {"status": "on_scene"},
         {"status": "backup_requested", "note": "crowd gathering"},
         {"status": "cleared", "disposition": "resolved_on_scene", "safety_incident": True}),
        cleared("police_took_over", right_responder="no", right_responder_note="armed son"),
        cleared("referred_to_services", right_responder="yes"),
    ]
    for n, steps in enumerate(plan):
        call_id, decision = await open_call(server, n)
        assert (decision["destination"], decision["matched_rules"]) == (
            "call_team", ["mental-health"]), decision
        await through(server, call_id, n, *steps)
        ids[f"m{n}"] = call_id
    # A CAD update after clearing keeps the team's answer (a CAD event never changes it).
    res = await server.post_event(incident_id="SC-8", type="updated",
                                  occurred_at=(START + timedelta(minutes=89)).isoformat(),
                                  narrative="Son calm now; family staying with him.")
    assert res.is_success and res.json()["call_id"] == ids["m8"], res.text
    # The eleventh: a dispatcher sends it to police instead.
    ids["m10"], _ = await open_call(server, 10)
    await override(server, ids["m10"], "police", "caller mentioned a gun in the house",
                   right_responder="no", right_responder_note="team not safe here")
    for n in range(11, 14):  # kept from the team, sent to it, and the team handled it
        call_id, decision = await open_call(server, n, flags=["weapon"])
        assert (decision["destination"], decision["basis"]) == ("police", "exclusion")
        await override(server, call_id, "call_team", f"toy gun, known client {n}",
                       right_responder="no")
        await through(server, call_id, n, *cleared())
        ids[f"w{n}"] = call_id
    # A weapon and violence: the weapon exclusion decides, violence only matched.
    ids["w14"], decision = await open_call(server, 14, flags=["weapon", "violence"])
    # The rule that held under them is recorded too (matched, not deciding).
    assert decision["matched_rules"] == ["weapon", "violence", "mental-health"], decision
    ids["w15"], _ = await open_call(server, 15, flags=["weapon"])  # stays with police
    # The next day: out of range.
    await server.post_event(occurred_at="2026-03-11T10:00:00-04:00")
    return ids


async def test_scorecard_of_a_seeded_history(server: Server) -> None:
    ids = await seed(server)
    res = await server.client.get("/v1/policies/all/scorecard", params=RANGE)
    assert res.status_code == 200, res.text
    doc = res.json()
    assert doc["calls"] == 16
    entries = {e["id"]: e for e in doc["entries"]}
    # The policy's exclusions first, then its rules, each listed even with no calls.
    kinds = [e["kind"] for e in doc["entries"]]
    assert kinds.index("rule") > max(i for i, k in enumerate(kinds) if k == "exclusion")
    assert entries["truancy"]["decided"] == 0

    mh = entries["mental-health"]
    assert (mh["decided"], mh["sent_to_team"], mh["served"]) == (11, 11, 10)
    assert mh["dispositions"] == {"resolved_on_scene": 7, "police_took_over": 2,
                                  "referred_to_services": 1}
    assert (mh["backup_requested"], mh["police_took_over"], mh["safety_incidents"]) == (
        1, 3, 1)
    assert (mh["overrides_toward_team"], mh["overrides_away_from_team"]) == (0, 1)
    assert mh["right_responder_team"] == {"yes": 1, "no": 1, "unsure": 0}
    assert mh["right_responder_dispatcher"] == {"yes": 0, "no": 1, "unsure": 0}
    assert [f["kind"] for f in mh["flags"]] == ["over_broad"]
    assert "3 of the 11 calls it sent to the team (27%)" in mh["flags"][0]["why"]
    [away] = mh["overrides"]
    assert (away["call_id"], away["direction"], away["reason"], away["right_responder"],
            away["note"]) == (ids["m10"], "away_from_team",
                              "caller mentioned a gun in the house", "no",
                              "team not safe here")

    w = entries["weapon"]
    assert (w["decided"], w["sent_to_team"], w["served"], w["overrides_toward_team"]) == (
        5, 0, 3, 3)
    assert w["kept_from_team_cleared_without_police"] == 3
    assert w["dispositions"] == {"resolved_on_scene": 3}
    assert w["right_responder_dispatcher"]["no"] == 3
    assert [f["kind"] for f in w["flags"]] == ["too_narrow"]
    assert sorted(o["reason"] for o in w["overrides"]) == [
        f"toy gun, known client {n}" for n in (11, 12, 13)]
    assert (entries["violence"]["decided"], entries["violence"]["matched_not_decided"]) == (
        0, 1)
    assert mh["matched_not_decided"] == 5  # the five weapon calls

    # One version by its label: the same calls (every call was decided by it).
    label = (await server.client.get(f"/v1/calls/{ids['m0']}")).json()["decision"][
        "policy_version"]
    one = (await server.client.get(f"/v1/policies/{label}/scorecard", params=RANGE)).json()
    assert one["policy_version"] == label and one["calls"] == 16
    assert {e["id"]: e["decided"] for e in one["entries"]} == {
        e: v["decided"] for e, v in entries.items()}

    # CSV, by format= and by Accept.
    for params, headers in (({**RANGE, "format": "csv"}, {}),
                            (RANGE, {"accept": "text/csv"})):
        res = await server.client.get("/v1/policies/all/scorecard", params=params,
                                      headers=headers)
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
        rows = {r["id"]: r for r in csv.DictReader(io.StringIO(res.text))}
        assert (rows["mental-health"]["decided"], rows["mental-health"]["police_took_over"],
                rows["mental-health"]["flags"]) == ("11", "3", "over_broad")
        assert rows["weapon"]["flags"] == "too_narrow"
        assert "toy gun" not in res.text and "caller mentioned" not in res.text

    # The answers stay out of the call's outputs.
    view = (await server.client.get(f"/v1/calls/{ids['m10']}")).text
    assert "team not safe here" not in view and "right_responder" not in view


async def test_who_sees_what_and_bad_input(server: Server) -> None:
    await seed(server)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers=server.creds.bearer(Role.analyst)) as analyst:
        res = await analyst.get("/v1/policies/all/scorecard", params=RANGE)
        assert res.status_code == 200, res.text
        entries = {e["id"]: e for e in res.json()["entries"]}
        assert entries["weapon"]["overrides"] is None
        assert entries["weapon"]["overrides_toward_team"] == 3
        assert [f["kind"] for f in entries["weapon"]["flags"]] == ["too_narrow"]
        assert "toy gun" not in res.text and "caller mentioned" not in res.text
        # The policy itself stays the supervisors'.
        assert (await analyst.get("/v1/policies")).status_code == 403
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers=server.creds.bearer(Role.dispatcher)) as dispatcher:
        res = await dispatcher.get("/v1/policies/all/scorecard", params=RANGE)
        assert res.status_code == 403
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as anonymous:
        res = await anonymous.get("/v1/policies/all/scorecard", params=RANGE)
        assert res.status_code == 401

    res = await server.client.get("/v1/policies/nope@99/scorecard", params=RANGE)
    assert res.status_code == 404
    res = await server.client.get("/v1/policies/all/scorecard",
                                  params={"since": "2026-03-11", "until": "2026-03-10"})
    assert res.status_code == 422
    assert res.json()["detail"] == [{"field": "until", "reason": "must be after 'since'"}]
    res = await server.client.get("/v1/policies/all/scorecard", params={"since": "March"})
    assert res.status_code == 422 and res.json()["detail"][0]["field"] == "since"
    # right_responder: one of three, and the team gives it when clearing.
    call_id, _ = await open_call(server, 20)
    res = await server.client.post(f"/v1/calls/{call_id}/status", json={
        "status": "assigned", "unit": "CALL-1", "right_responder": "yes"})
    assert res.status_code == 422 and "when clearing" in res.text
    res = await server.client.post(f"/v1/calls/{call_id}/override", json={
        "destination": "police", "reason": "just because", "right_responder": "maybe"})
    assert res.status_code == 422 and "right_responder" in res.text
