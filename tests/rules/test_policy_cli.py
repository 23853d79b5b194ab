"""`liaison policy check FILE` as a real subprocess: exit codes and what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from rules.load import load_default_policy
from tests.factories import DOWNTOWN, policy_doc, programs_doc, shipped_doc

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "rules" / "policies" / "st_petersburg_call.yaml"


def policy_check(path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", "policy", "check", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_shipped_policy_passes() -> None:
    policy = load_default_policy()
    n = len(policy.tests)
    result = policy_check(SHIPPED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "policy st-petersburg-call@1 is valid" in result.stdout
    assert (f"(phase {policy.program.phase}, {len(policy.exclusions)} exclusions, "
            f"{len(policy.rules)} rules)") in result.stdout
    assert result.stdout.count("  PASS  ") == n
    assert "FAIL" not in result.stdout
    assert result.stdout.rstrip().endswith(f"{n} passed, 0 failed")
    assert result.stderr == ""


def test_failing_test_case_exits_1(tmp_path: Path) -> None:
    doc = policy_doc()
    doc["tests"] = [
        {"name": "code X goes to the team", "call": {"nature_code": "X",
                                                     "occurred_at": "2026-03-10T14:00:00-04:00"},
         "expect": {"destination": "call_team", "category": "cat_a"}},
        {"name": "code X goes to police (wrong on purpose)",
         "call": {"nature_code": "X", "occurred_at": "2026-03-10T14:00:00-04:00"},
         "expect": {"destination": "police", "mode": "police_only"}},
    ]
    path = tmp_path / "failing.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = policy_check(path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "  PASS  code X goes to the team" in lines
    at = lines.index("  FAIL  code X goes to police (wrong on purpose)")
    details = lines[at + 1:at + 4]
    assert details[0].strip() == "destination: expected 'police', got 'call_team'"
    assert details[1].strip() == "mode: expected 'police_only', got 'call_with_police_standby'"
    assert details[2].strip().startswith("decision: Rule 'r' matched")
    assert lines[-1] == "1 passed, 1 failed"


def test_invalid_policy_exits_2_listing_every_error(tmp_path: Path) -> None:
    doc = shipped_doc()
    doc["rules"][1]["when"]["nature_cod"] = ["EDP"]
    doc["program"]["timezone"] = "America/Atlantis"
    path = tmp_path / "invalid.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = policy_check(path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert f"{path}: invalid policy (2 error(s))" in result.stderr
    assert "  rules[1].when.nature_cod: Extra inputs are not permitted" in result.stderr
    assert "  program.timezone: unknown time zone 'America/Atlantis'" in result.stderr


def test_yaml_syntax_error_exits_2_with_a_line_number(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("policy: {id: x, version: '1'\nprogram: [\n", encoding="utf-8")
    result = policy_check(path)
    assert result.returncode == 2
    assert "invalid policy (1 error(s))" in result.stderr
    assert "  line " in result.stderr and "not valid YAML" in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    result = policy_check(path)
    assert result.returncode == 2
    assert f"cannot read {path}" in result.stderr


def test_static_analysis_warnings_are_shown_without_failing(tmp_path: Path) -> None:
    doc = shipped_doc()
    # A second copy of the welfare rule, after the first: it can never match.
    twin = next(r for r in doc["rules"] if r["id"] == "call-for-assistance")
    doc["rules"].append({**twin, "id": "call-for-assistance-again"})
    path = tmp_path / "shadowed.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = policy_check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    warns = [line for line in result.stdout.splitlines() if line.startswith("  WARN  ")]
    assert warns and warns[0].startswith("  WARN  shadowed:")
    assert "call-for-assistance-again" in warns[0]
    shipped = policy_check(ROOT / "rules" / "policies" / "st_petersburg_call.yaml")
    assert "  static analysis: no warning(s)" in shipped.stdout.splitlines()


def test_policy_check_of_programs_reads_area_files_and_explains_new_fields(
        tmp_path: Path) -> None:
    doc = programs_doc()
    doc["programs"][0]["area"] = {"file": "downtown.geojson"}
    doc["tests"] = [{"name": "downtown, Friday night: scheduled for Saturday",
                     "call": {"channel": "officer_referral", "nature_code": "VAG",
                              "lat": 27.77, "lon": -82.64,
                              "occurred_at": "2026-03-06T22:00:00"},
                     "expect": {"destination": "call_team", "program": "field",
                                "deferred_until": "2026-03-07T10:00:00"}},
                    {"name": "written for another zone",
                     "call": {"nature_code": "VAG", "occurred_at": "2026-03-10T14:00:00-07:00"},
                     "expect": {"destination": "call_team"}}]
    (tmp_path / "downtown.geojson").write_text(json.dumps(DOWNTOWN), encoding="utf-8")
    path = tmp_path / "programs.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = policy_check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "  PASS  downtown, Friday night: scheduled for Saturday" in result.stdout
    assert "WARN  test_time: test 1 'written for another zone': 2026-03-10T14:00:00-07:00 " \
           "is 2026-03-10 17:00 in America/New_York" in result.stdout

    doc["programs"][1]["hours"] = {"mon": ["9-5"]}
    doc["programs"][0]["queue"][0]["max_wait_minutes"] = -3
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = policy_check(path)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "programs[1].hours.mon: shift 0: '9' is not a time of day" in out
    assert ("programs[0].queue[0].max_wait_minutes: Input should be greater than or equal "
            "to 0") in out
