"""Export profiles, `liaison replay` and `liaison simulate` take an agency (issue 17): the
rows become that agency's calls, decided by its policy, whatever their district says; an
agency the server does not have (or the key does not post for) stops the replay with a
clear error. A real two-agency server (tests/api/test_agencies.region) on SQLite and
PostgreSQL; the commands as real subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.exports.mapping import Mapper
from adapters.exports.profile import ProfileInvalid
from adapters.exports.replay import replay_export
from service.access.auth import Role, create_key
from service.access.client_auth import TOKEN_ENV
from service.store.tables import CALL
from tests.api.test_agencies import region
from tests.conftest import ROOT, Server
from tests.factories import make_profile, profile_doc, row, write_export, write_profile

# D1 is the default agency's district: without an agency named, these rows are its calls.
ROWS = [row(call_no="R1"), row(call_no="R2", type="DIST", type_desc="DRUNK"),
        row(call_no="R3", closed="03/12/2024 15:00:00")]


async def agencies_of(s: Server) -> dict[str, str | None]:
    async with s.runtime.engine.connect() as conn:
        found = (await conn.execute(select(CALL.c.incident_id, CALL.c.agency_id))).all()
    return {r.incident_id: r.agency_id for r in found}


async def liaison(*args: str, token: str = "") -> tuple[int, str, str]:
    """`liaison …` as a child process (the server under test shares this event loop)."""
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    if token:
        env[TOKEN_ENV] = token
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.mark.asyncio
async def test_replay_as_an_agency(database_url: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    export = write_export(tmp_path / "calls.csv", ROWS)
    async with region(database_url) as s:
        monkeypatch.setenv(TOKEN_ENV, s.creds.keys[Role.cad])  # the region's CAD key
        summary = await replay_export(export, Mapper(make_profile(), lookup_dirs=[],
                                                     agency="west"),
                                      url=s.base_url, progress=None)
        assert (summary.accepted, summary.stopped, summary.agency) == (3, None, "west")
        assert await agencies_of(s) == {"R1": "west", "R2": "west", "R3": "west"}
        # Decided by west's policy, on its clock; the profile's times are Chicago's too.
        assert all(c.destination == "police" for c in summary.calls)  # D1 is not west's
        assert summary.warnings == []
        for call in summary.calls:
            got = (await s.client.get(f"/v1/calls/{call.call_id}")).json()
            assert got["decision"]["policy_version"] == "west-county@1", got

        # The profile may name the agency itself; the command's --agency wins over it.
        named = make_profile(profile={"id": "eastville", "version": "1", "agency": "west"})
        more = write_export(tmp_path / "more.csv", [row(call_no="P1"), row(call_no="P2")])
        s2 = await replay_export(more, Mapper(named, lookup_dirs=[]), url=s.base_url,
                                 progress=None)
        assert s2.accepted == 2 and s2.agency == "west"
        last = write_export(tmp_path / "last.csv", [row(call_no="Q1")])
        s3 = await replay_export(last, Mapper(named, lookup_dirs=[], agency="default"),
                                 url=s.base_url, progress=None)
        assert s3.accepted == 1 and s3.agency == "default"
        # The default agency keeps New York's hours: the profile's Chicago times are warned of.
        assert s3.warnings and "keeps team hours in America/New_York" in s3.warnings[0]
        assert {k: v for k, v in (await agencies_of(s)).items() if k[0] in "PQ"} == {
            "P1": "west", "P2": "west", "Q1": "default"}

        # A key of agency `default` posts for it only: the replay stops at the first row.
        token, _ = await create_key(s.runtime.engine, "default-cad", role=Role.cad,
                                    agency="default")
        monkeypatch.setenv(TOKEN_ENV, token)
        other = make_profile(profile={"id": "northville", "version": "1"})
        refused = await replay_export(export, Mapper(other, lookup_dirs=[], agency="west"),
                                      url=s.base_url, progress=None)
        assert refused.accepted == 0 and refused.stopped
        assert refused.agency_refused == "this key posts for agency 'default', not 'west'"
        assert len(await agencies_of(s)) == 6, "the refused replay stored nothing"


@pytest.mark.asyncio
async def test_replay_and_simulate_commands_take_an_agency(tmp_path: Path) -> None:
    export = write_export(tmp_path / "calls.csv", ROWS)
    profile = write_profile(tmp_path / "p.yaml", profile_doc())
    async with region(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}") as s:
        cad = s.creds.keys[Role.cad]
        base = ("replay", str(export), "--profile", str(profile), "--url", s.base_url,
                "--no-progress", "--json")
        code, out, err = await liaison(*base, "--agency", "nowhere", token=cad)
        assert code == 2, (out, err)
        assert "refuses agency 'nowhere'" in err and "no agency 'nowhere'" in err, err
        assert await agencies_of(s) == {}
        code, _, err = await liaison(*base, "--agency", "West", token=cad)
        assert code == 2 and "'West' is not an agency id" in err, err

        code, out, err = await liaison(*base, "--agency", "west", token=cad)
        assert code == 0, err
        assert json.loads(out)["agency"] == "west" and json.loads(out)["accepted"] == 3
        assert await agencies_of(s) == {"R1": "west", "R2": "west", "R3": "west"}

        # simulate: the baseline is the agency's published version.
        candidate = tmp_path / "candidate.yaml"
        text = (await s.client.get("/v1/policies/west-county@1",
                                   params={"format": "yaml", "agency": "west"})).text
        candidate.write_text(text, encoding="utf-8")
        sim = ("simulate", "--policy", str(candidate), "--calls", str(export), "--profile",
               str(profile), "--url", s.base_url, "--json", "--no-progress")
        supervisor = s.creds.keys[Role.supervisor]
        code, out, err = await liaison(*sim, "--agency", "west", token=supervisor)
        assert code == 0, err
        assert f"baseline is west-county@1, published for agency west at {s.base_url}" in err
        code, out, err = await liaison(*sim, "--agency", "nowhere", token=supervisor)
        assert code == 2 and f"{s.base_url} has no agency 'nowhere'" in err, err


def test_a_profile_names_an_agency_by_its_id() -> None:
    assert make_profile(profile={"id": "x", "version": "1", "agency": "west"}
                        ).profile.agency == "west"
    with pytest.raises(ProfileInvalid) as caught:
        make_profile(profile={"id": "x", "version": "1", "agency": "West County"})
    assert [e.path for e in caught.value.errors] == ["profile.agency"]
