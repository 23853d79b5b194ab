"""One place that turns errors into responses: domain errors keep their status; bad
input is 422 naming each field and why, and what a CAD sent is kept for inspection."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rules.load import error_path
from service.errors import DomainError
from service.ingest import RecordReject

log = logging.getLogger("liaison.api")


def field_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [p for p in err.get("loc", ()) if p != "body"]
        out.append({"field": error_path(loc) or "(body)",
                    "reason": str(err.get("msg", "")).removeprefix("Value error, "),
                    "type": err.get("type", "")})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        if getattr(exc, "retry_after", None):  # a 429 (service/ratelimit.py) says how long
            headers = {"Retry-After": str(exc.retry_after)}  # type: ignore[attr-defined]
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = field_errors(exc.errors())
        body: dict[str, Any] = {"error": "invalid", "detail": detail}
        if request.url.path.startswith("/v1/cad/"):
            raw = exc.body
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (
                json.dumps(raw, default=str) if raw is not None else "")
            runtime = getattr(request.app.state, "runtime", None)
            if runtime is not None:
                try:
                    body["reject_id"] = await runtime.writer.submit(
                        RecordReject(source="generic", path=request.url.path, errors=detail,
                                     body=text))
                except DomainError:
                    log.warning("could not keep a rejected CAD event")
        return JSONResponse(body, status_code=422)
