"""Request body size limit and NUL refusal, as a pure ASGI middleware; and a per-address
rate limit dependency for routes without credentials.

What is refused, and how it is answered (413 shaped as a 422, the body drained first; NUL
in the path, query or body a 422): SECURITY.md "Hostile input and abuse". Limits:
`LIAISON_MAX_BODY_BYTES` (1 MiB), and `LIAISON_MAX_EIDO_BODY_BYTES` (8 MiB) for the routes
that take whole EIDO incident states. Pure ASGI rather than BaseHTTPMiddleware: the
ingest path is hot, and this adds one header scan and a counter per request, no task and
no response buffering. Websockets are capped elsewhere (uvicorn's ws_max_size, the board).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import HTTPConnection, Request

from service.access.ratelimit import RateLimiter, TooManyRequests

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_EIDO_BODY = 8 * 1024 * 1024
# After a refusal, the rest of the body is read and dropped (at most this much, for at most
# DRAIN_SECONDS) before the 413 goes out: a client still sending when the server closes
# would see its connection reset instead of the answer.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 5.0
# Paths (prefix, suffix) that take EIDO-sized bodies.
EIDO_PATHS: tuple[tuple[str, str], ...] = (("/v1/cad/eido", ""),
                                           ("/v1/cad/rejects/", "/resubmit"))


class BodyRefused(Exception):
    """Raised from the application's receive() when a body is refused while streaming."""


_JSON_NUL = b"\\u0000"


def has_nul(data: bytes, *, form: bool = False) -> bool:
    """A NUL character as a JSON escape (not an escaped backslash followed by 'u0000'), or
    percent-encoded in a form body. (A raw 0x00 byte is not JSON, YAML or a form: the
    application refuses it as malformed, and keeps a CAD's reject.)"""
    if form and b"%00" in data:
        return True
    at = data.find(_JSON_NUL)
    while at >= 0:
        before = at
        while before > 0 and data[before - 1] == 0x5C:  # backslashes before this one
            before -= 1
        if (at - before) % 2 == 0:
            return True
        at = data.find(_JSON_NUL, at + 1)
    return False


async def _send(send: Send, messages: tuple[Message, Message]) -> None:
    for message in messages:
        await send(message)


def nul_refused(where: str) -> tuple[Message, Message]:
    return _response(422, {"error": "invalid", "detail": [{
        "field": where, "type": "nul_character",
        "reason": "contains a NUL character (\\u0000), which is not text Liaison can "
                  "keep; remove it and send again"}]})


def _response(status: int, body: dict[str, Any]) -> tuple[Message, Message]:
    raw = json.dumps(body).encode()
    start = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
        (b"connection", b"close")]}
    return start, {"type": "http.response.body", "body": raw, "more_body": False}


async def _drain(receive: Receive, budget: int = DRAIN_BYTES) -> None:
    """Read and drop what is left of a refused body, within the byte and time budget."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while budget > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                budget -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


def too_large(limit: int) -> tuple[Message, Message]:
    return _response(413, {"error": "too_large", "limit": limit, "detail": [{
        "field": "(body)", "type": "too_large",
        "reason": f"the request body is larger than the {limit} bytes this endpoint takes"}]})


class BodySizeLimit:
    """Refuse request bodies over `max_body` bytes (`large_body` on the EIDO paths), and
    NUL characters anywhere in the request."""

    def __init__(self, app: ASGIApp, *, max_body: int = DEFAULT_MAX_BODY,
                 large_body: int = DEFAULT_MAX_EIDO_BODY,
                 large_paths: tuple[tuple[str, str], ...] = EIDO_PATHS) -> None:
        self.app = app
        self.max_body = max_body
        self.large_body = max(large_body, max_body)
        self.large_paths = large_paths

    def limit_for(self, path: str) -> int:
        for prefix, suffix in self.large_paths:
            if path.startswith(prefix) and path.endswith(suffix):
                return self.large_body
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            await _send(send, nul_refused("(path)" if "\x00" in path else "(query)"))
            return
        limit = self.limit_for(path)
        form = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.strip().isdigit():
                    await _send(send, _response(400, {"error": "invalid", "detail": [{
                        "field": "(header) content-length", "type": "invalid",
                        "reason": "Content-Length must be a number of bytes"}]}))
                    return
                if int(value) > limit:
                    if int(value) <= DRAIN_BYTES:
                        await _drain(receive)
                    await _send(send, too_large(limit))
                    return
            elif name == b"content-type":
                form = value.startswith(b"application/x-www-form-urlencoded")
        # Count what streams in (a chunked body declares no length) and look for NULs.
        received = 0
        tail = b""
        refusal: tuple[Message, Message] | None = None
        started = False

        async def limited_receive() -> Message:
            nonlocal received, refusal, tail
            if refusal is not None:
                raise BodyRefused
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                received += len(body)
                if received > limit:
                    refusal = too_large(limit)
                elif body and has_nul(tail + body, form=form):
                    refusal = nul_refused("(body)")
                else:
                    tail = (tail + body)[-8:]
                    return message
                if message.get("more_body", False):
                    await _drain(receive)
                raise BodyRefused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refusal is not None:
                # The application answers a failed read somehow (a 400, a 500); the answer
                # is the refusal instead, sent once.
                if not started:
                    started = True
                    await _send(send, refusal)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if refusal is None:
                raise
            if not started:
                started = True
                await _send(send, refusal)


# --- per client address rate limit, for routes without credentials -----------------------

def client_address(request: HTTPConnection) -> str:
    """The client's address as uvicorn reports it (behind a proxy, uvicorn's
    --forwarded-allow-ips decides whether X-Forwarded-For is believed)."""
    return request.client.host if request.client else "unknown"


def _limiter(request: Request, name: str) -> RateLimiter:
    limiters: dict[str, RateLimiter] | None = getattr(request.app.state, "rate_limiters", None)
    if limiters is None:
        limiters = request.app.state.rate_limiters = {}
    limiter = limiters.get(name)
    if limiter is None:
        settings = request.app.state.runtime.settings
        limiter = limiters[name] = RateLimiter(settings.rate_limit_anonymous_rate,
                                               settings.rate_limit_anonymous_burst)
    return limiter


def limit_by_address(name: str = "anonymous") -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency: requests from one client address to the routes that use it
    (one shared bucket per `name`) are limited to LIAISON_RATE_LIMIT_ANONYMOUS_BURST at
    once and LIAISON_RATE_LIMIT_ANONYMOUS_RATE per second; beyond that 429 with
    Retry-After. For routes without credentials (the login form, for one):

        @router.post("/v1/login", dependencies=[Depends(limit_by_address("login"))])
    """

    async def dependency(request: Request) -> None:
        wait = _limiter(request, name).take(client_address(request))
        if wait is not None:
            raise TooManyRequests("too many requests from this address; retry later",
                                  retry_after=wait)

    return dependency
