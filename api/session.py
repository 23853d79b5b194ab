"""Logging in and out of the pages, and who am I."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from api.access import COOKIE, CredentialsFirst, Principal, Role, allow, public, record
from api.deps import RuntimeDep
from api.limits import client_address, limit_by_address
from service.access.auth import SessionLimits, end_session, login, user_agency
from service.access.ratelimit import TooManyRequests
from service.errors import Unauthenticated

router = APIRouter(prefix="/v1/session", tags=["session"],
                   route_class=CredentialsFirst)

ANYONE = tuple(Role)


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    username: str
    role: Role
    kind: str
    officer_id: str | None = None
    idle_minutes: float | None = None


class LoggedOut(BaseModel):
    logged_out: bool = Field(description="a session ended (false for an API key)")


def _me(who: Principal, idle: float | None) -> Me:
    return Me(username=who.name, role=who.role, kind=who.kind, officer_id=who.officer_id,
              idle_minutes=idle if who.kind == "user" else None)


@router.post("", summary="Log in: sets the session cookie", response_model=Me,
             dependencies=[public(), Depends(limit_by_address("login"))],
             responses={401: {"description": "wrong name or password"},
                        429: {"description": "too many failed attempts: wait Retry-After"}})
async def log_in(creds: Credentials, request: Request, response: Response,
                 rt: RuntimeDep) -> Me:
    addr = client_address(request)
    name = creds.username.strip()
    wait = rt.login_throttle.check(name, addr)
    if wait is not None:
        await record(request, None, "login.throttled", outcome="denied",
                     detail={"username": name[:120]}, agency=await user_agency(rt.engine, name))
        raise TooManyRequests("too many failed logins; wait before trying again",
                              retry_after=wait)
    limits = SessionLimits.from_settings(rt.settings)
    try:
        token, who = await login(rt.engine, name, creds.password, limits, address=addr)
    except Unauthenticated:
        rt.login_throttle.failed(name, addr)
        # In the log of the agency whose person's name was tried (the answer is the same
        # whether the name exists or not).
        await record(request, None, "login.failed", outcome="failed",
                     detail={"username": name[:120]}, agency=await user_agency(rt.engine, name))
        raise
    rt.login_throttle.succeeded(name, addr)
    secure = rt.settings.cookie_secure
    if secure is None:
        # Over TLS here, or at the proxy in front (api/headers.py trusts it the same way).
        secure = request.url.scheme == "https" or (
            rt.settings.behind_tls_proxy
            and request.headers.get("x-forwarded-proto", "").lower() == "https")
    response.set_cookie(COOKIE, token, max_age=int(limits.lifetime.total_seconds()),
                        httponly=True, secure=secure, samesite="strict", path="/")
    await record(request, who, "login")
    return _me(who, rt.settings.session_idle_minutes)


@router.get("", summary="Who is logged in", response_model=Me)
async def whoami(who: Annotated[Principal, allow(*ANYONE)], rt: RuntimeDep) -> Me:
    return _me(who, rt.settings.session_idle_minutes)


@router.delete("", summary="Log out: ends the session everywhere it is used",
               status_code=200, response_model=LoggedOut)
async def log_out(who: Annotated[Principal, allow(*ANYONE)], request: Request,
                  response: Response, rt: RuntimeDep) -> dict[str, Any]:
    if who.session_id:
        await end_session(rt.engine, who.session_id, "logout")
        await record(request, who, "logout")
    response.delete_cookie(COOKIE, path="/")
    return {"logged_out": who.session_id is not None}
