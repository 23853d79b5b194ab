"""Response programs in the policy: the format, its errors (each with its field path),
areas inline and in a file beside the policy, the index over hundreds of polygons, and
the one-team format read as one program."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rules.evaluate import compile_policy
from rules.load import PolicyInvalid, load_policy_file, parse_policy
from rules.programs import programs_of
from tests.factories import DOWNTOWN, one_team_policy, programs_doc


def errors_of(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(doc)
    return {e.path: e.reason for e in caught.value.errors}


def test_a_policy_of_programs_loads_and_program_units_default_to_their_sum() -> None:
    policy = parse_policy(programs_doc())
    assert [p.id for p in policy.programs or []] == ["field", "co-response", "line"]
    assert policy.program.units == 3  # field 2 + co-response 1; the line has none
    field = (policy.programs or [])[0]
    assert field.shifts("mon") == [(480, 720), (780, 1200)] and field.shifts("sun") == []
    assert field.wait_limit_s("mental_health", 3) == 1200
    assert field.wait_limit_s("mental_health", 2) is None  # urgent: may not wait
    assert field.wait_limit_s("mental_health", None) is None
    assert field.wait_limit_s("homelessness", None) == 2700


def test_the_one_team_format_is_one_program_with_its_hours_and_units() -> None:
    policy = one_team_policy()
    ps = programs_of(policy)
    assert not ps.named and len(ps.programs) == 1
    only = ps.programs[0]
    assert (only.id, only.name, only.units, only.mode) == (
        "st-petersburg-call", "St. Petersburg CALL program", 4, "field")
    assert only.categories is None and only.area is None and only.queue == []
    assert all(only.shifts(d) == [(480, 1440)] for d in ("mon", "sun"))


def bad(**program: Any) -> dict[str, Any]:
    doc = programs_doc()
    doc["programs"][0].update(program)
    return doc


@pytest.mark.parametrize(("change", "path", "reason"), [
    ({"hours": {"mon": ["8-12"]}}, "programs[0].hours.mon", "shift 0: '8' is not a time"),
    ({"hours": {"funday": ["08:00-12:00"]}}, "programs[0].hours.funday", "Extra inputs"),
    ({"units": None}, "programs[0]", "a field program needs units"),
    ({"units": -1}, "programs[0].units", "greater than or equal to 0"),
    ({"mode": "boat"}, "programs[0].mode", "'phone', 'field', 'co_response' or 'transfer'"),
    ({"dates_off": [{"date": "2026-02-30"}]}, "programs[0].dates_off[0].date", "date"),
    ({"queue": [{"category": "mental_health", "max_wait_minutes": -1}]},
     "programs[0].queue[0].max_wait_minutes", "greater than or equal to 0"),
    ({"queue": [{"category": "crisis_line", "max_wait_minutes": 5}]},
     "programs[0].queue[0].category", "not a category program 'field' takes"),
    ({"categories": None, "queue": [{"category": "astrology", "max_wait_minutes": 5}]},
     "programs[0].queue[0].category", "'astrology' is not one of the policy's categories"),
    ({"deferrable": ["carrier_pigeon"]}, "programs[0].deferrable[0]", "Input should be"),
    ({"categories": ["mental_health", "astrology"]}, "programs[0].categories[1]",
     "'astrology' is not one of the policy's categories"),
    ({"id": "co-response"}, "programs[1].id", "'co-response' is used by an earlier program"),
    ({"area": {}}, "programs[0].area", "an area needs districts, polygons or a file"),
    ({"area": {"districts": []}}, "programs[0].area.districts", "at least one district"),
    ({"area": {"polygons": {"type": "Point", "coordinates": [0, 0]}}},
     "programs[0].area.polygons", "type: 'Point' is not a Polygon"),
    ({"area": {"polygons": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": DOWNTOWN},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1],
                                                                              [1, 0], [0, 1],
                                                                              [0, 0]]]}}]}}},
     "programs[0].area.polygons", "features[1].geometry.coordinates: not a valid polygon "
                                  "(Self-intersection"),
    ({"area": {"polygons": {"type": "Polygon", "coordinates": [[
        [27.7, -182.6], [27.8, -182.6], [27.8, -182.7], [27.7, -182.6]]]}}},
     "programs[0].area.polygons", "longitude, latitude in degrees"),
    ({"area": {"file": "downtown.geojson"}}, "programs[0].area.file",
     "a policy given as text must put its polygons inline"),
    ({"max_queued": 0}, "programs[0].max_queued", "greater than or equal to 1"),
    ({"requires": {"mental_health": ["Youth-Trained"]}}, "programs[0].requires",
     "'mental_health': 'Youth-Trained' is not a capability"),
    ({"requires": {"mental_health": []}}, "programs[0].requires",
     "'mental_health': list at least one capability"),
    ({"requires": {"mental_health": ["x" * 41]}}, "programs[0].requires", "at most 40"),
    ({"requires": {"astrology": ["emt"]}}, "programs[0].requires.astrology",
     "'astrology' is not one of the policy's categories"),
    ({"requires": {"crisis_line": ["emt"]}}, "programs[0].requires.crisis_line",
     "'crisis_line' is not a category this program takes"),
])
def test_every_new_field_is_explained_with_its_path(change: dict[str, Any], path: str,
                                                    reason: str) -> None:
    found = errors_of(bad(**change))
    assert path in found, found
    assert reason in found[path]


def test_a_category_the_rules_send_to_the_team_must_be_taken_by_some_program() -> None:
    doc = programs_doc()
    doc["programs"][2]["categories"] = ["welfare"]
    assert errors_of(doc)["rules[0].category"] == ("'crisis_line' goes to the team but no "
                                                   "program takes it")


def test_an_area_file_beside_the_policy_is_read_into_it(tmp_path: Path) -> None:
    import yaml

    doc = programs_doc()
    doc["programs"][0]["area"] = {"file": "areas/downtown.geojson"}
    (tmp_path / "areas").mkdir()
    (tmp_path / "areas" / "downtown.geojson").write_text(json.dumps(
        {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                                                    "geometry": DOWNTOWN}]}))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(doc))
    policy = compile_policy(load_policy_file(tmp_path / "policy.yaml"))
    assert policy.programs.in_area(27.77, -82.64, None)[0] is True
    assert policy.programs.in_area(27.9, -82.64, None)[0] is False

    for name, reason in (("../elsewhere.geojson", "must be a path inside the policy's folder"),
                         ("missing.geojson", "cannot read missing.geojson"),
                         ("areas", "cannot read areas")):
        doc["programs"][0]["area"] = {"file": name}
        (tmp_path / "policy.yaml").write_text(yaml.safe_dump(doc))
        with pytest.raises(PolicyInvalid) as caught:
            load_policy_file(tmp_path / "policy.yaml")
        found = {e.path: e.reason for e in caught.value.errors}
        assert reason in found["programs[0].area.file"], found
    (tmp_path / "bad.geojson").write_text("{not json")
    doc["programs"][0]["area"] = {"file": "bad.geojson"}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(PolicyInvalid, match=r"programs\[0\]\.area\.file: bad.geojson is not "
                                            "GeoJSON"):
        load_policy_file(tmp_path / "policy.yaml")


def _square(x: float, y: float, size: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + size, y], [x + size, y + size],
                                                [x, y + size], [x, y]]]}


def test_five_hundred_polygons_over_many_programs_find_the_right_ones() -> None:
    doc = programs_doc()
    base = doc["programs"][0]
    programs = []
    for i in range(50):  # 50 programs of 10 squares each, on a 0.01° grid
        p = copy.deepcopy(base)
        p["id"], p["name"] = f"p{i}", f"Program {i}"
        p["area"] = {"polygons": {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": _square(-82.9 + 0.01 * (i * 10 + k), 27.5, 0.009)}
            for k in range(10)]}}
        programs.append(p)
    doc["programs"] = [*programs, *doc["programs"][1:]]
    policy = compile_policy(parse_policy(doc))
    index = policy.programs.index
    assert index is not None and index.size == 500
    # The centre of square 317 is program 31's; a point in a gap between squares is no one's.
    x = -82.9 + 0.01 * 317 + 0.0045
    assert index.containing(27.5045, x) == frozenset({31})
    assert index.containing(27.5045, -82.9 + 0.01 * 317 + 0.0095) == frozenset()
    inside = policy.programs.in_area(27.5045, x, None)
    # Program 31 holds it; the co-response unit's districts cannot be tested without a
    # district (None: not refused); the phone line has no area (everywhere).
    assert inside[31] is True and inside[50] is None and inside[51] is True
    assert inside.count(True) == 2


def test_a_programs_hours_read_as_a_person_writes_them() -> None:
    policy = parse_policy(programs_doc())
    field, co, line = policy.programs or []
    assert field.hours_text() == "mon-fri 08:00-12:00,13:00-20:00; sat 10:00-18:00"
    assert co.hours_text() == "daily 00:00-24:00"
    assert line.hours_text() == "at all hours"


def test_capability_requirements_per_category_in_both_formats() -> None:
    doc = programs_doc()
    doc["programs"][0]["requires"] = {"mental_health": ["clinician"],
                                      "homelessness": ["peer", "vehicle_lift"]}
    field = (parse_policy(doc).programs or [])[0]
    assert field.needs("homelessness") == ["peer", "vehicle_lift"]
    assert field.needs("welfare") == [] and field.needs(None) == []
    one = one_team_policy().model_dump()
    one["program"]["requires"] = {"mental_health": ["youth_trained"]}
    only = programs_of(parse_policy(one)).programs[0]
    assert only.needs("mental_health") == ["youth_trained"]
    one["program"]["requires"] = {"astrology": ["emt"]}
    assert errors_of(one)["program.requires.astrology"] == (
        "'astrology' is not one of the policy's categories")
