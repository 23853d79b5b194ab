"""From the previous release to agencies (issue 17, migration 0029): a database made under
0028 with a release's worth of data becomes one agency without loss. SQLite and
PostgreSQL.

The 0028 database holds rows as that release's code wrote them: a server (this one, on a
scratch database) takes calls, decides them, streams board messages, stores and publishes
a policy version in Central time, makes people, keys and a unit; every row of every
table is then copied into a database migrated to 0028 only, without the columns 0028 does
not have. `liaison migrate` takes it to the head; every row keeps every value, is agency
`default` (keys `*`), the agency `default` is in the published policy's zone, and a server
on it serves the old calls to the old keys and decides a new call with the stored policy.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from alembic import command
from sqlalchemy import Column, MetaData, Table, insert, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.access.auth import Role
from service.settings import Settings
from service.store.db import alembic_config, create_engine, is_postgres
from service.store.tables import AGENCY, QUEUE_SETTLED, SQLModel, utcnow
from tests.conftest import ROOT, Server, running_server
from tests.factories import event, shipped_doc, write_policy

pytestmark = pytest.mark.asyncio

PREVIOUS = "0028"
ZONE = "America/Chicago"  # the published version's: not the shipped policy's (New York)
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
# mark (its sweeper settles the queue up to now).
MOVING = {"queue_settled": {"settled_until"}}


async def rows_of(engine: AsyncEngine, tables: dict[str, Table], *,
                  settled: bool = True) -> dict[str, list[Any]]:
    """Every row of each table; `settled` False leaves out what a server moves (MOVING)."""
    async with engine.connect() as conn:
        return {name: sorted((tuple(r) for r in (await conn.execute(select(
            *(c for c in t.columns if settled or c.name not in MOVING.get(name, ()))))
                                                 ).all()),
                             key=repr) for name, t in tables.items()}


def central(version: str) -> dict[str, Any]:
    doc = shipped_doc()
    doc["policy"]["version"] = version
    doc["program"]["timezone"] = ZONE
    doc.pop("tests", None)  # written for New York's clock
    return doc


async def release_data(server: Server) -> dict[str, str]:
    """What a release's worth of use leaves behind; the old calls' ids by incident."""
    c = server.client
    doc = central("2")
    r = await c.post("/v1/policies", json={"document": yaml.safe_dump(doc), "author": "t"})
    assert r.status_code == 201, r.text
    assert (await c.post("/v1/policies/2/publish")).status_code == 200
    r = await c.put("/v1/units/CALL-7", json={"program_id": "call", "call_sign": "CALL-7",
                                              "members": ["A. Navigator"]})
    assert r.status_code in (200, 201), r.text
    calls = {}
    for n, nature in enumerate(("MNTL", "ALRBA", "INTOX")):
        r = await c.post("/v1/cad/events", json=event(
            event_id=f"old-{n}", incident_id=f"OLD-{n}", nature_code=nature))
        assert r.status_code == 202, r.text
        calls[f"OLD-{n}"] = r.json()["call_id"]
    r = await c.post("/v1/cad/events", json=event(event_id="old-0-closed", incident_id="OLD-0",
                                                  type="closed"))
    assert r.status_code == 202, r.text
    return calls


async def test_a_previous_release_database_becomes_one_agency(database_url: str,
                                                               tmp_path: Path) -> None:
    scratch = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}")
    engine = create_engine(database_url)
    try:
        first = write_policy(tmp_path / "central.yaml", central("1"))
        async with running_server(Settings(
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}",
                policy=first)) as old:
            calls = await release_data(old)
            creds = old.creds
        await alembic(engine, "upgrade", PREVIOUS)
        previous = await columns_at(engine)
        assert "agency" not in previous and "agency_id" not in previous["call"]
        tables = {name: stripped(name, cols) for name, cols in previous.items()
                  if name in SQLModel.metadata.tables}
        assert set(tables) == set(previous), "every 0028 table is one the code knows"
        made = await rows_of(scratch, tables)
        async with engine.begin() as conn:
            for t in SQLModel.metadata.sorted_tables:
                if t.name in tables and made[t.name]:
                    await conn.execute(insert(tables[t.name]),
                                       [dict(zip(tables[t.name].c.keys(), r, strict=True))
                                        for r in made[t.name]])
            if not made["queue_settled"]:
                await conn.execute(insert(tables["queue_settled"]).values(
                    id=1, settled_until=utcnow()))
            if is_postgres(engine):  # ids given: the sequences go on from them
                for name, t in tables.items():
                    for key in t.primary_key.columns:
                        if key.type.python_type is int and len(t.primary_key.columns) == 1:
                            await conn.execute(text(
                                f"SELECT setval(pg_get_serial_sequence('\"{name}\"', "
                                f"'{key.name}'), (SELECT coalesce(max({key.name}), 1) "
                                f"FROM \"{name}\"))"))
        before = await rows_of(engine, tables)
        before_fixed = await rows_of(engine, tables, settled=False)
        for name in ("call", "decision", "board_message", "policy_version", "app_user",
                     "api_key", "unit", "queue_settled", "cad_event"):
            assert before[name], f"no {name} rows made"

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

        # A server on it: the old keys still work, the old calls are served, and a new
        # call is decided with the stored policy in force (Central time), not the shipped.
        async with running_server(Settings(database_url=database_url), creds=creds) as s:
            for incident, call_id in calls.items():
                r = await s.client.get(f"/v1/calls/{call_id}")
                assert r.status_code == 200, r.text
                assert r.json()["call"]["incident_id"] == incident
                assert r.json()["call"]["agency_id"] == "default"
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
        await scratch.dispose()
