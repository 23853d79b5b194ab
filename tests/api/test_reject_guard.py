"""Nobody fills the disk through the CAD endpoints: credentials are checked before a body
is read, only authenticated CAD senders' refused bodies are kept, and each key keeps at
most LIAISON_REJECTS_PER_KEY of them (the oldest go). Real uvicorn, real keys, on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from service.access.auth import Role, create_key
from service.settings import Settings
from service.store.tables import CAD_EVENT, CALL, REJECT
from tests.api.test_access import concrete, may, served_routes
from tests.conftest import Server, running_server
from tests.factories import event

pytestmark = pytest.mark.asyncio

MIB = 1024 * 1024


async def count(server: Server, table: Any) -> int:
    async with server.runtime.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def big_bad_body(size: int = MIB) -> bytes:
    """A refusable event exactly `size` bytes long (the largest body the route takes)."""
    head = json.dumps({"event_id": "flood", "incident_id": "F", "type": "created",
                       "occurred_at": "not a time", "narrative": ""})[:-2]
    return (head + "x" * (size - len(head) - 2) + '"}').encode()


async def status_before_body(server: Server, path: str, headers: dict[str, str],
                             method: str = "POST") -> bytes:
    """Declare a 1 MiB body, send 64 bytes of it, and read the status line: an answer that
    comes while the rest is still unsent was given without reading the body."""
    url = urlparse(server.base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in {
            "host": url.netloc, "content-type": "application/json",
            "content-length": str(MIB), **headers}.items())
        writer.write(f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + b'{"event_id": "' +
                     b"x" * 50)
        await writer.drain()
        # A deadline for what must happen; without the check the server waits for the body.
        return await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()


async def test_no_credentials_no_body_read_nothing_kept(server: Server) -> None:
    body = big_bad_body()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as anonymous:
        answers = await asyncio.gather(*(anonymous.post(
            "/v1/cad/events", content=body, headers={"content-type": "application/json"})
            for _ in range(20)))
        assert {r.status_code for r in answers} == {401}, answers[0].text
        # A wrong key is no better, and malformed JSON is refused the same way.
        bad_key = await anonymous.post("/v1/cad/events", content=b"{not json",
                                       headers={"content-type": "application/json",
                                                "authorization": "Bearer lk_nope.nope"})
        assert bad_key.status_code == 401
        assert (await anonymous.post("/v1/cad/eido", content=body)).status_code == 401
    # A person's role that may not post events: 403, nothing kept either.
    supervisor = await server.client.post(
        "/v1/cad/events", content=b"{not json", headers={
            **server.creds.bearer(Role.supervisor), "content-type": "application/json"})
    assert supervisor.status_code == 403
    assert await count(server, REJECT) == 0
    assert await count(server, CAD_EVENT) == 0 and await count(server, CALL) == 0

    for path in ("/v1/cad/events", "/v1/cad/eido", "/v1/cad/rejects/1/resubmit"):
        line = await status_before_body(server, path, {})
        assert line.startswith(b"HTTP/1.1 401"), (path, line)
    line = await status_before_body(server, "/v1/cad/events",
                                    {"authorization": "Bearer lk_nope.nope"})
    assert line.startswith(b"HTTP/1.1 401"), line
    line = await status_before_body(server, "/v1/cad/events", server.creds.bearer(Role.analyst))
    assert line.startswith(b"HTTP/1.1 403"), line
    assert await count(server, REJECT) == 0


async def test_every_route_taking_a_body_refuses_a_stranger_before_reading_it(
        server: Server) -> None:
    """Not only the CAD routes: any route that takes a body and is not open to anyone
    answers 401 while a declared 1 MiB body is still unsent (api.access.CredentialsFirst
    for a declared body; a route reading the request itself does so after its checks)."""
    checked = []
    for name in served_routes(server.app):
        method, path = name.split(" ", 1)
        if method not in ("POST", "PUT", "PATCH") or may(name) is None:
            continue
        line = await status_before_body(server, concrete(path), {}, method=method)
        assert line.startswith(b"HTTP/1.1 401"), (name, line)
        checked.append(name)
    # The routes with bodies beyond the CAD's are walked too (a route table change that
    # left them out would make this pass without checking them).
    assert {"POST /v1/policies", "POST /v1/users", "POST /v1/referrals",
            "POST /v1/calls/{call_id}/status"} <= set(checked), \
        checked


@pytest_asyncio.fixture
async def capped(database_url: str) -> AsyncIterator[Server]:
    async with running_server(Settings(database_url=database_url, rejects_per_key=3)) as s:
        yield s


async def cad(server: Server, name: str, source: str) -> tuple[httpx.AsyncClient, str]:
    token, row = await create_key(server.runtime.engine, name, role=Role.cad, source=source)
    client = httpx.AsyncClient(base_url=server.base_url, timeout=30,
                               headers={"authorization": f"Bearer {token}"})
    return client, f"key:{row['id']}"


async def test_each_key_keeps_its_newest_rejects_up_to_the_cap(capped: Server) -> None:
    from tests.factories import eido

    server = capped
    pinellas, pinellas_key = await cad(server, "pinellas-cad", "pinellas")
    pasco, pasco_key = await cad(server, "pasco-cad", "pasco")
    async with pinellas, pasco:
        kept_first = await pasco.post("/v1/cad/events", json=event(channel="fax"))
        assert kept_first.status_code == 422
        ids = []
        for i in range(5):
            if i == 2:  # an EIDO refused counts against the same key
                r = await pinellas.post("/v1/cad/eido", json={**eido(), "eidoVersion": "0.9"})
            else:
                r = await pinellas.post("/v1/cad/events",
                                        json=event(event_id=f"bad-{i}", location={"lat": 99}))
            # Kept or not, the answer names each field and why.
            assert r.status_code == 422, r.text
            assert r.json()["detail"], r.text
            ids.append(r.json()["reject_id"])

    listing = (await server.client.get("/v1/cad/rejects")).json()
    by_sender: dict[str, list[int]] = {}
    for row in listing["data"]:
        by_sender.setdefault(row["sender"], []).append(row["id"])
    # Pinellas keeps its newest three; its flood did not push out Pasco's one.
    assert by_sender == {pinellas_key: ids[:1:-1], pasco_key: [kept_first.json()["reject_id"]]}
    assert listing["count"] == 4
    assert (await server.client.get(f"/v1/cad/rejects/{ids[0]}")).status_code == 404

    # A kept generic event is re-submitted under the source of the CAD that sent it.
    newest = (await server.client.get(f"/v1/cad/rejects/{ids[-1]}")).json()
    assert newest["source"] == "pinellas" and newest["path"] == "/v1/cad/events"
    fixed = {**json.loads(newest["body"]), "location": {"lat": 27.77}}
    ok = await server.client.post(f"/v1/cad/rejects/{ids[-1]}/resubmit", json={"body": fixed})
    assert ok.status_code == 202, ok.text
    call = (await server.client.get(f"/v1/calls/{ok.json()['call_id']}")).json()
    assert call["call"]["source"] == "pinellas"
