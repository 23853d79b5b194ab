"""Every route says who may use it: `allow(Role.x, ...)` or `public()`.

A request names itself with `Authorization: Bearer lk_<id>.<secret>` (an API key) or the
`liaison_session` cookie (a person logged in to the pages). No credentials: 401. The
wrong role: 403, saying only which roles may, and nothing about the thing asked for.
Websockets are checked the same way before they are accepted (closed with 4401/4403).
tests/api/test_access.py walks the route table and fails on a route without a
declaration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, WebSocketException
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from api.headers import came_over_tls
from api.limits import client_address
from service import audit
from service.access.auth import Principal, Role, SessionLimits, session_principal
from service.access.ratelimit import TooManyRequests
from service.errors import DomainError, Forbidden, Unauthenticated, Unavailable

__all__ = ["COOKIE", "CredentialsFirst", "Principal", "Role", "allow", "ingest_source",
           "public", "principal_of"]

COOKIE = "liaison_session"
WS_UNAUTHENTICATED = 4401
WS_FORBIDDEN = 4403
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
log = logging.getLogger("liaison.access")


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
        foreign = cross_origin(conn)
        if foreign is not None:
            log.warning("refused a cookie session's %s %s from origin %s (address %s)",
                        conn.scope.get("method", "WS"), conn.url.path, foreign[:100],
                        client_address(conn))
            raise Forbidden("a session's board and changes are taken only from Liaison's own "
                            "pages (Origin)")
        who = await session_principal(rt.engine, cookie,
                                      SessionLimits.from_settings(rt.settings), touch=touch,
                                      deadline=rt.writer.patience)
        if who is None:
            raise Unauthenticated("your session has ended; log in again")
    if who is not None:
        conn.scope["liaison.principal"] = who
    return who


def _origin(url: str) -> str | None:
    """scheme://host[:port], lower case, without a default port; None if not a URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def allowed_origins(conn: HTTPConnection) -> set[str]:
    """Liaison's own origin (the scheme it was reached by and the Host asked for) and
    those of LIAISON_ALLOWED_ORIGINS."""
    settings = conn.app.state.runtime.settings
    scheme = "https" if came_over_tls(conn.scope, trust_forwarded_proto=settings.behind_tls_proxy
                                      ) else "http"
    own = _origin(f"{scheme}://{conn.headers.get('host', '')}")
    extra = {_origin(o) for o in settings.allowed_origins.replace(",", " ").split()}
    return {o for o in (own, *extra) if o is not None}


def cross_origin(conn: HTTPConnection) -> str | None:
    """The other site a cookie-authenticated websocket or change came from, or None.

    Browsers send Origin on every websocket handshake and every cross-site POST (and
    mostly on same-site ones), so one from elsewhere is another site driving a logged-in
    person's browser: cross-site websocket hijacking (RFC 6455 §10.2) or request forgery
    behind SameSite=Strict. Without Origin, a change is judged by its Referer; with
    neither, the request did not come from a browser page, which is what is guarded."""
    websocket = conn.scope["type"] == "websocket"
    if not websocket and conn.scope.get("method") not in CHANGES:
        return None
    origin = conn.headers.get("origin")
    if origin is None and not websocket:
        origin = conn.headers.get("referer")
    if origin is None:
        return None
    normal = _origin(origin)
    return None if normal is not None and normal in allowed_origins(conn) else origin


async def record(conn: HTTPConnection, who: Principal | None, action: str, *,
                 outcome: str = "ok", call_id: str | None = None, target: str | None = None,
                 detail: dict[str, Any] | None = None, agency: str | None = None) -> None:
    """Append to the audit log (through the writer: ordered, durable before we answer).
    The entry is the agency's of `who` (else `agency`: whose a nobody's entry concerns)."""
    rt = conn.app.state.runtime
    row = audit.entry(actor=who.actor if who else "anonymous",
                      role=who.role.value if who else None, address=client_address(conn),
                      action=action, outcome=outcome, call_id=call_id, target=target,
                      detail=detail, agency=who.agency if who else agency)
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
            # The database away (503) is answered as such, at a websocket's handshake too.
            if websocket and not isinstance(exc, Unavailable):
                code = WS_FORBIDDEN if isinstance(exc, Forbidden) else WS_UNAUTHENTICATED
                raise WebSocketException(code, exc.message) from exc
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
# Who moves a team call along its flow, and who overrides a decision (the pages offer
# their buttons to these roles: api/layout.py).
TEAM_ROLES = (Role.call_team, Role.supervisor)
DISPATCHER_ROLES = (Role.dispatcher, Role.supervisor)
