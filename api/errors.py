"""One place that turns errors into responses: domain errors keep their status; bad
input is 422 naming each field and why, and what a CAD sent is kept for inspection."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

import asyncpg
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketState

from api.access import ingest_source, sender_of
from service.errors import DomainError, Unavailable, field_errors
from service.lifecycle.ingest import RecordReject
from service.store.db import describe, is_outage

log = logging.getLogger("liaison.api")


# What a 422 really looks like (FastAPI's default HTTPValidationError, {"detail": [{"loc",
# "msg", "type"}]}, is not what the handler below sends): every 422 has an `error`; bad
# fields come as `detail` ({field, reason, type}), a domain refusal as `message`.
FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError", "type": "object", "required": ["field", "reason"],
    "properties": {"field": {"type": "string", "description": "the field, e.g. location.lat"},
                   "reason": {"type": "string"}, "type": {"type": "string"}}}
INVALID_SCHEMA: dict[str, Any] = {
    "title": "Invalid", "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"},
                   "detail": {"type": "array",
                              "items": {"$ref": "#/components/schemas/ValidationError"}},
                   "message": {"type": "string"},
                   "reject_id": {"type": "integer",
                                 "description": "where the refused body is kept"}}}


def _describe_422(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemas = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = INVALID_SCHEMA
                schemas["ValidationError"] = FIELD_ERROR_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# What a database that is away, full or too slow raises: answered 503 with Retry-After
# (`is_outage` decides; anything else of these types is a fault, and stays a 500).
DATABASE_ERRORS = (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, asyncpg.PostgresError,
                   asyncpg.InterfaceError)
WS_TRY_AGAIN_LATER = 1013


def _wants_a_page(request: Request) -> bool:
    return (request.method == "GET" and not request.url.path.startswith("/v1/")
            and "text/html" in request.headers.get("accept", ""))


def install(app: FastAPI) -> None:
    _describe_422(app)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if exc.status == 401 and _wants_a_page(request):
            # A person opening a page (/metrics, /reports/…) without a session: the login
            # page, then back here; API clients still get the JSON 401.
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        if getattr(exc, "retry_after", None):  # a 429 (service/access/ratelimit.py) says how long
            headers = {"Retry-After": str(exc.retry_after)}  # type: ignore[attr-defined]
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    async def _database(conn: HTTPConnection, exc: Exception) -> Response | None:
        if not is_outage(exc):
            raise exc
        log.warning("%s %s: the database is not answering: %s",
                    conn.scope.get("method", "WS"), conn.url.path, describe(exc))
        unavailable = Unavailable("the database is not answering; retry shortly",
                                  cause=type(exc).__name__)
        if isinstance(conn, WebSocket) and conn.application_state is WebSocketState.CONNECTED:
            await conn.close(code=WS_TRY_AGAIN_LATER, reason="the database is not answering")
            return None
        # Before a websocket is accepted, this is its handshake's answer (a denial response).
        return JSONResponse(unavailable.body(), status_code=503, headers={"Retry-After": "1"})

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _database)  # type: ignore[arg-type]

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = field_errors(exc.errors())
        body: dict[str, Any] = {"error": "invalid", "detail": detail}
        # A CAD's refused event is kept for an operator, under its sender and within the
        # sender's cap; a bad query or path is not input to keep (and must change nothing).
        # The route checked credentials before it read the body (api/access.py
        # CredentialsFirst): without a sender there is nothing to keep.
        who = sender_of(request)
        if request.method == "POST" and request.url.path == "/v1/cad/events" and who:
            raw = exc.body
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (
                json.dumps(raw, default=str) if raw is not None else "")
            text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold a NUL
            runtime = getattr(request.app.state, "runtime", None)
            if runtime is not None:
                try:
                    reject_id = await runtime.writer.submit(RecordReject(
                        source=ingest_source(who), path=request.url.path, errors=detail,
                        body=text, sender=who.actor, keep=runtime.settings.rejects_per_key))
                except DomainError:
                    log.warning("could not keep a rejected CAD event")
                else:
                    if reject_id is not None:
                        body["reject_id"] = reject_id
        return JSONResponse(body, status_code=422)
