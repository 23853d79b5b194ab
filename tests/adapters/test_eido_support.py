"""Shared pieces for the EIDO tests: the reference material in ../shared/eido (read in
place, never copied), a schema validator built from NENA's OpenAPI file, and a builder
for conformant hand-made EIDOs (public EIDOs with an incident component do not exist)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from tests.conftest import ROOT, unavailable

SHARED_EIDO = ROOT.parent / "shared" / "eido"
SAMPLE = "NENA911-EIDO-JSON/Samples/Sample call transfer EIDO.json"
SAMPLE_2021 = ("NENA911-EIDO-JSON/history/sample_v2021-05_b980190/Samples/"
               "Sample call transfer EIDO.json")
DRAFT_2020 = "NENA911-EIDO-JSON/history/draft_2020_0a0f33a/Samples/Sample_EIDO.json"
JCARD = "PhrSite-EidoLib/Testing/EidoUnitTests/EidoTestFiles/EidoWithJcard.json"
THIRD_PARTY = (
    "third_party_nonconformant/DevKlim-sentinelai/eido-agent/sample_eido/EIDO_Report_e73bac13.json",
    "third_party_nonconformant/DevKlim-sentinelai/eido-agent/sample_eido/EIDO_Report_eca17e1a.json",
    "third_party_nonconformant/DevKlim-sentinelai/eido-agent/eido_templates/general_incident.json",
)
SCHEMA_HEAD = "NENA911-EIDO-JSON/Schema/openapi.yaml"
SCHEMA_021_1B = "NENA911-EIDO-JSON/history/NENA-STA-021.1b_c3b8d20/Schema/openapi.yaml"


def shared_eido() -> Path:
    """The reference folder; a clone without ../shared skips, CI fails."""
    if not SHARED_EIDO.is_dir():
        unavailable(f"EIDO reference material not found at {SHARED_EIDO}: it sits beside "
                    "the project as ../shared/eido (a fresh clone has none)")
    return SHARED_EIDO


def shared_json(relative: str) -> Any:
    return json.loads((shared_eido() / relative).read_text(encoding="utf-8"))


def _yaml(path: Path) -> Any:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))

    def coerce(node: Any) -> Any:
        # The 021.1.1 draft has `minItems: 1,` (a string); a validator needs the integer.
        if isinstance(node, dict):
            return {k: (int(str(v).strip(" ,")) if k in ("minItems", "maxItems")
                        and isinstance(v, str) else coerce(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [coerce(v) for v in node]
        return node

    return coerce(doc)


@cache
def schema_validator(relative: str = SCHEMA_HEAD) -> Any:
    """Draft 7 validation of EmergencyIncidentDataObjectType, with every component
    reference (NIEMComponents/*.yaml included) resolved from the shared folder."""
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    base = shared_eido()
    niem = base / "NENA911-EIDO-JSON/Schema/NIEMComponents"

    def retrieve(uri: str) -> Resource:
        path = Path(unquote(urlparse(uri).path))
        if path.parent.name == "NIEMComponents":
            # The 021.1b schema was kept without its NIEM folder; the files are the same.
            path = niem / path.name
        return Resource.from_contents(_yaml(path), default_specification=DRAFT7)

    root = (base / relative).resolve()
    registry: Registry = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    schema = {"$ref": root.as_uri() + "#/components/schemas/EmergencyIncidentDataObjectType"}
    return Draft7Validator(schema, registry=registry)


def schema_errors(document: Any, relative: str = SCHEMA_HEAD) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in schema_validator(relative).iter_errors(document)]


AGENCY = "psap.stpete.example"
STAMP = "2026-03-10T14:00:00-04:00"  # a Tuesday afternoon: within the shipped policy's hours


def pidf(civic: dict[str, str] | None = None, point: tuple[float, float] | None = None) -> str:
    parts = []
    if civic:
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in civic.items())
        parts.append(f'<civicAddress xmlns="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr">'
                     f"{fields}</civicAddress>")
    if point:
        parts.append('<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
                     f"<gml:pos>{point[0]} {point[1]}</gml:pos></gml:Point>")
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
            'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
            'xmlns:gml="http://www.opengis.net/gml" entity="pres:caller@example.com">'
            '<tuple id="t1"><status><gp:geopriv><gp:location-info>'
            + "".join(parts) +
            "</gp:location-info><gp:usage-rules/></gp:geopriv></status></tuple></presence>")


def _prologue(cid: str, at: str) -> dict[str, Any]:
    return {"$id": cid, "lastUpdateTimeStamp": at, "updatedByAgencyReference": {"$ref": AGENCY},
            "updatedByAgentReference": {"$ref": f"ct7@{AGENCY}"}}


def eido(*, unique: str = "a1b2c3", code: str = "MNTL",
         internal_text: str | None = "Mental person non-violent", internal_code: str = "MH1",
         status: list[str] | None = None, priority: int | None = 5,
         notes: list[str] | None = None, at: str = STAMP, beat: str | None = "D2",
         call_type: str | None = "emergency") -> dict[str, Any]:
    """A conformant EIDO (NENA-STA-021.1b) for one incident in St. Petersburg."""
    if notes is None:
        notes = ["<p>Caller says her brother is talking to himself, no weapons.</p>"]
    incident_id = f"urn:emergency:uid:incidentid:{unique}:{AGENCY}"

    def cid(part: str) -> str:
        return f"urn:emergency:uid:eidodatacomponent:{unique}-{part}:{AGENCY}"

    incident: dict[str, Any] = {
        **_prologue(cid("inc"), at), "incidentTypeCommonRegistryText": code,
        "incidentTypeInternalCode": internal_code,
        "incidentStatusCommonRegistryText": status or ["Active"],
        "locationReference": [{"$ref": cid("loc")}],
        "notesReference": [{"$ref": cid(f"note{i}")} for i in range(len(notes))],
    }
    if internal_text is not None:
        incident["incidentTypeInternalText"] = internal_text
    if priority is not None:
        incident["incidentCommonPriorityNumber"] = priority
    if beat is not None:
        incident["beatOrDispatchGroupText"] = beat
    doc: dict[str, Any] = {
        **_prologue(incident_id, at),
        "eidoVersion": "1.0",
        "issuingElementIdentification": f"cad.{AGENCY}",
        "incidentComponent": incident,
        "locationComponent": [{
            **_prologue(cid("loc"), at), "locationTypeDescriptionRegistryText": "CurrentIncident",
            "locationByValue": pidf({"country": "US", "A1": "FL", "A3": "St. Petersburg",
                                     "HNO": "1300", "RD": "1st", "STS": "Ave", "POD": "N"},
                                    (27.7731, -82.6516)),
        }],
        "notesComponent": [{**_prologue(cid(f"note{i}"), at), "notesActionComments": html,
                            "agentReference": {"$ref": f"ct7@{AGENCY}"}}
                           for i, html in enumerate(notes)],
        "agencyComponent": [{**_prologue(AGENCY, at),
                             "agencyRoleDescriptionRegistryText": ["CallReceiving",
                                                                   "Dispatching"],
                             "agencyType": ["psap"], "incidentOwningAgencyIndicator": True}],
        "agentComponent": [{**_prologue(f"ct7@{AGENCY}", at), "agentRoleRegistryText":
                            ["Call Taking"], "agencyReference": {"$ref": AGENCY}}],
        "@context": {"@vocab": "./JSON-LD_Contexts/EmergencyIncidentDataObjectType.jsonld"},
    }
    if call_type is not None:
        doc["callComponent"] = [{
            **_prologue(f"urn:emergency:uid:callid:{unique}:{AGENCY}", at),
            "standardPrimaryCallType": call_type, "direction": "incoming",
            "callStartTimestamp": at, "callStateRegistryText": "callAnswered",
            "locationReference": [{"$ref": cid("loc")}],
        }]
    return doc


def variant(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.update(changes)
    return out
