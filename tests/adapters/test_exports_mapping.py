"""Rows to events, offline: wall-clock times to RFC 3339 with the right offset across DST,
skip and channel rules, code rules, failures, and `profile check`'s accounting."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.exports.check import check_export
from adapters.exports.mapping import Mapper, local_time
from adapters.exports.profile import Time, parse_profile
from rules.evaluate import compile_policy
from rules.load import load_default_policy
from tests.factories import HEADER, make_profile, profile_doc, row, write_export

CHICAGO = ZoneInfo("America/Chicago")


def chicago(**options: str) -> Time:
    return Time.model_validate({"format": "%Y-%m-%d %H:%M:%S", "timezone": "America/Chicago",
                                **options})


@pytest.mark.parametrize(("local", "expected"), [
    ("2024-01-15 12:00:00", "2024-01-15T12:00:00-06:00"),  # standard time
    ("2024-07-15 12:00:00", "2024-07-15T12:00:00-05:00"),  # daylight time
    ("2024-03-10 01:59:59", "2024-03-10T01:59:59-06:00"),  # just before clocks go forward
    ("2024-03-10 03:00:00", "2024-03-10T03:00:00-05:00"),  # just after
    ("2024-11-03 00:59:59", "2024-11-03T00:59:59-05:00"),  # before clocks go back
    ("2024-11-03 02:00:00", "2024-11-03T02:00:00-06:00"),  # after the repeated hour
])
def test_wall_clock_gets_the_offset_in_force(local: str, expected: str) -> None:
    assert local_time(local, chicago(), CHICAGO).isoformat() == expected


def test_a_time_clocks_skipped_moves_forward_or_is_refused() -> None:
    at = local_time("2024-03-10 02:30:00", chicago(), CHICAGO)
    assert at.isoformat() == "2024-03-10T03:30:00-05:00"
    assert at.astimezone(UTC) == datetime(2024, 3, 10, 8, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="never happened in America/Chicago"):
        local_time("2024-03-10 02:30:00", chicago(nonexistent="reject"), CHICAGO)


def test_a_time_that_happens_twice_takes_the_chosen_one() -> None:
    earlier = local_time("2024-11-03 01:30:00", chicago(), CHICAGO)
    later = local_time("2024-11-03 01:30:00", chicago(ambiguous="later"), CHICAGO)
    assert earlier.isoformat() == "2024-11-03T01:30:00-05:00"
    assert later.isoformat() == "2024-11-03T01:30:00-06:00"
    assert (later.astimezone(UTC) - earlier.astimezone(UTC)).total_seconds() == 3600


def test_iso_times_and_an_offset_given_wins() -> None:
    iso = Time(format="iso", timezone="America/Los_Angeles")
    zone = ZoneInfo("America/Los_Angeles")
    assert local_time("2023-01-01T00:00:05", iso, zone).isoformat() == \
        "2023-01-01T00:00:05-08:00"
    assert local_time("2023-06-01T09:00:00+00:00", iso, zone).isoformat() == \
        "2023-06-01T09:00:00+00:00"
    with pytest.raises(ValueError, match="'01/02/2023' is not an ISO 8601 time"):
        local_time("01/02/2023", iso, zone)
    with pytest.raises(ValueError, match="is not format '%Y-%m-%d %H:%M:%S'"):
        local_time("2024-13-01 00:00:00", chicago(), CHICAGO)


def mapper(**changes: object) -> Mapper:
    return Mapper(make_profile(**changes), lookup_dirs=[])


def test_a_row_becomes_a_created_and_a_closed_event() -> None:
    m = mapper().map_row(7, row(call_no="T-9", closed="03/12/2024 15:00:00", prio="E",
                                block="0", beat="-1", lat="41.5", lon="-87.25"))
    assert m.outcome == "send"
    digest = m.events[0]["event_id"].rsplit(":", 1)[1]
    assert m.events == [
        {"event_id": f"testville:T-9:created:{digest}", "incident_id": "T-9",
         "type": "created", "occurred_at": "2024-03-12T14:05:00-05:00", "channel": "911",
         "nature_code": "MNTL", "nature_text": "MENTAL HEALTH [MH]", "priority": 0,
         "location": {"address": "MAIN ST", "lat": 41.5, "lon": -87.25}, "flags": []},
        {"event_id": f"testville:T-9:closed:{digest}", "incident_id": "T-9",
         "type": "closed", "occurred_at": "2024-03-12T15:00:00-05:00"},
    ]
    assert (m.code, m.nature_code, m.category, m.code_rule) == ("MH", "MNTL", "mental_health", 0)


def test_event_ids_come_from_the_row() -> None:
    mp = mapper()
    first = mp.map_row(1, row()).events[0]["event_id"]
    assert mp.map_row(99, row()).events[0]["event_id"] == first  # same row, same id
    assert mp.map_row(1, row(prio="3")).events[0]["event_id"] != first


def test_code_rules_in_order_with_conditions_and_flags() -> None:
    mp = mapper()
    drunk = mp.map_row(1, row(type="dist", type_desc="DRUNK"))
    assert (drunk.nature_code, drunk.category) == ("INTOX", "substance_use")
    loud = mp.map_row(2, row(type="DIST", type_desc="LOUD"))
    assert (loud.nature_code, loud.category, loud.code_rule) == ("DISORD", None, 2)
    shot = mp.map_row(3, row(type="SHOT", type_desc="SHOTS FIRED"))
    assert shot.events[0]["flags"] == ["violence", "weapon"]
    other = mp.map_row(4, row(type="PARK", type_desc="PARKING"))
    assert (other.nature_code, other.code_rule) == ("PARK", None)
    assert other.events[0]["nature_text"] == "PARKING"  # the city's own code: no suffix


def test_skip_rules_and_their_reasons() -> None:
    mp = mapper()
    assert (mp.map_row(1, row(type="TS")).outcome, mp.map_row(1, row(type="TS")).reason) == \
        ("skip", "officer_initiated")
    info = mp.map_row(2, row(type="INFO-LOG", call_no=""))
    assert (info.outcome, info.reason) == ("skip", "information_only")  # before any failure


def test_officer_initiated_rows_can_be_tagged_instead() -> None:
    mp = mapper(officer_initiated={"action": "tag", "when": {"column": "type", "in": ["TS"]}})
    m = mp.map_row(1, row(type="TS", source="PHONE-NE"))
    assert (m.outcome, m.channel) == ("send", "officer_on_scene")
    assert m.events[0]["channel"] == "officer_on_scene"


def test_channel_rules() -> None:
    mp = mapper()
    assert mp.map_row(1, row(source="PHONE-NE")).channel == "non_emergency"
    assert mp.map_row(1, row(source="field")).channel == "officer_on_scene"
    assert mp.map_row(1, row(source="")).channel == "911"


@pytest.mark.parametrize(("values", "reason", "value"), [
    ({"call_no": " "}, "no incident number (columns.incident_id is empty)", None),
    ({"received": ""}, "no call time (columns.received_at is empty)", None),
    ({"received": "2024-03-12"},
     "columns.received_at: is not format '%m/%d/%Y %H:%M:%S'", "2024-03-12"),
    ({"closed": "soon"}, "columns.closed_at: is not format '%m/%d/%Y %H:%M:%S'", "soon"),
])
def test_rows_that_cannot_become_events(values: dict[str, str], reason: str,
                                        value: str | None) -> None:
    # The reason leaves the row's value out, so rows that fail alike group together.
    m = mapper().map_row(5, row(**values))
    assert (m.outcome, m.reason, m.value, m.events) == ("fail", reason, value, [])


def test_reading_an_export(tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    # A byte-order mark decoded twice on the header, a blank line, a short row.
    lines = ["\u00ef\u00bb\u00bf" + ",".join(HEADER),
             ",".join(row(call_no="A-1").values()), "",
             ",".join(row(call_no="A-2").values()), "A-3,03/12/2024 14:05:00,,MH"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = list(mapper().map_file(path))
    assert [(m.row, m.outcome, m.incident_id) for m in out] == [
        (1, "send", "A-1"), (2, "send", "A-2"), (3, "fail", None)]
    assert out[2].reason == "the row has 4 fields, the header 12"
    assert [m.row for m in mapper().map_file(path, limit=2)] == [1, 2]


def test_lookup_and_null_values(tmp_path: Path) -> None:
    (tmp_path / "types.csv").write_text(
        "\ufeffcode,text,,\nMH,MENTAL CASE,,\nMH,SECOND ENTRY IGNORED,,\n", encoding="utf-8")
    doc = profile_doc()
    doc["columns"]["nature_text"] = {"column": "type", "lookup": {
        "file": "types.csv", "key": "code", "value": "text"}}
    export = write_export(tmp_path / "calls.csv", [row(), row(type="ZZ")])
    mp = Mapper.for_export(parse_profile(doc), export)
    first, unknown = mp.map_file(export)
    assert first.events[0]["nature_text"] == "MENTAL CASE [MH]"
    assert "nature_text" not in unknown.events[0]  # not in the lookup: no text


def test_check_accounts_for_every_row(tmp_path: Path) -> None:
    rows = [row(call_no="1"), row(call_no="2", type="TS"), row(call_no="3", type="INFOX"),
            row(call_no="4", type=""), row(call_no="5", received="bad"),
            row(call_no="6", type="DIST", type_desc="DRUNK", closed="03/12/2024 15:00:00"),
            row(call_no="7", type="SHOT", prio="high"),
            row(call_no="8", type="PARK", type_desc="PARKING")]
    export = write_export(tmp_path / "calls.csv", rows)
    report = check_export(mapper(), export, policy=compile_policy(load_default_policy()))
    assert report.rows == report.accounted == 8
    assert (report.sendable, report.events) == (3, 4)
    assert report.skipped == {"officer_initiated": 1, "information_only": 1}
    assert report.failed == {"columns.received_at: is not format '%m/%d/%Y %H:%M:%S'": 1}
    # Word for word what the server's 422 says.
    assert report.invalid == {
        "nature_code: a created event must carry the call's nature code": 1,
        "priority: Input should be a valid integer, unable to parse string as an integer": 1}
    assert report.hints == {"mental_health": 1, "substance_use": 1}
    assert report.categories == {"mental_health": 1, "substance_use": 1, "(none)": 1}
    assert report.passed_through == {"PARK": 1}
    assert not report.missed_hints
    text = report.render()
    assert "       3  would be sent (4 events)" in text
    assert "                 1  officer_initiated" in text


def test_a_close_can_be_assumed_where_the_export_has_none() -> None:
    mp = mapper(events={"assume_closed_after_minutes": 60})
    # Clocks go forward at 02:00: an hour after 01:30 CST is 03:30 CDT.
    m = mp.map_row(1, row(received="03/10/2024 01:30:00"))
    assert [e["occurred_at"] for e in m.events] == ["2024-03-10T01:30:00-06:00",
                                                    "2024-03-10T03:30:00-05:00"]
    given = mp.map_row(2, row(closed="03/12/2024 14:10:00"))
    assert given.events[1]["occurred_at"] == "2024-03-12T14:10:00-05:00"  # the export's own
    assert len(mapper().map_row(3, row()).events) == 1  # off by default
