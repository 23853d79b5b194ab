"""Shared pieces for the export replay tests: the real city exports in ../shared/data (read
in place, never copied), and a small hand-made export with its own profile."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import yaml

from adapters.exports.mapping import Mapper
from adapters.exports.profile import Profile, parse_profile, resolve_profile
from tests.conftest import ROOT, unavailable

SHARED_DATA = ROOT.parent / "shared" / "data"
SAN_DIEGO = "san_diego/pd_calls_for_service_2023_datasd.csv"
NASHVILLE = "nashville/calls_2024.csv"
SAN_DIEGO_ROWS = 26_595
NASHVILLE_ROWS = 26_935
SAN_JOSE = [f"san_jose/sampled_file{year}.csv" for year in (2022, 2023, 2024)]
MILWAUKEE = "milwaukee/data.csv"
MILWAUKEE_ROWS = 33_968
# Profiles for San Jose and Milwaukee written as a new user would (tests only).
TEST_PROFILES = Path(__file__).parent / "profiles"


def shared_export(relative: str) -> Path:
    """A real export; a clone without ../shared skips, CI fails."""
    path = SHARED_DATA / relative
    if not path.is_file():
        unavailable(f"real CAD export not found at {path}: the city extracts sit beside the "
                    "project as ../shared/data (a fresh clone has none)")
    return path


def shipped_mapper(name: str, export: Path) -> Mapper:
    profile, where = resolve_profile(name)
    return Mapper.for_export(profile, export, where)


# A made-up city: one row per incident, local Central time, a close time, a channel column.
HEADER = ["call_no", "received", "closed", "type", "type_desc", "prio", "block", "street",
          "beat", "source", "lat", "lon"]

PROFILE: dict[str, Any] = {
    "profile": {"id": "testville", "version": "1", "name": "Testville PD"},
    "columns": {
        "incident_id": "call_no",
        "received_at": "received",
        "closed_at": "closed",
        "nature_code": "type",
        "nature_text": "type_desc",
        "priority": {"column": "prio", "map": {"E": "0"}},
        "address": {"column": ["block", "street"], "null_values": ["0"]},
        "district": {"column": "beat", "null_values": ["-1"]},
        "lat": "lat",
        "lon": "lon",
    },
    "time": {"format": "%m/%d/%Y %H:%M:%S", "timezone": "America/Chicago"},
    "channel": {"default": "911", "rules": [
        {"channel": "non_emergency", "when": {"column": "source", "in": ["PHONE-NE"]}},
        {"channel": "officer_on_scene", "when": {"column": "source", "in": ["FIELD"]}},
    ]},
    "officer_initiated": {"action": "skip", "when": {"column": "type", "in": ["TS", "BC"]}},
    "skip": [{"reason": "information_only", "when": {"column": "type", "prefix": ["INFO"]}}],
    "codes": [
        {"code": ["MH"], "nature_code": "MNTL", "category": "mental_health"},
        {"code": ["DIST"], "when": {"column": "type_desc", "in": ["DRUNK"]},
         "nature_code": "INTOX", "category": "substance_use"},
        {"code": ["DIST"], "nature_code": "DISORD"},
        {"code": ["SHOT"], "nature_code": "SHOOT", "flags": ["weapon", "violence"]},
    ],
}


def profile_doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(PROFILE)
    doc.update(changes)
    return doc


def make_profile(**changes: Any) -> Profile:
    return parse_profile(profile_doc(**changes), "test profile")


def row(**values: str) -> dict[str, str]:
    base = {k: "" for k in HEADER}
    base.update(call_no="T-1", received="03/12/2024 14:05:00", type="MH",
                type_desc="MENTAL HEALTH", prio="2", block="100", street="MAIN ST",
                beat="B1", source="911")
    base.update(values)
    return base


def write_export(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def write_profile(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
