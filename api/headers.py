"""Security headers on every HTTP response, as a pure ASGI middleware.

- ``Content-Security-Policy``: only this origin's scripts, styles, images (and data:
  images), connections; no inline script or style, no framing, no ``<base>``, forms post
  only here. ``connect-src 'self'`` covers the board websocket on the same host and port:
  CSP Level 3 lets 'self' match ws:/wss: to the page's own host (Chromium, Firefox and
  Safari 15.4+; tests/web checks Chromium). FastAPI's ``/docs`` and ``/redoc`` load Swagger
  UI / ReDoc from cdn.jsdelivr.net with an inline bootstrap script and hold no personal
  data; they get a policy that allows exactly that.
- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY`` (for browsers without frame-ancestors),
  ``Cross-Origin-Opener-Policy: same-origin``, a ``Permissions-Policy`` that turns off
  camera, microphone, payment and USB, and lets only Liaison's own pages ask for the
  position (the board shares a unit's, when a member opts in: docs/units.md).
- ``Cache-Control: no-store`` on every ``/v1/`` response: they carry people's details
  and no browser or proxy should keep them. (The pages set their own caching: they are
  static shells that fetch their data from /v1.)
- ``Strict-Transport-Security`` only when the request came over TLS: the ASGI scheme is
  https (a direct TLS connection, or uvicorn's own proxy-header handling), or, with
  ``LIAISON_BEHIND_TLS_PROXY=true``, the proxy's ``X-Forwarded-Proto: https``. Sent over
  plain HTTP it would mean nothing (browsers ignore it) and on a misconfigured host it
  would lock browsers out for a year.

Headers the application set itself are kept, except Cache-Control on /v1/, which is
always no-store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' https://cdn.jsdelivr.net; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'")
DOCS_PATHS = ("/docs", "/redoc")
HSTS = b"max-age=63072000"
COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(self), payment=(), usb=()"),
)


def came_over_tls(scope: Scope, *, trust_forwarded_proto: bool) -> bool:
    """True when the request arrived over TLS, directly or through a trusted proxy."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    if trust_forwarded_proto:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-proto":
                # A chain of proxies appends; the first is what the client used.
                return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, behind_tls_proxy: bool = False) -> None:
        self.app = app
        self.behind_tls_proxy = behind_tls_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else CSP
        extra = [(b"content-security-policy", csp.encode()), *COMMON]
        if came_over_tls(scope, trust_forwarded_proto=self.behind_tls_proxy):
            extra.append((b"strict-transport-security", HSTS))
        api = path.startswith("/v1/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ())
                           if not (api and k.lower() == b"cache-control")]
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                if api:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
