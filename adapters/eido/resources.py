"""The team's unit on a call as an EIDO emergency resource (NENA-STA-021.1b
`EmergencyResourceType`), with the times of its statuses in a note: what Liaison maps to
which registry value, and why, is in docs/eido.md "The team's unit".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote

# EIDO-EmergencyResourceType-Common: a civilian crisis team is a crisis intervention unit.
RESOURCE_TYPE = "CrisisInterventionUnit"
# The team's flow (service/lifecycle/team.py) and when each status was first reached.
STEPS = (("assigned", "assigned"), ("en_route", "en route"), ("on_scene", "on scene"),
         ("backup_requested", "backup requested"), ("cleared", "cleared"))


def unit_status(call: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The unit's EIDO-PrimaryUnitStatus-Common and EIDO-SecondaryUnitStatus-Common
    values for the team's status on the call. Backup requested is no unit status of the
    registry: the unit is where it was (on scene, or still en route); the request itself
    is the decision it made and the local status (`unitStatusInternal`)."""
    status = call.get("team_status")
    if status == "cleared":
        return "Available", ["Cleared"]
    if status == "backup_requested":
        return "NotAvailable", ["OnScene" if call.get("on_scene_at") else "EnRoute"]
    return "NotAvailable", [{"assigned": "Assigned", "en_route": "EnRoute",
                             "on_scene": "OnScene"}[str(status)]]


def unit_id(unit: str, agency_id: str) -> str:
    """The resource's `$id`: the unit at Liaison's agency (NENA's `unit@agencyId` form),
    the same in every EIDO of the incident."""
    return f"{quote(unit, safe='')}@{agency_id}"


def _history_html(unit: str, call: Mapping[str, Any]) -> str:
    steps = "".join(
        f'<li>{label} <time datetime="{escape(call[key + "_at"])}">'
        f"{escape(call[key + '_at'])}</time></li>"
        for key, label in STEPS if call.get(key + "_at"))
    head = f"<p>CALL team unit {escape(unit)}: {escape(str(call.get('team_status')))}"
    if call.get("team_status") == "cleared" and call.get("disposition"):
        head += f" ({escape(str(call['disposition']).replace('_', ' '))})"
    return f"{head}.</p><ul>{steps}</ul>"


def team_resources(call: Mapping[str, Any], decision: Mapping[str, Any], *, agency_id: str,
                   prologue: Callable[[str, str], dict[str, Any]],
                   note_id: str, at: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The call's team unit as `emergencyResourceComponent` entries and the note with its
    status times, or nothing while no unit is named (or the team has no status)."""
    unit, status = call.get("unit"), call.get("team_status")
    if not unit or not status:
        return [], []
    primary, secondary = unit_status(call)
    note = {**prologue(note_id, at), "notesActionComments": _history_html(unit, call)}
    resource: dict[str, Any] = {
        **prologue(unit_id(unit, agency_id), at),
        "emergencyResourceTypeCommonRegistryText": RESOURCE_TYPE,
        "emergencyResourceName": unit,
        "primaryUnitStatusRegistryText": primary,
        "secondaryUnitStatusRegistryText": secondary,
        "unitStatusInternal": [status],
        # Required members Liaison has nothing true to put in: no attribute of the
        # registry is known of the unit, and its members are not agents of the incident.
        "resourceAttributeRegistryText": [],
        "agentReference": [],
        "notesReference": [{"$ref": note_id}],
    }
    program = (decision.get("program") or {}).get("id")
    if program:
        resource["emergencyResourceTypeInternalText"] = str(program)
    return [resource], [note]
