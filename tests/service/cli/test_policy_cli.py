"""`liaison policy …` workbench commands against a running Liaison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rules.load import default_policy_text
from service.access.auth import Role
from service.access.client_auth import TOKEN_ENV
from tests.conftest import Server
from tests.factories import as_role
from tests.factories import liaison as liaison_as

pytestmark = pytest.mark.asyncio

SUPERVISOR = "test-supervisor"  # the name of the supervisor's key (tests/credentials.py)


async def test_draft_validate_publish_diff_dry_run_rollback(server: Server,
                                                            tmp_path: Path) -> None:
    url = ["--url", server.base_url]
    env = as_role(server, Role.supervisor)

    async def liaison(*args: str) -> tuple[int, str, str]:
        return await liaison_as(*args, env=env)

    # Without a key it says what to do, and a role that may not manage policies is told so.
    code, _, err = await liaison_as("policy", "list", *url)
    assert code == 2 and f"set {TOKEN_ENV}" in err, err
    code, _, err = await liaison_as("policy", "list", *url,
                                    env=as_role(server, Role.dispatcher))
    assert code == 2 and "may not do this" in err, err

    code, out, _ = await liaison("policy", "list", *url)
    assert code == 0 and "in force: st-petersburg-call@1" in out and "published" in out

    doc = yaml.safe_load(default_policy_text())
    doc["policy"]["version"] = "2"
    doc["programs"][0]["units"] = 6  # the CALL field team: the programs' units in all
    # The policy's own capacity test follows the change, or publishing is refused.
    next(t for t in doc["tests"] if t["name"].startswith("every unit busy")
         )["availability"] = {"units_busy": 6}
    for case in doc["tests"]:  # and so do its cases of every field unit busy
        field = case.get("availability", {}).get("programs", {}).get("call")
        if field:
            field["units_busy"] = 6
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump(doc, sort_keys=False))

    code, out, _ = await liaison("policy", "validate", str(draft), *url)
    assert code == 0 and "st-petersburg-call@2 is valid" in out
    code, out, _ = await liaison("policy", "create", str(draft), "--author", "sup-1",
                                 "--comment", "two more units", *url)
    assert code == 0 and '"status": "draft"' in out
    # The author is the key that sent it, not what the command line claims.
    created = json.loads(out)
    assert created["author"] == SUPERVISOR and created["comment"] == "two more units"
    code, out, _ = await liaison("policy", "list", *url)
    assert code == 0 and SUPERVISOR in out and "sup-1" not in out
    code, out, _ = await liaison("policy", "diff", "2", *url)
    # The field team's units, a line with its comment in the shipped text.
    assert code == 0 and "+  units: 6" in out
    assert any(line.startswith("-") and "units: 4" in line for line in out.splitlines())
    code, out, _ = await liaison("policy", "test", "2", *url)
    cases = len(yaml.safe_load(default_policy_text())["tests"])  # the shipped policy's
    assert code == 0 and out.rstrip().endswith(f"{cases} passed, 0 failed")

    call = tmp_path / "call.json"
    call.write_text(json.dumps({"nature_code": "EDP", "flags": ["weapon"],
                                "occurred_at": "2026-03-10T14:00:00-04:00"}))
    code, out, _ = await liaison("policy", "dry-run", "2", "--call", str(call), *url)
    assert code == 0 and out.startswith("police (police_only), category mental_health")
    assert "HELD exclusion weapon" in out and "✓ flags include any of" in out

    # Scheduled for later, listed as such, then cancelled.
    code, out, _ = await liaison("policy", "publish", "2", "--at", "2099-01-01T08:00:00+00:00",
                                 *url)
    assert code == 0
    code, out, _ = await liaison("policy", "list", *url)
    assert "scheduled to publish at 2099-01-01T08:00:00+00:00" in out
    code, out, _ = await liaison("policy", "unschedule", "2", *url)
    assert code == 0 and '"publish_at": null' in out
    code, _, err = await liaison("policy", "unschedule", "2", *url)
    assert code == 1 and "no scheduled publish" in err

    code, out, _ = await liaison("policy", "publish", "2", *url)
    assert code == 0
    decided = await server.post_event()
    assert decided.json()["decision"]["policy_version"] == "st-petersburg-call@2"
    code, out, _ = await liaison("policy", "rollback", "1", *url)
    assert code == 0
    assert (await server.post_event()).json()["decision"]["policy_version"] == \
        "st-petersburg-call@1"
    code, out, _ = await liaison("policy", "show", "2", "--yaml", *url)
    assert code == 0 and yaml.safe_load(out) == doc


async def test_refusals_are_explained(server: Server, tmp_path: Path) -> None:
    url = ["--url", server.base_url]
    env = as_role(server, Role.supervisor)

    async def liaison(*args: str) -> tuple[int, str, str]:
        return await liaison_as(*args, env=env)

    doc = yaml.safe_load(default_policy_text())
    doc["policy"]["version"] = "3"
    doc["rules"][0]["when"] = {"nature_cod": ["X"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, _, err = await liaison("policy", "create", str(bad), *url)
    assert code == 1 and "rules[0].when.nature_cod: Extra inputs are not permitted" in err

    doc = yaml.safe_load(default_policy_text())
    doc["policy"]["version"] = "4"
    doc["tests"][0]["expect"]["destination"] = "police"
    failing = tmp_path / "failing.yaml"
    failing.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert (await liaison("policy", "create", str(failing), *url))[0] == 0
    code, _, err = await liaison("policy", "publish", "4", *url)
    assert code == 1 and "a test case fails" in err and "FAIL" in err
    code, _, err = await liaison("policy", "show", "99", *url)
    assert code == 2
