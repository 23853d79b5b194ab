"""`liaison migrate` builds the schema on a fresh database, is a no-op when the schema is
current, leaves a database a server then runs on, and on PostgreSQL is safe to run from
several processes at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from service.store.db import MIGRATE_LOCK_KEY, alembic_config, create_engine
from tests.conftest import ROOT, start_subprocess
from tests.factories import event

HEAD = "0032"
STEPS = 32  # migrations from an empty database to HEAD
TABLES = {"alembic_version", "call", "cad_event", "decision", "board_message", "cad_reject",
          "outbox", "policy_version", "app_user", "api_key", "user_session", "audit_log",
          "follow_up", "write_probe", "unit", "unit_setting", "unit_position", "field_action",
          "assignment", "unit_duty", "provider", "care_referral", "care_step",
          "crisis_plan", "premise_caution", "transfer", "transfer_step", "agency"}


def migrate_cmd(url: str) -> list[str]:
    return [sys.executable, "-m", "api.cli", "migrate", "--database-url", url]


def run_migrate(url: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(migrate_cmd(url), cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"migrate failed ({done.returncode}):\n{done.stderr}"
    assert "database schema is up to date" in done.stdout
    return done


def upgrades_run(output: str) -> int:
    """How many migration steps alembic says it ran (it logs each at INFO)."""
    return output.count("Running upgrade")


async def schema(url: str) -> tuple[set[str], list[str], list[tuple[Any, ...]]]:
    """Tables, alembic version rows, and the marker rows kept in cad_reject."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            versions: list[str] = []
            rejects: list[tuple[Any, ...]] = []
            if "alembic_version" in tables:
                versions = list((await conn.execute(
                    text("SELECT version_num FROM alembic_version"))).scalars())
            if "cad_reject" in tables:
                rejects = [tuple(r) for r in await conn.execute(
                    text("SELECT source, path, body FROM cad_reject ORDER BY id"))]
        return tables, versions, rejects
    finally:
        await engine.dispose()


async def add_marker(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO cad_reject (source, path, received_at, errors, body) "
                "VALUES ('test', '/marker', CURRENT_TIMESTAMP, '[]', 'kept')"))
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_migrate_builds_schema_once_and_server_runs_on_it(database_url: str,
                                                               tmp_path: Path) -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD
    tables, versions, _ = await schema(database_url)
    assert tables == set(), f"not a fresh database: {tables}"

    first = await asyncio.to_thread(run_migrate, database_url)
    assert upgrades_run(first.stderr) == STEPS, first.stderr
    tables, versions, _ = await schema(database_url)
    assert TABLES <= tables, f"missing tables: {TABLES - tables}"
    assert versions == [HEAD]

    # A second run changes nothing: no migration step, data and version kept.
    await add_marker(database_url)
    second = await asyncio.to_thread(run_migrate, database_url)
    assert upgrades_run(second.stderr) == 0, second.stderr
    tables_after, versions, rejects = await schema(database_url)
    assert tables_after == tables
    assert versions == [HEAD]
    assert rejects == [("test", "/marker", "kept")]

    # A server started on the migrated database takes events and serves them back.
    sp = start_subprocess(database_url, tmp_path)
    try:
        async with sp.client() as client:
            health = (await client.get("/v1/health")).json()
            assert health["status"] == "ok", health
            body = event()
            r = await client.post("/v1/cad/events", json=body)
            assert r.status_code == 202, r.text
            call = (await client.get(f"/v1/calls/{r.json()['call_id']}")).json()
            assert [e["event_id"] for e in call["events"]] == [body["event_id"]]
    finally:
        sp.stop()
    tables, versions, rejects = await schema(database_url)
    assert versions == [HEAD]
    assert rejects == [("test", "/marker", "kept")]


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_concurrent_migrations_on_postgres(postgres_url: str) -> None:
    # Hold the migration lock while the migrators start, so that all of them are at the
    # same point at once, then let them go together. (Should migrations stop taking this
    # lock, they simply run unhindered and race each other, which is tested just as well.)
    gate = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://",
                                                      "postgresql://", 1))
    try:
        await gate.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK_KEY)
        procs = [await asyncio.create_subprocess_exec(
            *migrate_cmd(postgres_url), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE) for _ in range(3)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and all(p.returncode is None for p in procs):
            waiting = await gate.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND NOT granted AND objid = $1", MIGRATE_LOCK_KEY)
            if waiting == len(procs):
                break
            await asyncio.sleep(0.05)
    finally:
        await gate.execute("SELECT pg_advisory_unlock_all()")
        await gate.close()
    outputs: list[tuple[int | None, str, str]] = []
    for p in procs:
        raw_out, raw_err = await asyncio.wait_for(p.communicate(), 60)
        outputs.append((p.returncode, raw_out.decode(), raw_err.decode()))
    for code, out, err in outputs:
        assert code == 0, f"a concurrent migrate failed ({code}):\n{err}"
        assert "database schema is up to date" in out
    # The lock lets exactly one of them build the schema; the others find it current.
    assert sum(upgrades_run(err) for _, _, err in outputs) == STEPS, [e for _, _, e in outputs]
    tables, versions, _ = await schema(postgres_url)
    assert TABLES <= tables
    assert versions == [HEAD]
