"""911 → 988 transfers end to end (issue 16): a real server on SQLite and PostgreSQL, the
crisis centre's key posting the steps, the board's websocket and the CAD's webhook
receiving the new decision when a transfer is declined or returned.

The policy: a crisis centre (one counsellor, all day) tried first for mental-health
calls, then a field team (two units, all day). The routing core is
tests/routing/test_transfer.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.access.auth import Role
from service.store.tables import TRANSFER_STEP
from tests.api.test_field import recv_type
from tests.api.test_ingest_programs import ALL_DAY, field_program
from tests.api.test_queue import at, call_row, causes, policy_file, post, serving
from tests.conftest import Server, eventually, running_server
from tests.fakes import cad, settings_for

pytestmark = pytest.mark.asyncio

CENTRE = {"id": "988", "name": "Crisis centre", "mode": "transfer",
          "categories": ["mental_health"], "units": 1, "hours": ALL_DAY}
PROGRAMS = [CENTRE, field_program("field", units=2)]


def as_centre(s: Server) -> dict[str, str]:
    return s.creds.bearer(Role.crisis_center)


async def the_transfer(s: Server, call_id: str) -> dict[str, Any]:
    r = await s.client.get("/v1/transfers", headers=as_centre(s))
    assert r.status_code == 200, r.text
    [found] = [t for t in r.json()["transfers"] if t["call_id"] == call_id]
    return dict(found)


async def step(s: Server, transfer_id: str, **body: Any) -> Any:
    return await s.client.post(f"/v1/transfers/{transfer_id}/steps", json=body,
                               headers=as_centre(s))


async def test_a_transfer_accepted_by_the_centres_key_then_completed(
        database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        call = await post(s, occurred_at=at("14:00"), narrative="caller wants to talk",
                          person={"name": "Sam", "phone": "555-0100"})
        d = call["decision"]
        assert (d["destination"], d["mode"], d["program"]["id"]) \
            == ("crisis_center", "transfer", "988")
        assert "Program '988' (Crisis centre) takes the call" in d["explanation"]
        t = await the_transfer(s, call["call_id"])
        assert (t["status"], t["program_id"], t["allowed_next"]) \
            == ("offered", "988", ["accepted", "declined"])
        assert [x["status"] for x in t["steps"]] == ["offered"]
        assert t["offered_at"] == "2026-03-10T18:00:00+00:00"
        # The counsellor sees what they need to take the call: text and callback details.
        assert t["call"]["narrative"] == "caller wants to talk"
        assert t["call"]["person"]["phone"] == "555-0100"
        assert t["call"]["decision"]["destination"] == "crisis_center"

        r = await step(s, t["id"], status="accepted", at="2026-03-10T18:02:00Z")
        assert r.status_code == 200, r.text
        assert r.json()["decision"] is None
        accepted = r.json()["transfer"]
        assert (accepted["status"], accepted["accepted_at"]) \
            == ("accepted", "2026-03-10T18:02:00+00:00")
        # An accepted transfer cannot be declined: 409 naming what it may do.
        r = await step(s, t["id"], status="declined", reason="too late to decline")
        assert r.status_code == 409 and r.json()["allowed"] == ["completed", "returned"]
        r = await step(s, t["id"], status="completed", at="2026-03-10T18:30:00Z")
        assert r.status_code == 200, r.text
        done = r.json()["transfer"]
        assert done["status"] == "completed" and done["allowed_next"] == []
        assert [(x["status"], x["by"]) for x in done["steps"]] == [
            ("offered", "liaison"), ("accepted", "test-crisis_center"),
            ("completed", "test-crisis_center")]
        # The call kept its decision: only the event decided it.
        assert await causes(s, call["call_id"]) == ["event"]
        r = await s.client.get("/v1/transfers?status=completed", headers=as_centre(s))
        assert [x["id"] for x in r.json()["transfers"]] == [t["id"]]


async def test_a_returned_transfer_is_decided_again_to_the_team_board_and_cad_told(
        database_url: str, tmp_path: Path) -> None:
    async with cad() as the_cad:
        settings = settings_for(database_url, the_cad,
                                policy=policy_file(tmp_path, PROGRAMS))
        async with running_server(settings) as s:
            call = await post(s, occurred_at=at("14:00"), incident_id="INC-R")
            cid = call["call_id"]
            t = await the_transfer(s, cid)
            assert (await step(s, t["id"], status="accepted",
                               at="2026-03-10T18:01:00Z")).status_code == 200
            async with s.connect_board() as ws:
                r = await step(s, t["id"], status="returned", at="2026-03-10T18:20:00Z",
                               reason="caller needs someone in person")
                assert r.status_code == 200, r.text
                pushed = await recv_type(ws, "decision")
            d = r.json()["decision"]
            assert (d["destination"], d["program"]["id"]) == ("call_team", "field")
            assert d["refused_programs"] == ["988"]
            assert "returned by test-crisis_center at Tue 14:20: caller needs someone in " \
                   "person." in d["explanation"]
            assert (pushed["call_id"], pushed["cause"]) == (cid, "transfer_returned")
            assert pushed["decision"]["destination"] == "call_team"
            assert "caller needs someone in person" in pushed["decision"]["explanation"]
            assert r.json()["transfer"]["status"] == "returned"
            row = await call_row(s, cid)
            assert row["destination"] == "call_team" and row["holds_unit"] is True
            # The CAD hears the new decision, with the reason.
            sent = await eventually(
                lambda: [a for a in the_cad.delivered(cid) if a.cause == "transfer_returned"],
                "the CAD receiving the re-decision")
            assert sent[0].body["decision"]["destination"] == "call_team"
            assert "caller needs someone in person" in sent[0].body["decision"]["explanation"]
            # A later CAD update keeps the centre out.
            again = await post(s, occurred_at=at("14:25"), priority=2, incident_id="INC-R",
                               type="updated")
            assert again["decision"]["destination"] == "call_team"


async def test_a_declined_transfer_is_decided_again_and_needs_a_reason(
        database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        call = await post(s, occurred_at=at("14:00"))
        t = await the_transfer(s, call["call_id"])
        r = await step(s, t["id"], status="declined")
        assert r.status_code == 422 and "needs a reason" in r.text
        r = await step(s, t["id"], status="accepted", at="2099-01-01T00:00:00Z")
        assert r.status_code == 422 and "from the future" in r.text
        r = await step(s, t["id"], status="declined", reason="no counsellor free after all",
                       at="2026-03-10T18:01:00Z")
        assert r.status_code == 200, r.text
        assert r.json()["decision"]["destination"] == "call_team"
        assert await causes(s, call["call_id"]) == ["event", "transfer_declined"]
        async with s.runtime.engine.connect() as conn:
            steps = (await conn.execute(select(TRANSFER_STEP.c.status, TRANSFER_STEP.c.reason)
                                        .where(TRANSFER_STEP.c.transfer_id == t["id"])
                                        .order_by(TRANSFER_STEP.c.id))).all()
        assert [tuple(x) for x in steps] == [("offered", None),
                                             ("declined", "no counsellor free after all")]


async def test_the_counsellors_full_the_next_call_goes_to_the_next_program(
        database_url: str, tmp_path: Path) -> None:
    """One counsellor: an offered transfer holds them, so the next call goes on to the
    field team; once the first is completed, a new call is transferred again."""
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        first = await post(s, occurred_at=at("14:00"))
        assert first["decision"]["destination"] == "crisis_center"
        second = await post(s, occurred_at=at("14:01"))
        d = second["decision"]
        assert (d["destination"], d["program"]["id"]) == ("call_team", "field")
        assert "Program '988' (Crisis centre) cannot take it now: all 1 of its " \
               "counsellors are busy." in d["factors"]
        # The programs in force, as the board reads them: the counsellor is busy.
        r = await s.client.get("/v1/programs")
        assert r.status_code == 200, (r.status_code, r.text)
        progs = {p["id"]: p for p in r.json()["programs"]}
        assert (progs["988"]["mode"], progs["988"]["units_total"],
                progs["988"]["units_busy"]) == ("transfer", 1, 1)
        t = await the_transfer(s, first["call_id"])
        await step(s, t["id"], status="accepted", at="2026-03-10T18:02:00Z")
        third = await post(s, occurred_at=at("14:03"))
        assert third["decision"]["destination"] == "call_team"  # accepted: still held
        await step(s, t["id"], status="completed", at="2026-03-10T18:04:00Z")
        fourth = await post(s, occurred_at=at("14:05"))
        assert fourth["decision"]["destination"] == "crisis_center"


async def test_a_cad_update_that_makes_the_call_unsafe_withdraws_the_transfer(
        database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        call = await post(s, occurred_at=at("14:00"), incident_id="INC-W")
        t = await the_transfer(s, call["call_id"])
        update = await post(s, occurred_at=at("14:05"), type="updated", flags=["weapon"],
                            incident_id="INC-W")
        assert update["decision"]["destination"] == "police"
        after = await the_transfer(s, call["call_id"])
        assert after["id"] == t["id"] and after["status"] == "withdrawn"
        assert after["reason"] == "the call was decided again: police"
        r = await step(s, t["id"], status="accepted")
        assert r.status_code == 409
        # Its counsellor is free again.
        nxt = await post(s, occurred_at=at("14:06"), incident_id="INC-NEXT")
        assert nxt["decision"]["destination"] == "crisis_center"


async def test_who_may_read_and_work_transfers(database_url: str, tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        call = await post(s, occurred_at=at("14:00"))
        team_call = await post(s, occurred_at=at("14:01"), incident_id="INC-2")
        assert team_call["decision"]["destination"] == "call_team"
        t = await the_transfer(s, call["call_id"])
        for role, reads, works in ((Role.dispatcher, 200, 403), (Role.supervisor, 200, 200),
                                   (Role.call_team, 403, 403), (Role.cad, 403, 403),
                                   (Role.analyst, 403, 403), (Role.officer, 403, 403)):
            h = s.creds.bearer(role)
            assert (await s.client.get(f"/v1/transfers/{t['id']}", headers=h)
                    ).status_code == reads, role
            if works == 403:
                assert (await s.client.post(f"/v1/transfers/{t['id']}/steps", headers=h,
                                            json={"status": "accepted"})).status_code == 403
        # The centre reads no call but those transferred to it.
        h = as_centre(s)
        assert (await s.client.get(f"/v1/calls/{team_call['call_id']}", headers=h)
                ).status_code == 403
        r = await s.client.get("/v1/transfers", headers=h)
        assert {x["call_id"] for x in r.json()["transfers"]} == {call["call_id"]}


async def test_each_board_role_receives_the_transfer_messages_whole(
        database_url: str, tmp_path: Path) -> None:
    """The board hears a transfer offered and returned (its reason: why the call is
    decided again, as an override's); a dispatcher's stream gets it as the team's does,
    without the steps (GET /v1/transfers/{id} has them)."""
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        async with s.connect_board(role=Role.dispatcher) as disp, \
                s.connect_board(role=Role.call_team) as team:
            call = await post(s, occurred_at=at("14:00"))
            t = await the_transfer(s, call["call_id"])
            await step(s, t["id"], status="accepted", at="2026-03-10T18:01:00Z")
            await step(s, t["id"], status="returned", at="2026-03-10T18:05:00Z",
                       reason="needs an in-person visit")
            for ws in (disp, team):
                seen = [await recv_type(ws, "transfer") for _ in range(3)]
                assert [m["transfer"]["status"] for m in seen] \
                    == ["offered", "accepted", "returned"]
                last = seen[-1]
                assert last["call_id"] == call["call_id"] and "withheld" not in last
                assert last["transfer"]["reason"] == "needs an in-person visit"
                assert "steps" not in last["transfer"]


async def test_what_the_centre_sees_of_a_call_it_returned_that_the_team_then_worked(
        database_url: str, tmp_path: Path) -> None:
    """After a return the team works the call: its backup note is the team's, never the
    centre's to read, though the centre still reads the transfer and its call."""
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        call = await post(s, occurred_at=at("14:00"), person={"name": "Sam",
                                                               "phone": "555-0100"})
        cid = call["call_id"]
        t = await the_transfer(s, cid)
        await step(s, t["id"], status="accepted", at="2026-03-10T18:01:00Z")
        await step(s, t["id"], status="returned", at="2026-03-10T18:05:00Z",
                   reason="needs an in-person visit")
        for status, extra in (("assigned", {"unit": "CALL-1"}), ("en_route", {}),
                              ("backup_requested", {"note": "zq-team-backup-note"})):
            r = await s.client.post(f"/v1/calls/{cid}/status",
                                    json={"status": status, **extra},
                                    headers=s.creds.bearer(Role.call_team))
            assert r.status_code == 200, r.text
        r = await s.client.get(f"/v1/transfers/{t['id']}", headers=as_centre(s))
        assert r.status_code == 200, r.text
        seen = r.json()
        assert "zq-team-backup-note" not in r.text
        assert seen["call"]["backup_reason"] is None
        assert "backup_reason" in seen["call"]["withheld"]
        assert seen["call"]["person"]["phone"] == "555-0100"  # the callback details
        assert seen["call"]["decision"]["destination"] == "joint"
        # The supervisor sees it all.
        r = await s.client.get(f"/v1/transfers/{t['id']}")
        assert "zq-team-backup-note" in r.text


async def test_a_training_calls_transfer_holds_no_counsellor(database_url: str,
                                                             tmp_path: Path) -> None:
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        drill = await post(s, occurred_at=at("14:00"), purpose="training")
        assert drill["decision"]["destination"] == "crisis_center"
        assert (await the_transfer(s, drill["call_id"]))["status"] == "offered"
        live = await post(s, occurred_at=at("14:01"))
        assert live["decision"]["destination"] == "crisis_center"  # the one counsellor
        after = await post(s, occurred_at=at("14:02"))
        assert after["decision"]["destination"] == "call_team"  # now held by the live one


async def test_a_counsellor_hands_the_person_of_a_transferred_call_to_the_warm_line(
        database_url: str, tmp_path: Path) -> None:
    """The warm line is a resource a counsellor hands a person to, recorded as the team's
    handoffs are (docs/care.md), for the centre's own calls only."""
    async with serving(database_url, tmp_path, PROGRAMS) as s:
        r = await s.client.put("/v1/providers/peer-line", json={
            "name": "Peer Warm Line", "services": ["warm_line", "peer_support"]})
        assert r.status_code == 200, r.text
        call = await post(s, occurred_at=at("14:00"), narrative="caller wants to talk")
        other = await post(s, occurred_at=at("14:01"), incident_id="INC-2")
        assert other["decision"]["destination"] == "call_team"
        t = await the_transfer(s, call["call_id"])
        assert (await step(s, t["id"], status="accepted")).status_code == 200
        centre = as_centre(s)

        r = await s.client.get("/v1/providers?service=warm_line", headers=centre)
        assert [p["id"] for p in r.json()["providers"]] == ["peer-line"]
        r = await s.client.post(f"/v1/calls/{call['call_id']}/care", headers=centre,
                                json={"provider_id": "peer-line"})
        assert r.status_code == 201, r.text
        handoff = r.json()
        assert (handoff["kind"], handoff["status"], handoff["offered_by"]) \
            == ("warm_line", "offered", "test-crisis_center")
        r = await s.client.post(f"/v1/care/{handoff['id']}/steps", headers=centre,
                                json={"status": "connected"})
        assert r.status_code == 200, r.text
        r = await s.client.get(f"/v1/calls/{call['call_id']}/care", headers=centre)
        assert [(h["id"], h["status"]) for h in r.json()["referrals"]] \
            == [(handoff["id"], "connected")]

        # The team's call is not the centre's: not found, as reading it would be.
        r = await s.client.post(f"/v1/calls/{other['call_id']}/care", headers=centre,
                                json={"provider_id": "peer-line"})
        assert r.status_code == 404, r.text
        assert (await s.client.get(f"/v1/calls/{other['call_id']}/care",
                                   headers=centre)).status_code == 404
        team = await s.client.post(f"/v1/calls/{other['call_id']}/care",
                                   json={"provider_id": "peer-line"})
        assert team.status_code == 201, team.text
        r = await s.client.post(f"/v1/care/{team.json()['id']}/steps", headers=centre,
                                json={"status": "accepted"})
        assert r.status_code == 404 and "care referral" in r.text, r.text
