"""The EIDO reader, writer and mapping without a server: conformance policy, mapping onto
the call, PIDF-LO and notes, and the agreement of strict mode with NENA's schema."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from adapters.eido.emit import call_to_eido, eido_priority
from adapters.eido.mapping import (
    MappingCache,
    MappingInvalid,
    load_mapping,
    main,
    parse_mapping,
    shipped_text,
)
from adapters.eido.parse import (
    COMPONENTS,
    INCIDENT_STATUSES,
    LOCATION_TYPES,
    PROLOGUE,
    EidoRejected,
    Issue,
    ParsedEido,
    parse_eido,
)
from adapters.eido.pidf import read_pidf
from adapters.eido.text import html_to_text
from service.lifecycle.team import DISPOSITIONS
from tests.factories import eido, pidf, variant
from tests.shared_data import (
    DRAFT_2020,
    JCARD,
    SAMPLE,
    SAMPLE_2021,
    SCHEMA_021_1B,
    SCHEMA_HEAD,
    THIRD_PARTY,
    schema_errors,
    shared_eido,
    shared_json,
)

MAPPING = load_mapping()
NEW_YORK = ZoneInfo("America/New_York")


def read(doc: Any, *, strict: bool = False) -> ParsedEido:
    return parse_eido(doc, mapping=MAPPING, strict=strict, default_tz=NEW_YORK)


def refused(doc: Any, *, strict: bool = False) -> EidoRejected:
    with pytest.raises(EidoRejected) as info:
        read(doc, strict=strict)
    assert info.value.errors, "a refusal must name what is wrong"
    return info.value


def fields(issues: list[Issue]) -> set[str]:
    return {i.field for i in issues}


# --- mapping onto the call ---------------------------------------------------------------


def test_a_conformant_eido_becomes_a_created_event_with_every_field() -> None:
    parsed = read(eido(), strict=True)
    assert parsed.warnings == []
    ev = parsed.event(known=False)
    assert ev.type == "created"
    assert ev.incident_id == "urn:emergency:uid:incidentid:a1b2c3:psap.stpete.example"
    assert ev.event_id.startswith("eido:") and len(ev.event_id) == 5 + 64
    assert ev.occurred_at == datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    assert ev.nature_code == "MNTL"
    assert ev.nature_text == "Mental person non-violent [MH1]"  # the CAD's own code kept
    assert ev.priority == 6  # EIDO 5 of 0-10 (10 highest) -> 11 - 5
    assert ev.channel == "911"
    assert ev.narrative == "Caller says her brother is talking to himself, no weapons."
    assert ev.location is not None
    assert ev.location.address == "1300 1st Ave N, St. Petersburg, FL, US"
    assert (ev.location.lat, ev.location.lon, ev.location.district) == (27.7731, -82.6516, "D2")
    assert ev.flags == []


def test_a_known_incident_is_an_update_carrying_the_full_state() -> None:
    ev = read(eido(priority=None, notes=[])).event(known=True)
    assert ev.type == "updated"
    # Full state: what the EIDO no longer has is cleared, not left as it was.
    assert {"narrative", "priority", "flags", "nature_code", "nature_text", "channel",
            "location"} <= ev.model_fields_set
    assert ev.narrative is None and ev.priority is None


@pytest.mark.parametrize(("status", "closed"), [
    (["Closed"], True), (["Cancelled"], True), (["ResourcesOnscene"], False),
    (["Closed", "ReOpened"], False), (["Active"], False),
])
def test_closed_or_cancelled_closes_the_call(status: list[str], closed: bool) -> None:
    ev = read(eido(status=status), strict=True).event(known=True)
    assert (ev.type == "closed") is closed


@pytest.mark.parametrize(("number", "priority"), [(10, 1), (5, 6), (0, 11)])
def test_priority_mapping_and_its_inverse(number: int, priority: int) -> None:
    assert read(eido(priority=number)).priority == priority
    assert eido_priority(priority) == number


def test_flags_and_descriptions_come_from_the_mapping_file() -> None:
    mtlv = read(eido(code="MTLV", internal_text=None, internal_code="")).event(known=False)
    assert mtlv.flags == ["violence"]
    assert mtlv.nature_text == "Mental Person Violent"  # the mapping's registry wording
    assert read(eido(code="SHOOT")).flags == ["injury", "violence", "weapon"]
    assert read(eido(code="OD")).flags == ["medical"]
    # A code the mapping does not list is accepted, without flags, under its own text.
    other = read(eido(code="ZZTOP", internal_text=None, internal_code=""))
    assert (other.nature_code, other.nature_text, other.flags) == ("ZZTOP", "ZZTOP", [])


def test_channel_from_the_call_type_then_the_incident_type() -> None:
    assert read(eido(call_type="nonEmergency")).channel == "non_emergency"
    assert read(eido(call_type="emergency", code="NONEMERG")).channel == "911"
    assert read(eido(call_type=None, code="NONEMERG")).channel == "non_emergency"
    assert read(eido(call_type=None)).channel is None
    assert read(eido(call_type=None)).event(known=False).channel == "911"


def test_same_document_same_event_id_whatever_the_key_order() -> None:
    doc = eido()
    reordered = dict(reversed(list(doc.items())))
    assert read(doc).event_id == read(reordered).event_id
    assert read(doc).event_id != read(eido(priority=4)).event_id


def test_notes_are_plain_text_oldest_first_without_script() -> None:
    doc = eido(notes=["<p>second</p>", "<p>first &amp; <b>bold</b></p><script>steal()</script>"])
    doc["notesComponent"][0]["lastUpdateTimeStamp"] = "2026-03-10T14:05:00-04:00"
    assert read(doc).narrative == "first & bold\nsecond"


def test_incident_locations_win_and_a_better_one_by_reference_is_recorded() -> None:
    doc = eido()
    doc["locationComponent"].insert(0, {
        **{k: doc["locationComponent"][0][k] for k in ("lastUpdateTimeStamp",
                                                        "updatedByAgencyReference")},
        "$id": "loc-ref", "locationTypeDescriptionRegistryText": "CurrentIncident",
        "locationByReferenceUrl": "https://lrf.example/abc"})
    doc["incidentComponent"]["locationReference"].insert(0, {"$ref": "loc-ref"})
    loc = read(doc, strict=True).location
    assert loc is not None and loc.address == (
        "1300 1st Ave N, St. Petersburg, FL, US "
        "(CurrentIncident location by reference: https://lrf.example/abc)")
    assert loc.lat == 27.7731


# --- the official sample and the known deviations -----------------------------------------


def test_nenas_sample_is_accepted_in_both_modes_without_warnings() -> None:
    sample = shared_json(SAMPLE)
    for strict in (False, True):
        parsed = read(sample, strict=strict)
        assert parsed.warnings == []
    ev = parsed.event(known=False)
    # A call-transfer EIDO has no incident component yet: the call opens as unknown trouble.
    assert (ev.nature_code, ev.channel, ev.type) == ("TROUBLE", "911", "created")
    assert ev.location is not None and ev.location.address == (
        "42 W Cellular Street, Wilmington, DE, US "
        "(Caller location by reference: https://lrf.osp.com?oasufdqwerjn12346jfias)")
    assert ev.occurred_at == datetime(2021, 4, 30, 18, 43, 49, 439000, tzinfo=UTC)


def test_wrongly_cased_last_update_time_stamp_is_a_deviation() -> None:
    jcard = shared_json(JCARD)
    parsed = read(jcard)
    names = fields(parsed.warnings)
    assert "lastUpdateTimestamp" in names and "callComponent[0].lastUpdateTimestamp" in names
    assert all("lastUpdateTimeStamp" in w.reason for w in parsed.warnings)
    strict = refused(jcard, strict=True)
    assert fields(strict.errors) == names and len(strict.errors) == 11


def test_date_times_without_offset_are_read_in_the_policy_zone_or_refused() -> None:
    doc = variant(eido(), lastUpdateTimeStamp="2026-03-10T14:00:00")
    parsed = read(doc)
    assert parsed.occurred_at == datetime(2026, 3, 10, 14, 0, tzinfo=NEW_YORK)
    assert [w.as_dict() for w in parsed.warnings] == [{
        "field": "lastUpdateTimeStamp",
        "reason": "'2026-03-10T14:00:00' has no UTC offset; read as America/New_York time"}]
    assert fields(refused(doc, strict=True).errors) == {"lastUpdateTimeStamp"}
    # NENA's own 2021 sample: one such time, plus a callback without its agency reference
    # and an unreadable PIDF-LO, all in components Liaison does not route on.
    old = shared_json(SAMPLE_2021)
    expected = {"personComponent[0].lastUpdateTimeStamp",
                "callbackComponent[0].updatedByAgencyReference",
                "locationComponent[0].locationByValue"}
    assert fields(read(old).warnings) == expected
    assert fields(refused(old, strict=True).errors) == expected


def test_incident_component_as_an_array_is_a_deviation() -> None:
    doc = eido()
    doc["incidentComponent"] = [doc["incidentComponent"]]
    parsed = read(doc)
    assert fields(parsed.warnings) == {"incidentComponent"}
    assert parsed.nature_code == "MNTL"
    assert fields(refused(doc, strict=True).errors) == {"incidentComponent"}
    doc["incidentComponent"] = [doc["incidentComponent"][0]] * 2
    assert "incidentComponent" in fields(refused(doc).errors)


def test_the_2020_draft_is_read_leniently_and_refused_strictly() -> None:
    draft = shared_json(DRAFT_2020)
    parsed = read(draft)
    names = fields(parsed.warnings)
    assert {"incidentComponent", "LastUpdateTimeStamp", "EIDOVersion", "OwningAgencyIdentifier",
            "locationInformationComponent", "incidentTrackingIdentifier"} <= names
    assert parsed.incident_id == "urn:emergency:uid:incidentid:0:psap.allegheny.pa.us"
    assert (parsed.nature_code, parsed.priority) == ("CU1", 1)
    assert parsed.nature_text == "CIVIL UNREST; REQUEST MUTUAL AID [10-101]"
    assert set(parsed.flags) == {"violence", "crime_in_progress"}
    assert parsed.occurred_at == datetime(2020, 10, 29, 18, 40, 4, 337000, tzinfo=UTC)
    errors = refused(draft, strict=True).errors
    assert {"incidentComponent", "LastUpdateTimeStamp", "EIDOVersion"} <= fields(errors)


@pytest.mark.parametrize("relative", THIRD_PARTY)
def test_third_party_look_alikes_are_refused_in_both_modes(relative: str) -> None:
    doc = shared_json(relative)
    for strict in (False, True):
        names = fields(refused(doc, strict=strict).errors)
        assert names & {"eidoVersion", "$id", "lastUpdateTimeStamp"}
        assert "incidentComponent.incidentTypeCommonRegistryText" in names
    errors = {e.field: e.reason for e in refused(doc).errors}
    assert "not a common incident type code" in errors[
        "incidentComponent.incidentTypeCommonRegistryText"]


def test_strict_mode_agrees_with_nenas_schema_on_every_shared_eido() -> None:
    for relative in (SAMPLE, SAMPLE_2021, DRAFT_2020, JCARD, *THIRD_PARTY):
        doc = shared_json(relative)
        try:
            read(doc, strict=True)
            accepted = True
        except EidoRejected:
            accepted = False
        assert accepted == (schema_errors(doc) == []), relative


def test_hand_made_fixtures_are_valid_eidos() -> None:
    shared_eido()
    for doc in (eido(), eido(code="MTLV", status=["Closed"], call_type=None, priority=None,
                             notes=[], beat=None)):
        assert schema_errors(doc) == []
        assert schema_errors(doc, SCHEMA_021_1B) == []


@pytest.mark.parametrize(("change", "field"), [
    ({"eidoVersion": "2.0"}, "eidoVersion"),
    ({"$id": "x" * 121}, "$id"),
    ({"agencyComponent": []}, "agencyComponent"),
    ({"lastUpdateTimeStamp": "yesterday"}, "lastUpdateTimeStamp"),
    ({"issuingElementIdentification": None}, "issuingElementIdentification"),
])
def test_errors_refused_in_every_mode(change: dict[str, Any], field: str) -> None:
    assert field in fields(refused(variant(eido(), **change)).errors)


@pytest.mark.parametrize(("path", "value", "field"), [
    ("incidentCommonPriorityNumber", 11, "incidentComponent.incidentCommonPriorityNumber"),
    ("incidentCommonPriorityNumber", True, "incidentComponent.incidentCommonPriorityNumber"),
    ("incidentTypeCommonRegistryText", "Mental health", "incidentComponent."
                                                        "incidentTypeCommonRegistryText"),
    ("incidentStatusCommonRegistryText", ["Done"], "incidentComponent."
                                                   "incidentStatusCommonRegistryText[0]"),
    ("$id", None, "incidentComponent.$id"),
])
def test_faults_in_the_incident_are_errors_even_when_lenient(path: str, value: Any,
                                                             field: str) -> None:
    doc = eido()
    doc["incidentComponent"][path] = value
    assert field in fields(refused(doc).errors)


def test_a_location_type_outside_its_registry_is_a_deviation() -> None:
    """Routing does not use the location type (it only ranks the locations): a CAD that
    writes 'Incident' has its incidents taken, with a warning, unless strict."""
    doc = eido()
    doc["locationComponent"][0]["locationTypeDescriptionRegistryText"] = "Incident"
    parsed = read(doc)
    where = "locationComponent[0].locationTypeDescriptionRegistryText"
    assert fields(parsed.warnings) == {where}
    assert "'Incident' is not in the EIDO-LocationType registry" in parsed.warnings[0].reason
    assert parsed.location is not None
    assert parsed.location.address == "1300 1st Ave N, St. Petersburg, FL, US"
    assert parsed.event(known=False).nature_code == "MNTL"
    strict = refused(doc, strict=True)
    assert fields(strict.errors) == {where}
    # Ranked after the registry's types: a Caller location elsewhere is preferred to it.
    caller = {**doc["locationComponent"][0], "$id": "loc-caller",
              "locationTypeDescriptionRegistryText": "Caller",
              "locationByValue": pidf({"country": "US", "A1": "FL", "A3": "St. Petersburg",
                                       "HNO": "9", "RD": "Central", "STS": "Ave"})}
    doc["incidentComponent"]["locationReference"] = []
    doc["locationComponent"].append(caller)
    location = read(doc).location
    assert location is not None and location.address == "9 Central Ave, St. Petersburg, FL, US"


def test_faults_in_components_liaison_does_not_read_are_deviations() -> None:
    doc = eido()
    del doc["agentComponent"][0]["agencyReference"]
    doc["agencyComponent"][0]["agencyType"] = "psap"
    assert fields(read(doc).warnings) == {"agentComponent[0].agencyReference",
                                          "agencyComponent[0].agencyType"}
    assert len(refused(doc, strict=True).errors) == 2


def test_unknown_members_are_noted_in_both_modes_and_dangling_refs_are_deviations() -> None:
    doc = variant(eido(), messageKind="Alert")
    doc["incidentComponent"]["notesReference"].append({"$ref": "nowhere"})
    parsed = read(doc)
    assert {w.field: w.reason for w in parsed.warnings} == {
        "messageKind": "not a member of an EIDO (NENA-STA-021.1b); ignored",
        "incidentComponent.notesReference":
            "refers to 'nowhere', which this EIDO does not include"}
    strict = refused(doc, strict=True)
    assert fields(strict.errors) == {"incidentComponent.notesReference"}
    assert fields(strict.warnings) == {"messageKind"}


def test_not_an_object_or_not_text() -> None:
    assert refused([1, 2]).errors == [Issue("(document)", "an EIDO is a JSON object, not an "
                                                          "array")]
    doc = eido(notes=["half a pair \ud800 here"])
    assert "unpaired UTF-16 surrogate" in refused(doc).errors[0].reason


# --- PIDF-LO and notes --------------------------------------------------------------------


def test_pidf_civic_point_circle_polygon_and_refusals() -> None:
    both = read_pidf(pidf({"HNO": "5", "RD": "Main", "STS": "St", "A3": "Town", "A1": "FL",
                           "PC": "33701", "country": "US"}, (27.5, -82.5)))
    assert (both.address, both.lat, both.lon) == ("5 Main St, Town, FL 33701, US", 27.5, -82.5)
    circle = pidf(None, None).replace(
        "</gp:location-info>",
        '<gs:Circle xmlns:gs="http://www.opengis.net/pidflo/1.0" srsName="urn:ogc:def:crs:'
        'EPSG::4326"><gml:pos>40.1 -75.2</gml:pos><gs:radius>30</gs:radius></gs:Circle>'
        "</gp:location-info>")
    assert (read_pidf(circle).lat, read_pidf(circle).lon) == (40.1, -75.2)
    polygon = pidf(None, None).replace(
        "</gp:location-info>",
        '<gml:Polygon srsName="urn:ogc:def:crs:EPSG::4326"><gml:exterior><gml:LinearRing>'
        "<gml:posList>10 20 12 20 12 22 10 22 10 20</gml:posList></gml:LinearRing>"
        "</gml:exterior></gml:Polygon></gp:location-info>")
    assert (read_pidf(polygon).lat, read_pidf(polygon).lon) == (11.0, 21.0)
    bomb = ('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
            "<presence>&b;</presence>")
    assert read_pidf(bomb).problems == ["it declares a DTD or entities, which Liaison does "
                                        "not read"]
    assert "not well-formed" in read_pidf("<presence>").problems[0]
    assert "not a PIDF-LO" in read_pidf("<location/>").problems[0]
    assert read_pidf(pidf(None, (91.0, 0.0))).lat is None


def test_html_to_text_drops_script_and_markup() -> None:
    html = ("<p>Caller&nbsp;is <b>calm</b></p><SCRIPT type='text/javascript'>alert('x')"
            "</SCRIPT><style>p{color:red}</style><div>No weapons<br>seen</div>"
            "<img src=x onerror=alert(1)><!-- hidden -->&lt;b&gt;")
    assert html_to_text(html) == "Caller is calm\nNo weapons\nseen\n<b>"
    assert html_to_text("<script>never closed; alert(1)") == ""
    assert html_to_text("plain\u202etext\x00") == "plaintext"


# --- the mapping file ---------------------------------------------------------------------


def test_shipped_mapping_codes_and_registry_lists_match_nenas_registries() -> None:
    folder = shared_eido() / "registries_from_NENA-STA-021.1b"

    def registry(name: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        with open(folder / name, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                out.setdefault(row["value"], set()).add(row["description"])
        return out

    types = registry("EIDO-IncidentType-Common.csv")
    for code, entry in MAPPING.incident_types.items():
        assert code in types, f"{code} is not in the EIDO-IncidentType-Common registry"
        assert entry.description in types[code], code
    assert set(INCIDENT_STATUSES) == set(registry("EIDO-IncidentStatus-Common.csv"))
    assert set(LOCATION_TYPES) == set(registry("EIDO-LocationType.csv"))


def test_component_member_lists_cover_nenas_schema() -> None:
    schemas = yaml.safe_load((shared_eido() / SCHEMA_HEAD).read_text())["components"]["schemas"]

    def members(name: str) -> set[str]:
        found: set[str] = set()
        for part in schemas[name].get("allOf", [schemas[name]]):
            if "$ref" in part:
                found |= members(part["$ref"].rsplit("/", 1)[-1])
            found |= set(part.get("properties", {}))
        return found

    top = schemas["EmergencyIncidentDataObjectType"]["allOf"][1]["properties"]
    assert set(PROLOGUE) == members("PrologueType")
    for name, kind in COMPONENTS.items():
        ref = top[name].get("$ref") or top[name]["items"]["$ref"]
        assert set(kind.members) | set(PROLOGUE) == members(ref.rsplit("/", 1)[-1]), name


def test_a_broken_mapping_names_each_error(tmp_path: Path) -> None:
    bad = ("version: 1\nincident_types:\n  MTLV: {description: x, flags: [violent]}\n"
           "  'bad code': {description: y}\ncall_types: {emergency: pager}\nextra: 1\n")
    with pytest.raises(MappingInvalid) as info:
        parse_mapping(bad, "city.yaml")
    got = {e.field: e.reason for e in info.value.errors}
    assert set(got) == {"incident_types.bad code", "incident_types.MTLV.flags[0]",
                        "call_types.emergency", "extra"}
    assert "not a common incident type code" in got["incident_types.bad code"]
    assert "city.yaml" in str(info.value)
    with pytest.raises(MappingInvalid):
        parse_mapping("incident_types: [", "x")
    with pytest.raises(MappingInvalid) as missing:
        load_mapping(str(tmp_path / "absent.yaml"))
    assert "cannot read" in missing.value.errors[0].reason


def test_mapping_cache_rereads_an_edited_file_and_the_check_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "city.yaml"
    path.write_text(shipped_text())
    cache = MappingCache()
    assert cache.get(str(path)).incident_type("MNTL") is not None
    doc = yaml.safe_load(shipped_text())
    doc["incident_types"]["MNTL"]["flags"] = ["violence"]
    path.write_text(yaml.safe_dump(doc))
    import os
    os.utime(path, ns=(1, 2))  # a different mtime even on a coarse clock
    mntl = cache.get(str(path)).incident_type("MNTL")
    assert mntl is not None and mntl.flags == ["violence"]
    assert main(["check", str(path)]) == 0
    path.write_text("version: 2\n")
    assert main(["check", str(path)]) == 1
    assert "version" in capsys.readouterr().err


# --- writing a call as an EIDO ------------------------------------------------------------


def _view(**call: Any) -> dict[str, Any]:
    base = {"id": "c0ffee", "source": "generic", "incident_id": "2026-031000123",
            "channel": "911", "nature_code": "MNTL", "nature_text": "Mental <person>",
            "narrative": "Brother talking to himself.\n<script>x</script>", "priority": 3,
            "team_status": None, "unit": None, "disposition": None,
            "destination": "call_team", "mode": "call_with_police_standby",
            "category": "mental_health",
            "location": {"address": "1300 1st Ave N", "district": "D2", "lat": 27.77,
                         "lon": -82.65},
            "flags": [], "opened_at": "2026-03-10T18:00:00+00:00",
            "last_event_at": "2026-03-10T18:00:00+00:00", "closed_at": None,
            "updated_at": "2026-03-10T18:00:01+00:00"}
    base.update(call)
    decision = {"destination": "call_team", "mode": "call_with_police_standby",
                "category": "mental_health", "basis": "rule", "eligible": True,
                "not_served_reason": None, "matched_rules": ["mental-health"],
                "policy_version": "st-petersburg-call@1",
                "explanation": "Rule 'mental-health' matched <MNTL>."}
    return {"call": base, "decision": decision,
            "decisions": [{"at": "2026-03-10T18:00:01+00:00", "decision": decision}]}


def test_emitted_eido_validates_and_reads_back_strictly() -> None:
    shared_eido()
    for view in (_view(), _view(team_status="on_scene", closed_at="2026-03-10T19:00:00+00:00",
                                disposition="referred_to_services", narrative=None,
                                priority=None, location={"address": None, "district": None,
                                                         "lat": None, "lon": None})):
        doc = call_to_eido(view, agency_id="call.stpete.example", dispositions=DISPOSITIONS)
        assert schema_errors(doc) == [] and schema_errors(doc, SCHEMA_021_1B) == []
        back = read(doc, strict=True)
        assert back.warnings == [] and back.nature_code == "MNTL"
    open_doc = call_to_eido(_view(), agency_id="call.stpete.example")
    ev = read(open_doc, strict=True).event(known=False)
    assert ev.priority == 3 and ev.location is not None
    assert (ev.location.address, ev.location.lat, ev.location.district) == (
        "1300 1st Ave N", 27.77, "D2")
    incident = open_doc["incidentComponent"]
    assert incident["internalIncidentId"] == "2026-031000123"
    assert open_doc["$id"] == "urn:emergency:uid:incidentid:c0ffee:call.stpete.example"
    routing = open_doc["notesComponent"][-1]["notesActionComments"]
    assert '<data value="call_team">' in routing and "&lt;MNTL&gt;" in routing
    assert "<script>" not in open_doc["notesComponent"][0]["notesActionComments"]
    closed = call_to_eido(_view(closed_at="2026-03-10T19:00:00+00:00",
                                disposition="referred_to_services"),
                          agency_id="a.example", dispositions=DISPOSITIONS)
    assert closed["incidentComponent"]["incidentStatusCommonRegistryText"] == ["Closed"]
    assert closed["incidentComponent"]["dispositionComponent"][0][
        "dispositionCommonRegistryCode"] == "15"
