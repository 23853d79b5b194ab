"""The baseline for bench/ingest.py: a bare FastAPI app with one JSON POST endpoint.

It parses the same CAD event body as Liaison's `/v1/cad/events` with a small pydantic
model and answers a small JSON document, with no database, policy or board behind it.
Served by uvicorn the same way `liaison serve` is: one worker, httptools, log level
warning, on uvicorn's default loop ("auto": uvloop when installed), which is what
bench/ingest.py runs as its baseline. `--loop` picks another loop for a manual comparison:

    python -m bench.bare_app --port 8001
    python -m bench.bare_app --port 8001 --loop asyncio
"""

from __future__ import annotations

import argparse
import uuid

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class Location(BaseModel):
    address: str | None = None
    district: str | None = None
    lat: float | None = None
    lon: float | None = None


class Event(BaseModel):
    event_id: str
    incident_id: str
    type: str
    occurred_at: str
    channel: str | None = None
    nature_code: str | None = None
    nature_text: str | None = None
    priority: int | None = None
    narrative: str | None = None
    location: Location | None = None
    flags: list[str] | None = None


app = FastAPI(title="bench baseline")


@app.post("/v1/cad/events", status_code=202)
async def post_event(event: Event) -> JSONResponse:
    return JSONResponse({"call_id": uuid.uuid4().hex, "event_id": event.event_id},
                        status_code=202)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                        help="uvicorn's event loop (default auto: uvloop when installed, "
                             "as `liaison serve` runs)")
    args = parser.parse_args()
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning",
                            lifespan="on", loop=args.loop)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
