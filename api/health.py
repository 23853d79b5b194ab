from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.access import public
from api.deps import RuntimeDep

router = APIRouter(prefix="/v1", tags=["health"], dependencies=[public()])


@router.get("/health", summary="Ready when the database answers, writes work and a policy is "
            "in force")
async def health(rt: RuntimeDep) -> JSONResponse:
    # The database answers within health_timeout, and writes work (service/health.py).
    problems: list[str] = await rt.storage.problems(rt.engine)
    if not rt.writer.running:
        problems.append("the writer has stopped")
    if rt.listener is not None and not rt.listener.connected.is_set():
        problems.append("not listening for live updates from PostgreSQL")
    body = {
        "status": "ok" if not problems else "unavailable",
        "problems": problems,
        "policy": {"version": rt.policy.compiled.version,
                   "phase": rt.policy.compiled.policy.program.phase,
                   # A replay warns when a city's export is in another zone than the hours.
                   "timezone": rt.policy.compiled.policy.program.timezone,
                   "reload_error": str(rt.policy.last_error) if rt.policy.last_error else None},
        "database": rt.engine.dialect.name,
        "board_seq": rt.hub.last_seq,
        "eido_subscriber": rt.eido_subscriber.status() if rt.eido_subscriber else None,
    }
    return JSONResponse(body, status_code=200 if not problems else 503)
