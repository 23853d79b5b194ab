"""Read a NENA Emergency Incident Data Object (EIDO, NENA-STA-021.1b) into a CallEvent.

An EIDO is the incident's full current state: keyed on its `$id`, it becomes a `created`,
`updated` (every field set) or `closed` event whose id is the hash of the document, so the
same document sent again is a retry. What is refused, what lenient mode accepts with a
warning, and how each member maps onto the call: docs/eido.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from pydantic import ValidationError

from adapters.eido.mapping import CODE_PATTERN, Mapping
from adapters.eido.pidf import PidfLocation, read_pidf
from adapters.eido.text import html_to_text
from service.calls.event import CallEvent, Location, in_range

EIDO_VERSION = "1.0"
CONTEXT_VOCAB = "./JSON-LD_Contexts/EmergencyIncidentDataObjectType.jsonld"
INCIDENT_STATUSES = ("Active", "Cancelled", "Closed", "FireUnderControl", "NewLocation",
                     "ReOpened", "ResourcesAssigned", "ResourcesEnroute", "ResourcesOnscene",
                     "StructureCleared")
CLOSING_STATUSES = frozenset({"Closed", "Cancelled"})
# The EIDO-LocationType registry, in the order Liaison prefers a location for routing.
LOCATION_TYPES = ("CurrentIncident", "InitialIncident", "Investigation", "Caller",
                  "RoutingLocation", "Other", "TowerLocation", "Staging", "UnitLocation")
DIRECTIONS = ("incoming", "outgoing", "internal")
NO_TYPE_CODE = "TROUBLE"
NO_TYPE_TEXT = "Unknown Type Trouble (the EIDO has no incident type yet)"
MAX_INCIDENT_ID = 120
MAX_NARRATIVE = 20_000

PROLOGUE = ("$id", "lastUpdateTimeStamp", "updatedByAgencyReference", "updatedByAgentReference",
            "AlternateValueReferences", "externalInformationSourceReferences",
            "mediaReferences")
_DRAFT_PROLOGUE = {"OwningAgencyIdentifier": "updatedByAgencyReference",
                   "UpdatedByAgentIdentifier": "updatedByAgentReference"}


@dataclass(frozen=True)
class ComponentType:
    members: tuple[str, ...]
    required: tuple[str, ...] = ()
    string_arrays: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    read: bool = False  # Liaison routes on it, so its faults are errors in every mode


# The members of each component type: NENA-STA-021.1b plus the 021.1.1 draft's additions.
COMPONENTS: dict[str, ComponentType] = {
    "incidentComponent": ComponentType(
        members=("incidentTypeInternalCode", "incidentTypeInternalText",
                 "incidentTypeCommonRegistryText", "incidentStatusInternalText",
                 "incidentStatusCommonRegistryText", "internalIncidentId", "agentReference",
                 "locationReference", "personReference", "organizationReference",
                 "vehicleReference", "documentIdentification", "reportNumberType",
                 "incidentPriorityInternalText", "incidentCommonPriorityNumber",
                 "beatOrDispatchGroupText", "dispositionComponent", "notesReference"),
        required=("incidentTypeCommonRegistryText",),
        string_arrays=("incidentStatusInternalText", "incidentStatusCommonRegistryText",
                       "documentIdentification"),
        read=True),
    "callComponent": ComponentType(
        members=("relatedCallIdentifier", "queueIdentifier", "standardPrimaryCallType",
                 "standardSecondaryCallType", "localCallType", "direction",
                 "priorityIdentifier", "additionalDataReference", "callStartTimestamp",
                 "answerDate", "callStateRegistryText", "agentReference", "callBackReference",
                 "verstat", "sipIdentity", "locationReference", "notesReference",
                 "personReference", "organizationReference", "agencyReference"),
        required=("callStateRegistryText", "standardPrimaryCallType", "direction",
                  "callStartTimestamp"),
        string_arrays=("relatedCallIdentifier",),
        dates=("callStartTimestamp", "answerDate"),
        read=True),
    "locationComponent": ComponentType(
        members=("locationTypeDescriptionRegistryText", "locationByValue",
                 "locationByReferenceUrl", "locationDereferencedFromReference",
                 "locationDescriptionText", "crossStreetByValue", "crossStreetByReferenceUrl",
                 "intersectingStreetByValue", "intersectingStreetByReferenceUrl",
                 "cellTowerSectorId", "additionalDataReference", "localIdentifier",
                 "notesReference"),
        required=("locationTypeDescriptionRegistryText",),
        string_arrays=("crossStreetByValue", "crossStreetByReferenceUrl",
                       "intersectingStreetByValue", "intersectingStreetByReferenceUrl",
                       "localIdentifier"),
        read=True),
    "notesComponent": ComponentType(
        members=("notesActionComments", "agentReference", "cautionReference"),
        required=("notesActionComments",),
        read=True),
    "agencyComponent": ComponentType(
        members=("agencyJcard", "agencyRoleDescriptionRegistryText", "agencyType",
                 "notesReference", "incidentOwningAgencyIndicator",
                 "actingOnBehalfOfAgencyReference", "agencyCallLegState"),
        required=("agencyRoleDescriptionRegistryText", "agencyType"),
        string_arrays=("agencyRoleDescriptionRegistryText", "agencyType")),
    "agentComponent": ComponentType(
        members=("agentJcard", "agentWorkstationPositionIdentification",
                 "agentRoleRegistryText", "agencyReference", "notesReference",
                 "agentCallLegState"),
        required=("agentRoleRegistryText", "agencyReference"),
        string_arrays=("agentRoleRegistryText",)),
    "callbackComponent": ComponentType(
        members=("callBackInformationUri", "deviceContactHeader", "updatedCbn"),
        string_arrays=("callBackInformationUri",)),
    "dispatchComponent": ComponentType(
        members=("agencyReference", "agentReference", "emergencyResourceReference",
                 "notesReference")),
    "emergencyResourceComponent": ComponentType(
        members=("emergencyResourceTypeCommonRegistryText", "emergencyResourceTypeInternalText",
                 "resourceAttributeRegistryText", "resourceAttributeInternalText",
                 "emergencyResourceName", "primaryUnitStatusRegistryText",
                 "secondaryUnitStatusRegistryText", "notesReference", "unitStatusInternal",
                 "agentReference", "unitLocationReference", "unitDestinationReference", "eta",
                 "personReference", "vehicleReference", "itemReference", "activeOnIncidentId",
                 "stackedOnIncidentId"),
        required=("agentReference", "emergencyResourceTypeCommonRegistryText",
                  "primaryUnitStatusRegistryText", "resourceAttributeRegistryText",
                  "secondaryUnitStatusRegistryText"),
        string_arrays=("resourceAttributeRegistryText", "resourceAttributeInternalText",
                       "secondaryUnitStatusRegistryText", "unitStatusInternal",
                       "stackedOnIncidentId"),
        dates=("eta",)),
    "alarmsSensorsComponent": ComponentType(
        members=("csaaAlarmInformation", "alarmUrl", "agentReference", "notesReference")),
    "additionalDataComponent": ComponentType(
        members=("additionalDataByReferenceUrl", "additionalDataByValue",
                 "additionalDataDereferencedFromReference", "urlPurpose", "notesReference",
                 "cautionReference")),
    "personComponent": ComponentType(
        members=("ncPersonComponent", "personIncidentRoleRegistryText", "callIdentifier",
                 "locationReference", "destinationReference", "eta", "notesReference",
                 "additionalDataReference", "callBackReference", "personCallLegState",
                 "itemReference"),
        required=("personIncidentRoleRegistryText",),
        string_arrays=("personIncidentRoleRegistryText", "callIdentifier"),
        dates=("eta",)),
    "vehicleComponent": ComponentType(
        members=("ncVehicleComponent", "vehicleRelationshipType", "vehicleRelationshipTimeStamp",
                 "additionalDataReference", "locationReference", "destinationReference", "eta",
                 "notesReference", "jCommercialVehicleComponent", "itemReference"),
        required=("vehicleRelationshipType", "vehicleRelationshipTimeStamp"),
        string_arrays=("vehicleRelationshipType",),
        dates=("vehicleRelationshipTimeStamp", "eta")),
    "mergeComponent": ComponentType(
        members=("incidentTrackingIdentifier", "incidentMergeDirectionCode"),
        required=("incidentMergeDirectionCode", "incidentTrackingIdentifier")),
    "linkComponent": ComponentType(
        members=("incidentTrackingIdentifier", "transactionReasonText", "involvedAgencyReference",
                 "linkDirectionCode"),
        required=("incidentTrackingIdentifier", "linkDirectionCode")),
    "cautionComponent": ComponentType(
        members=("cautionTypeInternalText", "cautionTypeCommonRegistryText",
                 "cautionTypeCommonSubRegistryText", "cautionSeverity", "cautionSource",
                 "startDate"),
        required=("cautionTypeInternalText", "cautionTypeCommonRegistryText", "cautionSeverity"),
        string_arrays=("cautionTypeCommonSubRegistryText",),
        dates=("startDate",)),
    "mediaComponent": ComponentType(members=("uri", "contentType", "label"),
                                    required=("uri", "contentType")),
    "sharedCommunicationResourceComponent": ComponentType(
        members=("sharedCommunicationResourceType", "sharedCommunicationResourceByReferenceUrl",
                 "sharedCommunicationResourceByValue", "connectedSharedCommunicationResources",
                 "notesReference"),
        required=("sharedCommunicationResourceType",)),
    "externalInformationSourceComponent": ComponentType(
        members=("externalSourceRegistryText", "externalSourceAcessString"),
        required=("externalSourceRegistryText",)),
}
DISPOSITION = ComponentType(
    members=("dispositionCommonRegistryCode", "dispositionPrimaryIndicator",
             "dispositionCategoryText", "dispositionDescriptionText", "notesReference"),
    required=("dispositionCommonRegistryCode",))
TOP_MEMBERS = ("eidoVersion", "eidoExtensionId", "issuingElementIdentification", "@context",
               *COMPONENTS)

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")
_OUTSIDE_INCIDENT = re.compile(r"^urn:emergency:uid:incidentid:0:", re.IGNORECASE)


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a document: where, and why."""

    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


def _holds_nul(document: Any) -> bool:
    """Any key or string value anywhere in the document holds a NUL (no recursion: a
    document may nest as deep as the JSON parser allows)."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


class EidoRejected(Exception):
    """A document Liaison will not take; every error is named, with the warnings beside."""

    def __init__(self, errors: list[Issue], warnings: list[Issue]) -> None:
        self.errors = errors
        self.warnings = warnings
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))


@dataclass
class ParsedEido:
    """What one EIDO says about its incident, ready to become a CallEvent."""

    event_id: str
    incident_id: str
    occurred_at: datetime
    closed: bool
    has_incident: bool
    nature_code: str | None
    nature_text: str | None
    priority: int | None
    flags: list[str]
    channel: str | None
    narrative: str | None
    location: Location | None
    warnings: list[Issue] = field(default_factory=list)
    # The $ids of its agency components, in document order: one naming a Liaison agency
    # says whose call it is (issue 17; adapters/eido/ingest.py).
    agency_ids: list[str] = field(default_factory=list)

    def event(self, *, known: bool, agency: str | None = None) -> CallEvent:
        """The CallEvent: `known` says whether Liaison already has a call for the incident."""
        fields: dict[str, Any] = {
            "event_id": self.event_id, "incident_id": self.incident_id,
            "type": "closed" if self.closed else ("updated" if known else "created"),
            "occurred_at": self.occurred_at, "narrative": self.narrative,
        }
        if self.has_incident:
            fields.update(nature_code=self.nature_code, nature_text=self.nature_text,
                          priority=self.priority, flags=self.flags)
        elif not known:
            fields.update(nature_code=NO_TYPE_CODE, nature_text=NO_TYPE_TEXT, flags=[])
        if self.channel is not None:
            fields["channel"] = self.channel
        elif not known:
            fields["channel"] = "911"
        if self.location is not None:
            fields["location"] = self.location
        if agency is not None:
            fields["agency"] = agency
        try:
            return CallEvent.model_validate(fields)
        except ValidationError as exc:  # the reader keeps every field in range; a safety net
            raise EidoRejected([Issue(".".join(map(str, e["loc"])), e["msg"])
                                for e in exc.errors()], self.warnings) from exc


def document_event_id(document: Any) -> str:
    """The same document always gives the same event id, whatever its key order."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "eido:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def parse_eido(document: Any, *, mapping: Mapping, strict: bool = False,
               default_tz: tzinfo = UTC) -> ParsedEido:
    """Check an EIDO against the conformance policy and read it; raise EidoRejected."""
    return _Reader(strict=strict, tz=default_tz, mapping=mapping).read(document)


def parse_datetime(value: str, tz: tzinfo) -> datetime | None:
    """An RFC 3339 date-time; one without an offset is read in `tz`. None if malformed."""
    if not _DATE_TIME.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.upper().replace(" ", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


@dataclass
class _Component:
    path: str
    kind: ComponentType
    body: dict[str, Any]


class _Reader:
    def __init__(self, *, strict: bool, tz: tzinfo, mapping: Mapping) -> None:
        self.strict = strict
        self.tz = tz
        self.mapping = mapping
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.tz_name = getattr(tz, "key", None) or str(tz)

    # --- recording ----------------------------------------------------------------------

    def error(self, where: str, reason: str) -> None:
        self.errors.append(Issue(where or "(document)", reason))

    def note(self, where: str, reason: str) -> None:
        self.warnings.append(Issue(where or "(document)", reason))

    def deviation(self, where: str, reason: str) -> None:
        (self.error if self.strict else self.note)(where, reason)

    def fault(self, where: str, reason: str, read: bool) -> None:
        (self.error if read else self.deviation)(where, reason)

    # --- shape --------------------------------------------------------------------------

    def names(self, obj: dict[str, Any], path: str, known: Iterable[str]) -> dict[str, Any]:
        """Members under their standard names: mis-cased and 2020-draft names repaired."""
        known_set = set(known)
        by_lower = {k.lower(): k for k in known_set}
        out = {k: v for k, v in obj.items() if k in known_set}
        for key, value in obj.items():
            if key in known_set:
                continue
            where = _join(path, key)
            proper = by_lower.get(key.lower())
            draft = _DRAFT_PROLOGUE.get(key)
            if proper is not None:
                if proper in out:
                    self.deviation(where, f"a mis-cased second {proper}; ignored")
                else:
                    self.deviation(where, f"the member is named {proper}: EIDO member names "
                                          "are case-sensitive")
                    out[proper] = value
            elif draft is not None:
                if draft in out:
                    self.deviation(where, f"the 2020 pre-standard draft's name beside {draft}; "
                                          "ignored")
                else:
                    self.deviation(where, f"the 2020 pre-standard draft's name; NENA-STA-021.1b "
                                          f"has {draft}: {{\"$ref\": <id>}}")
                    out[draft] = {"$ref": value} if isinstance(value, str) else value
            else:
                self.note(where, "not a member of an EIDO (NENA-STA-021.1b); ignored")
        return out

    def check_datetime(self, obj: dict[str, Any], key: str, path: str,
                       read: bool) -> datetime | None:
        value = obj.get(key)
        where = _join(path, key)
        if not isinstance(value, str):
            self.fault(where, f"must be an RFC 3339 date-time string, not {_type_name(value)}",
                       read)
            return None
        parsed = parse_datetime(value, self.tz)
        if parsed is None:
            self.fault(where, f"'{value[:60]}' is not an RFC 3339 date-time", read)
            return None
        if not re.search(r"([Zz]|[+-]\d{2}:\d{2})$", value):
            self.deviation(where, f"'{value}' has no UTC offset; read as {self.tz_name} time")
        if (why := in_range(parsed)) is not None:  # year 1, 9999: the generic contract's range
            self.fault(where, f"'{value[:60]}' {why}", read)
            return None
        return parsed

    def check_reference(self, value: Any, where: str, read: bool) -> list[str]:
        """The $ids a reference member points to; a member that is no reference is a fault."""
        items = value if isinstance(value, list) else [value]
        targets = []
        for i, item in enumerate(items):
            here = _join(where, i) if isinstance(value, list) else where
            if isinstance(item, dict) and isinstance(item.get("$ref"), str) and item["$ref"]:
                targets.append(item["$ref"])
            else:
                self.fault(here, 'must be a reference {"$ref": "<$id of a component>"}', read)
        return targets

    def prologue(self, obj: dict[str, Any], path: str, read: bool) -> None:
        if not (isinstance(obj.get("$id"), str) and obj["$id"].strip()):
            reason = ("required: the component's $id" if "$id" not in obj
                      else f"must be a non-empty string, not {_type_name(obj['$id'])}")
            self.fault(_join(path, "$id"), reason, read)
        if "lastUpdateTimeStamp" not in obj:
            self.fault(_join(path, "lastUpdateTimeStamp"),
                       "required: when the component last changed (RFC 3339)", read)
        else:
            self.check_datetime(obj, "lastUpdateTimeStamp", path, read)
        if "updatedByAgencyReference" not in obj:
            self.fault(_join(path, "updatedByAgencyReference"),
                       'required: {"$ref": <id of the agency that last changed it>}', read)

    def component(self, obj: Any, path: str, kind: ComponentType) -> _Component | None:
        if not isinstance(obj, dict):
            self.fault(path, f"a component must be a JSON object, not {_type_name(obj)}",
                       kind.read)
            return None
        body = self.names(obj, path, PROLOGUE + kind.members)
        self.prologue(body, path, kind.read)
        for name in kind.required:
            if name not in body:
                self.fault(_join(path, name), "required by NENA-STA-021.1b", kind.read)
        for name in kind.string_arrays:
            if name not in body:
                continue
            value = body[name]
            if isinstance(value, str):
                self.deviation(_join(path, name), "a single string where NENA-STA-021.1b has "
                                                  "an array of strings")
                body[name] = [value]
            elif not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
                self.fault(_join(path, name),
                           f"must be an array of strings, not {_type_name(value)}", kind.read)
        for name in kind.dates:
            if name in body:
                self.check_datetime(body, name, path, kind.read)
        if "dispositionComponent" in body:
            items = body["dispositionComponent"]
            if isinstance(items, list):
                body["dispositionComponent"] = [
                    c.body for i, item in enumerate(items)
                    if (c := self.component(item, _join(_join(path, "dispositionComponent"), i),
                                            DISPOSITION)) is not None]
            else:
                self.fault(_join(path, "dispositionComponent"), "must be an array", False)
        return _Component(path, kind, body)

    def string(self, comp: _Component, key: str) -> str | None:
        value = comp.body.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fault(_join(comp.path, key), f"must be a string, not {_type_name(value)}",
                       comp.kind.read)
            return None
        return value if value.strip() else None

    def registry(self, value: str, allowed: tuple[str, ...], where: str,
                 registry: str, read: bool, *, unknown: str = "") -> str | None:
        """The registry's spelling of `value`, or None. `read`: routing uses the member,
        so a value outside the registry is an error in every mode; `unknown` says what
        becomes of such a value where it is only a deviation."""
        if value in allowed:
            return value
        proper = next((a for a in allowed if a.lower() == value.lower()), None)
        if proper is not None:
            self.deviation(where, f"'{value}' is the {registry} registry's '{proper}' in the "
                                  "wrong case")
            return proper
        self.fault(where, f"'{value[:80]}' is not in the {registry} registry "
                          f"({', '.join(allowed)}){unknown}", read)
        return None

    # --- the document -------------------------------------------------------------------

    def top_level(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        if "locationInformationComponent" in doc:
            value = doc.pop("locationInformationComponent")
            if "locationComponent" in doc:
                self.deviation("locationInformationComponent",
                               "the 2020 pre-standard draft's name beside locationComponent; "
                               "ignored")
            else:
                self.deviation("locationInformationComponent",
                               "the 2020 pre-standard draft's name for locationComponent")
                doc["locationComponent"] = value
        if "incidentTrackingIdentifier" in doc:
            value = doc.pop("incidentTrackingIdentifier")
            self.deviation("incidentTrackingIdentifier",
                           "the 2020 pre-standard draft's member; in NENA-STA-021.1b the "
                           "incident tracking identifier is the EIDO's $id")
            if isinstance(value, str) and value.strip():
                doc["$id"] = value
        doc = self.names(doc, "", PROLOGUE + TOP_MEMBERS)
        incident = doc.get("incidentComponent")
        if isinstance(incident, list):
            if len(incident) == 1:
                self.deviation("incidentComponent",
                               "an array of one incident; NENA-STA-021.1b has a single object "
                               "(the 2020 pre-standard draft used an array)")
                doc["incidentComponent"] = incident[0]
            elif not incident:
                self.deviation("incidentComponent",
                               "an empty array; NENA-STA-021.1b has a single object or none")
                del doc["incidentComponent"]
            else:
                self.error("incidentComponent",
                           f"{len(incident)} incidents in one EIDO: an EIDO describes one "
                           "incident, a single object")
                del doc["incidentComponent"]
        return doc

    def read(self, document: Any) -> ParsedEido:
        if not isinstance(document, dict):
            self.error("", f"an EIDO is a JSON object, not {_type_name(document)}")
            raise EidoRejected(self.errors, self.warnings)
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            # JSON can escape half a UTF-16 pair ("\ud800"); no database stores that as text.
            self.error("", "a string holds an unpaired UTF-16 surrogate, which is not text")
            raise EidoRejected(self.errors, self.warnings) from None
        if _holds_nul(document):
            # JSON can escape a NUL ("\u0000"); PostgreSQL text cannot hold one.
            self.error("", "a string holds a NUL character (\\u0000), which is not text")
            raise EidoRejected(self.errors, self.warnings)
        event_id = document_event_id(document)
        doc = self.top_level(document)

        incident_id = doc.get("$id")
        if not (isinstance(incident_id, str) and incident_id.strip()):
            self.error("$id", "required: the Incident Tracking Identifier "
                              "(urn:emergency:uid:incidentid:<unique>:<agency id>)")
            incident_id = None
        version = doc.get("eidoVersion")
        if version != EIDO_VERSION:
            self.error("eidoVersion", "required: \"1.0\"" if version is None
                       else f"{json.dumps(version)[:40]} is not \"1.0\"")
        issuer = doc.get("issuingElementIdentification")
        if not (isinstance(issuer, str) and issuer.strip()):
            self.error("issuingElementIdentification",
                       "required: the functional element that created the EIDO")
        occurred_at = None
        if "lastUpdateTimeStamp" not in doc:
            self.error("lastUpdateTimeStamp", "required: when the incident last changed "
                                              "(RFC 3339 with offset)")
        else:
            occurred_at = self.check_datetime(doc, "lastUpdateTimeStamp", "", True)
        if "updatedByAgencyReference" not in doc:
            self.error("updatedByAgencyReference",
                       'required: {"$ref": <id of the agency that last changed it>}')
        agencies = doc.get("agencyComponent")
        if not (isinstance(agencies, list) and agencies):
            self.error("agencyComponent", "required: at least one agency, including the one "
                                          "that created the EIDO")
        context = doc.get("@context")
        if context is not None and not (isinstance(context, dict)
                                        and context.get("@vocab", CONTEXT_VOCAB) == CONTEXT_VOCAB):
            self.deviation("@context", f'must be {{"@vocab": "{CONTEXT_VOCAB}"}} when given')
        if "eidoExtensionId" in doc and not (
                isinstance(doc["eidoExtensionId"], list)
                and all(isinstance(x, str) for x in doc["eidoExtensionId"])):
            self.error("eidoExtensionId", "must be an array of strings")

        components: list[_Component] = []
        if doc.get("incidentComponent") is not None:
            c = self.component(doc["incidentComponent"], "incidentComponent",
                               COMPONENTS["incidentComponent"])
            if c is not None:
                components.append(c)
        for name, kind in COMPONENTS.items():
            if name == "incidentComponent" or doc.get(name) is None:
                continue
            items = doc[name]
            if not isinstance(items, list):
                self.fault(name, f"must be an array of components, not {_type_name(items)}",
                           kind.read)
                continue
            for i, item in enumerate(items):
                c = self.component(item, _join(name, i), kind)
                if c is not None:
                    components.append(c)

        self.check_graph(doc, components)
        incident = next((c for c in components if c.path == "incidentComponent"), None)
        facts = self.incident_facts(incident)
        locations = [c for c in components if c.path.startswith("locationComponent[")]
        location = self.location(locations, incident, facts.pop("district"))
        narrative = self.narrative([c for c in components
                                    if c.path.startswith("notesComponent[")])
        channel = self.channel([c for c in components if c.path.startswith("callComponent[")],
                               facts["entry_channel"])
        incident_id = self.call_key(incident_id, components)

        if self.errors or incident_id is None or occurred_at is None:
            raise EidoRejected(self.errors, self.warnings)
        return ParsedEido(
            event_id=event_id, incident_id=incident_id, occurred_at=occurred_at,
            closed=facts["closed"], has_incident=incident is not None,
            nature_code=facts["code"], nature_text=facts["text"], priority=facts["priority"],
            flags=facts["flags"], channel=channel, narrative=narrative, location=location,
            warnings=self.warnings,
            agency_ids=[c.body["$id"] for c in components
                        if c.path.startswith("agencyComponent[")
                        and isinstance(c.body.get("$id"), str)])

    def check_graph(self, doc: dict[str, Any], components: list[_Component]) -> None:
        """Every $id once; every $ref resolved through the index of components by $id."""
        index: dict[str, _Component] = {}
        for c in components:
            cid = c.body.get("$id")
            if not isinstance(cid, str):
                continue
            if cid in index:
                first = index[cid]
                self.fault(_join(c.path, "$id"), f"'{cid}' is also the $id of {first.path}: "
                                                 "references to it would be ambiguous",
                           c.kind.read or first.kind.read)
            else:
                index[cid] = c
        known = set(index) | {doc["$id"]} if isinstance(doc.get("$id"), str) else set(index)
        dangling: dict[str, list[str]] = {}
        owners: list[tuple[str, dict[str, Any], bool]] = [("", doc, True)]
        owners += [(c.path, c.body, c.kind.read) for c in components]
        for path, body, read in owners:
            for where, value in _reference_members(body, path):
                for target in self.check_reference(value, where, read):
                    if target not in known:
                        dangling.setdefault(target, []).append(where)
        for target, places in dangling.items():
            more = f" (and {len(places) - 1} more places)" if len(places) > 1 else ""
            self.deviation(places[0], f"refers to '{target}', which this EIDO does not "
                                      f"include{more}")

    def incident_facts(self, incident: _Component | None) -> dict[str, Any]:
        facts: dict[str, Any] = {"code": None, "text": None, "priority": None, "flags": [],
                                 "closed": False, "district": None, "entry_channel": None}
        if incident is None:
            return facts
        body, path = incident.body, incident.path
        code = self.string(incident, "incidentTypeCommonRegistryText")
        entry = None
        if code is not None:
            if CODE_PATTERN.match(code):
                facts["code"] = code
                entry = self.mapping.incident_type(code)
            elif CODE_PATTERN.match(code.upper()) and code.upper() in self.mapping.incident_types:
                self.deviation(_join(path, "incidentTypeCommonRegistryText"),
                               f"'{code}' is the common incident type {code.upper()} in the "
                               "wrong case")
                facts["code"] = code.upper()
                entry = self.mapping.incident_type(code.upper())
            else:
                self.error(_join(path, "incidentTypeCommonRegistryText"),
                           f"'{code[:80]}' is not a common incident type code (the "
                           "EIDO-IncidentType-Common registry: APCO ANS 2.103.2 codes such as "
                           "MNTL, WELFARE, ASSAULT)")
        internal_text = self.string(incident, "incidentTypeInternalText")
        internal_code = self.string(incident, "incidentTypeInternalCode")
        text = internal_text or (entry.description if entry else None) or facts["code"]
        if text and internal_code and internal_code not in text:
            text = f"{text} [{internal_code}]"
        facts["text"] = text[:500] if text else None
        if entry is not None:
            facts["flags"] = sorted(entry.flags)
            facts["entry_channel"] = entry.channel
        number = body.get("incidentCommonPriorityNumber")
        if number is not None:
            if isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= 10:
                facts["priority"] = 11 - number
            else:
                self.error(_join(path, "incidentCommonPriorityNumber"),
                           f"{json.dumps(number)[:40]} is not an integer from 0 to 10 "
                           "(10 the highest priority)")
        statuses = body.get("incidentStatusCommonRegistryText")
        if isinstance(statuses, list):
            found = set()
            where = _join(path, "incidentStatusCommonRegistryText")
            for i, value in enumerate(statuses):
                if isinstance(value, str):
                    status = self.registry(value, INCIDENT_STATUSES, _join(where, i),
                                           "EIDO-IncidentStatus-Common", True)
                    if status:
                        found.add(status)
            facts["closed"] = bool(found & CLOSING_STATUSES) and "ReOpened" not in found
        beat = self.string(incident, "beatOrDispatchGroupText")
        facts["district"] = beat[:120] if beat else None
        return facts

    def location(self, locations: list[_Component], incident: _Component | None,
                 district: str | None) -> Location | None:
        refs = incident.body.get("locationReference") if incident is not None else None
        own = {r.get("$ref") for r in (refs if isinstance(refs, list) else [refs])
               if isinstance(r, dict)}
        ranked = []
        for order, comp in enumerate(locations):
            kind = self.string(comp, "locationTypeDescriptionRegistryText")
            if kind is not None:
                # The type only ranks the locations; routing reads none of it.
                kind = self.registry(kind, LOCATION_TYPES,
                                     _join(comp.path, "locationTypeDescriptionRegistryText"),
                                     "EIDO-LocationType", False,
                                     unknown="; read as a location of no known type, "
                                             "ranked after the registry's types")
            rank = LOCATION_TYPES.index(kind) if kind else len(LOCATION_TYPES)
            ranked.append(((comp.body.get("$id") not in own, rank, order), kind, comp))
        ranked.sort(key=lambda r: r[0])
        by_reference: list[str] = []
        chosen = None
        for _, kind, comp in ranked:
            value = self.string(comp, "locationByValue")
            url = self.string(comp, "locationByReferenceUrl")
            described = self.string(comp, "locationDescriptionText")
            pidf = read_pidf(value) if value is not None else PidfLocation()
            for problem in pidf.problems:
                self.deviation(_join(comp.path, "locationByValue"),
                               f"not read as a location: {problem}")
            if pidf.address is None and described is not None:
                # CADs put the address line here when they send no civic address.
                pidf.address = " ".join(described.split())
            if pidf.address is not None or pidf.lat is not None:
                chosen = pidf
                break
            if url is not None and not by_reference:
                by_reference.append(f"{kind or 'Other'} location by reference: {url}")
        address = chosen.address if chosen else None
        if by_reference:
            address = f"{address} ({by_reference[0]})" if address else by_reference[0]
        if address is None and chosen is None and district is None:
            return None
        return Location(address=address[:500] if address else None, district=district,
                        lat=chosen.lat if chosen else None, lon=chosen.lon if chosen else None)

    def narrative(self, notes: list[_Component]) -> str | None:
        dated = []
        for order, comp in enumerate(notes):
            html = self.string(comp, "notesActionComments")
            if html is None:
                continue
            stamp = comp.body.get("lastUpdateTimeStamp")
            when = parse_datetime(stamp, self.tz) if isinstance(stamp, str) else None
            text = html_to_text(html)
            if text:
                dated.append((when or datetime.min.replace(tzinfo=UTC), order, text))
        if not dated:
            return None
        dated.sort(key=lambda d: (d[0], d[1]))
        narrative = "\n".join(text for _, _, text in dated)
        if len(narrative) > MAX_NARRATIVE:
            self.note("notesComponent", f"the notes come to {len(narrative)} characters; "
                                        f"the oldest are cut to keep the last {MAX_NARRATIVE}")
            narrative = "…" + narrative[-(MAX_NARRATIVE - 1):]
        return narrative

    def channel(self, calls: list[_Component], entry_channel: str | None) -> str | None:
        found = []
        for comp in calls:
            call_type = self.string(comp, "standardPrimaryCallType")
            direction = self.string(comp, "direction")
            if direction is not None and direction not in DIRECTIONS:
                self.error(_join(comp.path, "direction"),
                           f"'{direction[:40]}' is not one of {', '.join(DIRECTIONS)}")
            for key in ("callStateRegistryText", "queueIdentifier", "localCallType"):
                self.string(comp, key)
            if call_type is not None:
                mapped = self.mapping.channel_for_call_type(call_type)
                if mapped is not None:
                    found.append(mapped)
        if "911" in found:
            return "911"
        if found:
            return found[0]
        return entry_channel

    def call_key(self, incident_id: str | None, components: list[_Component]) -> str | None:
        if incident_id is None:
            return None
        if _OUTSIDE_INCIDENT.match(incident_id):
            call = next((c.body.get("$id") for c in components
                         if c.path.startswith("callComponent[")
                         and isinstance(c.body.get("$id"), str)), None)
            if call:
                self.note("$id", "an EIDO sent outside any incident (unique string 0): "
                                 f"Liaison files it under its call, {call}")
                incident_id = call
            else:
                self.note("$id", "an EIDO sent outside any incident (unique string 0) and "
                                 "without a call: every such EIDO from this agency is filed "
                                 "under one call")
        if len(incident_id) > MAX_INCIDENT_ID:
            self.error("$id", f"{len(incident_id)} characters; Liaison keeps incident "
                              f"identifiers of up to {MAX_INCIDENT_ID}")
            return None
        return incident_id


def _reference_members(body: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """Members that hold references, in this body and the objects nested in it."""
    for key, value in body.items():
        where = _join(path, key)
        if key.endswith(("Reference", "References")) or key == \
                "connectedSharedCommunicationResources":
            yield where, value
        elif key == "dispositionComponent" and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _reference_members(item, _join(where, i))
