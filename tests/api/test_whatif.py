"""What-if over stored call history on a real server, SQLite and PostgreSQL: a draft
against the published version over the calls opened in [from, to), run in the background
with progress; bad input is 422 naming the field; unknown jobs and versions are 404."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from service.settings import Settings
from service.store.tables import CALL, WHAT_IF_JOB, utcnow
from tests.api.test_ingest_programs import decided, field_program, located, serving
from tests.conftest import Server, eventually, running_server
from tests.factories import DOWNTOWN, IN_DOWNTOWN, OUT_OF_TOWN, as_yaml, doc

pytestmark = pytest.mark.asyncio

FROM, TO = "2026-03-10T00:00:00-04:00", "2026-03-11T00:00:00-04:00"
FIXED_TIMES = {"distribution": "fixed", "default_minutes": 60,
               "by_category": {"mental_health": 60}}


async def post(server: Server, **fields: Any) -> str:
    r = await server.post_event(**fields)
    assert r.status_code in (200, 201, 202), r.text
    return str(fields["incident_id"])


async def wait_done(server: Server, job_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        r = await server.client.get(f"/v1/what-if/{job_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["status"] != "running" else None

    body: dict[str, Any] = await eventually(done, f"what-if job {job_id} to finish",
                                            every=0.05)
    return body


async def test_whatif_over_stored_calls(server: Server) -> None:
    c = server.client
    # In range: three mental-health calls within team hours, minutes apart, one at night,
    # a burglary. Out of range: one two days later, one exactly at `to` (excluded).
    for i, at in enumerate(("14:00", "14:05", "14:10")):
        await post(server, incident_id=f"MH-{i}", occurred_at=f"2026-03-10T{at}:00-04:00")
    await post(server, incident_id="MH-night", occurred_at="2026-03-10T03:00:00-04:00")
    await post(server, incident_id="BURG", nature_code="BURGLARY",
               nature_text="Burglary in progress", occurred_at="2026-03-10T15:00:00-04:00")
    await post(server, incident_id="MH-later", occurred_at="2026-03-12T14:00:00-04:00")
    await post(server, incident_id="MH-at-to", occurred_at=TO)

    d = doc("2")
    d["program"]["phase"] = 1
    d["programs"][0]["units"] = 1  # the CALL field team: the programs' units in all
    r = await c.post("/v1/policies", json={"document": as_yaml(d)})
    assert r.status_code == 201, r.text

    r = await c.post("/v1/policies/2/what-if",
                     json={"from": FROM, "to": TO, "service_times": FIXED_TIMES})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "running" and set(started["progress"]) == {"done", "total"}

    job = await wait_done(server, started["job_id"])
    assert job["status"] == "done", job
    assert job["progress"] == {"done": 5, "total": 5}
    assert job["candidate"] == "st-petersburg-call@2"
    assert job["baseline"] == "st-petersburg-call@1"  # the published version by default
    report = job["report"]
    assert report["calls"] == 5
    assert report["candidate"]["calls"] == report["baseline"]["calls"] == 5
    # Baseline (phase 2, 4 units): the day calls go to the team; night and burglary police.
    assert report["baseline"]["destinations"] == {"call_team": 3, "police": 2}
    # Candidate (phase 1, 1 unit busy 60 min): the first goes joint; the next two wait for
    # the unit (the shipped queue: 15 min) and fall back to police.
    assert report["candidate"]["destinations"] == {"joint": 1, "police": 4}
    assert report["candidate"]["coverage"]["not_served"] == {"off_hours": 1,
                                                             "wait_exceeded": 2}
    assert report["changed"] == 3
    groups = {(g["from_destination"], g["to_destination"], g["candidate_why"]): g["count"]
              for g in report["changes"]}
    assert groups == {("call_team", "police", "wait_exceeded"): 2,
                      ("call_team", "joint", "rule"): 1}

    r = await c.get(f"/v1/what-if/{started['job_id']}/changed.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["nature_code"], row["baseline_destination"], row["candidate_destination"])
            for row in rows] == [("MNTL", "call_team", "joint"), ("MNTL", "call_team", "police"),
                                 ("MNTL", "call_team", "police")]

    # A version against itself changes nothing; an explicit baseline is used.
    r = await c.post("/v1/policies/2/what-if", json={"from": FROM, "to": TO, "baseline": "2"})
    same = await wait_done(server, r.json()["job_id"])
    assert same["baseline"] == "st-petersburg-call@2" and same["report"]["changed"] == 0
    assert same["report"]["calls"] == 5


async def test_a_stored_call_is_replayed_where_it_was_and_as_the_test_it_was(
        database_url: str, tmp_path: Path) -> None:
    """The what-if sees a stored call as the live path saw it: its place (a program's
    service area) and its purpose (a test call holds no unit). The version in force
    against itself sends every call where live traffic sent it."""
    one_unit_downtown = field_program("field", units=1, area={"polygons": DOWNTOWN})
    async with serving(database_url, tmp_path, [one_unit_downtown]) as s:
        live = [await decided(s, occurred_at="2026-03-10T14:00:00-04:00", purpose="test",
                              **located(IN_DOWNTOWN)),
                await decided(s, occurred_at="2026-03-10T14:05:00-04:00",
                              **located(IN_DOWNTOWN)),
                await decided(s, occurred_at="2026-03-10T14:10:00-04:00",
                              **located(OUT_OF_TOWN))]
        # The test call took no unit, so the live one downtown found it free.
        assert [d["destination"] for d in live] == ["call_team", "call_team", "police"]
        r = await s.client.post("/v1/policies/1/what-if", json={
            "from": FROM, "to": TO, "baseline": "1", "service_times": FIXED_TIMES})
        assert r.status_code == 202, r.text
        job = await wait_done(s, r.json()["job_id"])
        assert job["status"] == "done", job
        assert job["report"]["baseline"]["destinations"] == {"call_team": 2, "police": 1}
        assert job["report"]["baseline"]["coverage"]["not_served"] == {"outside_area": 1}


async def test_whatif_bad_input(server: Server) -> None:
    c = server.client
    url = "/v1/policies/1/what-if"

    async def field_of(body: dict[str, Any]) -> str:
        r = await c.post(url, json=body)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail[0]["reason"], detail
        return str(detail[0]["field"])

    assert await field_of({"from": TO, "to": FROM}) == "to"
    assert await field_of({"from": FROM, "to": FROM}) == "to"
    assert await field_of({"from": "2026-03-10T00:00:00", "to": TO}) == "from"
    assert await field_of({"from": FROM}) == "to"
    assert await field_of({"from": FROM, "to": TO,
                           "service_times": {"distribution": "gamma"}}) \
        == "service_times.distribution"
    r = await c.post(url, json={"from": FROM, "to": TO, "baseline": "99"})
    assert r.status_code == 404, r.text
    r = await c.post("/v1/policies/99/what-if", json={"from": FROM, "to": TO})
    assert r.status_code == 404, r.text
    assert (await c.get("/v1/what-if/nope")).status_code == 404
    assert (await c.get("/v1/what-if/nope/changed.csv")).status_code == 404


async def test_a_job_survives_a_restart_and_a_lost_one_says_so(database_url: str) -> None:
    async with running_server(Settings(database_url=database_url)) as first:
        await post(first, incident_id="MH-0", occurred_at="2026-03-10T14:00:00-04:00")
        r = await first.client.post("/v1/policies/1/what-if", json={"from": FROM, "to": TO})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        before = await wait_done(first, job_id)
        creds = first.creds
    async with running_server(Settings(database_url=database_url), creds=creds) as second:
        after = await wait_done(second, job_id)
        assert after == before and after["report"]["calls"] == 1
        csv_text = (await second.client.get(f"/v1/what-if/{job_id}/changed.csv")).text
        assert csv_text.splitlines()[0].startswith("call_id")  # the header; nothing changed
        # A job whose instance stopped mid-run: its progress stopped moving.
        stale = utcnow() - timedelta(minutes=5)
        async with second.runtime.engine.begin() as conn:
            await conn.execute(insert(WHAT_IF_JOB).values(
                id="lost-job", candidate="x@2", baseline="x@1", start_at=stale,
                end_at=stale, seed=1, status="running", done=3, total=10, started_at=stale,
                updated_at=stale))
        lost = (await second.client.get("/v1/what-if/lost-job")).json()
        assert lost["status"] == "failed" and lost["error"].startswith("lost:")
        assert lost["progress"] == {"done": 3, "total": 10}
        r = await second.client.get("/v1/what-if/lost-job/changed.csv")
        assert r.status_code == 409


async def test_any_instance_shows_a_job_another_runs(postgres_url: str) -> None:
    """Two instances on one PostgreSQL: started on one, followed and read on the other."""
    settings = Settings(database_url=postgres_url)
    async with running_server(settings) as one, \
            running_server(settings, creds=one.creds) as two:
        for i in range(3):
            await post(one, incident_id=f"MH-{i}", occurred_at=f"2026-03-10T14:0{i}:00-04:00")
        r = await one.client.post("/v1/policies/1/what-if", json={"from": FROM, "to": TO})
        job_id = r.json()["job_id"]
        assert (await two.client.get(f"/v1/what-if/{job_id}")).status_code == 200
        job = await wait_done(two, job_id)
        assert job["status"] == "done" and job["progress"] == {"done": 3, "total": 3}
        assert (await two.client.get(f"/v1/what-if/{job_id}/changed.csv")).status_code == 200


async def test_whatif_of_a_policy_of_programs_reports_the_queue(server: Server) -> None:
    """A candidate of one program with one unit, mental-health calls waiting up to 120
    minutes, 60 minutes a call: 14:00 is taken at once, 14:05 at 15:00 (55 min) and 14:10
    at 16:00 (110 min). The answer gives reach, the queue's waits and the program."""
    for i, at in enumerate(("14:00", "14:05", "14:10")):
        await post(server, incident_id=f"MH-{i}", occurred_at=f"2026-03-10T{at}:00-04:00")
    d = doc("3")
    d["programs"] = [{"id": "call", "name": "CALL field team",
                      "hours": {"daily": ["08:00-24:00"]}, "units": 1,
                      "queue": [{"category": "mental_health", "max_wait_minutes": 120}]}]
    r = await server.client.post("/v1/policies", json={"document": as_yaml(d)})
    assert r.status_code == 201, r.text
    r = await server.client.post("/v1/policies/3/what-if",
                                 json={"from": FROM, "to": TO, "service_times": FIXED_TIMES})
    assert r.status_code == 202, r.text
    job = await wait_done(server, r.json()["job_id"])
    assert job["status"] == "done", job
    cand = job["report"]["candidate"]
    assert cand["destinations"] == {"call_team": 3}
    assert (cand["reach"], cand["eligible_served"], cand["safety_exclusions_to_team"]) == (
        1.0, 3, 0)
    queue = cand["queue"]
    assert (queue["queued"], queue["queued_served"], queue["fell_back"]) == (2, 2, 0)
    assert queue["waits"] == {"calls": 2, "p50_minutes": 55.0, "p90_minutes": 110.0}
    assert queue["waits_by_program"]["call"] == queue["waits"]
    [program] = cand["programs"]
    assert (program["id"], program["eligible"], program["served"], program["reach"],
            program["queued"]) == ("call", 3, 3, 1.0, 2)
    # The published one-team baseline: four units, nothing waits.
    base = job["report"]["baseline"]
    assert base["queue"]["queued"] == 0 and base["reach"] == 1.0


async def test_reading_the_stored_calls_page_by_page(server: Server,
                                                     database_url: str) -> None:
    """The read goes page by page (keyset on time and id): calls at one time across a
    page's edge are each read once, in order."""
    from service.policy.whatif import stored_calls
    from service.store.db import create_engine

    # Three calls at one time across the pages' edges: each read once, in order.
    for i, minute in enumerate((0, 1, 1, 1, 4)):
        await post(server, incident_id=f"PAGE-{i}",
                   occurred_at=f"2026-03-10T14:0{minute}:00-04:00")
    engine = create_engine(database_url)
    try:
        calls = await stored_calls(engine, *(utcnow().fromisoformat(t) for t in (FROM, TO)),
                                   page_size=2)
        async with engine.connect() as conn:
            stored = sorted((await conn.execute(select(CALL.c.opened_at, CALL.c.id))).all())
    finally:
        await engine.dispose()
    assert len(stored) == 5
    assert [c.call_id for c in calls] == [call_id for _, call_id in stored]
