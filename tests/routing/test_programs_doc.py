"""docs/programs.md's worked example, as written: its programs on the shipped policy's
rules, its area file beside the policy, and its test cases passing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from routing.cases import run_tests
from routing.decide import decide_call
from routing.models import Availability, Destination
from rules.evaluate import compile_policy
from rules.load import load_policy_file, load_policy_text
from tests.factories import facts, shipped_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "programs.md"


def test_the_worked_example_loads_and_its_cases_pass(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text("utf-8"), re.DOTALL)
    programs, cases = yaml.safe_load(blocks[0]), yaml.safe_load(blocks[1])
    doc = shipped_doc()
    doc.update(program=programs["program"], programs=programs["programs"],
               tests=cases["tests"])
    (tmp_path / "areas").mkdir()
    square = [[-82.66, 27.76], [-82.63, 27.76], [-82.63, 27.78], [-82.66, 27.78],
              [-82.66, 27.76]]
    (tmp_path / "areas" / "call.geojson").write_text(json.dumps(
        {"type": "Polygon", "coordinates": [square]}))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(doc))
    policy = load_policy_file(tmp_path / "policy.yaml")
    assert policy.program.units == 5  # 4 + 1, left out of `program:`
    results = run_tests(policy)
    assert len(results) == 2 and all(r.passed for r in results), [
        (r.name, r.failures) for r in results]
    # The crisis line is its own phone program, at night with every field unit busy.
    compiled = compile_policy(policy)
    line = decide_call(facts(channel="crisis_line", nature_code="X",
                             occurred_at="2026-03-11T03:00:00-04:00"), compiled,
                       Availability(units_total=5, units_busy=5))
    assert (line.destination, line.program.id) == (Destination.call_team, "crisis-line")


README = DOC.parents[1] / "README.md"


def test_the_readmes_programs_example_is_a_policy_whose_cases_pass() -> None:
    """README.md's worked example of `programs:`, as written: a whole policy."""
    text = README.read_text("utf-8")
    section = text[text.index("### Response programs: hours, area, queue and deferral"):]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    policy = load_policy_text(block.group(1), "README example")
    assert [p.id for p in policy.programs or []] == ["call", "crisis-line"]
    assert policy.program.units == 4  # left out: the programs' own
    results = run_tests(policy)
    assert len(results) == 5 and all(r.passed for r in results), [
        (r.name, r.failures) for r in results]
