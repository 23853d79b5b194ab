"""The policy file is re-read on SIGHUP: a broken one is refused and the policy in force
stays (health says why), a valid one takes over for new decisions; and a server never
starts on a broken policy."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from rules.load import default_policy_text, load_policy_file
from tests.conftest import ROOT, WAIT, Subprocess, free_port, start_subprocess
from tests.factories import event

UNKNOWN_KEY = "rules[0].colour: Extra inputs are not permitted"


def policy_doc(version: str, units: int) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(default_policy_text())
    doc["policy"]["version"] = version
    doc["programs"][0]["units"] = units  # the CALL field team: the programs' units in all
    return doc


def write_policy(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def write_unknown_key(path: Path) -> None:
    doc = policy_doc("3", 4)
    doc["rules"][0]["colour"] = "red"
    write_policy(path, doc)


def write_bad_yaml(path: Path) -> None:
    path.write_text("policy:\n  id: st-petersburg-call\n  version: [unclosed\n",
                    encoding="utf-8")


def write_not_utf8(path: Path) -> None:
    # e.g. a policy saved as UTF-16 or Latin-1 by an editor
    path.write_bytes("policy:\n  id: caf\u00e9\n".encode("utf-16"))


async def health(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/v1/health")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def hup_and_wait(sp: Subprocess, client: httpx.AsyncClient,
                       until: Callable[[dict[str, Any]], bool],
                       within: float = WAIT) -> dict[str, Any]:
    """SIGHUP the server, then poll health until `until` holds (the reload is async)."""
    sp.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + within
    while True:
        h = await health(client)
        if until(h):
            return h
        assert sp.proc.poll() is None, f"SIGHUP ended the server:\n{sp.log()}"
        assert time.monotonic() < deadline, f"reload not seen in health: {h}\n{sp.log()}"
        await asyncio.sleep(0.05)


async def decide(client: httpx.AsyncClient, body: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    r = await client.post("/v1/cad/events", json=body or event())
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.asyncio
async def test_sighup_keeps_last_good_policy_and_adopts_a_valid_one(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    write_policy(policy, policy_doc("1", 3))
    load_policy_file(policy)  # the test's own copy is valid
    sp = start_subprocess(f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}", tmp_path,
                          extra=["--policy", str(policy)])
    try:
        async with sp.client() as client:
            h = await health(client)
            assert h["policy"]["version"] == "st-petersburg-call@1"
            assert h["policy"]["reload_error"] is None
            first_body = event()
            first = await decide(client, first_body)
            assert first["decision"]["policy_version"] == "st-petersburg-call@1"
            assert first["decision"]["program"]["units_total"] == 3  # the file, not the default

            # A rule with an unknown key: refused, the old policy stays, health says why.
            write_unknown_key(policy)
            h = await hup_and_wait(sp, client, lambda h: h["policy"]["reload_error"] is not None)
            assert h["status"] == "ok"
            assert h["policy"]["version"] == "st-petersburg-call@1"
            assert UNKNOWN_KEY in h["policy"]["reload_error"], h
            assert str(policy) in h["policy"]["reload_error"], h
            d = (await decide(client))["decision"]
            assert (d["policy_version"], d["program"]["units_total"]) == (
                "st-petersburg-call@1", 3)

            # Not even YAML: refused the same way, and the error is the new one.
            write_bad_yaml(policy)
            h = await hup_and_wait(
                sp, client, lambda h: "not valid YAML" in (h["policy"]["reload_error"] or ""))
            assert h["policy"]["version"] == "st-petersburg-call@1"
            assert UNKNOWN_KEY not in h["policy"]["reload_error"]
            d = (await decide(client))["decision"]
            assert d["policy_version"] == "st-petersburg-call@1"

            # A valid version 2 takes over, and the error is cleared.
            write_policy(policy, policy_doc("2", 5))
            h = await hup_and_wait(
                sp, client, lambda h: h["policy"]["version"] == "st-petersburg-call@2")
            assert h["status"] == "ok"
            assert h["policy"]["reload_error"] is None
            d = (await decide(client))["decision"]
            assert (d["policy_version"], d["program"]["units_total"]) == (
                "st-petersburg-call@2", 5)
            # A retry of an event decided under version 1 keeps its first answer.
            again = await decide(client, first_body)
            assert again == first
    finally:
        sp.stop()


@pytest.mark.asyncio
async def test_sighup_reports_a_policy_that_is_not_utf8(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    write_policy(policy, policy_doc("1", 3))
    sp = start_subprocess(f"sqlite+aiosqlite:///{tmp_path / 'liaison.db'}", tmp_path,
                          extra=["--policy", str(policy)])
    try:
        async with sp.client() as client:
            write_not_utf8(policy)
            h = await hup_and_wait(sp, client,
                                   lambda h: h["policy"]["reload_error"] is not None)
            assert h["policy"]["version"] == "st-petersburg-call@1"
            assert str(policy) in h["policy"]["reload_error"], h
            d = (await decide(client))["decision"]
            assert d["policy_version"] == "st-petersburg-call@1"
    finally:
        sp.stop()


def liaison_cmd() -> list[str]:
    script = Path(sys.executable).parent / "liaison"
    return [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]


@pytest.mark.parametrize("broken, reason", [
    (write_unknown_key, UNKNOWN_KEY),
    (write_bad_yaml, "not valid YAML"),
    (None, "cannot read"),
    (write_not_utf8, "is not UTF-8 text"),
], ids=["unknown-key", "bad-yaml", "missing-file", "not-utf8"])
def test_serve_refuses_a_broken_policy(tmp_path: Path, broken: Callable[[Path], None] | None,
                                       reason: str) -> None:
    policy = tmp_path / "broken.yaml"
    if broken is not None:
        broken(policy)
    db = tmp_path / "liaison.db"
    done = subprocess.run(
        [*liaison_cmd(), "serve", "--policy", str(policy), "--port", str(free_port()),
         "--database-url", f"sqlite+aiosqlite:///{db}", "--log-level", "warning"],
        cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert str(policy) in done.stderr, done.stderr
    assert reason in done.stderr, done.stderr
    assert not db.exists(), "the server touched the database before refusing"
