"""The browser pages and their assets under /static. Each page in api/layout.py's list is
drawn once, at start, from its body in web/pages; its script talks to the /v1 API.

No inline script or style anywhere, so `script-src 'self'; style-src 'self'` holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

import web
from api.access import public
from api.layout import BRAND_HREF, PAGES, Page, shell

STATIC = Path(web.__file__).resolve().parent / "static"
NO_CACHE = {"Cache-Control": "no-cache"}

# The shells and assets hold no data: open to anyone. The API they call checks roles,
# and a 401 from it sends the browser to /login.
router = APIRouter(include_in_schema=False, dependencies=[public()])


def _add(page: Page) -> None:
    html = shell(page)
    # Revalidated on every load (no-cache); unchanged, it is a 304.
    tag = '"' + hashlib.sha256(html.encode()).hexdigest()[:32] + '"'
    headers = {**NO_CACHE, "ETag": tag}

    async def serve(request: Request) -> Response:
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers=headers)
        return HTMLResponse(html, headers=headers)

    serve.__name__ = "page_" + page.name
    router.add_api_route(page.path, serve, methods=["GET"], include_in_schema=False)


for _page in PAGES:
    if _page.shell:
        _add(_page)


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse(BRAND_HREF, status_code=307)


@router.get("/sw.js", include_in_schema=False)
async def service_worker() -> FileResponse:
    """The field board's service worker (web/static/sw.js), at the root so that it may
    control /board; revalidated on every load, so a new one takes over at once."""
    return FileResponse(STATIC / "sw.js", media_type="text/javascript", headers=NO_CACHE)


class _Static(StaticFiles):
    """Assets revalidated on every load, so a page never runs yesterday's script."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def mount(app: FastAPI) -> None:
    app.mount("/static", _Static(directory=STATIC), name="static")
