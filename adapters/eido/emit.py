"""Write a Liaison call as an EIDO (NENA-STA-021.1b): the incident's current state as the
reader may see it, with the routing recommendation as a note authored by Liaison's agency
and the team's unit as an emergency resource (why a note, and what is mapped back from the
call: docs/eido.md "The EIDO out").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from adapters.eido.parse import CONTEXT_VOCAB, EIDO_VERSION
from adapters.eido.resources import team_resources

_TEAM_STATUS = {"assigned": "ResourcesAssigned", "en_route": "ResourcesEnroute",
                "on_scene": "ResourcesOnscene", "backup_requested": "ResourcesOnscene"}
_DESTINATION = {"call_team": "the CALL team", "police": "police",
                "joint": "a joint response (team and police)",
                "crisis_center": "the crisis centre (988 transfer)"}


def eido_priority(priority: int | None) -> int | None:
    """Liaison's priority (1 the most urgent) as the EIDO's 0-10 (10 the most urgent)."""
    return None if priority is None else max(0, min(10, 11 - priority))


def _pidf_point(lat: float, lon: float, entity: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
        f'xmlns:gml="http://www.opengis.net/gml" entity="{escape(entity)}">'
        '<tuple id="incident"><status><gp:geopriv><gp:location-info>'
        '<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
        f"<gml:pos>{lat!r} {lon!r}</gml:pos></gml:Point>"
        "</gp:location-info><gp:usage-rules/></gp:geopriv></status></tuple></presence>"
    )


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{escape(line)}</p>" for line in text.splitlines() if line.strip())


def decision_html(decision: dict[str, Any], withheld: list[str] | None = None) -> str:
    """The recommendation as an HTML5 note: a sentence, the explanation, the values, and
    what was held back from this reader (service/calls/visibility.py), if anything."""
    dest = str(decision.get("destination"))
    head = (f"<p><strong>Liaison routing recommendation:</strong> "
            f"{escape(_DESTINATION.get(dest, dest))} ({escape(str(decision.get('mode')))}).</p>")
    rows = [("destination", dest), ("mode", decision.get("mode")),
            ("category", decision.get("category")), ("basis", decision.get("basis")),
            ("eligible", decision.get("eligible")),
            ("not_served_reason", decision.get("not_served_reason")),
            ("matched_rules", " ".join(decision.get("matched_rules") or [])),
            ("policy_version", decision.get("policy_version"))]
    override = decision.get("override")
    if isinstance(override, dict):
        rows += [("override_by", override.get("by")), ("override_reason", override.get("reason"))]
    rows.append(("withheld", " ".join(withheld or [])))
    shown = [(name, json.dumps(value) if isinstance(value, bool) else str(value))
             for name, value in rows if value is not None and value != ""]
    items = "".join(f'<dt>{name}</dt><dd><data value="{escape(text)}">{escape(text)}</data></dd>'
                    for name, text in shown)
    return head + _paragraphs(str(decision.get("explanation") or "")) + f"<dl>{items}</dl>"


def call_to_eido(view: dict[str, Any], *, agency_id: str,
                 dispositions: Mapping[Any, str] | None = None) -> dict[str, Any]:
    """The EIDO for a call as `service.lifecycle.queries.get_call` returns it, narrowed for its
    reader by service.calls.visibility.call_view (a withheld narrative has no note)."""
    call, decision = view["call"], view["decision"]
    call_id = call["id"]

    def component_id(part: str) -> str:
        return f"urn:emergency:uid:eidodatacomponent:{call_id}-{part}:{agency_id}"

    def prologue(component: str, at: str) -> dict[str, Any]:
        return {"$id": component, "lastUpdateTimeStamp": at,
                "updatedByAgencyReference": {"$ref": agency_id}}

    from_eido = call["source"] == "eido"
    incident_id = (call["incident_id"] if from_eido
                   else f"urn:emergency:uid:incidentid:{call_id}:{agency_id}")
    updated = call["updated_at"] or call["last_event_at"]
    decided = view["decisions"][-1]["at"] if view.get("decisions") else updated

    notes = []
    if call.get("narrative"):
        notes.append({**prologue(component_id("narrative"), call["last_event_at"]),
                      "notesActionComments": _paragraphs(call["narrative"])})
    notes.append({**prologue(component_id("routing"), decided),
                  "notesActionComments": decision_html(decision, call.get("withheld"))})

    loc = call.get("location") or {}
    locations = []
    if loc.get("address") or loc.get("lat") is not None:
        location: dict[str, Any] = {**prologue(component_id("location"), call["last_event_at"]),
                                    "locationTypeDescriptionRegistryText": "CurrentIncident"}
        if loc.get("lat") is not None and loc.get("lon") is not None:
            location["locationByValue"] = _pidf_point(loc["lat"], loc["lon"],
                                                      f"pres:{call_id}@{agency_id}")
        if loc.get("address"):
            location["locationDescriptionText"] = loc["address"]
        locations.append(location)

    if call.get("closed_at"):
        status = "Closed"
    elif call.get("team_status") == "backup_requested" and not call.get("on_scene_at"):
        status = "ResourcesEnroute"  # asked for backup on the way there
    else:
        status = _TEAM_STATUS.get(call.get("team_status") or "", "Active")
    # The team's unit and the times of its statuses (adapters/eido/resources.py).
    resources, unit_notes = team_resources(call, decision, agency_id=agency_id,
                                           prologue=prologue, note_id=component_id("unit"),
                                           at=updated)
    notes[-1:-1] = unit_notes  # the routing note stays last
    incident: dict[str, Any] = {
        **prologue(component_id("incident"), updated),
        "incidentTypeCommonRegistryText": call["nature_code"],
        "incidentStatusCommonRegistryText": [status],
        "notesReference": [{"$ref": n["$id"]} for n in notes],
    }
    if call.get("nature_text"):
        incident["incidentTypeInternalText"] = call["nature_text"]
    if call.get("team_status"):
        incident["incidentStatusInternalText"] = [f"CALL team {call['team_status']}"]
    if not from_eido:
        incident["internalIncidentId"] = call["incident_id"]
    number = eido_priority(call.get("priority"))
    if number is not None:
        incident["incidentCommonPriorityNumber"] = number
    if loc.get("district"):
        incident["beatOrDispatchGroupText"] = loc["district"]
    if locations:
        incident["locationReference"] = [{"$ref": locations[0]["$id"]}]
    code = (dispositions or {}).get(call.get("disposition") or "")
    if code:
        incident["dispositionComponent"] = [{
            **prologue(component_id("disposition"), updated),
            "dispositionCommonRegistryCode": code, "dispositionPrimaryIndicator": True,
            "dispositionDescriptionText": str(call["disposition"]).replace("_", " "),
        }]

    agency = {**prologue(agency_id, updated),
              # Consulted on the incident: "Assisting" in the EIDO-AgencyRole registry.
              "agencyRoleDescriptionRegistryText": ["Assisting"],
              "agencyType": ["psap"]}
    document: dict[str, Any] = {
        **prologue(incident_id, updated),
        "eidoVersion": EIDO_VERSION,
        "issuingElementIdentification": (agency_id if agency_id.startswith("liaison.")
                                         else f"liaison.{agency_id}"),
        "incidentComponent": incident,
        "agencyComponent": [agency],
        "notesComponent": notes,
    }
    if locations:
        document["locationComponent"] = locations
    if resources:
        document["emergencyResourceComponent"] = resources
    document["@context"] = {"@vocab": CONTEXT_VOCAB}
    return document
