"""An event id is the sender's idempotency key: scoped to the sender's source, answered
with the first answer when the same event comes again (byte-different but equal, or after
a restart), and refused with 409 when the id comes back with another body. Real uvicorn,
real keys of two CADs with different sources, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from service.access.auth import Role, create_key
from service.settings import Settings
from service.store.tables import BOARD, CAD_EVENT, CALL, DECISION
from tests.conftest import ROOT, Server, running_server
from tests.factories import event

pytestmark = pytest.mark.asyncio


async def counts(server: Server) -> tuple[int, ...]:
    async with server.runtime.engine.connect() as conn:
        return tuple([int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
                      for t in (CAD_EVENT, CALL, DECISION, BOARD)])


async def cad_client(server: Server, client: str, source: str) -> httpx.AsyncClient:
    """A client holding a real `cad` key made for one CAD (`liaison key create --source`)."""
    token, _ = await create_key(server.runtime.engine, client, role=Role.cad, source=source)
    return httpx.AsyncClient(base_url=server.base_url, timeout=30,
                             headers={"authorization": f"Bearer {token}"})


@pytest_asyncio.fixture
async def two_cads(server: Server) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    a = await cad_client(server, "pinellas-cad", "pinellas")
    b = await cad_client(server, "pasco-cad", "pasco")
    async with a, b:
        yield a, b


async def test_two_cads_may_use_the_same_event_id(
        server: Server, two_cads: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    pinellas, pasco = two_cads
    crisis = event(event_id="evt-0001", incident_id="P-1", nature_code="MNTL")
    robbery = event(event_id="evt-0001", incident_id="Q-1", nature_code="ROBBERY",
                    nature_text="Robbery in progress", narrative="Two men with a knife.")
    first = await pinellas.post("/v1/cad/events", json=crisis)
    second = await pasco.post("/v1/cad/events", json=robbery)
    assert first.status_code == 202 and second.status_code == 202, second.text
    one, two = first.json(), second.json()
    # Pasco's robbery is its own call with its own decision, not Pinellas's answer.
    assert two["call_id"] != one["call_id"]
    assert one["decision"]["category"] == "mental_health"
    assert two["decision"]["destination"] == "police"
    assert two["decision"]["category"] != "mental_health"
    assert await counts(server) == (2, 2, 2, 2)
    for client, answer, source, incident in ((pinellas, one, "pinellas", "P-1"),
                                             (pasco, two, "pasco", "Q-1")):
        call = (await server.client.get(f"/v1/calls/{answer['call_id']}")).json()
        assert (call["call"]["source"], call["call"]["incident_id"]) == (source, incident)
        assert [e["event_id"] for e in call["events"]] == ["evt-0001"]
        # Each CAD reads back its own call, and a retry of its own event gets its own answer.
        assert (await client.get(f"/v1/calls/{answer['call_id']}")).status_code == 200
    assert (await pasco.post("/v1/cad/events", json=robbery)).json() == two
    assert (await pinellas.post("/v1/cad/events", json=crisis)).json() == one
    assert await counts(server) == (2, 2, 2, 2)


async def test_a_reused_event_id_with_another_body_is_refused(
        server: Server, two_cads: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    pinellas, _ = two_cads
    ev = event(event_id="evt-weapon")
    first = await pinellas.post("/v1/cad/events", json=ev)
    assert first.status_code == 202
    before = await counts(server)
    changed = await pinellas.post("/v1/cad/events", json={**ev, "flags": ["weapon"]})
    assert changed.status_code == 409, changed.text
    assert changed.json()["error"] == "conflict"
    assert changed.json()["event_id"] == "evt-weapon"
    assert "different body" in changed.json()["message"]
    assert await counts(server) == before
    call = (await server.client.get(f"/v1/calls/{first.json()['call_id']}")).json()
    assert call["call"]["flags"] == []

    # The same event, written differently (key order, spacing, the same instant in UTC),
    # is a retry: the first answer, nothing stored.
    reordered = json.dumps({k: ev[k] for k in reversed(list(ev))}, indent=3)
    reordered = reordered.replace("2026-03-10T14:00:00-04:00", "2026-03-10T18:00:00Z")
    again = await pinellas.post("/v1/cad/events", content=reordered,
                                headers={"content-type": "application/json"})
    assert again.status_code == 202, again.text
    assert again.json() == first.json()
    assert await counts(server) == before


async def test_racing_bodies_under_one_event_id_store_one(
        server: Server, two_cads: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    pinellas, _ = two_cads
    a = event(event_id="evt-race")
    b = {**a, "flags": ["weapon"]}
    answers = await asyncio.gather(*(pinellas.post("/v1/cad/events", json=body)
                                     for body in [a, b] * 5))
    by_body: dict[str, set[int]] = {"a": set(), "b": set()}
    for i, r in enumerate(answers):
        by_body["ab"[i % 2]].add(r.status_code)
    # One body won (every copy of it answered alike); every copy of the other is a 409.
    assert sorted(map(sorted, by_body.values())) == [[202], [409]], by_body
    assert len({r.text for r in answers if r.status_code == 202}) == 1
    assert (await counts(server))[0] == 1


async def test_a_retry_after_a_restart_is_still_recognised(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    ev = event(event_id="evt-restart")
    async with running_server(settings) as first_server:
        token, _ = await create_key(first_server.runtime.engine, "pinellas-cad",
                                    source="pinellas")
        auth = {"authorization": f"Bearer {token}"}
        first = await first_server.client.post("/v1/cad/events", json=ev, headers=auth)
        assert first.status_code == 202, first.text
        creds = first_server.creds
    async with running_server(settings, creds=creds) as second_server:
        again = await second_server.client.post("/v1/cad/events", json=ev, headers=auth)
        assert again.status_code == 202, again.text
        assert again.json() == first.json()
        changed = await second_server.client.post(
            "/v1/cad/events", json={**ev, "narrative": "He has a gun now."}, headers=auth)
        assert changed.status_code == 409, changed.text
        assert changed.json()["event_id"] == "evt-restart"
        assert (await counts(second_server))[0] == 1


async def test_an_eido_sent_again_is_a_retry_not_a_conflict(server: Server) -> None:
    """An EIDO's event id is its content hash: the same document is the same event, even
    though Liaison now reads it as an update of the call the first one opened."""
    from tests.factories import eido

    doc: dict[str, Any] = eido(unique="idem1", code="MNTL")
    first = await server.client.post("/v1/cad/eido", json=doc)
    again = await server.client.post("/v1/cad/eido", json=doc)
    assert first.status_code == again.status_code == 202, again.text
    assert again.json()["call_id"] == first.json()["call_id"]
    assert again.json()["event_id"] == first.json()["event_id"]
    assert (await counts(server))[0] == 1


async def test_a_cad_key_cannot_take_a_source_liaison_keeps_for_its_own_intake(
        server: Server, tmp_path: Any) -> None:
    # Under `eido` a CAD's event ids and incidents would share the EIDO adapter's scope.
    from service.errors import DomainError
    for source in ("eido", "referral", "liaison", "subscriber"):
        with pytest.raises(DomainError, match=f"source {source!r} is Liaison's own"):
            await create_key(server.runtime.engine, "x-cad", role=Role.cad, source=source)
    # The command line says so, and makes nothing.
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "key", "create", "--client", "x-cad",
        "--source", "eido", "--database-url", server.runtime.settings.database_url,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await done.communicate()
    assert done.returncode != 0
    assert "source 'eido' is Liaison's own" in out.decode()
