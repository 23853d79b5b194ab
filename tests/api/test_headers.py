"""Security headers on every response, over a real uvicorn: the CSP without inline script,
no framing, no sniffing, no referrer, no-store on /v1/, and HSTS only over TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from api.headers import came_over_tls
from service.settings import Settings
from tests.conftest import Server, running_server

# SECURITY.md "Security headers", directive by directive: written here, not imported from
# api/headers.py, so a looser policy there fails. No inline script or style, no framing,
# no <base>, forms post only here; connect-src 'self' covers the board websocket.
STRICT = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "connect-src": {"'self'"},
    "worker-src": {"'self'"},  # the board's service worker (/sw.js)
    "frame-ancestors": {"'none'"},
    "base-uri": {"'none'"},
    "form-action": {"'self'"},
}
# /docs and /redoc (Swagger UI, ReDoc: no personal data) load from one CDN and run one
# inline bootstrap script; nothing more.
DOCS = {**STRICT,
        "script-src": {"'self'", "'unsafe-inline'", "https://cdn.jsdelivr.net"},
        "style-src": {"'self'", "https://cdn.jsdelivr.net"},
        "img-src": {"'self'", "data:", "https://fastapi.tiangolo.com", "https://cdn.redoc.ly"},
        "worker-src": {"'self'", "blob:"}}
# Every page: the shells (api/pages.py) and the figures pages a supervisor reads.
PAGES = ("/board", "/dispatch", "/refer", "/refer/mine", "/policy", "/login", "/metrics",
         "/reports/monthly?month=2026-03")


def directives(header: str) -> dict[str, set[str]]:
    """A CSP header as {directive: its sources}; a directive named twice fails."""
    out: dict[str, set[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        assert name not in out, f"{name} twice in {header!r}"
        out[name] = set(sources)
    return out


def url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"


@pytest_asyncio.fixture
async def plain(tmp_path: Path) -> AsyncIterator[Server]:
    async with running_server(Settings(database_url=url(tmp_path))) as s:
        yield s


def assert_common(r: httpx.Response) -> None:
    h = r.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert h["cross-origin-opener-policy"] == "same-origin"
    assert "camera=()" in h["permissions-policy"]
    csp = h["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp


@pytest.mark.asyncio
async def test_every_kind_of_response_carries_the_headers(plain: Server) -> None:
    c = plain.client
    responses = [
        await c.get("/v1/health"),
        await plain.post_event(),
        await c.post("/v1/cad/events", json={"nope": 1}),  # 422
        await c.get("/v1/calls/no-such-call"),  # 404
        await c.get("/no/such/route"),
        await c.get("/openapi.json"),
    ]
    for r in responses:
        assert_common(r)
        assert "strict-transport-security" not in r.headers, "plain HTTP: no HSTS"
    for r in responses[:4]:
        assert directives(r.headers["content-security-policy"]) == STRICT, r.request.url
        assert r.headers["cache-control"] == "no-store", r.request.url


@pytest.mark.asyncio
async def test_pages_get_the_strict_policy_and_docs_a_relaxed_one(plain: Server) -> None:
    for path in ("/docs", "/redoc"):
        docs = await plain.client.get(path)
        assert docs.status_code == 200
        assert_common(docs)
        assert directives(docs.headers["content-security-policy"]) == DOCS, path
    for path in PAGES:
        # (The client sends a key the page's route allows: the figures pages need one.)
        r = await plain.client.get(path, headers={"accept": "text/html"})
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html"), path
        assert_common(r)
        assert directives(r.headers["content-security-policy"]) == STRICT, path
    # An asset, and the redirect from /, carry it too.
    for path in ("/static/board.js", "/"):
        r = await plain.client.get(path)
        assert r.status_code in (200, 307), (path, r.status_code)
        assert directives(r.headers["content-security-policy"]) == STRICT, path


@pytest.mark.asyncio
async def test_hsts_only_when_the_request_came_over_tls(tmp_path: Path) -> None:
    # (uvicorn itself also trusts X-Forwarded-Proto from its forwarded_allow_ips, by default
    # 127.0.0.1, and then says https in the ASGI scope; the setting covers proxies
    # elsewhere.)
    forwarded = {"x-forwarded-proto": "https"}
    async with running_server(Settings(database_url=url(tmp_path),
                                       behind_tls_proxy=True)) as s:
        r = await s.client.get("/v1/health", headers=forwarded)
        assert r.headers["strict-transport-security"].startswith("max-age=")
        r = await s.client.get("/v1/health", headers={"x-forwarded-proto": "http"})
        assert "strict-transport-security" not in r.headers
        r = await s.client.get("/v1/health")
        assert "strict-transport-security" not in r.headers


def test_came_over_tls() -> None:
    fwd = [(b"x-forwarded-proto", b"https, http")]
    assert came_over_tls({"scheme": "https", "headers": []}, trust_forwarded_proto=False)
    assert not came_over_tls({"scheme": "http", "headers": fwd}, trust_forwarded_proto=False)
    assert came_over_tls({"scheme": "http", "headers": fwd}, trust_forwarded_proto=True)
    assert not came_over_tls({"scheme": "http", "headers": [(b"x-forwarded-proto", b"http")]},
                             trust_forwarded_proto=True)
