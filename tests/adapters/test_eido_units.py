"""The team's unit in GET /v1/calls/{id}/eido, over real HTTP on SQLite and PostgreSQL:
an emergency resource whose statuses follow the team's, valid against NENA's schemas, its
registry values from NENA's registries, and the times of its statuses in a note."""

from __future__ import annotations

import csv
from typing import Any

import pytest

from service.access.auth import Role
from tests.conftest import Server
from tests.factories import event
from tests.shared_data import SCHEMA_021_1B, schema_errors, shared_eido

pytestmark = pytest.mark.asyncio

AT = "2026-03-10T18:04:30+00:00"


def registry(name: str) -> set[str]:
    path = shared_eido() / "registries_from_NENA-STA-021.1b" / f"EIDO-{name}.csv"
    with path.open(encoding="utf-8") as f:
        return {row["value"] for row in csv.DictReader(f)}


async def eido_of(server: Server, call_id: str, role: Role | None = None) -> dict[str, Any]:
    r = await server.client.get(f"/v1/calls/{call_id}/eido",
                                headers=server.creds.bearer(role) if role else None)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert schema_errors(out) == [] and schema_errors(out, SCHEMA_021_1B) == []
    return out


async def status(server: Server, call_id: str, new: str, **more: Any) -> None:
    r = await server.client.post(f"/v1/calls/{call_id}/status", json={"status": new, **more})
    assert r.status_code == 200, r.text


def the_unit(doc: dict[str, Any]) -> dict[str, Any]:
    [unit] = doc["emergencyResourceComponent"]
    note = {n["$id"]: n for n in doc["notesComponent"]}[unit["notesReference"][0]["$ref"]]
    # Every registry value is one of NENA's.
    assert unit["emergencyResourceTypeCommonRegistryText"] in registry(
        "EmergencyResourceType-Common")
    assert unit["primaryUnitStatusRegistryText"] in registry("PrimaryUnitStatus-Common")
    assert set(unit["secondaryUnitStatusRegistryText"]) <= registry(
        "SecondaryUnitStatus-Common")
    # The note is the incident's too, and the routing note stays the last one.
    assert note["$id"] in {r["$ref"] for r in doc["incidentComponent"]["notesReference"]}
    assert "Liaison routing recommendation" in doc["notesComponent"][-1]["notesActionComments"]
    return {**unit, "note": note["notesActionComments"]}


def states(unit: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    return (unit["primaryUnitStatusRegistryText"], unit["secondaryUnitStatusRegistryText"],
            unit["unitStatusInternal"])


async def test_the_eido_carries_the_team_unit_and_its_statuses(server: Server) -> None:
    r = await server.client.post("/v1/cad/events", json=event(
        nature_code="CDX", nature_text="Neighbor dispute"))
    call_id = r.json()["call_id"]
    before = await eido_of(server, call_id)
    assert "emergencyResourceComponent" not in before  # no unit yet

    await status(server, call_id, "assigned", unit="CALL-3")
    doc = await eido_of(server, call_id)
    unit = the_unit(doc)
    assert unit["$id"] == f"CALL-3@{server.runtime.settings.eido_agency_id}"
    assert unit["emergencyResourceName"] == "CALL-3"
    assert unit["emergencyResourceTypeCommonRegistryText"] == "CrisisInterventionUnit"
    assert unit["emergencyResourceTypeInternalText"] == r.json()["decision"]["program"]["id"]
    assert states(unit) == ("NotAvailable", ["Assigned"], ["assigned"])
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == [
        "ResourcesAssigned"]

    await status(server, call_id, "en_route", at=AT)
    unit = the_unit(await eido_of(server, call_id))
    assert states(unit) == ("NotAvailable", ["EnRoute"], ["en_route"])
    # Asking for backup on the way: still en route.
    await status(server, call_id, "backup_requested", note="Crowd gathering")
    doc = await eido_of(server, call_id)
    assert states(the_unit(doc)) == ("NotAvailable", ["EnRoute"], ["backup_requested"])
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == [
        "ResourcesEnroute"]
    await status(server, call_id, "on_scene")
    doc = await eido_of(server, call_id)
    assert states(the_unit(doc)) == ("NotAvailable", ["OnScene"], ["on_scene"])
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == [
        "ResourcesOnscene"]

    await status(server, call_id, "cleared", disposition="referred_to_services")
    doc = await eido_of(server, call_id)
    unit = the_unit(doc)
    assert states(unit) == ("Available", ["Cleared"], ["cleared"])
    # Its status history: when each status was first reached, the team's time if it gave one.
    view = (await server.client.get(f"/v1/calls/{call_id}")).json()["call"]
    note = unit["note"]
    assert note.startswith("<p>CALL team unit CALL-3: cleared (referred to services).</p>")
    positions = []
    for key, label in (("assigned", "assigned"), ("en_route", "en route"),
                       ("on_scene", "on scene"), ("backup_requested", "backup requested"),
                       ("cleared", "cleared")):
        item = f'<li>{label} <time datetime="{view[key + "_at"]}">'
        assert item in note, (item, note)
        positions.append(note.index(item))
    assert positions == sorted(positions)  # in the flow's order
    assert view["en_route_at"] == AT
    assert doc["incidentComponent"]["dispositionComponent"][0][
        "dispositionCommonRegistryCode"] == "15"


async def test_the_unit_id_stays_the_same_and_is_a_cad_keys_to_read(server: Server) -> None:
    r = await server.client.post("/v1/cad/events", json=event(
        nature_code="CDX", nature_text="Neighbor dispute"))
    call_id = r.json()["call_id"]
    await status(server, call_id, "assigned", unit="CALL 7/B")
    first = the_unit(await eido_of(server, call_id, Role.cad))
    await status(server, call_id, "on_scene")
    later = the_unit(await eido_of(server, call_id, Role.cad))
    assert first["$id"] == later["$id"] == (
        f"CALL%207%2FB@{server.runtime.settings.eido_agency_id}")
    assert first["notesReference"] == later["notesReference"]
