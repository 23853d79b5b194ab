"""Export profiles: the shipped ones load; a broken one is refused with every error's path
and reason; an export that does not fit its profile is refused before any row is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.exports.mapping import ExportError, Mapper, read_rows
from adapters.exports.profile import (
    ProfileInvalid,
    load_profile_text,
    parse_profile,
    resolve_profile,
    shipped_profiles,
)
from api.cli import main
from tests.factories import make_profile, profile_doc, row, write_export, write_profile

ONE_TEST = ("a test on `column` takes exactly one of `in`, `prefix`, `suffix`, `contains`, "
            "`regex`, `empty`")


def errors_of(doc: object) -> set[str]:
    with pytest.raises(ProfileInvalid) as exc:
        parse_profile(doc)
    return {str(e) for e in exc.value.errors}


def test_shipped_profiles_load() -> None:
    assert shipped_profiles() == ["nashville", "san-diego"]
    for name in shipped_profiles():
        profile, where = resolve_profile(name)
        assert profile.profile.id == name
        assert where is None


def test_every_error_is_reported_with_its_path_and_reason() -> None:
    doc = profile_doc(
        time={"format": "%Y", "timezone": "Mars/Olympus_Mons"},
        channel={"default": "radio"},
        officer_initiated={"action": "drop", "when": {"column": "type", "in": ["TS"]}},
        skip=[{"reason": "Not A Slug", "when": {"column": "type"}}],
        codes=[{"code": [5150], "nature_code": "MNTL"},
               {"code": ["X"], "flags": ["gun"]},
               {"code": ["Y", "y"]},
               {"code": []}],
    )
    doc["columns"]["nature_cod"] = doc["columns"].pop("nature_code")
    errors = errors_of(doc)
    expected = {
        "columns.nature_code: Field required",
        "columns.nature_cod: Extra inputs are not permitted",
        "time.timezone: unknown time zone 'Mars/Olympus_Mons' (use an IANA name such as "
        "America/Los_Angeles)",
        "channel.default: Input should be '911', 'non_emergency', 'officer_on_scene', "
        "'officer_referral', 'follow_up' or 'crisis_line'",
        "officer_initiated.action: Input should be 'skip' or 'tag'",
        "skip[0].reason: String should match pattern '^[a-z0-9][a-z0-9_-]*$'",
        f"skip[0].when: {ONE_TEST}",
        "codes[0].code[0]: write 5150 in quotes: codes and column values are text, and YAML "
        "may change an unquoted number (0123 reads as 83)",
        "codes[1].flags[0]: Input should be 'weapon', 'violence', 'injury', 'medical' or "
        "'crime_in_progress'",
        "codes[2].code: a code is listed twice",
        "codes[3].code: List should have at least 1 item after validation, not 0",
    }
    assert errors == expected


@pytest.mark.parametrize(("when", "reason"), [
    ({"in": ["A"]}, "`in` needs a `column`"),
    ({"column": "a", "in": ["A"], "prefix": ["B"]}, ONE_TEST),
    ({"column": "a", "in": ["A"], "any": [{"column": "b", "empty": True}]}, ONE_TEST),
    ({}, "give `column` with a test, or one of `any`, `all`, `not`"),
    ({"any": []}, "`any` needs at least one test"),
    ({"colum": "a", "in": ["A"]}, "Extra inputs are not permitted"),
])
def test_a_malformed_row_test_is_refused(when: dict[str, object], reason: str) -> None:
    errors = errors_of(profile_doc(skip=[{"reason": "x", "when": when}]))
    assert any(e.startswith("skip[0].when") and e.endswith(reason) for e in errors), errors


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(ProfileInvalid) as exc:
        load_profile_text("profile: [unclosed\n")
    assert str(exc.value.errors[0]).startswith("line 2, column 1: not valid YAML")
    assert errors_of(["a", "list"]) == {"a profile must be a mapping at the top"}


def test_unknown_name_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileInvalid) as exc:
        resolve_profile("springfield")
    assert str(exc.value.errors[0]) == ("no shipped profile 'springfield' (shipped: nashville, "
                                        "san-diego; or give a path to a .yaml file)")
    with pytest.raises(ProfileInvalid) as exc:
        resolve_profile(str(tmp_path / "nope.yaml"))
    assert "cannot read" in str(exc.value.errors[0])


def test_a_profile_file_is_found_by_path(tmp_path: Path) -> None:
    path = write_profile(tmp_path / "testville.yaml", profile_doc())
    profile, where = resolve_profile(str(path))
    assert profile.label == "testville@1"
    assert where == tmp_path.resolve()


def test_profile_check_cli_prints_every_error(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    doc = profile_doc(time={"format": "%Y", "timezone": "Nowhere/Land"})
    del doc["columns"]["incident_id"]
    path = write_profile(tmp_path / "broken.yaml", doc)
    assert main(["profile", "check", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{path}: invalid profile (2 error(s))"
    assert "  columns.incident_id: Field required" in err
    assert any(line.startswith("  time.timezone: unknown time zone 'Nowhere/Land'")
               for line in err)


def test_an_export_without_a_named_column_is_refused(tmp_path: Path) -> None:
    header = ["call_no", "received", "closed", "kind", "type_desc", "prio", "block", "street",
              "beat", "source", "lat", "lon"]
    path = write_export(tmp_path / "x.csv", [], header)
    with pytest.raises(ExportError) as exc:
        list(read_rows(path, make_profile()))
    message = str(exc.value)
    assert "has no column 'type' (named at columns.nature_code)" in message
    assert "its columns are: call_no, received, closed, kind," in message


def test_a_missing_lookup_file_is_named(tmp_path: Path) -> None:
    doc = profile_doc()
    doc["columns"]["nature_text"] = {"column": "type", "lookup": {
        "file": "types.csv", "key": "code", "value": "text"}}
    export = write_export(tmp_path / "calls.csv", [row()])
    with pytest.raises(ExportError) as exc:
        Mapper.for_export(parse_profile(doc), export)
    assert str(exc.value) == (f"columns.nature_text.lookup: no file 'types.csv' in "
                              f"{tmp_path.resolve()}")


def test_empty_export(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ExportError, match="is empty: no header line"):
        list(read_rows(path, make_profile()))
