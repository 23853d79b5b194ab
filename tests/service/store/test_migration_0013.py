"""Migration 0013 on a database that has lived under 0012: events stored before keep
answering their retries, event ids become unique per source, rejects gain a sender, and
the step goes back down. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.calls.event import CallEvent
from service.settings import Settings
from service.store.db import alembic_config, create_engine, migrate
from service.store.tables import CAD_EVENT, REJECT, utcnow
from tests.conftest import running_server
from tests.factories import event

pytestmark = pytest.mark.asyncio


async def alembic(engine: AsyncEngine, step: str, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: getattr(command, step)(alembic_config(sync), revision))


def event_row(source: str, event_id: str, body: str, answer: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": event_id, "call_id": "old-call", "source": source,
            "incident_id": "OLD-1", "type": "created", "occurred_at": utcnow(),
            "received_at": utcnow(), "body": body, "response": json.dumps(answer)}


async def unique_sets(engine: AsyncEngine) -> set[tuple[str, ...]]:
    """Column sets the database holds unique (constraints and unique indexes)."""
    def read(sync: Any) -> set[tuple[str, ...]]:
        found = inspect(sync)
        return ({tuple(u["column_names"]) for u in found.get_unique_constraints("cad_event")}
                | {tuple(i["column_names"]) for i in found.get_indexes("cad_event")
                   if i["unique"]})
    async with engine.connect() as conn:
        return await conn.run_sync(read)


async def test_upgrade_from_0012_keeps_events_and_scopes_ids(database_url: str,
                                                             tmp_path: Path) -> None:
    ev = event(event_id="before-upgrade")
    stored = CallEvent.model_validate(ev).model_dump_json(exclude_unset=True)
    # The answer an 0012 server gave, as a server gives it (the retry's answer is held
    # to the documented schema): one made on a scratch database.
    scratch = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}")
    async with running_server(scratch) as server:
        first = await server.client.post("/v1/cad/events", json=ev)
        assert first.status_code == 202, first.text
    answer = {**first.json(), "call_id": "old-call"}
    engine = create_engine(database_url)
    try:
        await alembic(engine, "upgrade", "0012")
        async with engine.begin() as conn:
            await conn.execute(insert(CAD_EVENT).values(
                **event_row("generic", "before-upgrade", stored, answer)))
            await conn.execute(text(
                "INSERT INTO cad_reject (source, path, received_at, errors, body) "
                "VALUES ('generic', '/v1/cad/events', CURRENT_TIMESTAMP, '[]', 'old')"))
        assert ("event_id",) in await unique_sets(engine)

        await migrate(engine)
        assert await unique_sets(engine) == {("source", "event_id")}
        async with engine.begin() as conn:
            # Another source may use the id; the same source may not.
            await conn.execute(insert(CAD_EVENT).values(
                **event_row("pasco", "before-upgrade", stored, answer)))
            assert (await conn.execute(select(REJECT.c.body, REJECT.c.sender))).all() == [
                ("old", None)]
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(insert(CAD_EVENT).values(
                    **event_row("pasco", "before-upgrade", stored, answer)))
    finally:
        await engine.dispose()

    # A server on the upgraded database answers a retry of the event stored under 0012
    # with its first answer, and refuses the id with another body.
    async with running_server(Settings(database_url=database_url)) as server:
        again = await server.client.post("/v1/cad/events", json=ev)
        assert again.status_code == 202, again.text
        assert again.json() == answer
        changed = await server.client.post("/v1/cad/events", json={**ev, "flags": ["weapon"]})
        assert changed.status_code == 409, changed.text

    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(CAD_EVENT.delete().where(CAD_EVENT.c.source == "pasco"))
        await alembic(engine, "downgrade", "0012")
        assert ("event_id",) in await unique_sets(engine)
        await migrate(engine)
        assert await unique_sets(engine) == {("source", "event_id")}
    finally:
        await engine.dispose()
