"""The provider directory (issue 16) over a real server on both databases: a supervisor
keeps it one provider at a time or by CSV file (all rows or none, each bad row named with
its line and field), retires providers, and the team filters it by service."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from service.access.auth import Role
from service.store.tables import AUDIT
from tests.conftest import Server

pytestmark = pytest.mark.asyncio

CSV = """id,name,services,eligibility,hours,capacity,contact
safe-harbor,Safe Harbor,shelter;housing,Adults 18+,24/7,12,727-555-0101
peer-line,Peer Warm Line,warm_line;peer_support,,Daily 9am-11pm,,727-555-0102
"""


async def csv_import(s: Server, text: str, status: int = 200) -> dict[str, Any]:
    r = await s.client.post("/v1/providers/import", content=text.encode(),
                            headers={"content-type": "text/csv"})
    assert r.status_code == status, r.text
    return dict(r.json())


async def names(s: Server, **params: str) -> list[str]:
    r = await s.client.get("/v1/providers", params=params)
    assert r.status_code == 200, r.text
    return [p["id"] for p in r.json()["providers"]]


async def test_a_supervisor_keeps_the_directory(server: Server) -> None:
    s = server
    r = await s.client.put("/v1/providers/crisis-stab", json={
        "name": " Crisis Stabilization Unit ", "services": ["mental_health", "medical",
                                                            "mental_health"],
        "eligibility": "Adults in crisis", "hours": "24/7", "capacity": 3,
        "contact": "727-555-0100"})
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["created"] is True
    p = saved["provider"]
    assert (p["name"], p["services"], p["capacity"], p["active"]) == (
        "Crisis Stabilization Unit", ["medical", "mental_health"], 3, True)
    assert p["updated_by"].startswith("key:")  # the supervisor key that wrote it

    r = await s.client.put("/v1/providers/crisis-stab", json={
        "name": "Crisis Stabilization Unit", "services": ["mental_health"], "capacity": 0})
    assert r.json()["created"] is False and r.json()["provider"]["capacity"] == 0

    assert await names(s) == ["crisis-stab"]
    assert await names(s, service="mental_health") == ["crisis-stab"]
    assert await names(s, service="food") == []
    # A dispatcher and the team read it too.
    for role in (Role.dispatcher, Role.call_team):
        r = await s.client.get("/v1/providers", headers=s.creds.bearer(role))
        assert [p["id"] for p in r.json()["providers"]] == ["crisis-stab"], role

    r = await s.client.delete("/v1/providers/crisis-stab")
    assert r.status_code == 200 and r.json()["active"] is False
    assert await names(s) == []
    assert (await s.client.delete("/v1/providers/crisis-stab")).status_code == 404
    async with s.runtime.engine.connect() as conn:
        actions = list((await conn.execute(
            select(AUDIT.c.action).where(AUDIT.c.action.like("provider.%"))
            .order_by(AUDIT.c.id))).scalars())
    assert actions == ["provider.add", "provider.update", "provider.retire"]


async def test_bad_fields_are_refused_naming_them(server: Server) -> None:
    s = server
    for body, field in (({"name": "X", "services": ["dentistry"]}, "services[0]"),
                        ({"name": "X", "services": []}, "services"),
                        ({"name": "  ", "services": ["food"]}, "name"),
                        ({"name": "X", "services": ["food"], "capacity": -1}, "capacity"),
                        ({"name": "X", "services": ["food"], "colour": "red"}, "colour")):
        r = await s.client.put("/v1/providers/p1", json=body)
        assert r.status_code == 422, r.text
        assert field in [d["field"] for d in r.json()["detail"]], (body, r.text)
    r = await s.client.put("/v1/providers/Not_Lower", json={"name": "X", "services": ["food"]})
    assert r.status_code == 422
    assert await names(s) == []


async def test_a_csv_file_is_imported_whole(server: Server) -> None:
    s = server
    done = await csv_import(s, CSV)
    assert done == {"imported": 2, "created": 2, "updated": 0}
    listed = (await s.client.get("/v1/providers")).json()["providers"]
    by_id = {p["id"]: p for p in listed}
    assert by_id["safe-harbor"]["services"] == ["housing", "shelter"]
    assert by_id["safe-harbor"]["capacity"] == 12
    assert by_id["peer-line"]["capacity"] is None and by_id["peer-line"]["eligibility"] is None
    assert await names(s, service="warm_line") == ["peer-line"]
    # Again, one changed: updated, not doubled.
    again = await csv_import(s, CSV.replace(",12,", ",4,"))
    assert again == {"imported": 2, "created": 0, "updated": 2}
    listed = (await s.client.get("/v1/providers")).json()["providers"]
    assert {p["id"]: p["capacity"] for p in listed} == {"safe-harbor": 4, "peer-line": None}


async def test_a_file_with_bad_rows_imports_nothing_and_names_each(server: Server) -> None:
    s = server
    bad = CSV + ("food-bank,Food Bank,food;dentistry,,,,\n"
                 "Bad Id,Somewhere,food,,,,\n"
                 "safe-harbor,Twice,food,,,,\n"
                 "short,row\n"
                 "beds,Beds,shelter,,,many,\n")
    r = await s.client.post("/v1/providers/import", content=bad.encode(),
                            headers={"content-type": "text/csv"})
    assert r.status_code == 422, r.text
    got = {(d["line"], d["field"]) for d in r.json()["detail"]}
    assert got == {(4, "services[1]"), (5, "id"), (6, "id"), (7, "(row)"), (8, "capacity")}
    assert "nothing was imported" in r.json()["message"]
    twice = next(d for d in r.json()["detail"] if d["line"] == 6)
    assert twice["reason"] == "also on line 2"
    assert await names(s) == []

    r = await s.client.post("/v1/providers/import", content=b"id,name,colour\nx,X,red\n",
                            headers={"content-type": "text/csv"})
    assert r.status_code == 422
    assert {(d["line"], d["field"]) for d in r.json()["detail"]} == {
        (1, "colour"), (1, "services")}
    r = await s.client.post("/v1/providers/import", content=CSV.encode(),
                            headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "(body)"
    assert await names(s) == []
