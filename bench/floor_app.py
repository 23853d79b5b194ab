"""The fixed stack's floor for bench/ingest.py: the bare app plus the least a durable
ingest must do, and nothing of Liaison.

Its one POST endpoint parses the event with the bare app's pydantic model, hands one row
(the event's id and its body) to a group-commit writer, and answers only once the row is
committed: SQLAlchemy Core on the engine Liaison's writer uses (on SQLite, WAL and
synchronous=FULL, statements in place and the write lock and commit on a thread:
service/store/inline_sqlite.py; or asyncpg), one INSERT … VALUES per batch, one commit per
batch. No authentication, policy, routing, call state, board or second table. So it
measures what "durable" costs in this stack on this machine; Liaison's ratio to it says
what Liaison's own work costs on top.

    python -m bench.floor_app --port 8002 --database-url sqlite+aiosqlite:////tmp/floor.db
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert

from bench.bare_app import Event
from service.store.db import create_engine, create_write_engine

ROWS = Table("floor_event", MetaData(), Column("id", Integer, primary_key=True),
             Column("event_id", String(200), unique=True, nullable=False),
             Column("body", Text, nullable=False))
_INSERT = insert(ROWS)


def build_app(database_url: str, batch_max: int = 256) -> FastAPI:
    engine = create_engine(database_url)
    write_engine = create_write_engine(engine)
    queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[None]]] = asyncio.Queue()

    async def writer() -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < batch_max and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                async with write_engine.begin() as conn:
                    await conn.execute(_INSERT, [row for row, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(ROWS.metadata.create_all)
        task = asyncio.create_task(writer())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await write_engine.dispose()
        await engine.dispose()

    app = FastAPI(title="bench floor", lifespan=lifespan)

    @app.post("/v1/cad/events", status_code=202)
    async def post_event(event: Event) -> JSONResponse:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.put_nowait(({"event_id": event.event_id, "body": event.model_dump_json()}, fut))
        await fut
        return JSONResponse({"call_id": uuid.uuid4().hex, "event_id": event.event_id},
                            status_code=202)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    config = uvicorn.Config(build_app(args.database_url), host="127.0.0.1", port=args.port,
                            log_level="warning", lifespan="on", loop="auto")
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
