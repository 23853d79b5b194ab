"""Every route says who may use it: `allow(Role.x, ...)` or `public()`.

A request names itself with `Authorization: Bearer lk_<id>.<secret>` (an API key) or the
`liaison_session` cookie (a person logged in to the pages). No credentials: 401. The
wrong role: 403, saying only which roles may, and nothing about the thing asked for.
Websockets are checked the same way before they are accepted (closed with 4401/4403).
tests/api/test_access.py walks the route table and fails on a route without a
declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, WebSocketException
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from api.limits import client_address
from service import audit
from service.auth import Principal, Role, SessionLimits, session_principal
from service.errors import DomainError, Forbidden, Unauthenticated
from service.ratelimit import TooManyRequests

__all__ = ["COOKIE", "CredentialsFirst", "Principal", "Role", "allow", "ingest_source",
           "public", "principal_of"]

COOKIE = "liaison_session"
WS_UNAUTHENTICATED = 4401
WS_FORBIDDEN = 4403


def bearer_token(conn: HTTPConnection) -> str | None:
    """The API key in `Authorization: Bearer …`, if the request sent one."""
    header = conn.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


async def principal_of(conn: HTTPConnection, *, touch: bool = True) -> Principal | None:
    """Who sent this request, or None without credentials. Bad credentials raise."""
    cached = conn.scope.get("liaison.principal")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    rt = conn.app.state.runtime
    token = bearer_token(conn)
    who: Principal | None = None
    if token is not None:
        who = await rt.keys.principal(token)
        if who is None:
            raise Unauthenticated("the API key is unknown, revoked or expired")
        wait = rt.key_limiter.take(who.id)
        if wait is not None:
            raise TooManyRequests("too many requests with this key", retry_after=wait)
    elif cookie := conn.cookies.get(COOKIE):
        who = await session_principal(rt.engine, cookie,
                                      SessionLimits.from_settings(rt.settings), touch=touch)
        if who is None:
            raise Unauthenticated("your session has ended; log in again")
    if who is not None:
        conn.scope["liaison.principal"] = who
    return who


async def record(conn: HTTPConnection, who: Principal | None, action: str, *,
                 outcome: str = "ok", call_id: str | None = None, target: str | None = None,
                 detail: dict[str, Any] | None = None) -> None:
    """Append to the audit log (through the writer: ordered, durable before we answer)."""
    rt = conn.app.state.runtime
    row = audit.entry(actor=who.actor if who else "anonymous",
                      role=who.role.value if who else None, address=client_address(conn),
                      action=action, outcome=outcome, call_id=call_id, target=target,
                      detail=detail)
    await rt.writer.submit(audit.RecordAudit([row]))


class Access:
    """The dependency `allow()` makes; its `roles` are what the route-table test reads."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = roles

    async def __call__(self, conn: HTTPConnection) -> Principal:
        websocket = conn.scope["type"] == "websocket"
        try:
            who = await principal_of(conn)
        except DomainError as exc:
            if websocket:
                raise WebSocketException(WS_UNAUTHENTICATED, exc.message) from exc
            raise
        if who is None:
            if websocket:
                raise WebSocketException(WS_UNAUTHENTICATED, "log in first")
            raise Unauthenticated("log in, or send an API key (Authorization: Bearer …)")
        if who.role not in self.roles:
            await record(conn, who, "access.denied", outcome="denied",
                         target=f"{conn.scope.get('method', 'WS')} {conn.url.path}"[:200])
            allowed = [r.value for r in self.roles]
            if websocket:
                raise WebSocketException(WS_FORBIDDEN, "not allowed for your role")
            raise Forbidden("not allowed for your role", allowed_roles=allowed)
        return who


class Public:
    """Declares a route open to anyone (health, login, static assets)."""

    roles: tuple[Role, ...] = ()

    async def __call__(self) -> None:
        return None


def allow(*roles: Role) -> Any:
    """`dependencies=[allow(Role.x)]`, or `who: Annotated[Principal, allow(Role.x)]`."""
    if not roles:
        raise ValueError("allow() needs at least one role; use public() for open routes")
    return Depends(Access(tuple(roles)))


def public() -> Any:
    return Depends(Public())


def _access_checks(dependant: Dependant) -> list[Access]:
    found, stack = [], list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Access):
            found.append(dep.call)
        stack.extend(dep.dependencies)
    return found


class CredentialsFirst(APIRoute):
    """A route that reads its body only once the sender's credentials and role have passed.

    FastAPI reads and parses a declared body before it runs any dependency, so without
    this an anonymous megabyte is read, parsed and, refused, kept as a CAD reject. Here
    the route's `allow()` runs first and a stranger gets 401 with the body unread; when
    FastAPI runs `allow()` again, the key is not looked up or counted against its rate
    limit a second time (`principal_of` keeps it in the request scope)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        checks = _access_checks(self.dependant)

        async def checked(request: Request) -> Response:
            for check in checks:
                await check(request)
            return await handler(request)

        return checked


def ingest_source(who: Principal) -> str:
    """The source a key's generic events (and its refused bodies) are stored under: its
    CAD's name, or `generic` for a key made for any source (`*`)."""
    return who.source if who.source and who.source != "*" else "generic"


def sender_of(conn: HTTPConnection) -> Principal | None:
    """Who sent this request, once its credentials were checked; None before, or for a
    request without any."""
    return conn.scope.get("liaison.principal")


Supervisor = Annotated[Principal, allow(Role.supervisor)]
