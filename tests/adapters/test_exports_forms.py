"""The profile's newer forms, offline: times in several formats, cut out by a pattern, or
in a column's own format; code rules that test a code's suffix, prefix, contents or a
regular expression, or the text; officer-initiated rules with an action each; the city's
code not repeated after a text that shows it; and what `profile check` says about them
(failures grouped by rule, a non-zero exit when nothing maps, safety and time-zone
warnings)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.exports.check import check_export
from adapters.exports.mapping import Mapper
from adapters.exports.profile import ProfileInvalid, parse_profile, rule_warnings
from api.cli import main
from rules.evaluate import compile_policy
from rules.load import load_default_policy
from tests.factories import make_profile, profile_doc, row, shipped_doc, write_export, write_profile

POLICY = compile_policy(load_default_policy())


def mapper(**changes: Any) -> Mapper:
    return Mapper(make_profile(**changes), lookup_dirs=[])


def with_columns(**columns: Any) -> dict[str, Any]:
    doc = profile_doc()
    doc["columns"].update(columns)
    return doc


def errors_of(doc: dict[str, Any]) -> set[str]:
    with pytest.raises(ProfileInvalid) as exc:
        parse_profile(doc)
    return {str(e) for e in exc.value.errors}


# --- times ---------------------------------------------------------------------------


def test_several_formats_are_tried_in_order() -> None:
    mp = mapper(time={"format": ["%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M", "iso"],
                      "timezone": "America/Chicago"})
    assert mp.map_row(1, row(received="03/12/2024 14:05:00")).at.isoformat() == \
        "2024-03-12T14:05:00-05:00"
    assert mp.map_row(2, row(received="2024-03-12 14:05")).at.isoformat() == \
        "2024-03-12T14:05:00-05:00"
    assert mp.map_row(3, row(received="2024-03-12T19:05:00+00:00")).at.isoformat() == \
        "2024-03-12T19:05:00+00:00"
    bad = mp.map_row(4, row(received="12 March"))
    assert (bad.outcome, bad.reason, bad.value) == (
        "fail", "columns.received_at: is not format '%m/%d/%Y %H:%M:%S' or format "
                "'%Y-%m-%d %H:%M' or an ISO 8601 time", "12 March")


def san_jose_time(**extra: Any) -> dict[str, Any]:
    return {"pattern": r"(?P<time>\d{14})(?P<dst>PD|PS)", "format": "%Y%m%d%H%M%S",
            "timezone": "America/Los_Angeles", **extra}


def test_a_pattern_cuts_the_time_out_of_the_value() -> None:
    """San Jose writes `20240315092336PD`: the pattern's `time` group is read, the rest
    (daylight or standard) left out."""
    mp = mapper(time=san_jose_time())
    m = mp.map_row(1, row(received="20240315092336PD"))
    assert m.events[0]["occurred_at"] == "2024-03-15T09:23:36-07:00"
    assert mp.map_row(2, row(received="20240115092336PS")).at.isoformat() == \
        "2024-01-15T09:23:36-08:00"
    bad = mp.map_row(3, row(received="20240315092336"))
    assert (bad.reason, bad.value) == (
        r"columns.received_at: does not match pattern '(?P<time>\d{14})(?P<dst>PD|PS)'",
        "20240315092336")
    # Without the pattern, the suffix makes every such time unreadable.
    plain = mapper(time={"format": "%Y%m%d%H%M%S", "timezone": "America/Los_Angeles"})
    assert plain.map_row(1, row(received="20240315092336PD")).reason == \
        "columns.received_at: is not format '%Y%m%d%H%M%S'"


def test_the_dst_part_settles_the_hour_that_happens_twice() -> None:
    """01:01 on 5 November 2023 happened twice in San Jose: PD is the first, PS the
    second, an hour later. Without `dst`, both take `ambiguous` (the earlier)."""
    marks = {"daylight": ["PD"], "standard": ["ps"]}
    mp = mapper(time=san_jose_time(dst=marks))
    first = mp.map_row(1, row(received="20231105010122PD")).at
    second = mp.map_row(2, row(received="20231105010122PS")).at
    assert (first.isoformat(), second.isoformat()) == ("2023-11-05T01:01:22-07:00",
                                                       "2023-11-05T01:01:22-08:00")
    assert (second.astimezone(UTC) - first.astimezone(UTC)).total_seconds() == 3600
    # Anywhere else the suffix changes nothing: the offset is the one in force.
    assert mp.map_row(3, row(received="20230715120000PS")).at.isoformat() == \
        "2023-07-15T12:00:00-07:00"
    blind = mapper(time=san_jose_time())
    assert blind.map_row(2, row(received="20231105010122PS")).at.isoformat() == \
        "2023-11-05T01:01:22-07:00"


def test_a_close_time_in_its_own_format() -> None:
    doc = with_columns(closed_at={"column": "closed", "format": ["%H:%M %d.%m.%Y",
                                                                 "%Y%m%d%H%M"]})
    mp = Mapper(parse_profile(doc), lookup_dirs=[])
    m = mp.map_row(1, row(received="03/12/2024 14:05:00", closed="15:20 12.03.2024"))
    assert [e["occurred_at"] for e in m.events] == ["2024-03-12T14:05:00-05:00",
                                                    "2024-03-12T15:20:00-05:00"]
    assert mp.map_row(2, row(closed="202403121530")).closed == \
        datetime.fromisoformat("2024-03-12T15:30:00-05:00")
    bad = mp.map_row(3, row(closed="03/12/2024 15:00:00"))  # time.format is not its own
    assert bad.reason == ("columns.closed_at: is not format '%H:%M %d.%m.%Y' or format "
                          "'%Y%m%d%H%M'")
    # Its own pattern alone: read with time.format.
    doc["columns"]["closed_at"] = {"column": "closed",
                                   "pattern": r"(?P<time>.+) \((?:PD|PS)\)"}
    mp = Mapper(parse_profile(doc), lookup_dirs=[])
    assert mp.map_row(4, row(closed="03/12/2024 15:45:00 (PD)")).closed == \
        datetime.fromisoformat("2024-03-12T15:45:00-05:00")
    # Every time column with its own format: time.format may go (not before).
    doc["columns"]["received_at"] = {"column": "received", "format": "%m/%d/%Y %H:%M:%S"}
    del doc["time"]["format"]
    assert errors_of(doc) == {"time.format: give the time format here, or on "
                              "columns.closed_at (`format`)"}
    doc["columns"]["closed_at"] = {"column": "closed", "format": "%Y%m%d%H%M"}
    assert Mapper(parse_profile(doc), lookup_dirs=[]).map_row(1, row()).outcome == "send"


def test_time_settings_that_cannot_work_are_refused() -> None:
    doc = profile_doc(time={"pattern": r"\d{14}", "format": "%Y", "timezone": "UTC"})
    assert errors_of(doc) == {"time.pattern: a time pattern needs a named group "
                              "`(?P<time>...)`: the part read with the format (the rest is "
                              "left out)"}
    doc = profile_doc(time={"pattern": "(?P<time>[", "format": "%Y", "timezone": "UTC"})
    assert {e.split(":")[0] for e in errors_of(doc)} == {"time.pattern"}
    doc = profile_doc(time=san_jose_time(pattern=r"(?P<time>\d{14})..",
                                         dst={"daylight": ["PD"], "standard": ["PS"]}))
    assert errors_of(doc) == {"time: `dst` reads the pattern's named group `(?P<dst>...)`: "
                              "give `pattern` with one"}
    doc = with_columns(nature_code={"column": "type", "format": "%Y"})
    assert errors_of(doc) == {"columns: nature_code: `format` and `pattern` belong to "
                              "received_at and closed_at only"}
    doc = profile_doc(time={"timezone": "UTC"})
    assert errors_of(doc) == {"time.format: give the time format here, or on "
                              "columns.received_at (`format`)"}
    assert errors_of(profile_doc(time={"format": [], "timezone": "UTC"})) == {
        "time.format: give at least one format"}


# --- code rules ----------------------------------------------------------------------


@pytest.mark.parametrize(("test", "holds", "fails"), [
    ({"suffix": ["-DV", "/DV"]}, ["BATTERY-DV", "entry/dv", " TRBL W/SUBJ-DV "],
     ["BATTERY", "DV-BATTERY", "ADVISED"]),
    ({"prefix": ["FAMILY TROUB"]}, ["FAMILY TROUBLE", "FAMILY TROUBL-DV"],
     ["TROUBLE FAMILY"]),
    ({"contains": ["WEAPON", "GUN"]}, ["SUBJ W/WEAPON-DV", "SUBJ WITH GUN"],
     ["WEAPO", "SHOTS FIRED"]),
    ({"regex": r"^5150X?$"}, ["5150", "5150x"], ["51500", "5150V", "X5150"]),
    ({"in": ["CW", "ASST"]}, ["cw", "ASST"], ["CWX"]),
])
def test_a_code_rule_tests_the_code(test: dict[str, Any], holds: list[str],
                                    fails: list[str]) -> None:
    mp = mapper(codes=[{"code": test, "nature_code": "HIT", "flags": ["violence"]}])
    for code in holds:
        m = mp.map_row(1, row(type=code))
        assert (m.nature_code, m.code_rule, m.events[0]["flags"]) == ("HIT", 0, ["violence"])
    for code in fails:
        m = mp.map_row(1, row(type=code))
        assert (m.nature_code, m.code_rule) == (code.strip(), None), code


def test_a_code_rule_tests_the_text_as_read(tmp_path: Path) -> None:
    """The text is tested as the profile reads it, after any lookup (San Diego's is)."""
    (tmp_path / "types.csv").write_text(
        "code,text\n1066W,SUSPICIOUS PERSON W/ WEAPON\n415M,\"DISTURBANCE, MUSIC\"\n"
        "1154M,SUSPICIOUS VEHICLE\n", encoding="utf-8")
    doc = profile_doc(codes=[{"text": {"contains": ["WEAPON"]}, "flags": ["weapon"]},
                             {"code": {"suffix": ["M"]}, "text": {"regex": "^DIST"},
                              "nature_code": "NOISE"}])
    doc["columns"]["nature_text"] = {"column": "type", "lookup": {
        "file": "types.csv", "key": "code", "value": "text"}}
    mp = Mapper(parse_profile(doc), lookup_dirs=[tmp_path])
    m = mp.map_row(1, row(type="1066W", type_desc="not read: the lookup gives the text"))
    assert (m.code_rule, m.text, m.events[0]["flags"]) == (
        0, "SUSPICIOUS PERSON W/ WEAPON", ["weapon"])
    assert mp.map_row(2, row(type="415M")).nature_code == "NOISE"
    assert mp.map_row(3, row(type="1154M")).code_rule is None  # code holds, text does not
    assert mp.map_row(4, row(type="999M")).code_rule is None  # no text at all


def test_rules_hold_in_their_order_whatever_their_form() -> None:
    mp = mapper(codes=[
        {"code": {"suffix": ["-DV"]}, "nature_code": "DVA"},                 # 0
        {"code": ["FAMILY TROUBLE"], "nature_code": "CDX"},                   # 1
        {"code": {"prefix": ["FAMILY"]}, "nature_code": "FAM"},               # 2
        {"code": ["FAMILY TROUBL-DV", "FAMILY OTHER"], "nature_code": "X"},   # 3
        {"when": {"column": "beat", "in": ["B9"]}, "nature_code": "BEAT9"},   # 4
        {"code": ["PARK"], "nature_code": "PARKING"},                         # 5
    ])
    assert mp.map_row(1, row(type="FAMILY TROUBL-DV")).code_rule == 0  # before rule 3
    assert mp.map_row(1, row(type="FAMILY TROUBLE")).code_rule == 1
    assert mp.map_row(1, row(type="FAMILY OTHER")).code_rule == 2  # before rule 3
    assert mp.map_row(1, row(type="PARK", beat="B9")).code_rule == 4  # before rule 5
    assert mp.map_row(1, row(type="PARK", beat="B1")).code_rule == 5


def test_new_code_rule_forms_are_checked() -> None:
    errors = errors_of(profile_doc(codes=[
        {"code": {"suffix": ["-DV"], "prefix": ["X"]}},
        {"code": {"regex": "(unclosed"}},
        {"code": {"sufix": ["-DV"]}},
        {"nature_code": "X"},
        {"text": {"contains": []}},
    ]))
    assert errors == {
        "codes[0].code: give exactly one of `in`, `prefix`, `suffix`, `contains`, `regex`",
        "codes[1].code.regex: not a regular expression: missing ), unterminated subpattern "
        "at position 0",
        "codes[2].code.sufix: Extra inputs are not permitted",
        "codes[3]: give `code`, `text` or `when`: what the rule applies to",
        "codes[4].text.contains: List should have at least 1 item after validation, not 0",
    }


@pytest.mark.parametrize(("when", "holds", "fails"), [
    ({"column": "street", "suffix": [" AVE", " AV"]}, "MAIN AVE", "AVENUE RD"),
    ({"column": "street", "contains": ["MAIN"]}, "N MAIN ST", "MAI ST"),
    ({"column": "street", "regex": r"^\d+ "}, "100 MAIN ST", "MAIN ST"),
])
def test_row_tests_take_the_same_forms(when: dict[str, Any], holds: str, fails: str) -> None:
    mp = mapper(skip=[{"reason": "test", "when": when}])
    assert mp.map_row(1, row(street=holds)).outcome == "skip"
    assert mp.map_row(1, row(street=fails)).outcome == "send"


# --- officer-initiated rules, doubled text -------------------------------------------


def test_each_officer_initiated_rule_has_its_own_action() -> None:
    """Skip traffic stops and send pursuits, tagged, from one profile."""
    mp = mapper(officer_initiated=[
        {"action": "skip", "when": {"column": "type", "in": ["TS", "BC"]}},
        {"action": "tag", "when": {"column": "type", "suffix": ["PURSUIT"]}},
        {"action": "tag", "channel": "officer_referral",
         "when": {"column": "type", "in": ["REFER"]}},
    ])
    stop = mp.map_row(1, row(type="TS"))
    assert (stop.outcome, stop.reason) == ("skip", "officer_initiated")
    chase = mp.map_row(2, row(type="VEHICLE PURSUIT"))
    assert (chase.outcome, chase.channel) == ("send", "officer_on_scene")
    assert mp.map_row(3, row(type="REFER")).channel == "officer_referral"
    assert mp.map_row(4, row(type="MH")).channel == "911"
    # An error in the list names its place; the one-rule form keeps its paths.
    errors = errors_of(profile_doc(officer_initiated=[
        {"action": "skip", "when": {"column": "type", "in": ["TS"]}}, {"action": "drop"}]))
    assert errors == {"officer_initiated[1].action: Input should be 'skip' or 'tag'",
                      "officer_initiated[1].when: Field required"}


def test_a_text_that_shows_the_code_is_not_doubled() -> None:
    """One column gives both code and text (Milwaukee's `nature`)."""
    doc = with_columns(nature_text="type")
    doc["codes"] = [{"code": ["WELFARE CITIZEN", "5150"], "nature_code": "WELFARE"}]
    mp = Mapper(parse_profile(doc), lookup_dirs=[])
    assert mp.map_row(1, row(type="WELFARE CITIZEN")).events[0]["nature_text"] == \
        "WELFARE CITIZEN"
    # A text that does not show the code keeps it in view, as before.
    other = Mapper(make_profile(codes=[{"code": ["5150"], "nature_code": "MNTL"}]),
                   lookup_dirs=[])
    assert other.map_row(1, row(type="5150", type_desc="MENTAL CASE")).events[0][
        "nature_text"] == "MENTAL CASE [5150]"
    assert other.map_row(1, row(type="5150", type_desc="5150 MENTAL CASE")).events[0][
        "nature_text"] == "5150 MENTAL CASE"
    assert other.map_row(1, row(type="5150", type_desc="51500 CASE")).events[0][
        "nature_text"] == "51500 CASE [5150]"


# --- profile check -------------------------------------------------------------------


def test_safety_looking_codes_that_reach_the_team_are_warned_of(tmp_path: Path) -> None:
    """The slip of the issue: FAMILY TROUB as a prefix catches FAMILY TROUBL-DV too, and
    the policy's text rules do not know `-DV`."""
    doc = with_columns(nature_text="type")
    doc["codes"] = [{"code": {"prefix": ["FAMILY TROUB"]}, "nature_code": "CDX",
                     "category": "neighbor_dispute"},
                    {"code": ["BATTERY DV"], "category": "neighbor_dispute"}]
    profile = parse_profile(doc)
    assert rule_warnings(profile) == [
        "codes[1]: category neighbor_dispute for BATTERY DV, which looks like a safety "
        "exclusion (BATTERY)"]
    rows = [row(call_no=f"F{i}", type=t) for i, t in enumerate(
        ["FAMILY TROUBLE", "FAMILY TROUBL-DV", "FAMILY TROUBL-DV", "BATTERY DV",
         "SUBJ WITH GUN"])]
    export = write_export(tmp_path / "calls.csv", rows)
    report = check_export(Mapper(profile, lookup_dirs=[]), export, policy=POLICY)
    assert report.unsafe == {("FAMILY TROUBL-DV", "DV", "neighbor_dispute"): 2,
                             ("BATTERY DV", "BATTERY", "neighbor_dispute"): 1}
    text = report.render()
    assert "  WARNING: codes that look like a safety exclusion reach a team category" in text
    assert "         2  FAMILY TROUBL-DV  (DV) -> neighbor_dispute" in text
    assert "    WARNING: looks like DV but goes to the team as neighbor_dispute:" in text
    # Put the domestic-violence rule first and nothing is left to warn of.
    doc["codes"][1:] = []
    doc["codes"].insert(0, {"code": {"suffix": ["-DV", " DV"]}, "nature_code": "DVA"})
    fixed = check_export(Mapper(parse_profile(doc), lookup_dirs=[]), export, policy=POLICY)
    assert not fixed.unsafe and "WARNING: codes" not in fixed.render()


def test_failures_are_grouped_by_rule_and_nothing_sendable_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every row unreadable, each with its own value: one reason, counted, three examples,
    and exit 1 (it was exit 0 after a line per row)."""
    rows = [row(call_no=f"C{i}", received=f"2024031509{i // 60:02d}{i % 60:02d}PD")
            for i in range(500)]
    export = write_export(tmp_path / "calls.csv", rows)
    doc = profile_doc(time={"format": "%Y%m%d%H%M%S", "timezone": "America/Chicago"})
    profile = write_profile(tmp_path / "p.yaml", doc)
    assert main(["profile", "check", str(profile), "--sample", str(export)]) == 1
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert "       500  fail to map (not sent)" in out
    assert "                 500  columns.received_at: is not format '%Y%m%d%H%M%S'" in out
    assert [line.strip() for line in out if "'20240315" in line] == [
        "row 1: incident C0, code MH (MENTAL HEALTH): '20240315090000PD'",
        "row 2: incident C1, code MH (MENTAL HEALTH): '20240315090001PD'",
        "row 3: incident C2, code MH (MENTAL HEALTH): '20240315090002PD'"]
    assert len(out) < 40
    assert "no row of" in captured.err and "would be sent" in captured.err
    # With the pattern, every row maps: exit 0.
    doc["time"]["pattern"] = r"(?P<time>\d{14})P[DS]"
    write_profile(profile, doc)
    assert main(["profile", "check", str(profile), "--sample", str(export)]) == 0
    assert "       500  would be sent (500 events)" in capsys.readouterr().out


def test_profile_check_says_when_the_zones_differ(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    profile = write_profile(tmp_path / "p.yaml", profile_doc())  # Central time
    assert main(["profile", "check", str(profile)]) == 0
    out = capsys.readouterr().out
    assert ("WARNING: the profile's times are America/Chicago but policy "
            "st-petersburg-call@1 keeps team hours in America/New_York (1 h ahead of the "
            "city's clock on ") in out
    export = write_export(tmp_path / "calls.csv", [row(received="07/01/2024 09:00:00")])
    assert main(["profile", "check", str(profile), "--sample", str(export)]) == 0
    assert "1 h ahead of the city's clock on 2024-07-01)" in capsys.readouterr().out
    # A policy in the city's zone: nothing to say.
    policy = shipped_doc()
    policy["program"]["timezone"] = "America/Chicago"
    path = tmp_path / "chicago.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    assert main(["profile", "check", str(profile), "--sample", str(export),
                 "--policy", str(path)]) == 0
    assert "WARNING" not in capsys.readouterr().out


def test_the_old_profile_format_still_reads() -> None:
    """One format string, one officer rule, whole codes: unchanged in meaning."""
    doc = copy.deepcopy(profile_doc())
    assert isinstance(doc["time"]["format"], str)
    assert isinstance(doc["officer_initiated"], dict)
    mp = Mapper(parse_profile(doc), lookup_dirs=[])
    assert mp.map_row(1, row(type="TS")).reason == "officer_initiated"
    assert mp.map_row(1, row(type="MH")).events[0]["nature_text"] == "MENTAL HEALTH [MH]"
