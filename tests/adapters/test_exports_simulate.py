"""`liaison simulate` over CAD exports: a small hand-made one through the command line (table,
JSON, CSV), and the real San Diego export (skipped without ../shared, failed with CI=true)."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.exports.replay import CALL_COLUMNS, PROGRAM_COLUMNS
from adapters.exports.simulate_command import Intake, calls_from_export
from api.cli import main
from routing.whatif import ServiceTimes, WhatIfReport, simulate
from rules.evaluate import compile_policy
from rules.load import parse_policy
from service.access.auth import Role
from service.access.client_auth import TOKEN_ENV
from service.settings import Settings
from tests.conftest import ROOT, running_server
from tests.factories import PROFILE, row, shipped_doc, write_export, write_profile
from tests.shared_data import SAN_DIEGO, SAN_DIEGO_ROWS, shared_export, shipped_mapper


def write_policy(path: Path, **program: Any) -> Path:
    doc = shipped_doc()
    doc["policy"]["version"] = "draft"
    doc["program"].update(program)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def small_export(tmp_path: Path) -> tuple[Path, Path]:
    # Central time; the shipped policy's hours are 08:00-24:00 New York time.
    rows = [
        row(call_no="T-1", received="03/10/2026 13:00:00"),  # MH -> mental health, 14:00 ET
        row(call_no="T-2", received="03/10/2026 13:20:00"),  # overlaps T-1
        row(call_no="T-3", received="03/10/2026 02:00:00"),  # 03:00 ET: off hours
        row(call_no="T-4", received="03/10/2026 13:30:00", type="SHOT", type_desc="SHOTS"),
        row(call_no="T-5", received="03/10/2026 13:40:00", type="TS"),  # traffic stop: skip
        row(call_no="", received="03/10/2026 13:50:00"),  # no incident number: fails
    ]
    export = write_export(tmp_path / "calls.csv", rows)
    profile = write_profile(tmp_path / "testville.yaml", PROFILE)
    return export, profile


def test_cli_table_json_and_csv_of_changed_calls(small_export: tuple[Path, Path],
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    export, profile = small_export
    baseline = write_policy(tmp_path / "one.yaml", units=1)
    candidate = write_policy(tmp_path / "two.yaml", units=2)
    changed = tmp_path / "changed.csv"
    args = ["simulate", "--policy", str(candidate), "--calls", str(export), "--profile",
            str(profile), "--baseline", str(baseline), "--csv", str(changed), "--no-progress"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert ("6 rows with profile testville@1: 4 calls decided, 1 skipped, 1 failed to map, "
            "0 refused by the CAD contract") in table
    assert "1 calls change destination" in table
    assert "police -> call_team" in table

    with open(changed, newline="", encoding="utf-8") as f:
        [only] = list(csv.DictReader(f))
    assert only["call_id"] == "T-2" and only["nature_code"] == "MNTL"
    assert (only["baseline_destination"], only["candidate_destination"]) == (
        "police", "call_team")
    assert only["baseline_why"] == "units_busy" and only["candidate_rule"] == "mental-health"
    assert only["occurred_at"] == "2026-03-10T13:20:00-05:00"
    assert "All 1 team units are busy" in only["baseline_explanation"]

    assert main([*args[:-3], "--json", "--no-progress", "--seed", "5"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["intake"] == {"rows": 6, "calls": 4, "skipped": {"officer_initiated": 1},
                             "failed": {"no incident number (columns.incident_id is empty)": 1},
                             "refused": {}}
    assert doc["seed"] == 5 and doc["calls"] == 4
    assert doc["baseline"]["coverage"]["not_served"] == {"off_hours": 1, "units_busy": 1}
    assert doc["candidate"]["coverage"]["not_served"] == {"off_hours": 1}
    assert doc["candidate"]["destinations"] == {"call_team": 2, "police": 2}
    assert len(doc["candidate"]["coverage"]["not_served_by_hour_of_week"]) == 168
    [group] = doc["changes"]
    assert group["count"] == 1 and group["examples"][0]["call_id"] == "T-2"


def test_cli_writes_every_call_as_the_candidate_decides(
        small_export: tuple[Path, Path], tmp_path: Path) -> None:
    """`--calls-csv`: the columns of `liaison replay --calls-csv`, one line a call in CAD
    time, the call id empty (no server made one)."""
    export, profile = small_export
    calls_csv = tmp_path / "calls.csv"
    assert main(["simulate", "--policy", str(write_policy(tmp_path / "two.yaml", units=2)),
                 "--calls", str(export), "--profile", str(profile), "--baseline",
                 str(write_policy(tmp_path / "one.yaml", units=1)), "--calls-csv",
                 str(calls_csv), "--no-progress"]) == 0
    with open(calls_csv, newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))
    assert tuple(lines[0]) == CALL_COLUMNS
    assert lines[1:] == [
        ["T-3", "", "2026-03-10T02:00:00-05:00", "police", "mental_health", "off_hours"],
        ["T-1", "", "2026-03-10T13:00:00-05:00", "call_team", "mental_health", ""],
        ["T-2", "", "2026-03-10T13:20:00-05:00", "call_team", "mental_health", ""],
        ["T-4", "", "2026-03-10T13:30:00-05:00", "police", "", ""]]


def write_programs_policy(path: Path) -> Path:
    """The shipped policy as one program of one unit whose mental-health calls may wait an
    hour for it."""
    doc = shipped_doc()
    doc["policy"]["version"] = "queue"
    doc["programs"] = [{"id": "call", "name": "CALL field team",
                        "hours": {"daily": ["08:00-24:00"]}, "units": 1,
                        "queue": [{"category": "mental_health", "max_wait_minutes": 60}],
                        "deferrable": ["officer_referral", "follow_up"]}]
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def test_cli_simulates_a_queue_of_a_policy_of_programs(
        small_export: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """T-1 (14:00 ET) holds the one unit 45 minutes; T-2 (14:20) waits for it and is taken
    at 14:45: the table, the JSON and the calls CSV say so; with --no-wait T-2 goes to
    police as the one-team baseline sends it."""
    export, profile = small_export
    times = tmp_path / "times.yaml"
    times.write_text("distribution: fixed\ndefault_minutes: 45\nby_category: {}\n",
                     encoding="utf-8")
    calls_csv = tmp_path / "decided.csv"
    args = ["simulate", "--policy", str(write_programs_policy(tmp_path / "q.yaml")),
            "--calls", str(export), "--profile", str(profile), "--baseline",
            str(write_policy(tmp_path / "one.yaml", units=1)), "--service-times", str(times),
            "--no-progress"]
    assert main([*args, "--calls-csv", str(calls_csv)]) == 0
    table = capsys.readouterr().out
    assert "queued, then served" in table
    assert "st-petersburg-call@queue, by program:" in table
    assert ("    call            3         2   66.7%       1         0          0"
            "       25.0 / 25.0         7.7%") in table
    with open(calls_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [*CALL_COLUMNS, *PROGRAM_COLUMNS]
    assert [(r["incident_id"], r["destination"], r["program_id"], r["waited"])
            for r in rows] == [("T-3", "police", "call", "false"),
                               ("T-1", "call_team", "call", "false"),
                               ("T-2", "call_team", "call", "true"),
                               ("T-4", "police", "", "false")]

    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cand, base = doc["candidate"], doc["baseline"]
    assert cand["queue"]["queued"] == cand["queue"]["queued_served"] == 1
    assert cand["queue"]["waits"] == {"calls": 1, "p50_minutes": 25.0, "p90_minutes": 25.0}
    assert cand["queue"]["waits_by_category"]["mental_health"]["p50_minutes"] == 25.0
    assert cand["queue"]["not_served"]["off_hours"] == 1
    assert (cand["reach"], base["reach"]) == (round(2 / 3, 6), round(1 / 3, 6))
    assert cand["safety_exclusions_to_team"] == 0
    [call_program] = cand["programs"]
    assert (call_program["id"], call_program["served"], call_program["eligible"]) == (
        "call", 2, 3)

    assert main([*args, "--json", "--no-wait"]) == 0
    before = json.loads(capsys.readouterr().out)["candidate"]
    assert before["queue"]["queued"] == 0 and before["reach"] == round(1 / 3, 6)
    assert before["coverage"]["not_served"] == {"off_hours": 1, "units_busy": 1}


def test_cli_refuses_a_broken_service_times_file(small_export: tuple[Path, Path],
                                                 tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    export, profile = small_export
    bad = tmp_path / "times.yaml"
    bad.write_text("distribution: weibull\n", encoding="utf-8")
    policy = write_policy(tmp_path / "p.yaml")
    assert main(["simulate", "--policy", str(policy), "--calls", str(export), "--profile",
                 str(profile), "--service-times", str(bad), "--no-progress"]) == 2
    assert "distribution" in capsys.readouterr().err


# --- the real San Diego export -------------------------------------------------------

def _shipped(units: int) -> Any:
    doc = shipped_doc()
    doc["policy"]["version"] = f"units-{units}"
    doc["program"]["units"] = units
    return compile_policy(parse_policy(doc))


@pytest.fixture(scope="module")
def san_diego() -> tuple[Intake, WhatIfReport, float]:
    path = shared_export(SAN_DIEGO)
    started = time.perf_counter()
    calls, intake = calls_from_export(shipped_mapper("san-diego", path), path)
    report = simulate(calls, _shipped(8), _shipped(4), service_times=ServiceTimes(), seed=1)
    return intake, report, time.perf_counter() - started


def test_san_diego_every_call_is_decided_by_both(
        san_diego: tuple[Intake, WhatIfReport, float]) -> None:
    intake, r, seconds = san_diego
    assert intake.rows == SAN_DIEGO_ROWS == intake.accounted
    assert not intake.failed
    assert intake.refused.total() == 19  # no call type: the contract refuses them
    assert r.calls == intake.calls > 16_000
    for v in (r.candidate, r.baseline):
        assert sum(v.destinations.values()) == r.calls
        assert sum(sum(d.values()) for d in v.by_category.values()) == r.calls
        cov = v.coverage
        assert sum(cov.not_served_by_hour_of_week) == sum(cov.not_served.values())
        assert cov.team_responses == v.destinations.get("call_team", 0) + v.destinations.get(
            "joint", 0)
    print(f"San Diego what-if (mapping + both versions + coverage): {seconds:.2f} s")


def test_san_diego_more_units_fewer_calls_turned_away(
        san_diego: tuple[Intake, WhatIfReport, float]) -> None:
    _, r, _ = san_diego
    busy8 = r.candidate.coverage.not_served.get("units_busy", 0)
    busy4 = r.baseline.coverage.not_served["units_busy"]
    assert busy8 < busy4
    # same rules, same hours: eligibility and off-hours do not move
    assert r.candidate.coverage.eligible == r.baseline.coverage.eligible
    assert r.candidate.coverage.not_served["off_hours"] == r.baseline.coverage.not_served[
        "off_hours"]
    assert r.candidate.team_share > r.baseline.team_share
    assert r.candidate.coverage.utilisation < r.baseline.coverage.utilisation
    assert r.changed == sum(g.count for g in r.changes) == len(r.changed_calls) > 0
    assert {(g.from_destination, g.to_destination) for g in r.changes} <= {
        ("police", "call_team"), ("call_team", "police")}


@pytest.mark.asyncio
async def test_the_default_baseline_is_the_published_version(
        small_export: tuple[Path, Path], tmp_path: Path) -> None:
    export, profile = small_export
    candidate = write_policy(tmp_path / "two.yaml", units=2)

    async def simulate_cli(*extra: str, token: str = "") -> tuple[int, str, str]:
        # A child process: the server under test shares this event loop.
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        if token:
            env[TOKEN_ENV] = token  # reading policies is a supervisor's
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.cli", "simulate", "--policy", str(candidate),
            "--calls", str(export), "--profile", str(profile), "--json", "--no-progress",
            *extra, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    async with running_server(settings) as server:
        # Publish a one-unit version 2: it becomes the default baseline.
        doc = shipped_doc()
        doc["policy"]["version"] = "2"
        doc["program"]["units"] = 1
        next(t for t in doc["tests"] if t["name"] == "every unit busy")["availability"] = {
            "units_busy": 1}
        created = await server.client.post("/v1/policies", json={
            "document": yaml.safe_dump(doc), "author": "t"})
        assert created.status_code == 201, created.text
        assert (await server.client.post("/v1/policies/2/publish")).status_code == 200
        # Without a key: the shipped policy, saying how to reach the published one.
        code, out, err = await simulate_cli("--url", server.base_url)
        assert code == 0 and f"set {TOKEN_ENV}" in err, err
        assert "the baseline is the shipped policy" in err
        code, out, err = await simulate_cli(
            "--url", server.base_url, token=server.creds.keys[Role.supervisor])
    assert code == 0, err
    assert f"baseline is st-petersburg-call@2, published at {server.base_url}" in err
    report = json.loads(out)
    assert report["baseline"]["coverage"]["not_served"] == {"off_hours": 1, "units_busy": 1}

    # Nothing answering: the shipped policy, and it says so.
    code, out, err = await simulate_cli("--url", "http://127.0.0.1:9")
    assert code == 0 and "the baseline is the shipped policy" in err
    assert json.loads(out)["baseline"]["coverage"]["not_served"] == {"off_hours": 1}


@pytest.fixture(scope="module")
def san_diego_calls() -> list[Any]:
    path = shared_export(SAN_DIEGO)
    calls, _ = calls_from_export(shipped_mapper("san-diego", path), path)
    return calls


def test_san_diego_queue_recovers_calls_lost_to_capacity_and_no_exclusion_waits(
        san_diego_calls: list[Any]) -> None:
    """The shipped policy as programs with queue limits and deferral (bench/reach.py's
    variant), same four units: calls lost to busy units are queued instead, reach rises,
    and no call a safety exclusion matched reaches a team. Without waiting, the programs
    decide every call as the one-team policy does."""
    from bench.reach import with_queue
    from rules.evaluate import classify_for_routing

    today = _shipped(4)
    queue = compile_policy(parse_policy(with_queue(shipped_doc(), 4)))
    after = simulate(san_diego_calls, queue, today, service_times=ServiceTimes(), seed=1,
                     keep_calls=True)
    before = simulate(san_diego_calls, queue, queue, service_times=ServiceTimes(), seed=1,
                      keep_calls=True, may_wait=False)
    one_team = simulate(san_diego_calls, today, today, service_times=ServiceTimes(), seed=1,
                        keep_calls=True)
    assert [c.destination for c in before.decided] == [c.destination
                                                       for c in one_team.decided]
    cand, base = after.candidate, after.baseline
    assert cand.queue is not None and cand.queue.queued > 0
    assert cand.coverage.not_served.get("units_busy", 0) == 0 < base.coverage.not_served[
        "units_busy"]
    assert cand.coverage.not_served["off_hours"] == base.coverage.not_served["off_hours"]
    assert cand.reach > base.reach == before.candidate.reach
    assert cand.queue.waits.p90_minutes is not None and cand.queue.waits.p90_minutes <= 60
    excluded = {c.call_id for c in san_diego_calls
                if classify_for_routing(c.facts, queue).exclusions}
    assert len(excluded) > 100
    assert {c.destination for c in after.decided if c.call_id in excluded} == {"police"}
    assert cand.safety_exclusions_to_team == base.safety_exclusions_to_team == 0
