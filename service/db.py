"""Engine, connection settings and schema migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: serialises writers and migrators across processes on PostgreSQL.
WRITE_LOCK_KEY = 727_100
MIGRATE_LOCK_KEY = 727_101


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


# aiosqlite logs every statement with its values at DEBUG: a narrative or a name would
# reach the log at `--log-level debug`. Its INFO and above say nothing of the data.
logging.getLogger("aiosqlite").setLevel(logging.INFO)


def create_engine(url: str) -> AsyncEngine:
    """Build the engine; SQLite gets WAL and full fsync so an acknowledged event survives."""
    # A failed statement's message would otherwise carry its parameters (a narrative, a
    # name) into the logs; Liaison's logs hold ids and reasons only.
    kwargs: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("postgresql"):
        kwargs.update(pool_size=10, max_overflow=10, pool_recycle=1800)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the schema in place to the newest revision."""
    async with engine.begin() as conn:
        if is_postgres(engine):
            # Two instances starting together must not both create tables.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
