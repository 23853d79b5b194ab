"""From the previous release to agencies (issue 17, migration 0029): a database made by
the previous release becomes one agency without loss. SQLite and PostgreSQL.

The databases are the previous release's own (tests/fixtures/release/): its code, checked
out at the last commit before agencies, made the schema with its migrations and wrote the
rows through its HTTP API (a published policy version in Central time, a unit, calls taken,
overridden, closed and referred, a refused CAD event, keys, people and a session), and
they were dumped as SQL (`bash scripts/make-release-db.sh` makes them again). `liaison
migrate` takes one to the head; every row keeps every value, is agency `default` (keys
`*`), the agency `default` is in the published policy's zone, and a server on it serves
the old calls to the old keys and decides a new call with the stored policy; going back
down to 0028 gives the rows back.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from typing import Any

import asyncpg
import pytest
from alembic import command
from sqlalchemy import Column, MetaData, Table, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.access.auth import Role
from service.settings import Settings
from service.store.db import alembic_config, create_engine
from service.store.tables import AGENCY, AUDIT, QUEUE_SETTLED, SQLModel
from tests.conftest import ROOT, running_server
from tests.credentials import Credentials
from tests.factories import event, login

pytestmark = pytest.mark.asyncio

PREVIOUS = "0028"
ZONE = "America/Chicago"  # the published version's: not the shipped policy's (New York)
RELEASE = ROOT / "tests" / "fixtures" / "release"
# Tables whose rows become the default agency's, and the keys' (any agency).
AGENCY_OWNED = ("call", "policy_version", "unit", "app_user", "queue_settled",
                "board_message")


async def alembic(engine: AsyncEngine, step: str, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: getattr(command, step)(alembic_config(sync), revision))


async def columns_at(engine: AsyncEngine) -> dict[str, list[str]]:
    """Each table's columns as the database has them."""
    def read(sync: Any) -> dict[str, list[str]]:
        found = inspect(sync)
        return {t: [c["name"] for c in found.get_columns(t)]
                for t in found.get_table_names() if t != "alembic_version"}
    async with engine.connect() as conn:
        return await conn.run_sync(read)


def stripped(name: str, keep: list[str]) -> Table:
    """The table as the code types its columns, with only `keep` and no defaults: an
    insert says exactly what the previous release would have written."""
    head = SQLModel.metadata.tables[name]
    return Table(name, MetaData(), *[Column(c.name, c.type, primary_key=c.primary_key)
                                     for c in head.columns if c.name in keep])


# What a server running on the database moves by itself, rightly: the queue's settling
# mark (its sweeper settles the queue up to now), and when a key was last used (the old
# keys are used below; it is written at most once a minute, so only sometimes).
MOVING = {"queue_settled": {"settled_until"}, "api_key": {"last_used_at"}}


async def rows_of(engine: AsyncEngine, tables: dict[str, Table], *,
                  settled: bool = True) -> dict[str, list[Any]]:
    """Every row of each table; `settled` False leaves out what a server moves (MOVING)."""
    async with engine.connect() as conn:
        return {name: sorted((tuple(r) for r in (await conn.execute(select(
            *(c for c in t.columns if settled or c.name not in MOVING.get(name, ()))))
                                                 ).all()),
                             key=repr) for name, t in tables.items()}


async def load_release(database_url: str) -> dict[str, Any]:
    """The previous release's database, loaded from its dump into the empty `database_url`;
    what the release's harness made (keys, people, the calls' ids)."""
    made = json.loads((RELEASE / "release.json").read_text())
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split(":///", 1)[1]) as conn:
            conn.executescript((RELEASE / "sqlite.sql").read_text())
        return made["sqlite"]
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg:", "postgresql:"))
    try:  # pg_dump --inserts: plain statements, run as one script
        await conn.execute((RELEASE / "postgresql.sql").read_text())
    finally:
        await conn.close()
    return made["postgresql"]


async def test_a_previous_release_database_becomes_one_agency(database_url: str) -> None:
    release = await load_release(database_url)
    creds = Credentials(keys={Role(r): k for r, k in release["keys"].items()},
                        users={Role(r): u for r, u in release["users"].items()},
                        password=release["password"])
    calls: dict[str, str] = release["calls"]
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))
                       ).scalar_one()
        assert version.startswith(PREVIOUS), version
        previous = await columns_at(engine)
        assert "agency" not in previous and "agency_id" not in previous["call"]
        tables = {name: stripped(name, cols) for name, cols in previous.items()
                  if name in SQLModel.metadata.tables}
        assert set(tables) == set(previous), "every 0028 table is one the code knows"
        before = await rows_of(engine, tables)
        before_fixed = await rows_of(engine, tables, settled=False)
        for name in ("call", "decision", "board_message", "policy_version", "app_user",
                     "api_key", "user_session", "unit", "cad_event", "cad_reject",
                     "audit_log"):
            assert before[name], f"the release made no {name} rows"

        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.cli", "migrate", "--database-url", database_url,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()

        assert await rows_of(engine, tables) == before, "every row keeps every value"
        async with engine.connect() as conn:
            for name in AGENCY_OWNED:
                got = (await conn.execute(text(f'SELECT DISTINCT agency_id FROM "{name}"'))
                       ).scalars().all()
                assert got == ["default"], (name, got)
            assert (await conn.execute(text("SELECT DISTINCT agency_id FROM api_key"))
                    ).scalars().all() == ["*"]
            agencies = (await conn.execute(select(AGENCY.c.id, AGENCY.c.timezone))).all()
            assert [tuple(a) for a in agencies] == [("default", ZONE)]
            settled = (await conn.execute(select(QUEUE_SETTLED.c.agency_id))).scalars().all()
            assert settled == ["default"]
            # The log's old entries are their actor's agency's (0031): the people's are
            # the default agency's, the keys' the region's, nobody's no one's.
            by_actor = {(actor.startswith("key:"), actor == "anonymous", agency)
                        for actor, agency in (await conn.execute(
                            select(AUDIT.c.actor, AUDIT.c.agency_id))).all()}
            assert by_actor == {(False, False, "default"), (True, False, "*")} | (
                {(False, True, None)} & by_actor), by_actor

        # A server on it: the old keys and people still work, the old calls are served,
        # and a new call is decided with the stored policy in force (Central time).
        async with running_server(Settings(database_url=database_url), creds=creds) as s:
            for incident, call_id in calls.items():
                r = await s.client.get(f"/v1/calls/{call_id}")
                assert r.status_code == 200, r.text
                if incident != "referral":
                    assert r.json()["call"]["incident_id"] == incident
                assert r.json()["call"]["agency_id"] == "default"
            taken = (await s.client.get(f"/v1/calls/{calls['OLD-0']}")).json()["call"]
            assert taken["team_status"] == "assigned", taken
            team = await login(s, Role.call_team)
            try:
                assert (await team.get(f"/v1/calls/{calls['OLD-0']}")).status_code == 200
            finally:
                await team.aclose()
            r = await s.client.post("/v1/cad/events", json=event(
                event_id="after-upgrade", incident_id="NEW-1", nature_code="MNTL"),
                headers=creds.bearer(Role.cad))
            assert r.status_code == 202, r.text
            decision = r.json()["decision"]
            assert decision["policy_version"] == "st-petersburg-call@2", decision
            assert decision["program"]["timezone"] == ZONE

        # And back down to the previous release: its rows are as they were.
        await alembic(engine, "downgrade", PREVIOUS)
        assert await columns_at(engine) == previous
        after = await rows_of(engine, tables, settled=False)
        for name, rows in before_fixed.items():
            assert set(rows) <= set(after[name]), f"{name} lost rows going back down"
    finally:
        await engine.dispose()
