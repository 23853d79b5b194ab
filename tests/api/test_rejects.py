"""Rejected CAD input is kept, listed with its reasons, and can be re-submitted."""

from __future__ import annotations

import pytest

from tests.conftest import Server
from tests.factories import event

pytestmark = pytest.mark.asyncio


async def test_rejects_are_listed_with_reasons_and_resubmitted(server: Server) -> None:
    bad = event(occurred_at="2026-03-10 14:00", channel="fax")
    r = await server.client.post("/v1/cad/events", json=bad)
    assert r.status_code == 422
    reject_id = r.json()["reject_id"]
    await server.client.post("/v1/cad/events", content=b"\x00garbage",
                             headers={"content-type": "application/json"})

    listing = (await server.client.get("/v1/cad/rejects")).json()
    assert listing["count"] == 2
    assert [x["id"] for x in listing["data"]][1] == reject_id, "newest first"
    older = listing["data"][1]
    assert {e["field"] for e in older["errors"]} == {"occurred_at", "channel"}
    assert "body" not in older
    paged = (await server.client.get("/v1/cad/rejects",
                                     params={"before_id": listing["data"][0]["id"]})).json()
    assert [x["id"] for x in paged["data"]] == [reject_id]

    one = (await server.client.get(f"/v1/cad/rejects/{reject_id}")).json()
    assert one["body"] and '"channel": "fax"' in one["body"]

    # As it was, it is still wrong, and says why.
    again = await server.client.post(f"/v1/cad/rejects/{reject_id}/resubmit")
    assert again.status_code == 422
    assert {d["field"] for d in again.json()["detail"]} == {"occurred_at", "channel"}
    # Corrected by the operator, it goes through and is routed.
    fixed = {**bad, "occurred_at": "2026-03-10T14:00:00-04:00", "channel": "911"}
    ok = await server.client.post(f"/v1/cad/rejects/{reject_id}/resubmit",
                                  json={"body": fixed})
    assert ok.status_code == 202, ok.text
    assert ok.json()["decision"]["destination"] == "call_team"
    call = (await server.client.get(f"/v1/calls/{ok.json()['call_id']}")).json()
    assert call["events"][0]["event_id"] == bad["event_id"]

    missing = await server.client.get("/v1/cad/rejects/999999")
    assert missing.status_code == 404


async def test_a_refused_eido_is_resubmitted_through_the_eido_adapter(server: Server) -> None:
    from tests.factories import eido

    good = eido(unique="resubmit1", code="MNTL")
    bad = {**good, "eidoVersion": "0.9"}
    r = await server.client.post("/v1/cad/eido", json=bad)
    assert r.status_code == 422
    reject_id = r.json()["reject_id"]
    listed = (await server.client.get("/v1/cad/rejects", params={"source": "eido"})).json()
    assert [x["id"] for x in listed["data"]] == [reject_id]

    again = await server.client.post(f"/v1/cad/rejects/{reject_id}/resubmit")
    assert again.status_code == 422
    assert any(d["field"] == "eidoVersion" for d in again.json()["detail"])
    ok = await server.client.post(f"/v1/cad/rejects/{reject_id}/resubmit", json={"body": good})
    assert ok.status_code == 202, ok.text
    assert ok.json()["decision"]["category"] == "mental_health"
    call = (await server.client.get(f"/v1/calls/{ok.json()['call_id']}")).json()
    assert call["call"]["source"] == "eido"
