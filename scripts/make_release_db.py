"""Make the "previous release" databases the migration test starts from (issue 17).

Run by `scripts/make-release-db.sh`, which checks the release out into a scratch
worktree and runs this file with that checkout first on `sys.path`: everything imported
below (the app, its test harness, its factories) is the *release's* code, so the rows are
written as that release wrote them, through its own HTTP API, on a schema its own
migrations made. The result is dumped as SQL text, one file per database, with the
credentials the release's harness made (test-only secrets) beside them:

    tests/fixtures/release/sqlite.sql
    tests/fixtures/release/postgresql.sql
    tests/fixtures/release/release.json   (the release, its head, keys, people, calls)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import yaml

# The release's own modules (the caller puts its checkout first on sys.path).
from service.access.auth import Role
from service.settings import Settings
from tests.conftest import running_server
from tests.factories import event, login, shipped_doc, write_policy

ZONE = "America/Chicago"  # the published version's, not the shipped policy's (New York)


def central(version: str) -> dict[str, Any]:
    doc = shipped_doc()
    doc["policy"]["version"] = version
    doc["program"]["timezone"] = ZONE
    doc.pop("tests", None)  # written for New York's clock
    return doc


async def use(server: Any) -> dict[str, str]:
    """A release's worth of use; the calls' ids by incident."""
    c = server.client
    r = await c.post("/v1/policies", json={"document": yaml.safe_dump(central("2")),
                                           "author": "release"})
    assert r.status_code == 201, r.text
    assert (await c.post("/v1/policies/2/publish")).status_code == 200
    r = await c.put("/v1/units/CALL-7", json={"program_id": "call", "call_sign": "CALL-7",
                                              "members": ["A. Navigator"]})
    assert r.status_code in (200, 201), r.text
    calls = {}
    for n, nature in enumerate(("MNTL", "ALRBA", "INTOX", "WELF")):
        r = await c.post("/v1/cad/events", json=event(
            event_id=f"old-{n}", incident_id=f"OLD-{n}", nature_code=nature,
            narrative="Caller's brother is talking to himself."))
        assert r.status_code == 202, r.text
        calls[f"OLD-{n}"] = r.json()["call_id"]
    # The team takes one, a dispatcher overrides another, a CAD closes a third.
    r = await c.post(f"/v1/calls/{calls['OLD-0']}/status",
                     json={"status": "assigned", "unit": "CALL-7", "note": "on our way"})
    assert r.status_code == 200, r.text
    r = await c.post(f"/v1/calls/{calls['OLD-2']}/override",
                     json={"destination": "police", "reason": "weapon seen"},
                     headers=server.creds.bearer(Role.dispatcher))
    assert r.status_code == 200, r.text
    r = await c.post("/v1/cad/events", json=event(event_id="old-1-closed",
                                                  incident_id="OLD-1", type="closed"))
    assert r.status_code == 202, r.text
    # An officer's referral, a refused CAD event (kept for inspection), a login session.
    r = await c.post("/v1/referrals", json={
        "who": "J. Doe", "where": "1300 1st Ave N", "what": "Sleeping in a doorway.",
        "concern": "mental_health", "consent": True, "district": "D4"},
        headers=server.creds.bearer(Role.officer))
    assert r.status_code == 202, r.text
    calls["referral"] = r.json()["call_id"]
    r = await c.post("/v1/cad/events", json={"event_id": "bad", "nature_code": ""})
    assert r.status_code == 422, r.text
    team = await login(server, Role.call_team)
    try:
        assert (await team.get(f"/v1/calls/{calls['OLD-0']}")).status_code == 200
    finally:
        await team.aclose()
    return calls


async def make(database_url: str, policy: Path) -> tuple[dict[str, str], Any]:
    async with running_server(Settings(database_url=database_url, policy=policy)) as s:
        return await use(s), s.creds


def dump_sqlite(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump()) + "\n"


def dump_postgres(dsn: str) -> str:
    # --inserts: plain statements a driver can run (no COPY from stdin); psql's
    # meta-commands (recent pg_dumps' \restrict) left out for the same reason.
    out = subprocess.run(["pg_dump", "--inserts", "--no-owner", "--no-privileges",
                          "--no-comments", dsn], check=True, capture_output=True,
                         text=True).stdout
    return "".join(line for line in out.splitlines(keepends=True)
                   if not line.startswith("\\"))


def release_head() -> str:
    """The checked-out release's commit and subject."""
    return subprocess.run(["git", "log", "-1", "--format=%H %s"], check=True,
                          capture_output=True, text=True).stdout.strip()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--release", required=True, help="the commit, for the record")
    ap.add_argument("--postgres", required=True, help="an admin postgresql:// DSN")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scratch", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    policy = write_policy(a.scratch / "central.yaml", central("1"))

    lite = a.scratch / "release.db"
    lite.unlink(missing_ok=True)
    calls, creds = await make(f"sqlite+aiosqlite:///{lite}", policy)
    (a.out / "sqlite.sql").write_text(dump_sqlite(lite))

    name = "liaison_release_fixture"
    admin = await asyncpg.connect(a.postgres)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = f"{a.postgres.rsplit('/', 1)[0]}/{name}"
    pg_calls, pg_creds = await make(dsn.replace("postgresql://", "postgresql+asyncpg://"),
                                    policy)
    (a.out / "postgresql.sql").write_text(dump_postgres(dsn))

    head = release_head()
    (a.out / "release.json").write_text(json.dumps({
        "release": head, "timezone": ZONE,
        "sqlite": {"calls": calls, "keys": {r.value: k for r, k in creds.keys.items()},
                   "users": {r.value: u for r, u in creds.users.items()},
                   "password": creds.password},
        "postgresql": {"calls": pg_calls,
                       "keys": {r.value: k for r, k in pg_creds.keys.items()},
                       "users": {r.value: u for r, u in pg_creds.users.items()},
                       "password": pg_creds.password},
    }, indent=2) + "\n")
    print(f"made from {head[:12]} into {a.out}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
